"""Identities from client certificates: which name is chosen, and what identifies no one.

The certificates are real (made by `secretsvc.crypto.pki`); the auth context dicts have the shape gRPC gives
(`tests/unit/rpc/test_tls.py` checks that shape against a real handshake).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509

from secretsvc.auth.certs import (
    MAX_PEER_CERT_PEM_BYTES,
    SOURCES,
    CertificateIdentity,
    IdentitySource,
    identity_of,
    principal_from_auth_context,
)
from secretsvc.config import CLIENT_IDENTITY_SOURCES
from secretsvc.crypto import pki
from tests.fakecreds import broken_pem

NOW = datetime(2030, 6, 1, tzinfo=UTC)
SPIFFE = "spiffe://cluster.local/ns/payments/sa/api"


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.new_ca("CA", now=NOW)


def _client(ca: pki.Issued, *, cn: str = "api", uris: tuple[str, ...] = (), dns: tuple[str, ...] = ()) -> bytes:
    return pki.issue(ca, common_name=cn, usage="client", now=NOW, uris=uris, dns_names=dns).cert_pem


def _context(pem: bytes | None, security: bytes = b"ssl") -> dict[str, list[bytes]]:
    context = {"transport_security_type": [security], "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"]}
    if pem is not None:
        cert = x509.load_pem_x509_certificate(pem)
        context.update(x509_pem_cert=[pem], x509_common_name=[b"api"],
                       x509_subject=[cert.subject.rfc4514_string().encode()])
    return context


@pytest.mark.parametrize(("source", "expected"), [
    ("auto", CertificateIdentity("uri", SPIFFE)),
    ("uri", CertificateIdentity("uri", SPIFFE)),
    ("dns", CertificateIdentity("dns", "api.payments.svc")),
    ("subject", CertificateIdentity("subject", "api")),
])
def test_each_source_picks_its_name(ca: pki.Issued, source: IdentitySource, expected: CertificateIdentity) -> None:
    pem = _client(ca, uris=(SPIFFE,), dns=("api.payments.svc", "other.svc"))
    assert identity_of(x509.load_pem_x509_certificate(pem), source) == expected


def test_auto_falls_back_from_uri_to_dns_to_subject(ca: pki.Issued) -> None:
    dns_only = x509.load_pem_x509_certificate(_client(ca, dns=("api.payments.svc",)))
    assert identity_of(dns_only) == CertificateIdentity("dns", "api.payments.svc")
    bare = x509.load_pem_x509_certificate(_client(ca, cn="batch-job"))
    assert identity_of(bare) == CertificateIdentity("subject", "batch-job")


@pytest.mark.parametrize("source", ["uri", "dns"])
def test_a_missing_name_of_the_chosen_kind_identifies_no_one(ca: pki.Issued, source: IdentitySource) -> None:
    assert identity_of(x509.load_pem_x509_certificate(_client(ca, cn="only-cn")), source) is None


def test_two_uris_are_ambiguous(ca: pki.Issued) -> None:
    cert = x509.load_pem_x509_certificate(_client(ca, uris=(SPIFFE, "spiffe://cluster.local/ns/x/sa/y"),
                                                  dns=("api.svc",)))
    # auto does not fall through to the DNS name: the certificate says it is identified by URI.
    assert identity_of(cert, "auto") is None
    assert identity_of(cert, "uri") is None
    assert identity_of(cert, "dns") == CertificateIdentity("dns", "api.svc")


def test_a_server_certificate_does_not_identify_a_client(ca: pki.Issued) -> None:
    server = pki.issue(ca, common_name="api", usage="server", now=NOW, dns_names=["api.svc"])
    assert identity_of(x509.load_pem_x509_certificate(server.cert_pem)) is None


def test_principal_from_a_real_certificate(ca: pki.Issued) -> None:
    principal = principal_from_auth_context(_context(_client(ca, uris=(SPIFFE,))))
    assert principal is not None
    assert (principal.kind, principal.name, principal.principal_id) == ("mtls", SPIFFE, f"mtls:uri:{SPIFFE}")
    assert principal.display == f"mtls:{SPIFFE}"
    assert principal.policies == ()


def test_the_source_is_part_of_the_id(ca: pki.Issued) -> None:
    by_cn = principal_from_auth_context(_context(_client(ca, cn="api.svc")))
    by_dns = principal_from_auth_context(_context(_client(ca, cn="x", dns=("api.svc",))))
    assert by_cn is not None and by_dns is not None
    assert by_cn.name == by_dns.name == "api.svc"
    assert by_cn.principal_id != by_dns.principal_id


def test_the_flattened_names_are_not_trusted(ca: pki.Issued) -> None:
    context = _context(_client(ca, cn="real"))
    context["x509_common_name"] = [b"admin"]
    context["x509_subject_alternative_name"] = [b"spiffe://cluster.local/ns/kube-system/sa/admin"]
    principal = principal_from_auth_context(context)
    assert principal is not None and principal.name == "real"


@pytest.mark.parametrize("context", [
    {},
    {"transport_security_type": [b"insecure"]},
    {"transport_security_type": [b"ssl"]},  # TLS without a client certificate
    {"transport_security_type": [b"ssl"], "x509_pem_cert": [broken_pem("CERTIFICATE", "AA==", end=False)]},
    {"transport_security_type": [b"ssl"], "x509_pem_cert": [b"x" * (MAX_PEER_CERT_PEM_BYTES + 1)]},
    {"transport_security_type": [b"ssl"], "x509_pem_cert": ["not bytes"]},
])
def test_no_usable_certificate_is_no_one(context: dict[str, list[bytes]]) -> None:
    assert principal_from_auth_context(context) is None


def test_a_certificate_over_plaintext_is_ignored(ca: pki.Issued) -> None:
    assert principal_from_auth_context(_context(_client(ca), security=b"insecure")) is None


def test_the_setting_offers_the_same_sources() -> None:
    assert CLIENT_IDENTITY_SOURCES == SOURCES
