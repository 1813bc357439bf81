"""TLS and mutual TLS handshakes against a real gRPC server in this process, with certificates made here."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from secretsvc.crypto import pki
from tests.tlskit import FRESH_CONNECTION, SERVING, DevPki, credentials, health_status, make_pki, write_issued
from tests.unit.rpc.tls_support import server_config, serving, who_am_i

SPIFFE = "spiffe://cluster.local/ns/payments/sa/api"


@pytest.fixture
def dev(tmp_path: Path) -> DevPki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def other(tmp_path: Path) -> DevPki:
    return make_pki(tmp_path / "other-pki")


def test_tls_without_client_certificates(tmp_path: Path, dev: DevPki, other: DevPki) -> None:
    config = server_config(tmp_path, tls_cert=dev.server_cert, tls_key=dev.server_key)
    assert config.client_auth == "off"
    with serving(config) as target:
        assert health_status(target, credentials(dev.ca)) == SERVING
        assert health_status(target, None) == "UNAVAILABLE"  # plaintext to a TLS listener
        assert health_status(target, credentials(other.ca)) == "UNAVAILABLE"  # server not trusted
        # A client certificate is not asked for, so none arrives, and no one is identified by it.
        cert, key = dev.client("api", uris=(SPIFFE,))
        assert who_am_i(target, credentials(dev.ca, cert, key)) == "nobody"


def test_the_server_name_must_match(tmp_path: Path, dev: DevPki) -> None:
    write_issued(dev.issue("server", name="elsewhere", dns=("elsewhere.example",)),
                 tmp_path / "named.pem", tmp_path / "named-key.pem")
    config = server_config(tmp_path, tls_cert=tmp_path / "named.pem", tls_key=tmp_path / "named-key.pem")
    with serving(config) as target:
        # Dialled as 127.0.0.1, a certificate for elsewhere.example only is refused by the client.
        assert health_status(target, credentials(dev.ca)) == "UNAVAILABLE"
        options = (*FRESH_CONNECTION, ("grpc.ssl_target_name_override", "elsewhere.example"))
        with grpc.secure_channel(target, credentials(dev.ca), options=options) as channel:
            assert channel.unary_unary("/test.Who/Am")(b"", timeout=5) == b"nobody"


def test_mutual_tls_requires_a_certificate_from_the_client_ca(tmp_path: Path, dev: DevPki, other: DevPki) -> None:
    config = server_config(tmp_path, tls_cert=dev.server_cert, tls_key=dev.server_key, client_ca=dev.ca)
    assert config.client_auth == "required"
    good_cert, good_key = dev.client("api", uris=(SPIFFE,))
    stranger_cert, stranger_key = other.client("api", uris=(SPIFFE,))
    write_issued(dev.issue("client", name="old", now=pki.utc_now() - timedelta(days=30), validity=timedelta(days=1)),
                 tmp_path / "old.pem", tmp_path / "old-key.pem")
    with serving(config) as target:
        assert health_status(target, credentials(dev.ca, good_cert, good_key)) == SERVING
        assert health_status(target, credentials(dev.ca)) == "UNAVAILABLE"  # no client certificate
        assert health_status(target, credentials(dev.ca, stranger_cert, stranger_key)) == "UNAVAILABLE"
        assert health_status(target, credentials(dev.ca, tmp_path / "old.pem", tmp_path / "old-key.pem")) \
            == "UNAVAILABLE"  # expired


def test_a_server_certificate_is_not_a_client_certificate(tmp_path: Path, dev: DevPki) -> None:
    config = server_config(tmp_path, tls_cert=dev.server_cert, tls_key=dev.server_key, client_ca=dev.ca)
    with serving(config) as target:
        # The TLS stack checks the purpose (extendedKeyUsage serverAuth only); auth/certs.py checks it again.
        assert health_status(target, credentials(dev.ca, dev.server_cert, dev.server_key)) == "UNAVAILABLE"


@pytest.mark.parametrize(("source", "expected"), [
    ("auto", f"mtls:{SPIFFE}"), ("uri", f"mtls:{SPIFFE}"), ("dns", "mtls:api.payments.svc"), ("subject", "mtls:api"),
])
def test_the_handshake_gives_the_certificate_identity(tmp_path: Path, dev: DevPki, source: str,
                                                       expected: str) -> None:
    config = server_config(tmp_path, tls_cert=dev.server_cert, tls_key=dev.server_key, client_ca=dev.ca,
                           client_identity=source)
    cert, key = dev.client("api", uris=(SPIFFE,), dns=("api.payments.svc",))
    with serving(config) as target:
        assert who_am_i(target, credentials(dev.ca, cert, key)) == expected


def test_plaintext_stays_available_on_loopback(tmp_path: Path) -> None:
    with serving(server_config(tmp_path)) as target:
        assert health_status(target, None) == SERVING
