"""Reading the certificate, key and CA files an operator gives the server or a client, and checking them.

One reader for start-up validation (`config.py`), for the server's certificate reload (`rpc/tls.py`) and for
the client library (`client/channel.py`), so all three accept and refuse the same files for the same reasons.
Raises ConfigError whose message names the file and the reason; callers add which setting it came from.
No gRPC here: configuration is validated before any server exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from secretsvc.boundedio import read_bounded
from secretsvc.crypto import pki
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import ConfigError, InvalidArgument

# A certificate chain or a CA bundle; the Debian system bundle is about 220 KiB, so this leaves room.
MAX_PEM_FILE_BYTES = 1024 * 1024
MAX_KEY_FILE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class CertChain:
    pem: bytes  # as read, leaf first, for gRPC
    leaf: x509.Certificate


@dataclass(frozen=True, slots=True)
class KeyPair:
    chain: CertChain
    key_pem: SecretBytes


@dataclass(frozen=True, slots=True)
class ServerTls:
    """What the gRPC listener needs, read and checked together so a reload swaps all of it or none."""

    pair: KeyPair
    client_ca_pem: bytes | None


def _certificates(path: Path, what: str) -> tuple[bytes, list[x509.Certificate]]:
    raw = read_bounded(path, MAX_PEM_FILE_BYTES, what=what, limit_name="MAX_PEM_FILE_BYTES", error=ConfigError)
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError:
        raise ConfigError(f"{what} {path} holds no PEM certificate (or a damaged one)") from None
    return raw, certs


def read_cert_chain(path: Path, *, now: datetime, what: str = "certificate file") -> CertChain:
    """A PEM chain, leaf first; refused if the leaf has expired (every handshake would fail with it)."""
    raw, certs = _certificates(path, what)
    leaf = certs[0]
    if leaf.not_valid_after_utc <= now:
        raise ConfigError(
            f"{what} {path}: the certificate ({leaf.subject.rfc4514_string()}) expired at "
            f"{leaf.not_valid_after_utc.isoformat()}"
        )
    return CertChain(pem=raw, leaf=leaf)


def read_private_key(path: Path, *, what: str = "private key file") -> SecretBytes:
    key = SecretBytes(read_bounded(path, MAX_KEY_FILE_BYTES, what=what, limit_name="MAX_KEY_FILE_BYTES",
                                   error=ConfigError))
    try:
        pki.check_private_key(key)
    except InvalidArgument as exc:
        raise ConfigError(f"{what} {path}: {exc}") from None
    return key


def read_ca_bundle(path: Path, *, what: str = "CA bundle") -> bytes:
    raw, _ = _certificates(path, what)
    return raw


def check_pair(chain: CertChain, key: SecretBytes, *, cert_path: Path, key_path: Path) -> KeyPair:
    if not pki.key_matches_certificate(chain.leaf, key):
        raise ConfigError(f"private key {key_path} does not belong to the certificate in {cert_path}")
    return KeyPair(chain=chain, key_pem=key)


def read_server_tls(cert: Path, key: Path, client_ca: Path | None, *, now: datetime) -> ServerTls:
    chain = read_cert_chain(cert, now=now, what="TLS certificate file")
    pair = check_pair(chain, read_private_key(key, what="TLS key file"), cert_path=cert, key_path=key)
    ca = read_ca_bundle(client_ca, what="client CA bundle") if client_ca is not None else None
    return ServerTls(pair=pair, client_ca_pem=ca)
