"""The development CA and its certificates: extensions a strict verifier expects, validity, name checks."""

from __future__ import annotations

import contextlib
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from secretsvc.crypto import pki
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import InvalidArgument
from tests.fakecreds import broken_pem

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.new_ca("test CA", now=NOW)


def _cert(issued: pki.Issued) -> x509.Certificate:
    return x509.load_pem_x509_certificate(issued.cert_pem)


def _ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


def test_ca_is_a_p256_ca_for_ten_years(ca: pki.Issued) -> None:
    cert = _cert(ca)
    constraints = _ext(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = _ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert cert.not_valid_before_utc == NOW - pki.CLOCK_SKEW
    assert cert.not_valid_after_utc == NOW + timedelta(days=3650)
    ski = _ext(cert, x509.SubjectKeyIdentifier).value
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    cert.verify_directly_issued_by(cert)
    assert pki.is_ca_certificate(cert)


def test_server_certificate(ca: pki.Issued) -> None:
    server = pki.issue(ca, common_name="srv", usage="server", now=NOW, dns_names=["Localhost"],
                       ip_addresses=["127.0.0.1", "::1"])
    cert = _cert(server)
    cert.verify_directly_issued_by(_cert(ca))
    assert not _ext(cert, x509.BasicConstraints).value.ca
    assert _ext(cert, x509.KeyUsage).value.digital_signature
    assert not _ext(cert, x509.KeyUsage).value.key_cert_sign
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    ca_ski = _ext(_cert(ca), x509.SubjectKeyIdentifier).value.digest
    assert _ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski
    assert cert.not_valid_after_utc == NOW + timedelta(days=365)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "srv"
    assert pki.key_matches_certificate(cert, server.key_pem)
    assert not pki.key_matches_certificate(cert, ca.key_pem)
    assert not pki.is_ca_certificate(cert)


def test_client_certificate_names(ca: pki.Issued) -> None:
    client = pki.issue(ca, common_name="web", usage="client", now=NOW,
                       uris=["spiffe://cluster.local/ns/app/sa/web"], dns_names=["web.app.svc"])
    cert = _cert(client)
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://cluster.local/ns/app/sa/web"]
    assert san.get_values_for_type(x509.DNSName) == ["web.app.svc"]


def test_client_certificate_without_names_has_no_san(ca: pki.Issued) -> None:
    cert = _cert(pki.issue(ca, common_name="plain", usage="client", now=NOW))
    with pytest.raises(x509.ExtensionNotFound):
        _ext(cert, x509.SubjectAlternativeName)


def test_a_leaf_never_outlives_its_ca() -> None:
    short_ca = pki.new_ca("short", now=NOW, validity=timedelta(days=30))
    leaf = _cert(pki.issue(short_ca, common_name="x", usage="client", now=NOW))
    assert leaf.not_valid_after_utc == _cert(short_ca).not_valid_after_utc


def test_a_past_window_makes_an_expired_certificate(ca: pki.Issued) -> None:
    old = _cert(pki.issue(ca, common_name="old", usage="client", now=NOW - timedelta(days=10),
                          validity=timedelta(days=1)))
    assert old.not_valid_after_utc < NOW


def test_keys_are_redacted_and_distinct(ca: pki.Issued) -> None:
    a = pki.issue(ca, common_name="a", usage="client", now=NOW)
    b = pki.issue(ca, common_name="a", usage="client", now=NOW)
    assert "PRIVATE" not in repr(a) and "redacted" in repr(a.key_pem)
    assert a.key_pem != b.key_pem
    assert _cert(a).serial_number != _cert(b).serial_number


def test_a_server_certificate_needs_a_name(ca: pki.Issued) -> None:
    with pytest.raises(InvalidArgument, match="at least one DNS name or IP"):
        pki.issue(ca, common_name="srv", usage="server", now=NOW)


def test_issuing_needs_a_ca_and_its_key(ca: pki.Issued) -> None:
    leaf = pki.issue(ca, common_name="leaf", usage="client", now=NOW)
    with pytest.raises(InvalidArgument, match="not a CA"):
        pki.issue(leaf, common_name="x", usage="client", now=NOW)
    other = pki.new_ca("other", now=NOW)
    with pytest.raises(InvalidArgument, match="does not belong"):
        pki.issue(pki.Issued(cert_pem=ca.cert_pem, key_pem=other.key_pem), common_name="x", usage="client",
                  now=NOW)
    with pytest.raises(InvalidArgument, match="not an unencrypted PEM private key"):
        pki.issue(pki.Issued(cert_pem=ca.cert_pem, key_pem=SecretBytes(b"junk")), common_name="x",
                  usage="client", now=NOW)


def test_validity_and_clock_are_checked(ca: pki.Issued) -> None:
    with pytest.raises(InvalidArgument, match="positive"):
        pki.issue(ca, common_name="x", usage="client", now=NOW, validity=timedelta(0))
    with pytest.raises(ValueError, match="timezone"):
        pki.new_ca("naive", now=datetime(2030, 1, 1))


def test_too_many_names(ca: pki.Issued) -> None:
    names = [f"n{i}.example" for i in range(pki.MAX_SANS + 1)]
    with pytest.raises(InvalidArgument, match="MAX_SANS"):
        pki.issue(ca, common_name="x", usage="client", now=NOW, dns_names=names)


@pytest.mark.parametrize("name", ["*.example.com", "", "a..b", "-a.example", "a-.example", "a_b.example",
                                  "é.example", "a" * 64 + ".example", ".".join(["abcdefghi"] * 26), "a b"])
def test_bad_dns_names(name: str) -> None:
    with pytest.raises(InvalidArgument, match="not a DNS name"):
        pki.check_dns_name(name)


@pytest.mark.parametrize(("name", "expected"), [("Web.Example.", "web.example"), ("localhost", "localhost"),
                                                ("a-b.c1", "a-b.c1")])
def test_dns_names_are_normalised(name: str, expected: str) -> None:
    assert pki.check_dns_name(name) == expected


@pytest.mark.parametrize("uri", [
    "spiffe://cluster.local/ns/app/sa/web", "https://example.com/x?y=1", "urn:example:client", "spiffe://td/a",
])
def test_good_uris(uri: str) -> None:
    assert pki.check_uri(uri) == uri


@pytest.mark.parametrize("uri", [
    "no-scheme", "/relative/path", "spiffe://Cluster.local/ns/a", "spiffe://td:8443/ns/a", "spiffe://td/ns//a",
    "spiffe://td/ns/../a", "spiffe://td/ns/a?x=1", "spiffe://td/ns/a#f", "spiffe://td", "spiffe://td/",
    "spiffe://user@td/a", "http://exa mple.com", "http://example.com/\u00e9", "http://example.com/\x00",
    "1http://x", "spiffe://" + "a" * pki.MAX_URI_CHARS,
])
def test_bad_uris(uri: str) -> None:
    with pytest.raises(InvalidArgument):
        pki.check_uri(uri)


@given(st.text(max_size=80))
def test_uri_check_accepts_or_refuses_cleanly(text: str) -> None:
    with contextlib.suppress(InvalidArgument):
        assert pki.check_uri(text) == text


@given(st.text(max_size=80))
def test_dns_check_accepts_or_refuses_cleanly(text: str) -> None:
    try:
        value = pki.check_dns_name(text)
    except InvalidArgument:
        return
    assert value == pki.check_dns_name(value)  # normalising twice changes nothing


def test_check_private_key(ca: pki.Issued, tmp_path: Path) -> None:
    pki.check_private_key(ca.key_pem)
    with pytest.raises(InvalidArgument, match="not a PEM private key"):
        pki.check_private_key(SecretBytes(broken_pem("PRIVATE KEY", "AAAA")))
    with pytest.raises(InvalidArgument, match="not a PEM private key"):
        pki.check_private_key(SecretBytes(ca.cert_pem))
    plain = tmp_path / "k.pem"
    plain.write_bytes(ca.key_pem.reveal())
    encrypted = subprocess.run(["openssl", "pkcs8", "-topk8", "-in", str(plain), "-passout", "pass:pw",
                                "-v2", "aes-256-cbc"], capture_output=True, check=True).stdout
    with pytest.raises(InvalidArgument, match="encrypted"):
        pki.check_private_key(SecretBytes(encrypted))
