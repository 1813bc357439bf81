"""`LocalKeyring`: the key-encryption key kept in a file in the data directory.

The file (`keyring.json`, format in docs/keyring.md) holds every key version, each with a key check value so
corruption shows at load rather than at the first decrypt. It may be sealed with a passphrase (scrypt-derived
key, AES-256-GCM per version). Writes are atomic and the file is 0600 from the moment it exists; a file that
group or others can read is refused.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import stat
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from secretsvc import errors
from secretsvc.atomicfile import write_atomically
from secretsvc.crypto import aead
from secretsvc.crypto.keyset import Keyset, KeyVersion
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyVersionInfo, WrappedKey

KEYRING_FILENAME = "keyring.json"
KEYRING_FORMAT = "secretsvc.keyring.v1"
KEY_ID_PREFIX = "local:"
MAX_KEYRING_FILE_BYTES = 8 * 1024 * 1024
MAX_KEYRING_VERSIONS = 10_000
MAX_PASSPHRASE_BYTES = 4096
SALT_BYTES = 16
KCV_BYTES = 16

_KCV_LABEL = b"secretsvc.keyring.kcv.v1"
_PASSPHRASE_CHECK_LABEL = b"secretsvc.keyring.passphrase-check.v1"
_MATERIAL_AAD_LABEL = b"secretsvc.keyring.material.v1"


@dataclass(frozen=True, slots=True)
class _Sealing:
    params: aead.ScryptParams
    salt: bytes
    key: SecretBytes
    check: bytes


def key_check_value(key: SecretBytes) -> bytes:
    """A short fingerprint of a key that reveals nothing about it, to detect corruption."""
    return aead.hmac_sha256(key, _KCV_LABEL)[:KCV_BYTES]


def _material_aad(key_id: str, version: int) -> bytes:
    return (
        _MATERIAL_AAD_LABEL
        + struct.pack(">B", len(key_id))
        + key_id.encode("ascii")
        + struct.pack(">I", version)
    )


def _derive_sealing(
    passphrase: SecretBytes, salt: bytes, params: aead.ScryptParams, path: Path
) -> tuple[SecretBytes, bytes]:
    if not isinstance(passphrase, SecretBytes) or not 1 <= len(passphrase) <= MAX_PASSPHRASE_BYTES:
        raise errors.KeyringError(f"keyring passphrase must be 1..{MAX_PASSPHRASE_BYTES} bytes ({path})")
    key = aead.scrypt(passphrase, salt, params)
    return key, aead.hmac_sha256(key, _PASSPHRASE_CHECK_LABEL)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Reader:
    """Typed access to the parsed JSON; every complaint names the field and the file, never a value."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, what: str) -> NoReturn:
        raise errors.KeyringError(f"keyring file {self.path} is corrupt: {what}")

    def field(self, obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
        if name not in obj:
            self.fail(f"{where} lacks {name!r}")
        value = obj[name]
        # bool is an int to Python but never a valid number here.
        if isinstance(value, bool) and kind is not bool:
            self.fail(f"{where}.{name} has the wrong type")
        if kind is float:
            if not isinstance(value, int | float):
                self.fail(f"{where}.{name} has the wrong type")
        elif not isinstance(value, kind):
            self.fail(f"{where}.{name} has the wrong type")
        return value

    def b64(self, obj: dict[str, Any], name: str, where: str, max_len: int) -> bytes:
        text = self.field(obj, name, str, where)
        if len(text) > 4 * max_len:
            self.fail(f"{where}.{name} is too long")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            self.fail(f"{where}.{name} is not valid base64")


def _read_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise errors.KeyringError(f"cannot open keyring file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise errors.KeyringError(f"keyring file {path} is not a regular file")
        if st.st_mode & 0o077:
            raise errors.KeyringError(
                f"keyring file {path} is accessible to group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); it holds key material: run `chmod 600 {path}`"
            )
        data = f.read(MAX_KEYRING_FILE_BYTES + 1)
    if len(data) > MAX_KEYRING_FILE_BYTES:
        raise errors.KeyringError(
            f"keyring file {path} exceeds MAX_KEYRING_FILE_BYTES={MAX_KEYRING_FILE_BYTES}"
        )
    return data


def _write_atomic(path: Path, data: bytes, *, exclusive: bool) -> None:
    """Write the keyring file 0600, whole or not at all. `exclusive` raises FileExistsError if the file
    appeared meanwhile (two first starts racing); otherwise the new file replaces the old."""
    try:
        write_atomically(path, data, mode=0o600, overwrite=not exclusive)
    except FileExistsError:
        raise
    except OSError as exc:
        raise errors.KeyringError(f"cannot write keyring file {path}: {exc.strerror}") from None


class LocalKeyring:
    """Implements `secretsvc.kek.base.KeyEncryptionKey` over a `Keyset` persisted in `keyring.json`."""

    __slots__ = ("_clock", "_keyset", "_lock", "_path", "_random", "_sealing")

    def __init__(
        self,
        path: Path,
        keyset: Keyset,
        sealing: _Sealing | None,
        *,
        random: aead.RandomBytes,
        clock: Callable[[], float],
    ) -> None:
        # Use open_or_create or load; this only assembles the parts.
        self._path = path
        self._keyset = keyset
        self._sealing = sealing
        self._random = random
        self._clock = clock
        self._lock = threading.Lock()

    # -- construction ----------------------------------------------------------------------------------

    @classmethod
    def open_or_create(
        cls,
        path: str | os.PathLike[str],
        passphrase: SecretBytes | None,
        clock: Callable[[], float] = time.time,
        *,
        random: aead.RandomBytes = os.urandom,
        scrypt_params: aead.ScryptParams | None = None,
    ) -> LocalKeyring:
        """Load the keyring at `path` (a file, or a directory holding `keyring.json`), creating it with one
        random version if absent. `scrypt_params` applies only when a sealed keyring is created."""
        file = _resolve(path)
        if not os.path.lexists(file):
            created = cls._create(file, passphrase, clock, random, scrypt_params or aead.ScryptParams())
            if created is not None:
                return created
        return cls.load(file, passphrase, clock, random=random)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        passphrase: SecretBytes | None,
        clock: Callable[[], float] = time.time,
        *,
        random: aead.RandomBytes = os.urandom,
    ) -> LocalKeyring:
        """Load an existing keyring; anything wrong with it raises `KeyringError`."""
        file = _resolve(path)
        data = _read_file(file)
        keyset, sealing = _parse(file, data, passphrase, random, clock)
        return cls(file, keyset, sealing, random=random, clock=clock)

    @classmethod
    def _create(
        cls,
        file: Path,
        passphrase: SecretBytes | None,
        clock: Callable[[], float],
        random: aead.RandomBytes,
        params: aead.ScryptParams,
    ) -> LocalKeyring | None:
        sealing = None
        if passphrase is not None:
            salt = random(SALT_BYTES)
            key, check = _derive_sealing(passphrase, salt, params, file)
            sealing = _Sealing(params, salt, key, check)
        key_id = KEY_ID_PREFIX + random(8).hex()
        keyset = Keyset.generate(key_id, random=random, clock=clock)
        ring = cls(file, keyset, sealing, random=random, clock=clock)
        try:
            _write_atomic(file, ring._serialize(ring._entries()), exclusive=True)
        except FileExistsError:
            return None  # another process created it first: load theirs
        return ring

    # -- KeyEncryptionKey ------------------------------------------------------------------------------

    @property
    def key_id(self) -> str:
        return self._keyset.key_id

    @property
    def path(self) -> Path:
        return self._path

    @property
    def sealed(self) -> bool:
        return self._sealing is not None

    def primary_version(self) -> int:
        return self._keyset.primary_version()

    def versions(self) -> list[KeyVersionInfo]:
        return self._keyset.versions()

    def wrap(self, data_key: SecretBytes, aad: bytes) -> WrappedKey:
        return self._keyset.wrap(data_key, aad)

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> SecretBytes:
        return self._keyset.unwrap(wrapped, aad)

    def rotate(self) -> int:
        """Add a random version, write the file, and only then make the version primary: a key that is not
        yet durable never wraps anything."""
        with self._lock:
            if len(self._keyset.versions()) >= MAX_KEYRING_VERSIONS:
                raise errors.KeyringError(
                    f"keyring already holds MAX_KEYRING_VERSIONS={MAX_KEYRING_VERSIONS}"
                )
            version = self._keyset.next_version()
            entry: KeyVersion = (version, self._clock(), aead.random_key(self._random))
            _write_atomic(self._path, self._serialize([*self._entries(), entry]), exclusive=False)
            self._keyset.add_version(*entry)
        return version

    def __repr__(self) -> str:
        return (
            f"LocalKeyring(path={str(self._path)!r}, key_id={self.key_id!r}, "
            f"primary={self.primary_version()}, sealed={self.sealed})"
        )

    def __reduce__(self) -> NoReturn:
        raise TypeError("LocalKeyring cannot be pickled")

    # -- persistence -----------------------------------------------------------------------------------

    def _entries(self) -> list[KeyVersion]:
        return [(v.version, v.created_at, self._keyset.material(v.version)) for v in self._keyset.versions()]

    def _serialize(self, entries: list[KeyVersion]) -> bytes:
        key_id = self._keyset.key_id
        sealing: dict[str, Any] | None = None
        if self._sealing is not None:
            s = self._sealing
            sealing = {"kdf": "scrypt", "n": s.params.n, "r": s.params.r, "p": s.params.p,
                       "salt": _b64(s.salt), "check": _b64(s.check)}  # fmt: skip
        versions = []
        for version, created_at, key in entries:
            if self._sealing is None:
                stored = key.reveal()
            else:
                stored = aead.seal(
                    self._sealing.key, key.reveal(), _material_aad(key_id, version), random=self._random
                )
            versions.append(
                {
                    "version": version,
                    "created_at": created_at,
                    "key": _b64(stored),
                    "kcv": key_check_value(key).hex(),
                }
            )
        doc = {"format": KEYRING_FORMAT, "key_id": key_id, "sealing": sealing, "versions": versions}
        return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def _resolve(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / KEYRING_FILENAME if p.is_dir() else p


def _parse(
    path: Path,
    data: bytes,
    passphrase: SecretBytes | None,
    random: aead.RandomBytes,
    clock: Callable[[], float],
) -> tuple[Keyset, _Sealing | None]:
    r = _Reader(path)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        r.fail("not valid JSON")
    if not isinstance(doc, dict):
        r.fail("top level is not an object")
    if r.field(doc, "format", str, "keyring") != KEYRING_FORMAT:
        r.fail(f"format is not {KEYRING_FORMAT!r}")
    key_id = r.field(doc, "key_id", str, "keyring")
    if not key_id.startswith(KEY_ID_PREFIX) or not key_id.isascii() or len(key_id) > 255:
        r.fail(f"key_id does not start with {KEY_ID_PREFIX!r}")

    sealing = _parse_sealing(r, doc, passphrase)

    raw_versions = r.field(doc, "versions", list, "keyring")
    if not 1 <= len(raw_versions) <= MAX_KEYRING_VERSIONS:
        r.fail(f"versions must hold 1..{MAX_KEYRING_VERSIONS} entries")
    entries: list[KeyVersion] = []
    for i, item in enumerate(raw_versions):
        where = f"versions[{i}]"
        if not isinstance(item, dict):
            r.fail(f"{where} is not an object")
        version = r.field(item, "version", int, where)
        created_at = r.field(item, "created_at", float, where)
        if not 1 <= version <= 2**32 - 1:
            r.fail(f"{where}.version is out of range")
        stored = r.b64(item, "key", where, aead.KEY_BYTES + aead.OVERHEAD_BYTES)
        kcv_text = r.field(item, "kcv", str, where)
        try:
            kcv = bytes.fromhex(kcv_text)
        except ValueError:
            r.fail(f"{where}.kcv is not hex")
        if sealing is None:
            key = SecretBytes(stored)
        else:
            try:
                key = SecretBytes(aead.open(sealing.key, stored, _material_aad(key_id, version)))
            except errors.DecryptionFailed:
                r.fail(f"{where} (version {version}): sealed key material does not authenticate")
        if len(key) != aead.KEY_BYTES:
            r.fail(f"{where} (version {version}): key is not {aead.KEY_BYTES} bytes")
        if not hmac.compare_digest(key_check_value(key), kcv):
            r.fail(f"{where} (version {version}): key check value does not match")
        entries.append((version, created_at, key))
    try:
        keyset = Keyset(key_id, entries, random=random, clock=clock)
    except errors.InvalidArgument as exc:
        r.fail(str(exc))
    return keyset, sealing


def _parse_sealing(r: _Reader, doc: dict[str, Any], passphrase: SecretBytes | None) -> _Sealing | None:
    if "sealing" not in doc:
        r.fail("keyring lacks 'sealing'")
    raw = doc["sealing"]
    if raw is None:
        if passphrase is not None:
            raise errors.KeyringError(
                f"keyring file {r.path} is not sealed, but a passphrase was given; refusing to run with key "
                "material stored in the clear while a passphrase is expected"
            )
        return None
    if not isinstance(raw, dict):
        r.fail("sealing is not an object")
    if passphrase is None:
        raise errors.KeyringError(f"keyring file {r.path} is sealed with a passphrase, and none was given")
    if r.field(raw, "kdf", str, "sealing") != "scrypt":
        r.fail("sealing.kdf is not 'scrypt'")
    try:
        params = aead.ScryptParams(
            n=r.field(raw, "n", int, "sealing"),
            r=r.field(raw, "r", int, "sealing"),
            p=r.field(raw, "p", int, "sealing"),
        )
    except errors.InvalidArgument as exc:
        r.fail(str(exc))
    salt = r.b64(raw, "salt", "sealing", aead.MAX_SALT_BYTES)
    if not aead.MIN_SALT_BYTES <= len(salt) <= aead.MAX_SALT_BYTES:
        r.fail("sealing.salt has the wrong length")
    check = r.b64(raw, "check", "sealing", 32)
    key, expected = _derive_sealing(passphrase, salt, params, r.path)
    if not hmac.compare_digest(check, expected):
        raise errors.KeyringError(f"wrong passphrase for keyring file {r.path}")
    return _Sealing(params, salt, key, check)
