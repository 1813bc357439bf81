"""The audit log's two keys, created on first start in the data directory and loaded after.

    audit-signing.key   Ed25519 private key, PKCS#8 PEM, mode 0600: signs checkpoints
    audit-signing.pub   its public key, PEM, mode 0644: all `secretsvc audit verify` needs; copy it off the host
    audit-hmac.key      32 random bytes as one line `secretsvc.audit.hmac.v1 <hex>`, mode 0600: hashes resource
                        names under hmac_paths; `secretsvc audit hash --key-file` reads it

Every file appears whole or not at all (a 0600 temp file, fsynced, then hard-linked into place, which fails
rather than replace a file that appeared meanwhile). A private key file that group or others can read is
refused, as the keyring is. A public key without its private key is refused rather than replaced: the logs
already signed can only be verified with the old public key.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from secretsvc.atomicfile import write_atomically
from secretsvc.boundedio import read_bounded
from secretsvc.crypto import aead
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.crypto.signing import MAX_KEY_PEM_BYTES, SigningKey, VerifyKey
from secretsvc.errors import AuditUnavailable, InvalidArgument

SIGNING_KEY_FILE = "audit-signing.key"
PUBLIC_KEY_FILE = "audit-signing.pub"
HMAC_KEY_FILE = "audit-hmac.key"
HMAC_KEY_HEADER = "secretsvc.audit.hmac.v1"
HMAC_KEY_BYTES = 32
# One header, one space, 64 hex digits and a newline; a little room for a trailing CR or spaces.
MAX_HMAC_KEY_FILE_BYTES = 256
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


@dataclass(frozen=True, slots=True)
class AuditKeys:
    """The signing key and the HMAC key; both reprs are redacted, and neither can be pickled."""

    signing_key: SigningKey
    hmac_key: SecretBytes

    @property
    def public_key(self) -> VerifyKey:
        return self.signing_key.public_key

    @classmethod
    def generate(cls) -> AuditKeys:
        """Fresh keys in memory (tests, or a caller that stores them elsewhere)."""
        return cls(SigningKey.generate(), aead.random_key())

    @classmethod
    def load_or_create(cls, directory: str | os.PathLike[str]) -> AuditKeys:
        """Load the keys from `directory` (the data directory), creating whichever is missing.

        Raises `AuditUnavailable` naming the file for anything unreadable, corrupt or too open.
        """
        base = Path(directory)
        private, public, hmac_file = base / SIGNING_KEY_FILE, base / PUBLIC_KEY_FILE, base / HMAC_KEY_FILE
        if os.path.lexists(private):
            signing = _load_signing_key(private)
            if not os.path.lexists(public):
                # A crash between the two writes at first start: the public key is derived, not secret.
                _write_new(public, signing.public_key.to_pem(), PUBLIC_MODE)
            elif _read_public(public, error=AuditUnavailable) != signing.public_key:
                raise AuditUnavailable(f"audit public key {public} does not belong to the private key {private}")
        else:
            if os.path.lexists(public):
                raise AuditUnavailable(
                    f"audit public key {public} exists but its private key {private} does not: restore the "
                    "private key, or move the public key aside (with the logs it verifies) to start a new one"
                )
            signing = SigningKey.generate()
            _write_new(private, signing.to_pem().reveal(), PRIVATE_MODE)
            _write_new(public, signing.public_key.to_pem(), PUBLIC_MODE)
        if os.path.lexists(hmac_file):
            hmac_key = _parse_hmac_key(_read_private(hmac_file), hmac_file, error=AuditUnavailable)
        else:
            hmac_key = aead.random_key()
            _write_new(hmac_file, f"{HMAC_KEY_HEADER} {hmac_key.reveal().hex()}\n".encode("ascii"), PRIVATE_MODE)
        return cls(signing, hmac_key)


def load_public_key(path: Path) -> VerifyKey:
    """The public key for verification; `InvalidArgument` naming the file if it is not an Ed25519 PEM key."""
    return _read_public(path, error=InvalidArgument)


def load_hmac_key(path: Path) -> SecretBytes:
    """The HMAC key for `secretsvc audit hash`; `InvalidArgument` naming the file if it is not one."""
    raw = read_bounded(path, MAX_HMAC_KEY_FILE_BYTES, what="audit HMAC key file",
                       limit_name="MAX_HMAC_KEY_FILE_BYTES", error=InvalidArgument)
    return _parse_hmac_key(raw, path, error=InvalidArgument)


def _read_public(path: Path, *, error: type[InvalidArgument] | type[AuditUnavailable]) -> VerifyKey:
    raw = read_bounded(path, MAX_KEY_PEM_BYTES, what="audit public key", limit_name="MAX_KEY_PEM_BYTES",
                       error=error)
    try:
        return VerifyKey.from_pem(raw)
    except InvalidArgument as exc:
        raise error(f"audit public key {path}: {exc}") from None


def _parse_hmac_key(raw: bytes, path: Path, *, error: type[InvalidArgument] | type[AuditUnavailable]) -> SecretBytes:
    parts = raw.decode("ascii", errors="replace").split()
    if len(parts) != 2 or parts[0] != HMAC_KEY_HEADER or len(parts[1]) != 2 * HMAC_KEY_BYTES:
        raise error(f"{path} is not an audit HMAC key file ('{HMAC_KEY_HEADER}' and {2 * HMAC_KEY_BYTES} hex digits)")
    try:
        return SecretBytes(bytes.fromhex(parts[1]))
    except ValueError:
        raise error(f"{path} is not an audit HMAC key file (the key is not hex)") from None


def _read_private(path: Path) -> bytes:
    """A private key file's bytes: a regular file, not a symlink, not readable by group or others."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise AuditUnavailable(f"cannot open audit key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise AuditUnavailable(f"audit key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise AuditUnavailable(
                f"audit key file {path} is accessible to group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"it holds key material: run `chmod 600 {path}`"
            )
        data = handle.read(MAX_KEY_PEM_BYTES + 1)
    if len(data) > MAX_KEY_PEM_BYTES:
        raise AuditUnavailable(f"audit key file {path} is larger than MAX_KEY_PEM_BYTES={MAX_KEY_PEM_BYTES}")
    return data


def _load_signing_key(path: Path) -> SigningKey:
    try:
        return SigningKey.from_pem(SecretBytes(_read_private(path)))
    except InvalidArgument as exc:
        raise AuditUnavailable(f"audit signing key {path}: {exc}") from None


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` holding `data`, whole or not at all; never replaces an existing file."""
    try:
        write_atomically(path, data, mode=mode, overwrite=False)
    except FileExistsError:
        raise AuditUnavailable(f"audit key file {path} appeared while it was being created; start again") from None
    except OSError as exc:
        raise AuditUnavailable(f"cannot write audit key file {path}: {exc.strerror}") from None
