"""Choosing the key-encryption key: flags, environment and config file, checked together."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secretsvc.config import load_config
from secretsvc.errors import ConfigError
from secretsvc.kek.vaultauth import AppRoleLogin, TokenLogin

BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SECRETSVC_", "VAULT_"))}


def _env(**extra: str) -> dict[str, str]:
    return {**BASE_ENV, "XDG_DATA_HOME": "/tmp/kek-settings-test", **extra}


def test_no_kek_setting_means_the_local_keyring() -> None:
    assert load_config({}, _env(), None).kek is None


def test_vault_transit_from_flags_with_the_token_from_the_environment() -> None:
    config = load_config(
        {"kek": "vault-transit", "vault_addr": "http://127.0.0.1:8200", "vault_key": "root"},
        _env(VAULT_TOKEN="t" * 26),
        None,
    )
    assert config.kek is not None and config.kek.backend == "vault-transit"
    transit = config.kek.transit
    assert transit is not None and transit.key_name == "root" and transit.mount == "transit"
    assert isinstance(transit.login, TokenLogin) and transit.login.token is not None
    assert "t" * 26 not in repr(config)


def test_vault_transit_from_the_config_file_with_approle(tmp_path: Path) -> None:
    file = tmp_path / "server.toml"
    file.write_text(
        '[server]\nkek = "vault-transit"\nvault_addr = "https://vault.internal:8200"\nvault_key = "k"\n'
        f'vault_approle_role_id_file = "{tmp_path}/role"\nvault_approle_secret_id_file = "{tmp_path}/secret"\n'
        "vault_timeout_seconds = 3\nkek_cache_entries = 50\n"
    )
    config = load_config({}, _env(), file)
    assert config.kek is not None and config.kek.transit is not None
    assert isinstance(config.kek.transit.login, AppRoleLogin)
    assert config.kek.transit.timeout_seconds == 3 and config.kek.cache.max_entries == 50


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({"kek": "vault-transit", "vault_key": "k"}, {}, "--vault-addr"),
        ({"kek": "vault-transit", "vault_addr": "http://h:1", "vault_key": "k"}, {}, "VAULT_TOKEN"),
        ({"kek": "vault-transit", "vault_addr": "h:1", "vault_key": "k"}, {"VAULT_TOKEN": "x"}, "http"),
        (
            {"kek": "vault-transit", "vault_addr": "http://h:1", "vault_key": "k", "vault_approle_role_id_file": "/r"},
            {},
            "both",
        ),
        ({"kek": "pkcs11", "pkcs11_token": "t"}, {}, "--pkcs11-module"),
        ({"kek": "hsm"}, {}, "must be one of"),
        ({"kek": "local", "kek_previous": "local"}, {}, "another backend"),
        ({"kek_cache_entries": "-1"}, {}, "kek_cache_entries must be between"),
        ({"vault_timeout_seconds": "0"}, {}, "vault_timeout_seconds must be between"),
    ],
)
def test_incomplete_or_wrong_settings_are_refused(flags: dict[str, str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(flags, _env(**env), None)


def test_environment_selects_pkcs11(tmp_path: Path) -> None:
    module = tmp_path / "module.so"
    module.write_bytes(b"")
    config = load_config(
        {},
        _env(
            SECRETSVC_KEK="pkcs11",
            SECRETSVC_PKCS11_MODULE=str(module),
            SECRETSVC_PKCS11_TOKEN="tok",
            SECRETSVC_PKCS11_KEY="root",
            SECRETSVC_PKCS11_PIN_FILE=str(tmp_path / "pin"),
        ),
        None,
    )
    assert config.kek is not None and config.kek.pkcs11 is not None
    assert config.kek.pkcs11.token_label == "tok" and config.kek.pkcs11.key_label == "root"
