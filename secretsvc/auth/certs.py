"""Who is calling, from the client certificate gRPC verified during the mutual-TLS handshake.

`principal_from_auth_context(context.auth_context(), source=config.client_identity)` turns what gRPC reports
about the connection into a `Principal` of kind "mtls", or None when the connection carries no usable
certificate identity (the caller then refuses the call like any call without credentials).

The certificate itself (`x509_pem_cert`) is parsed rather than gRPC's flattened name lists: those mix URI
and DNS names in one list of strings, so a DNS name could not be told from a URI. The chain was already
verified against the configured client CA by the TLS stack; this module only chooses the name.

Which name (`client_identity`):
    uri      the one URI name, e.g. a SPIFFE ID spiffe://cluster.local/ns/app/sa/web
    dns      the first DNS name
    subject  the subject's common name
    auto     uri if the certificate has URI names, else dns if it has DNS names, else subject (the default)
A certificate with more than one URI name is ambiguous and identifies no one (a SPIFFE SVID has exactly one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.crypto.pki import MAX_COMMON_NAME_CHARS, check_dns_name, check_uri
from secretsvc.errors import InvalidArgument

KIND = "mtls"
IdentitySource = Literal["auto", "uri", "dns", "subject"]
SOURCES: tuple[IdentitySource, ...] = ("auto", "uri", "dns", "subject")
# A verified client certificate is small; the bound keeps a hostile CA's oversized one from costing a parse.
MAX_PEER_CERT_PEM_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class CertificateIdentity:
    source: Literal["uri", "dns", "subject"]
    value: str

    def principal(self) -> Principal:
        # The source is part of the id, so a common name can never pose as the DNS name or URI it spells.
        return Principal(principal_id=PrincipalId(f"{KIND}:{self.source}:{self.value}"), name=self.value, kind=KIND)


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return san.get_values_for_type(x509.UniformResourceIdentifier), san.get_values_for_type(x509.DNSName)


def _for_client_auth(cert: x509.Certificate) -> bool:
    """A certificate restricted to other purposes (a server certificate, say) does not identify a client."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def _uri(uris: list[str]) -> CertificateIdentity | None:
    if len(uris) != 1:
        return None
    try:
        return CertificateIdentity("uri", check_uri(uris[0]))
    except InvalidArgument:
        return None


def _dns(names: list[str]) -> CertificateIdentity | None:
    if not names:
        return None
    try:
        return CertificateIdentity("dns", check_dns_name(names[0]))
    except InvalidArgument:
        return None


def _subject(cert: x509.Certificate) -> CertificateIdentity | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        return None
    value = names[0].value
    if not isinstance(value, str) or not value or len(value) > MAX_COMMON_NAME_CHARS or not value.isprintable():
        return None
    return CertificateIdentity("subject", value)


def identity_of(cert: x509.Certificate, source: IdentitySource = "auto") -> CertificateIdentity | None:
    """The name in `cert` that identifies its holder, chosen by `source`; None if it has no usable one."""
    if not _for_client_auth(cert):
        return None
    uris, dns_names = _sans(cert)
    if source == "uri":
        return _uri(uris)
    if source == "dns":
        return _dns(dns_names)
    if source == "subject":
        return _subject(cert)
    if uris:
        return _uri(uris)
    if dns_names:
        return _dns(dns_names)
    return _subject(cert)


def _first(auth_context: Mapping[str, Iterable[bytes]], key: str) -> bytes | None:
    for value in auth_context.get(key, ()):
        return value if isinstance(value, bytes) else None
    return None


def principal_from_auth_context(auth_context: Mapping[str, Iterable[bytes]],
                                source: IdentitySource = "auto") -> Principal | None:
    """The caller a verified client certificate names, from `grpc.ServicerContext.auth_context()`.

    None when the connection is not TLS, carries no client certificate, or the certificate names no one by
    `source`. gRPC reports a client certificate only after verifying it against the configured client CA.
    """
    if _first(auth_context, "transport_security_type") != b"ssl":
        return None
    pem = _first(auth_context, "x509_pem_cert")
    if pem is None or len(pem) > MAX_PEER_CERT_PEM_BYTES:
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    identity = identity_of(cert, source)
    return identity.principal() if identity is not None else None
