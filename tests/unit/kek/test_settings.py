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


_TRANSIT = {"kek": "vault-transit", "vault_addr": "http://127.0.0.1:8200", "vault_key": "key-b"}


def test_previous_may_be_another_key_of_the_same_backend() -> None:
    config = load_config(
        {**_TRANSIT, "kek_previous": "vault-transit", "kek_previous_vault_key": "key-a"},
        _env(VAULT_TOKEN="t" * 26),
        None,
    )
    kek = config.kek
    assert kek is not None and kek.transit is not None and kek.previous_transit is not None
    assert kek.transit.key_name == "key-b" and kek.previous_transit.key_name == "key-a"
    assert kek.previous_transit.addr == kek.transit.addr  # what it does not give is the current key's


def test_previous_on_another_vault_server_with_its_own_token_file(tmp_path: Path) -> None:
    file = tmp_path / "server.toml"
    file.write_text(
        '[server]\nkek = "vault-transit"\nvault_addr = "https://new.internal:8200"\nvault_key = "root"\n'
        'kek_previous = "vault-transit"\nkek_previous_vault_addr = "https://old.internal:8200"\n'
        f'kek_previous_vault_transit_mount = "old-transit"\nkek_previous_vault_token_file = "{tmp_path}/old-token"\n'
    )
    config = load_config({}, _env(VAULT_TOKEN="t" * 26), file)
    kek = config.kek
    assert kek is not None and kek.transit is not None and kek.previous_transit is not None
    assert kek.previous_transit.addr == "https://old.internal:8200" and kek.previous_transit.mount == "old-transit"
    assert isinstance(kek.previous_transit.login, TokenLogin)
    assert kek.previous_transit.login.token_file == tmp_path / "old-token"
    assert isinstance(kek.transit.login, TokenLogin) and kek.transit.login.token is not None


def test_previous_of_another_backend_type_works_as_it_always_did(tmp_path: Path) -> None:
    module = tmp_path / "module.so"
    module.write_bytes(b"")
    pkcs11 = {
        "pkcs11_module": str(module),
        "pkcs11_token": "tok",
        "pkcs11_key": "root",
        "pkcs11_pin_file": str(tmp_path / "pin"),
    }
    config = load_config(
        {**_TRANSIT, **pkcs11, "kek": "pkcs11", "kek_previous": "vault-transit"}, _env(VAULT_TOKEN="t" * 26), None
    )
    kek = config.kek
    assert kek is not None and kek.previous == "vault-transit"
    assert kek.transit is not None and kek.transit.key_name == "key-b" and kek.previous_transit is None
    assert kek.pkcs11 is not None and kek.previous_pkcs11 is None
    # With a setting of its own, the previous key is built from it.
    config = load_config(
        {**_TRANSIT, **pkcs11, "kek": "pkcs11", "kek_previous": "vault-transit", "kek_previous_vault_key": "older"},
        _env(VAULT_TOKEN="t" * 26),
        None,
    )
    assert config.kek is not None and config.kek.previous_transit is not None
    assert config.kek.previous_transit.key_name == "older"


def test_previous_pkcs11_key_on_the_same_token(tmp_path: Path) -> None:
    module = tmp_path / "module.so"
    module.write_bytes(b"")
    config = load_config(
        {
            "kek": "pkcs11",
            "pkcs11_module": str(module),
            "pkcs11_token": "tok",
            "pkcs11_key": "root-2",
            "pkcs11_pin_file": str(tmp_path / "pin"),
            "kek_previous": "pkcs11",
            "kek_previous_pkcs11_key": "root-1",
        },
        _env(),
        None,
    )
    kek = config.kek
    assert kek is not None and kek.pkcs11 is not None and kek.previous_pkcs11 is not None
    assert (kek.pkcs11.key_label, kek.previous_pkcs11.key_label) == ("root-2", "root-1")
    assert kek.previous_pkcs11.token_label == "tok"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"kek_previous": "vault-transit"}, "names the same vault-transit key as kek"),
        # Key ids name mount and key, not the address: two servers need two names.
        ({"kek_previous": "vault-transit", "kek_previous_vault_addr": "http://other:8200"}, "do not name the address"),
        ({"kek_previous_vault_key": "key-a"}, "needs kek_previous"),
        ({"kek_previous": "local", "kek_previous_vault_key": "key-a"}, "does not apply to kek_previous local"),
        ({"kek_previous": "vault-transit", "kek_previous_pkcs11_key": "x"}, "does not apply"),
        (
            {"kek_previous": "vault-transit", "kek_previous_vault_key": "bad key"},
            r"previous key \(kek_previous_vault_key .*not a Transit key name",
        ),
    ],
)
def test_a_previous_key_that_is_the_current_one_or_misnamed_is_refused(flags: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({**_TRANSIT, **flags}, _env(VAULT_TOKEN="t" * 26), None)
