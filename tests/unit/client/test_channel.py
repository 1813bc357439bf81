"""Which transport a client channel uses, from flags and SECRETSVC_* variables, against real TLS servers."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from secretsvc.client import ClientSettings, StaticToken, open_channel
from secretsvc.client.channel import channel_credentials
from secretsvc.crypto import pki
from secretsvc.errors import ConfigError
from tests.tlskit import DevPki, make_pki, write_issued
from tests.unit.client.fakeserver import Behaviour, fake_server

GET = "/secretsvc.v1.Secrets/GetSecret"


@pytest.fixture
def dev(tmp_path: Path) -> DevPki:
    return make_pki(tmp_path / "pki")


def _server_credentials(dev: DevPki, *, mutual: bool) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(dev.server_key.read_bytes(), dev.server_cert.read_bytes())],
                                       root_certificates=dev.ca.read_bytes() if mutual else None,
                                       require_client_auth=mutual)


def test_settings_from_the_environment_and_flags(tmp_path: Path) -> None:
    environ = {"SECRETSVC_ADDR": "10.0.0.1:8290", "SECRETSVC_CA_FILE": "~/ca.pem",
               "SECRETSVC_CLIENT_CERT": "/c.pem", "SECRETSVC_CLIENT_KEY": "/k.pem"}
    settings = ClientSettings.from_environment(environ)
    assert settings.addr == "10.0.0.1:8290"
    assert settings.ca_file == Path("~/ca.pem").expanduser()
    assert (settings.cert_file, settings.key_file) == (Path("/c.pem"), Path("/k.pem"))
    given = ClientSettings.from_environment(environ, addr="127.0.0.1:1", ca_file=tmp_path / "x", cert_file=None)
    assert (given.addr, given.ca_file, given.cert_file) == ("127.0.0.1:1", tmp_path / "x", Path("/c.pem"))
    assert ClientSettings.from_environment({}).addr == "127.0.0.1:8290"
    assert ClientSettings.from_environment({"SECRETSVC_INSECURE_PLAINTEXT": "1"}).insecure_plaintext


@pytest.mark.parametrize(("settings", "tls"), [
    (ClientSettings(addr="127.0.0.1:8290"), False),
    (ClientSettings(addr="localhost:8290"), False),
    (ClientSettings(addr="[::1]:8290"), False),
    (ClientSettings(addr="secretsvc.svc:8290"), True),
    (ClientSettings(addr="10.1.2.3:8290"), True),
    (ClientSettings(addr="10.1.2.3:8290", insecure_plaintext=True), False),
    (ClientSettings(addr="127.0.0.1:8290", ca_file=Path("ca.pem")), True),
])
def test_transport_choice(settings: ClientSettings, tls: bool) -> None:
    assert settings.uses_tls is tls


def test_inconsistent_settings(dev: DevPki) -> None:
    with pytest.raises(ConfigError, match="give both --cert and --key"):
        channel_credentials(ClientSettings(ca_file=dev.ca, cert_file=dev.server_cert))
    with pytest.raises(ConfigError, match="give both --cert and --key"):
        channel_credentials(ClientSettings(key_file=dev.server_key))
    with pytest.raises(ConfigError, match="choose one"):
        channel_credentials(ClientSettings(addr="10.0.0.1:1", insecure_plaintext=True, ca_file=dev.ca))
    with pytest.raises(ConfigError, match="server address"):
        open_channel(ClientSettings(addr="no-port"), None)


def test_bad_files_are_named(tmp_path: Path, dev: DevPki) -> None:
    cert, key = dev.client("app")
    other_cert, _ = make_pki(tmp_path / "other").client("app")
    write_issued(dev.issue("client", name="old", now=pki.utc_now() - timedelta(days=5), validity=timedelta(days=1)),
                 tmp_path / "old.pem", tmp_path / "old-key.pem")
    with pytest.raises(ConfigError, match=re.escape(f"cannot read CA file {tmp_path / 'none.pem'}")):
        channel_credentials(ClientSettings(ca_file=tmp_path / "none.pem"))
    with pytest.raises(ConfigError, match="does not belong"):
        channel_credentials(ClientSettings(ca_file=dev.ca, cert_file=other_cert, key_file=key))
    with pytest.raises(ConfigError, match=r"client certificate file .* expired"):
        channel_credentials(ClientSettings(ca_file=dev.ca, cert_file=tmp_path / "old.pem",
                                           key_file=tmp_path / "old-key.pem"))
    assert channel_credentials(ClientSettings(ca_file=dev.ca, cert_file=cert, key_file=key)) is not None


def test_tls_with_a_ca_file(dev: DevPki) -> None:
    behaviour = Behaviour()
    with fake_server(behaviour, _server_credentials(dev, mutual=False)) as addr:
        with open_channel(ClientSettings(addr=addr, ca_file=dev.ca), StaticToken("t")) as channel:
            assert channel.unary_unary(GET)(b"over tls") == b"over tls"
        # Loopback without TLS settings is plaintext, which a TLS listener does not speak.
        with open_channel(ClientSettings(addr=addr, timeout=2), StaticToken("t")) as channel, \
                pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(GET)(b"x")
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_with_a_client_certificate(dev: DevPki) -> None:
    cert, key = dev.client("app")
    behaviour = Behaviour()
    with fake_server(behaviour, _server_credentials(dev, mutual=True)) as addr:
        settings = ClientSettings.from_environment(
            {"SECRETSVC_CA_FILE": str(dev.ca), "SECRETSVC_CLIENT_CERT": str(cert), "SECRETSVC_CLIENT_KEY": str(key)},
            addr=addr)
        with open_channel(settings, StaticToken("t")) as channel:
            assert channel.unary_unary(GET)(b"mutual") == b"mutual"
        with open_channel(ClientSettings(addr=addr, ca_file=dev.ca, timeout=2), None) as channel, \
                pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(GET)(b"x")
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert behaviour.seen_tokens == ["Bearer t"]
