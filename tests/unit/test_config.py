"""`load_config`: flags over environment over file, defaults, and a clear ConfigError for every bad setting."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from secretsvc.cli.pki_cmds import init_pki
from secretsvc.config import (
    DEFAULT_LISTEN,
    DEFAULT_METRICS_LISTEN,
    MAX_CONFIG_FILE_BYTES,
    SETTINGS,
    ServerConfig,
    load_config,
)
from secretsvc.crypto.pki import utc_now
from secretsvc.errors import ConfigError
from secretsvc.netaddr import is_loopback, parse_host_port
from secretsvc.service import limits

ENV = {s.name: s.env for s in SETTINGS}


@pytest.fixture(autouse=True)
def _pinned_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The default data directory comes from XDG_DATA_HOME; pin it so no test depends on the machine."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str | None = None, *, table: bool = True, **settings: Any) -> Path:
        path = tmp_path / "secretsvc.toml"
        if text is None:
            lines = ["[server]"] if table else []
            lines += [f"{k} = {_toml_value(v)}" for k, v in settings.items()]
            text = "\n".join(lines) + "\n"
        path.write_text(text)
        return path

    return write


def _origin_args(origin: str, name: str, raw: Any, write_file: Callable[..., Path]) -> tuple[
    dict[str, Any], dict[str, str], Path | None
]:
    """flags, environ and config file that give setting `name` the value `raw` from `origin`."""
    if origin == "flag":
        return {name: raw}, {}, None
    if origin == "env":
        return {}, {ENV[name]: raw if isinstance(raw, str) else str(raw)}, None
    return {}, {}, write_file(**{name: raw})


def _origin_text(origin: str, name: str, file: Path | None) -> str:
    if origin == "flag":
        return "--" + name.replace("_", "-")
    if origin == "env":
        return ENV[name]
    assert file is not None
    return str(file)


# --- defaults and precedence ---------------------------------------------------------------------------------


def test_defaults(_pinned_data_home: Path) -> None:
    # Without the one-process setting tests/conftest.py gives every server the tests start.
    config = load_config({}, {k: v for k, v in os.environ.items() if k != "SECRETSVC_PROCESSES"}, None)
    assert config == ServerConfig(
        data_dir=_pinned_data_home / "secretsvc",
        listen=DEFAULT_LISTEN,
        metrics_listen=DEFAULT_METRICS_LISTEN,
        admin_token_file=None,
        keyring_passphrase_file=None,
        log_level="info",
        log_format="json",
        default_max_versions=limits.DEFAULT_MAX_VERSIONS,
        workers=16,
        shutdown_grace_seconds=10.0,
        allow_non_loopback=False,
        max_streams=0,
        max_streams_per_peer=4,
        reflection=False,
    )


def test_every_setting_from_the_file(tmp_path: Path, write_file: Callable[..., Path]) -> None:
    file = write_file(
        data_dir=str(tmp_path / "data"),
        listen="127.0.0.1:9000",
        metrics_listen="",
        admin_token_file=str(tmp_path / "admin.token"),
        keyring_passphrase_file=str(tmp_path / "pass"),
        log_level="debug",
        log_format="text",
        default_max_versions=3,
        workers=4,
        shutdown_grace_seconds=2.5,
        allow_non_loopback=True,
        max_streams=3,
        max_streams_per_peer=2,
        reflection=True,
    )
    config = load_config({}, {}, file)
    assert config == ServerConfig(
        data_dir=tmp_path / "data",
        listen="127.0.0.1:9000",
        metrics_listen="",
        admin_token_file=tmp_path / "admin.token",
        keyring_passphrase_file=tmp_path / "pass",
        log_level="debug",
        log_format="text",
        default_max_versions=3,
        workers=4,
        shutdown_grace_seconds=2.5,
        allow_non_loopback=True,
        max_streams=3,
        max_streams_per_peer=2,
        reflection=True,
    )


def test_file_without_a_server_table_is_read_too(write_file: Callable[..., Path]) -> None:
    assert load_config({}, {}, write_file(table=False, workers=5)).workers == 5


def test_every_setting_from_the_environment(tmp_path: Path) -> None:
    init_pki(tmp_path / "pki", now=utc_now())
    environ = {
        "SECRETSVC_DATA_DIR": str(tmp_path / "d"),
        "SECRETSVC_LISTEN": "[::1]:7000",
        "SECRETSVC_METRICS_LISTEN": "127.0.0.1:7001",
        "SECRETSVC_ADMIN_TOKEN_FILE": str(tmp_path / "t"),
        "SECRETSVC_KEYRING_PASSPHRASE_FILE": str(tmp_path / "p"),
        "SECRETSVC_LOG_LEVEL": "WARNING",
        "SECRETSVC_LOG_FORMAT": "text",
        "SECRETSVC_DEFAULT_MAX_VERSIONS": "7",
        "SECRETSVC_WORKERS": "3",
        "SECRETSVC_SHUTDOWN_GRACE_SECONDS": "0.5",
        "SECRETSVC_ALLOW_NON_LOOPBACK": "yes",
        "SECRETSVC_MAX_STREAMS": "2",
        "SECRETSVC_MAX_STREAMS_PER_PEER": "1",
        "SECRETSVC_REFLECTION": "on",
        "SECRETSVC_MAX_WATCHES": "20",
        "SECRETSVC_MAX_WATCHES_PER_CALLER": "3",
        "SECRETSVC_TLS_CERT": str(tmp_path / "pki" / "server.pem"),
        "SECRETSVC_TLS_KEY": str(tmp_path / "pki" / "server-key.pem"),
        "SECRETSVC_CLIENT_CA": str(tmp_path / "pki" / "ca.pem"),
        "SECRETSVC_CLIENT_AUTH": "required",
        "SECRETSVC_CLIENT_IDENTITY": "dns",
        "SECRETSVC_POLICY_PATHS": f"{tmp_path / 'policies'}:{tmp_path / 'more.yaml'}",
        "SECRETSVC_POLICY_RELOAD_SECONDS": "0.5",
        "SECRETSVC_AUDIT_ENABLED": "no",
        "SECRETSVC_AUDIT_FILE": str(tmp_path / "audit" / "a.log"),
        "SECRETSVC_AUDIT_FAIL_CLOSED": "no",
        "SECRETSVC_AUDIT_HMAC_PATHS": "yes",
        "SECRETSVC_AUDIT_CHECKPOINT_EVERY": "50",
        "SECRETSVC_AUDIT_CHECKPOINT_SECONDS": "2.5",
        "SECRETSVC_AUDIT_ROTATE_BYTES": "1048576",
        "SECRETSVC_AUDIT_DURABILITY": "checkpoint",
        "SECRETSVC_STORE": "postgresql://svc@db.internal:5432/secrets",
        "SECRETSVC_STORE_PASSWORD_FILE": str(tmp_path / "store-pw"),
        "SECRETSVC_STORE_POOL_SIZE": "5",
        "SECRETSVC_PROCESSES": "3",
    }
    store_password = random.Random(7).randbytes(12).hex()
    (tmp_path / "store-pw").write_text(store_password + "\n")
    assert set(environ) == {s.env for s in SETTINGS}
    config = load_config({}, environ, None)
    assert config.data_dir == tmp_path / "d"
    assert config.listen == "[::1]:7000"
    assert config.metrics_listen == "127.0.0.1:7001"
    assert config.admin_token_file == tmp_path / "t"
    assert config.keyring_passphrase_file == tmp_path / "p"
    assert config.log_level == "WARNING"
    assert config.log_format == "text"
    assert (config.default_max_versions, config.workers, config.shutdown_grace_seconds) == (7, 3, 0.5)
    assert config.allow_non_loopback is True
    assert (config.max_streams, config.max_streams_per_peer, config.reflection) == (2, 1, True)
    assert (config.max_watches, config.max_watches_per_caller) == (20, 3)
    assert (config.tls_cert, config.tls_key, config.client_ca) == (
        tmp_path / "pki" / "server.pem", tmp_path / "pki" / "server-key.pem", tmp_path / "pki" / "ca.pem")
    assert (config.client_auth, config.client_identity) == ("required", "dns")
    assert config.policy_paths == (tmp_path / "policies", tmp_path / "more.yaml")
    assert config.policy_reload_seconds == 0.5
    assert config.processes == "3"
    assert config.store_pool_size == 5 and config.store_config is not None and config.store_config.pool_size == 5
    assert (config.audit_enabled, config.audit_file, config.audit_fail_closed, config.audit_hmac_paths) == (
        False, tmp_path / "audit" / "a.log", False, True)
    assert (config.audit_checkpoint_every, config.audit_checkpoint_seconds, config.audit_rotate_bytes,
            config.audit_durability) == (50, 2.5, 1048576, "checkpoint")
    assert config.store_config is not None
    assert (config.store_config.kind, config.store_config.password) == ("postgresql", store_password)


@pytest.mark.parametrize(("setting", "value", "reason"), [
    ("audit_checkpoint_every", 0, "checkpoint_every must be"),
    ("audit_checkpoint_seconds", 0.001, "checkpoint_seconds must be"),
    ("audit_rotate_bytes", 100, "rotate_bytes"),
])
def test_audit_settings_are_bounded(setting: str, value: float, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_config({setting: value}, {}, None)


def test_environment_beats_file_and_flags_beat_both(write_file: Callable[..., Path]) -> None:
    file = write_file(workers=2, log_level="error", log_format="text")
    environ = {"SECRETSVC_WORKERS": "3", "SECRETSVC_LOG_LEVEL": "warning"}
    config = load_config({"workers": 4}, environ, file)
    assert config.workers == 4  # flag over environment over file
    assert config.log_level == "warning"  # environment over file
    assert config.log_format == "text"  # file over default


def test_a_flag_left_unset_falls_through(write_file: Callable[..., Path]) -> None:
    flags = {s.name: None for s in SETTINGS}
    config = load_config(flags, {"SECRETSVC_WORKERS": "6"}, write_file(log_format="text"))
    assert config.workers == 6
    assert config.log_format == "text"
    assert config.listen == DEFAULT_LISTEN


def test_an_empty_environment_value_still_counts(write_file: Callable[..., Path]) -> None:
    # An empty metrics address in the environment disables metrics even if the file enables them.
    config = load_config({}, {"SECRETSVC_METRICS_LISTEN": ""}, write_file(metrics_listen="127.0.0.1:1"))
    assert config.metrics_listen == ""


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("false", False), ("no", False),
    ("off", False), ("", False),
])
def test_boolean_spellings(raw: str, expected: bool) -> None:
    assert load_config({}, {"SECRETSVC_ALLOW_NON_LOOPBACK": raw}, None).allow_non_loopback is expected


def test_paths_expand_the_home_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_config({"data_dir": "~/data"}, {}, None).data_dir == tmp_path / "data"


def test_default_data_dir_follows_the_given_environment(tmp_path: Path) -> None:
    config = load_config({}, {"XDG_DATA_HOME": str(tmp_path / "given")}, None)
    assert config.data_dir == tmp_path / "given" / "secretsvc"


# --- listen addresses ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("listen", ["127.0.0.1:1", "127.9.9.9:8290", "localhost:8290", "[::1]:8290", "::1:0"])
def test_loopback_listen_addresses_are_accepted(listen: str) -> None:
    assert load_config({"listen": listen}, {}, None).listen == listen


@pytest.mark.parametrize("origin", ["flag", "env", "file"])
@pytest.mark.parametrize("listen", ["0.0.0.0:8290", "[::]:8290", "10.0.0.5:8290", "example.com:8290"])
def test_non_loopback_listen_needs_the_explicit_allowance(
    origin: str, listen: str, write_file: Callable[..., Path]
) -> None:
    flags, environ, file = _origin_args(origin, "listen", listen, write_file)
    with pytest.raises(ConfigError) as info:
        load_config(flags, environ, file)
    message = str(info.value)
    assert listen in message
    assert "not loopback" in message
    assert "--allow-non-loopback" in message


@pytest.mark.parametrize("origin", ["flag", "env", "file"])
def test_non_loopback_listen_with_the_allowance(origin: str, write_file: Callable[..., Path]) -> None:
    flags, environ, file = _origin_args(origin, "allow_non_loopback", True, write_file)
    flags = {**flags, "listen": "0.0.0.0:8290"}
    config = load_config(flags, environ, file)
    assert config.listen == "0.0.0.0:8290"
    assert config.allow_non_loopback


BAD_ADDRESSES = ["8290", ":8290", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536", "127.0.0.1:-1",
                 "127.0.0.1: 80", "[]:80", ""]


@pytest.mark.parametrize(
    ("setting", "address"),
    # An empty metrics address is not an error: it disables metrics.
    [(s, a) for s in ("listen", "metrics_listen") for a in BAD_ADDRESSES if (s, a) != ("metrics_listen", "")],
)
def test_bad_host_port_names_the_setting(setting: str, address: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({setting: address}, {}, None)
    message = str(info.value)
    assert f"{setting} must be HOST:PORT" in message
    assert repr(address) in message


def test_metrics_listen_may_be_disabled() -> None:
    assert load_config({"metrics_listen": ""}, {}, None).metrics_listen == ""


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:65535", ("::1", 65535)), ("host.example:80", ("host.example", 80)),
])
def test_parse_host_port(value: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(value, setting="x") == expected


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("127.0.0.1", True), ("127.255.0.1", True), ("::1", True), ("0.0.0.0", False),  # noqa: S104
    ("::", False), ("192.168.1.1", False), ("localhost.example.com", False), ("LOCALHOST", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# --- value validation ------------------------------------------------------------------------------------------

INVALID_VALUES = [
    ("log_level", "verbose", "log_level must be"),
    ("log_format", "xml", "log_format must be"),
    ("log_format", "JSON", "log_format must be"),
    ("default_max_versions", 0, "default_max_versions must be"),
    ("default_max_versions", limits.MAX_MAX_VERSIONS + 1, "default_max_versions must be"),
    ("workers", 0, "workers must be"),
    ("workers", 257, "workers must be"),
    ("shutdown_grace_seconds", -1.0, "shutdown_grace_seconds must be"),
    ("shutdown_grace_seconds", 600.5, "shutdown_grace_seconds must be"),
]


@pytest.mark.parametrize("origin", ["flag", "env", "file"])
@pytest.mark.parametrize(("name", "raw", "fragment"), INVALID_VALUES)
def test_out_of_range_values_name_the_setting(
    origin: str, name: str, raw: Any, fragment: str, write_file: Callable[..., Path]
) -> None:
    flags, environ, file = _origin_args(origin, name, raw, write_file)
    with pytest.raises(ConfigError, match=fragment):
        load_config(flags, environ, file)


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
def test_non_finite_grace_period_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="shutdown_grace_seconds"):
        load_config({}, {"SECRETSVC_SHUTDOWN_GRACE_SECONDS": raw}, None)


@pytest.mark.parametrize("origin", ["env", "file"])
@pytest.mark.parametrize(("name", "raw", "fragment"), [
    *INVALID_VALUES, ("listen", "0.0.0.0:1", "loopback"), ("listen", "nope", "HOST:PORT"),
    ("metrics_listen", "nope", "HOST:PORT"),
])
def test_out_of_range_values_name_their_origin(
    origin: str, name: str, raw: Any, fragment: str, write_file: Callable[..., Path]
) -> None:
    flags, environ, file = _origin_args(origin, name, raw, write_file)
    with pytest.raises(ConfigError, match=fragment) as info:
        load_config(flags, environ, file)
    assert _origin_text(origin, name, file) in str(info.value)


UNPARSABLE = [
    ("env", "workers", "many"),
    ("env", "workers", "3.0"),
    ("env", "default_max_versions", ""),
    ("env", "shutdown_grace_seconds", "soon"),
    ("env", "allow_non_loopback", "maybe"),
    ("flag", "workers", "x"),
    ("flag", "allow_non_loopback", "perhaps"),
    ("flag", "listen", 8290),
    ("file", "workers", "four"),
    ("file", "workers", True),
    ("file", "listen", 8290),
    ("file", "log_level", ["info"]),
    ("file", "allow_non_loopback", "sometimes"),
]


@pytest.mark.parametrize(("origin", "name", "raw"), UNPARSABLE)
def test_unparsable_values_name_the_setting_and_origin(
    origin: str, name: str, raw: Any, write_file: Callable[..., Path]
) -> None:
    file: Path | None
    if origin == "file":
        toml = repr(raw) if isinstance(raw, list) else _toml_value(raw)
        file = write_file(f"[server]\n{name} = {toml}\n")
        flags: dict[str, Any] = {}
        environ: dict[str, str] = {}
        where = f"{file}: {name}"
    else:
        flags, environ, file = _origin_args(origin, name, raw, write_file)
        where = _origin_text(origin, name, file)
    with pytest.raises(ConfigError) as info:
        load_config(flags, environ, file)
    message = str(info.value)
    assert message.startswith(f"{where}: {name} must be")
    assert (name in message) or (ENV[name] in message) or (name.replace("_", "-") in message)


def test_a_fractional_integer_setting_is_refused(write_file: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError, match="workers"):
        load_config({}, {}, write_file(workers=2.7))


# --- the file itself -------------------------------------------------------------------------------------------


def test_unknown_file_keys_are_named(write_file: Callable[..., Path]) -> None:
    file = write_file(workers=2, wokers=3, listen_address="x")
    with pytest.raises(ConfigError) as info:
        load_config({}, {}, file)
    message = str(info.value)
    assert str(file) in message
    assert "listen_address, wokers" in message
    assert "known:" in message


def test_a_store_password_in_the_file_is_refused_with_where_it_goes(write_file: Callable[..., Path]) -> None:
    password = random.Random(9).randbytes(10).hex()
    file = write_file(store="postgresql://secretsvc@db/secretsvc", store_password=password)
    with pytest.raises(ConfigError) as info:
        load_config({}, {}, file)
    message = str(info.value)
    assert "store_password_file" in message and "SECRETSVC_STORE_PASSWORD" in message
    assert password not in message


def test_a_misspelled_table_is_an_unknown_key(write_file: Callable[..., Path]) -> None:
    file = write_file("[sever]\nworkers = 2\n")
    with pytest.raises(ConfigError, match=r"unknown setting.*sever"):
        load_config({}, {}, file)


def test_keys_outside_the_server_table_are_not_ignored(write_file: Callable[..., Path]) -> None:
    file = write_file('workers = 4\n[server]\nlog_format = "text"\n')
    with pytest.raises(ConfigError, match="workers"):
        load_config({}, {}, file)


def test_server_that_is_not_a_table(write_file: Callable[..., Path]) -> None:
    file = write_file("server = 5\n")
    with pytest.raises(ConfigError, match=r"\[server\] must be a table") as info:
        load_config({}, {}, file)
    assert str(file) in str(info.value)


@pytest.mark.parametrize("text", ["[server\nworkers = 1\n", "workers = \n", "workers = 1\nworkers = 2\n",
                                  "= 3\n", '[server]\nlisten = "unterminated\n'])
def test_invalid_toml(write_file: Callable[..., Path], text: str) -> None:
    file = write_file(text)
    with pytest.raises(ConfigError, match="is not valid TOML") as info:
        load_config({}, {}, file)
    assert str(file) in str(info.value)
    assert info.value.__cause__ is None


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_bytes(b'[server]\nlog_level = "\xff"\n')
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config({}, {}, file)


def test_an_over_large_file_is_refused_unread(tmp_path: Path) -> None:
    file = tmp_path / "huge.toml"
    file.write_bytes(b"# " + b"x" * MAX_CONFIG_FILE_BYTES + b"\n")
    with pytest.raises(ConfigError) as info:
        load_config({}, {}, file)
    message = str(info.value)
    assert str(file) in message
    assert str(MAX_CONFIG_FILE_BYTES) in message


def test_a_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    file = tmp_path / "big.toml"
    body = b"workers = 9\n"
    file.write_bytes(body + b"#" * (MAX_CONFIG_FILE_BYTES - len(body) - 1) + b"\n")
    assert file.stat().st_size == MAX_CONFIG_FILE_BYTES
    assert load_config({}, {}, file).workers == 9


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_an_unreadable_file(tmp_path: Path, kind: str) -> None:
    file = tmp_path / "missing.toml"
    if kind == "directory":
        file.mkdir()
    with pytest.raises(ConfigError, match="cannot read config file") as info:
        load_config({}, {}, file)
    assert str(file) in str(info.value)


def test_a_bad_file_fails_even_when_flags_cover_every_setting(write_file: Callable[..., Path]) -> None:
    file = write_file("not toml at all ][")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config({"workers": 2}, {}, file)


def test_streams_default_to_half_the_workers() -> None:
    assert load_config({"workers": 16}, {}, None).stream_limit == 8
    assert load_config({"workers": 3}, {}, None).stream_limit == 1
    assert load_config({"workers": 16, "max_streams": 12}, {}, None).stream_limit == 12


@pytest.mark.parametrize(("flags", "reason"), [
    ({"workers": 4, "max_streams": 4}, "max_streams (4) must be below workers (4)"),
    ({"workers": 1}, "workers must be at least 2"),
])
def test_streams_must_leave_workers_for_unary_calls(flags: dict[str, int], reason: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)):
        load_config(flags, {}, None)


@pytest.mark.parametrize(("origin", "expected"), [
    ("flag", "--k8s-leeway-seconds: must be a number, got 'soon'"),
    ("env", "SECRETSVC_K8S_LEEWAY_SECONDS: must be a number, got 'soon'"),
    ("file", "{file}: k8s_leeway_seconds must be a number, got 'soon'"),
])
def test_service_account_settings_name_their_origin(origin: str, expected: str,
                                                     write_file: Callable[..., Path]) -> None:
    base = {"k8s_issuer": "https://issuer.example", "k8s_audiences": "secretsvc"}
    flags: dict[str, Any] = base
    environ: dict[str, str] = {}
    file = None
    if origin == "flag":
        flags = {**base, "k8s_leeway_seconds": "soon"}
    elif origin == "env":
        environ = {"SECRETSVC_K8S_LEEWAY_SECONDS": "soon"}
    else:
        file = write_file(k8s_leeway_seconds="soon")
    with pytest.raises(ConfigError) as info:
        load_config(flags, environ, file)
    assert str(info.value) == expected.format(file=file)
