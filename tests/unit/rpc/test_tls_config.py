"""The TLS settings are checked together at start-up, and every refusal names the setting and its origin."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from secretsvc.cli import build_parser
from secretsvc.config import SETTINGS, load_config
from secretsvc.crypto import pki
from secretsvc.errors import ConfigError
from tests.tlskit import DevPki, make_pki, write_issued

ENV = {s.name: s.env for s in SETTINGS}


@pytest.fixture
def dev(tmp_path: Path) -> DevPki:
    return make_pki(tmp_path / "pki")


def _load(tmp_path: Path, origin: str, **settings: Any) -> Any:
    """load_config with `settings` given as flags, environment variables or a TOML file."""
    base: dict[str, Any] = {"data_dir": tmp_path / "data"}
    if origin == "flag":
        return load_config({**base, **settings}, {}, None)
    if origin == "env":
        return load_config(base, {ENV[k]: str(v) for k, v in settings.items()}, None)
    file = tmp_path / "server.toml"
    file.write_text("[server]\n" + "".join(f'{k} = "{v}"\n' for k, v in settings.items()))
    return load_config(base, {}, file)


def _origin(origin: str, name: str, tmp_path: Path) -> str:
    return {"flag": "--" + name.replace("_", "-"), "env": ENV[name], "file": f"{tmp_path / 'server.toml'}: {name}"}[
        origin]


ORIGINS = ["flag", "env", "file"]


@pytest.mark.parametrize("origin", ORIGINS)
def test_tls_and_mutual_tls_settings(tmp_path: Path, dev: DevPki, origin: str) -> None:
    tls_only = _load(tmp_path, origin, tls_cert=dev.server_cert, tls_key=dev.server_key)
    assert (tls_only.tls_cert, tls_only.tls_key, tls_only.client_ca) == (dev.server_cert, dev.server_key, None)
    assert tls_only.client_auth == "off"
    mutual = _load(tmp_path, origin, tls_cert=dev.server_cert, tls_key=dev.server_key, client_ca=dev.ca)
    assert mutual.client_auth == "required"  # a client CA alone means client certificates are required
    explicit = _load(tmp_path, origin, tls_cert=dev.server_cert, tls_key=dev.server_key, client_ca=dev.ca,
                     client_auth="required", client_identity="subject")
    assert (explicit.client_auth, explicit.client_identity) == ("required", "subject")


def test_defaults_are_plaintext_on_loopback(tmp_path: Path) -> None:
    config = load_config({"data_dir": tmp_path}, {}, None)
    assert (config.tls_cert, config.tls_key, config.client_ca) == (None, None, None)
    assert (config.client_auth, config.client_identity) == ("off", "auto")


@pytest.mark.parametrize("origin", ORIGINS)
def test_a_certificate_needs_its_key_and_the_other_way_round(tmp_path: Path, dev: DevPki, origin: str) -> None:
    with pytest.raises(ConfigError, match="tls_cert is set but tls_key is not") as info:
        _load(tmp_path, origin, tls_cert=dev.server_cert)
    assert str(info.value).startswith(_origin(origin, "tls_cert", tmp_path))
    with pytest.raises(ConfigError, match="tls_key is set but tls_cert is not") as info:
        _load(tmp_path, origin, tls_key=dev.server_key)
    assert str(info.value).startswith(_origin(origin, "tls_key", tmp_path))


@pytest.mark.parametrize("origin", ORIGINS)
def test_client_certificates_need_tls(tmp_path: Path, dev: DevPki, origin: str) -> None:
    with pytest.raises(ConfigError, match="client_ca is set but tls_cert is not") as info:
        _load(tmp_path, origin, client_ca=dev.ca)
    assert str(info.value).startswith(_origin(origin, "client_ca", tmp_path))


@pytest.mark.parametrize("origin", ORIGINS)
def test_client_auth_modes_that_cannot_work(tmp_path: Path, dev: DevPki, origin: str) -> None:
    pair = {"tls_cert": dev.server_cert, "tls_key": dev.server_key}
    with pytest.raises(ConfigError, match="required needs client_ca") as info:
        _load(tmp_path, origin, **pair, client_auth="required")
    assert str(info.value).startswith(_origin(origin, "client_auth", tmp_path))
    with pytest.raises(ConfigError, match="client_auth is off; unset one"):
        _load(tmp_path, origin, **pair, client_ca=dev.ca, client_auth="off")
    with pytest.raises(ConfigError, match=r"optional is not available: gRPC Python .*docs/tls.md") as info:
        _load(tmp_path, origin, **pair, client_ca=dev.ca, client_auth="optional")
    assert str(info.value).startswith(_origin(origin, "client_auth", tmp_path))
    with pytest.raises(ConfigError, match="client_auth must be one of off, optional, required"):
        _load(tmp_path, origin, **pair, client_auth="sometimes")
    with pytest.raises(ConfigError, match="client_identity must be one of auto, uri, dns, subject"):
        _load(tmp_path, origin, **pair, client_identity="email")


@pytest.mark.parametrize("origin", ORIGINS)
def test_unusable_files_are_named_with_their_setting(tmp_path: Path, dev: DevPki, origin: str) -> None:
    other = make_pki(tmp_path / "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"hello\n")
    expired_cert, expired_key = tmp_path / "expired.pem", tmp_path / "expired-key.pem"
    write_issued(dev.issue("server", name="old", now=pki.utc_now() - timedelta(days=3), validity=timedelta(days=1),
                           ips=("127.0.0.1",)), expired_cert, expired_key)
    cases = [
        ({"tls_cert": tmp_path / "missing.pem", "tls_key": dev.server_key}, "tls_cert", "cannot read"),
        ({"tls_cert": garbage, "tls_key": dev.server_key}, "tls_cert", "holds no PEM certificate"),
        ({"tls_cert": expired_cert, "tls_key": expired_key}, "tls_cert", "expired at"),
        ({"tls_cert": dev.server_cert, "tls_key": other.server_key}, "tls_key", "does not belong to the certificate"),
        ({"tls_cert": dev.server_cert, "tls_key": garbage}, "tls_key", "not a PEM private key"),
        ({"tls_cert": dev.server_cert, "tls_key": dev.server_key, "client_ca": garbage}, "client_ca",
         "holds no PEM certificate"),
    ]
    for settings, name, reason in cases:
        with pytest.raises(ConfigError) as info:
            _load(tmp_path, origin, **settings)
        message = str(info.value)
        assert message.startswith(f"{_origin(origin, name, tmp_path)}: "), message
        assert reason in message, message
        assert "PRIVATE KEY" not in message


@pytest.mark.parametrize("listen", ["0.0.0.0:8290", "[::]:8290", "10.1.2.3:8290"])
def test_a_non_loopback_listener_needs_tls(tmp_path: Path, dev: DevPki, listen: str) -> None:
    with pytest.raises(ConfigError, match="not loopback and TLS is not configured") as info:
        _load(tmp_path, "flag", listen=listen)
    assert "--insecure-behind-tls-proxy" in str(info.value) and "--tls-cert" in str(info.value)
    assert _load(tmp_path, "flag", listen=listen, tls_cert=dev.server_cert, tls_key=dev.server_key).listen == listen
    assert _load(tmp_path, "flag", listen=listen, allow_non_loopback=True).allow_non_loopback


def test_the_proxy_escape_is_loudly_named(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for flag in ("--allow-non-loopback", "--insecure-behind-tls-proxy"):
        assert parser.parse_args(["serve", flag]).allow_non_loopback is True
    assert parser.parse_args(["serve"]).allow_non_loopback is None
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--allow-non-loopback, --insecure-behind-tls-proxy" in text
    assert "INSECURE: serve PLAINTEXT gRPC" in text
    for flag in ("--tls-cert", "--tls-key", "--client-ca", "--client-auth", "--client-identity"):
        assert flag in text
