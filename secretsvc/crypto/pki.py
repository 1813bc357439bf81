"""Certificates for TLS and mutual TLS: a development CA, server and client certificates, and key checks.

`secretsvc pki` uses this to make a small private CA for development and tests; production deployments
usually bring certificates from their own CA (cert-manager, SPIFFE/SPIRE, Vault PKI). Everything that needs a
raw key (generating one, reading one, comparing it with a certificate) is here, because only `crypto/` may
touch `cryptography.hazmat`; reading certificates alone (`cryptography.x509`) is safe anywhere.

Keys are ECDSA P-256 (fast handshakes, small certificates, accepted by every TLS stack gRPC uses).
Certificates carry the extensions a strict verifier expects: basicConstraints, keyUsage, extendedKeyUsage,
subjectAltName and both key identifiers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import InvalidArgument

CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=365)
# notBefore is set this far back, so a peer whose clock is a little behind ours accepts a fresh certificate.
CLOCK_SKEW = timedelta(minutes=5)
# SPIFFE caps an ID at 2048 bytes; the same bound serves every URI and keeps certificates small.
MAX_URI_CHARS = 2048
MAX_DNS_NAME_CHARS = 253
MAX_COMMON_NAME_CHARS = 64  # RFC 5280 upper bound for commonName
MAX_SANS = 32

Usage = Literal["server", "client"]

_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_URI_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_SPIFFE_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_SPIFFE_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate (PEM) and its private key (PKCS#8 PEM, unencrypted, kept out of reprs)."""

    cert_pem: bytes
    key_pem: SecretBytes


# -- validating what goes into a certificate ---------------------------------------------------------------


def check_dns_name(name: str) -> str:
    """A DNS name as it goes into a SAN: lower case, letters, digits and hyphens, no wildcard."""
    value = name.lower().rstrip(".")
    labels = value.split(".")
    if not value or len(value) > MAX_DNS_NAME_CHARS or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise InvalidArgument(
            f"{name!r} is not a DNS name: dot-separated labels of letters, digits and hyphens, "
            f"at most MAX_DNS_NAME_CHARS={MAX_DNS_NAME_CHARS} characters, no wildcards"
        )
    return value


def check_uri(uri: str) -> str:
    """An absolute URI for a SAN; a `spiffe://` URI must also be a valid SPIFFE ID."""
    if len(uri) > MAX_URI_CHARS:
        raise InvalidArgument(f"URI is longer than MAX_URI_CHARS={MAX_URI_CHARS}")
    if not uri.isascii() or not uri.isprintable() or " " in uri:
        raise InvalidArgument(f"URI {uri!r} must be printable ASCII without spaces")
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise InvalidArgument(f"{uri!r} is not a valid URI") from None
    if not _URI_SCHEME.fullmatch(parts.scheme) or not (parts.netloc or parts.path):
        raise InvalidArgument(f"{uri!r} is not an absolute URI such as spiffe://cluster.local/ns/app/sa/web")
    if parts.scheme == "spiffe":
        segments = parts.path.split("/")[1:] if parts.path else []
        if (not _SPIFFE_TRUST_DOMAIN.fullmatch(parts.netloc) or parts.query or parts.fragment
                or not segments or not all(_SPIFFE_SEGMENT.fullmatch(s) and s not in {".", ".."}
                                           for s in segments)):
            raise InvalidArgument(
                f"{uri!r} is not a SPIFFE ID: spiffe://TRUST-DOMAIN/PATH with a lower-case trust domain, no port, "
                "query or fragment, and path segments of letters, digits, '.', '_' and '-'"
            )
    return uri


def _check_common_name(name: str) -> str:
    if not name or len(name) > MAX_COMMON_NAME_CHARS or not name.isprintable():
        raise InvalidArgument(f"common name must be 1 to {MAX_COMMON_NAME_CHARS} printable characters")
    return name


# -- making certificates ------------------------------------------------------------------------------------


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> SecretBytes:
    return SecretBytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "secretsvc"),
                      x509.NameAttribute(NameOID.COMMON_NAME, _check_common_name(common_name))])


def _window(now: datetime, validity: timedelta) -> tuple[datetime, datetime]:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if validity <= timedelta(0):
        raise InvalidArgument("validity must be positive")
    return now - CLOCK_SKEW, now + validity


def new_ca(common_name: str, *, now: datetime, validity: timedelta = CA_VALIDITY) -> Issued:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = _new_key()
    subject = _name(common_name)
    not_before, not_after = _window(now, validity)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert_pem=cert.public_bytes(serialization.Encoding.PEM), key_pem=_key_pem(key))


def _load_issuer(ca: Issued) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    try:
        key = serialization.load_pem_private_key(ca.key_pem.reveal(), password=None)
    except (ValueError, TypeError):
        raise InvalidArgument("the CA private key is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _same_public_key(cert, key):
        raise InvalidArgument("the CA private key does not belong to the CA certificate")
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    if not constraints.ca:
        raise InvalidArgument("the CA certificate is not a CA (basicConstraints ca=false)")
    return cert, key


def issue(
    ca: Issued,
    *,
    common_name: str,
    usage: Usage,
    now: datetime,
    dns_names: Sequence[str] = (),
    uris: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    validity: timedelta = LEAF_VALIDITY,
) -> Issued:
    """A leaf certificate signed by `ca`, for a TLS server or a TLS client, with a fresh key.

    Its validity starts at `now` (minus CLOCK_SKEW): pass a past `now` and a short validity to make an
    expired certificate for a test.
    """
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(check_uri(u)) for u in uris]
    sans += [x509.DNSName(check_dns_name(d)) for d in dns_names]
    for text in ip_addresses:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            raise InvalidArgument(f"{text!r} is not an IP address") from None
    if len(sans) > MAX_SANS:
        raise InvalidArgument(f"more than MAX_SANS={MAX_SANS} subject alternative names")
    if usage == "server" and not sans:
        raise InvalidArgument("a server certificate needs at least one DNS name or IP address")
    ca_cert, ca_key = _load_issuer(ca)
    key = _new_key()
    public = key.public_key()
    not_before, not_after = _window(now, validity)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    purpose = ExtendedKeyUsageOID.SERVER_AUTH if usage == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        # A leaf never outlives the CA that signed it: verifiers would reject it after the CA expires anyway.
        .not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert_pem=cert.public_bytes(serialization.Encoding.PEM), key_pem=_key_pem(key))


# -- checking what an operator gives the server -------------------------------------------------------------


def _same_public_key(cert: x509.Certificate, key: object) -> bool:
    public = getattr(key, "public_key", None)
    if public is None:
        return False
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(cert.public_key().public_bytes(*spki) == public().public_bytes(*spki))


def check_private_key(key_pem: SecretBytes) -> None:
    """Raise InvalidArgument unless `key_pem` is one unencrypted PEM private key of a kind TLS can use."""
    try:
        key = serialization.load_pem_private_key(key_pem.reveal(), password=None)
    except TypeError:
        raise InvalidArgument("the private key is encrypted; give it unencrypted (mode 0600)") from None
    except ValueError:
        raise InvalidArgument("not a PEM private key") from None
    except Exception:  # OpenSSL reports some malformed keys with its own exception types
        raise InvalidArgument("not a PEM private key") from None
    if not hasattr(key, "public_key"):
        raise InvalidArgument("not a private key for TLS (RSA, ECDSA or Ed25519)")


def key_matches_certificate(cert: x509.Certificate, key_pem: SecretBytes) -> bool:
    """Whether the private key in `key_pem` belongs to `cert` (same public key)."""
    try:
        key = serialization.load_pem_private_key(key_pem.reveal(), password=None)
    except Exception:  # any key that does not load does not match
        return False
    return _same_public_key(cert, key)


def is_ca_certificate(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def utc_now() -> datetime:
    return datetime.now(UTC)
