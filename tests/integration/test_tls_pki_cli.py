"""`secretsvc pki init` and `pki issue` as scripts run them: file names, modes, refusals, names in certificates."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.serverproc import cli_command

INIT_FILES = {"ca.pem": 0o644, "ca-key.pem": 0o600, "server.pem": 0o644, "server-key.pem": 0o600}


def _pki(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cli_command("pki", *args), capture_output=True, timeout=60, check=False)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _files(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


@pytest.fixture
def initialised(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    result = _pki("init", "--dir", str(directory))
    assert result.returncode == 0, result.stderr
    return directory


def test_init_writes_exactly_the_contract_files(initialised: Path) -> None:
    assert _files(initialised) == INIT_FILES  # no temp files left behind
    assert stat.S_IMODE(initialised.stat().st_mode) == 0o700
    ca, server = _cert(initialised / "ca.pem"), _cert(initialised / "server.pem")
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days == 365
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days == 3650


def test_init_refuses_to_overwrite_unless_forced(initialised: Path) -> None:
    before = {p.name: p.read_bytes() for p in initialised.iterdir()}
    again = _pki("init", "--dir", str(initialised))
    assert again.returncode == 2
    assert b"already exist" in again.stderr and b"--force" in again.stderr
    assert {p.name: p.read_bytes() for p in initialised.iterdir()} == before
    forced = _pki("init", "--dir", str(initialised), "--force", "--dns", "secretsvc.example", "--ip", "10.0.0.7")
    assert forced.returncode == 0, forced.stderr
    assert _files(initialised) == INIT_FILES
    assert (initialised / "ca.pem").read_bytes() != before["ca.pem"]
    san = _cert(initialised / "server.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "secretsvc.example" in san.get_values_for_type(x509.DNSName)
    assert "10.0.0.7" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def test_init_refuses_even_one_existing_file(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    directory.mkdir()
    (directory / "server.pem").write_text("mine")
    assert _pki("init", "--dir", str(directory)).returncode == 2
    assert _files(directory) == {"server.pem": 0o644}
    assert (directory / "server.pem").read_text() == "mine"


def test_issue_a_client_certificate(initialised: Path) -> None:
    result = _pki("issue", "--dir", str(initialised), "payments-api", "--uri",
                  "spiffe://cluster.local/ns/payments/sa/api", "--dns", "api.payments.svc")
    assert result.returncode == 0, result.stderr
    assert _files(initialised) == {**INIT_FILES, "payments-api.pem": 0o644, "payments-api-key.pem": 0o600}
    cert = _cert(initialised / "payments-api.pem")
    cert.verify_directly_issued_by(_cert(initialised / "ca.pem"))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "payments-api"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://cluster.local/ns/payments/sa/api"]
    assert san.get_values_for_type(x509.DNSName) == ["api.payments.svc"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]

    before = (initialised / "payments-api-key.pem").read_bytes()
    again = _pki("issue", "--dir", str(initialised), "payments-api")
    assert again.returncode == 2 and b"--force" in again.stderr
    assert (initialised / "payments-api-key.pem").read_bytes() == before
    assert _pki("issue", "--dir", str(initialised), "payments-api", "--force").returncode == 0
    assert (initialised / "payments-api-key.pem").read_bytes() != before
    assert stat.S_IMODE((initialised / "payments-api-key.pem").stat().st_mode) == 0o600


@pytest.mark.parametrize("args", [
    ("../escape",), ("a/b",), ("ca",), ("server",), ("Server",), ("web-key",), (".hidden",), ("",), ("x" * 65,),
    ("ok", "--uri", "not a uri"), ("ok", "--uri", "spiffe://Cluster.Local/ns/a"), ("ok", "--dns", "*.example.com"),
    ("ok", "--dns", "under_score.example"),
])
def test_issue_refuses_bad_names(initialised: Path, args: tuple[str, ...]) -> None:
    result = _pki("issue", "--dir", str(initialised), *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(b"secretsvc: ")
    assert _files(initialised) == INIT_FILES
    assert not (initialised.parent / "escape.pem").exists()


def test_init_needs_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = _pki("init", "--dir", str(tmp_path / "file"))
    assert result.returncode == 2 and b"is not a directory" in result.stderr


def test_issue_needs_a_ca(tmp_path: Path) -> None:
    result = _pki("issue", "--dir", str(tmp_path), "web")
    assert result.returncode == 2
    assert b"pki init" in result.stderr


def test_help_states_validity_and_key_type() -> None:
    for command in (("init", "--help"), ("issue", "--help")):
        text = b" ".join(_pki(*command).stdout.split())
        assert b"ECDSA P-256" in text and b"10 years" in text and b"1 year" in text and b"0600" in text
