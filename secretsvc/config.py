"""Server configuration from flags, environment and a TOML file, in that order of precedence.

Everything is validated once, at start-up, into a frozen `ServerConfig` that is passed down; nothing reads
the environment later.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secretsvc.boundedio import read_bounded
from secretsvc.datadir import default_data_dir
from secretsvc.errors import ConfigError
from secretsvc.netaddr import is_loopback, split_host_port
from secretsvc.service import limits
from secretsvc.settings import (
    Setting,
    bounded,
    find_given,
    one_of,
    parse_bool,
    parse_float,
    parse_int,
    parse_path,
    parse_paths,
    parse_str,
)

if TYPE_CHECKING:
    from secretsvc.auth.serviceaccount_config import ServiceAccountConfig
    from secretsvc.kek.settings import KekConfig
    from secretsvc.store.target import StoreConfig

DEFAULT_LISTEN = "127.0.0.1:8290"
MAX_PROCESSES = 64  # worker processes of one server (`processes`, rpc/workers.py)
DEFAULT_METRICS_LISTEN = "127.0.0.1:9290"
MAX_CONFIG_FILE_BYTES = 1024 * 1024
# Streaming calls one client address may hold open at once (see secretsvc/rpc/streamslots.py).
DEFAULT_MAX_STREAMS_PER_PEER = 4
CLIENT_AUTH_MODES = ("off", "optional", "required")
CLIENT_IDENTITY_SOURCES = ("auto", "uri", "dns", "subject")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    data_dir: Path
    listen: str
    metrics_listen: str  # "" disables the metrics endpoint
    admin_token_file: Path | None
    keyring_passphrase_file: Path | None
    log_level: str
    log_format: str
    default_max_versions: int
    workers: int
    shutdown_grace_seconds: float
    allow_non_loopback: bool
    max_streams: int  # 0: half the workers
    max_streams_per_peer: int
    reflection: bool
    # WatchSecrets streams: each runs on a thread beyond the workers; 0 turns watching off.
    max_watches: int = 1000
    max_watches_per_caller: int = 8
    # TLS on the gRPC listener (docs/tls.md). client_auth is resolved at load: "required" when client_ca is set.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    client_auth: str = "off"
    client_identity: str = "auto"  # which certificate name becomes the caller's identity (auth/certs.py)
    # Policy documents, files or directories (docs/policy.md); none: only the built-in admin policy grants.
    policy_paths: tuple[Path, ...] = ()
    # How often the server looks for changed policy files and documents stored over the API (0: only on
    # SIGHUP and on this server's own API changes).
    policy_reload_seconds: float = 5.0
    # The audit log (docs/audit.md). audit_file None: DATA_DIR/audit/audit.log.
    audit_enabled: bool = True  # off only for measuring its cost or a deployment that audits elsewhere
    audit_file: Path | None = None
    audit_fail_closed: bool = True
    audit_hmac_paths: bool = False
    audit_checkpoint_every: int = 1000
    audit_checkpoint_seconds: float = 10.0
    audit_rotate_bytes: int = 64 * 1024 * 1024
    audit_durability: str = "changes"
    # Kubernetes service-account tokens (docs/kubernetes-auth.md); None: not accepted.
    service_accounts: ServiceAccountConfig | None = None
    # The key-encryption key (docs/kek.md); None: the local keyring in the data directory.
    kek: KekConfig | None = None
    # The store (docs/storage.md): "" for SQLite in the data directory, sqlite:PATH, or postgresql://...;
    # store_config is it checked, with the password read from its file or the environment. None: the default.
    store: str = ""
    store_password_file: Path | None = None
    # PostgreSQL connections per worker process, at most (docs/storage.md, "Connections").
    store_pool_size: int = 16
    # Worker processes: "auto" (one per usable core, rpc/workers.py `auto_processes`) or a number as text.
    processes: str = "auto"
    store_config: StoreConfig | None = None

    @property
    def stream_limit(self) -> int:
        """Streams open at once; always below the worker count, so unary calls keep a thread."""
        return self.max_streams or max(1, self.workers // 2)


def _address(value: Any) -> str:
    text = parse_str(value)
    split_host_port(text)
    return text


def _optional_address(value: Any) -> str:
    text = parse_str(value)
    return _address(text) if text else text


def _parse_processes(value: Any) -> str:
    """"auto" (or 0) for one worker per usable core, else a number of worker processes, kept as text."""
    text = str(value).strip()
    if text in {"auto", "0"}:
        return "auto"
    try:
        number = int(text)
    except ValueError:
        raise ValueError("must be a number of worker processes or auto") from None
    if not 1 <= number <= MAX_PROCESSES:
        raise ValueError(f"must be auto or between 1 and {MAX_PROCESSES} (MAX_PROCESSES)")
    return str(number)


SETTINGS = (
    Setting("data_dir", "SECRETSVC_DATA_DIR", parse_path, None),
    Setting("listen", "SECRETSVC_LISTEN", _address, DEFAULT_LISTEN),
    Setting("metrics_listen", "SECRETSVC_METRICS_LISTEN", _optional_address, DEFAULT_METRICS_LISTEN),
    Setting("admin_token_file", "SECRETSVC_ADMIN_TOKEN_FILE", parse_path, None),
    Setting("keyring_passphrase_file", "SECRETSVC_KEYRING_PASSPHRASE_FILE", parse_path, None),
    Setting("log_level", "SECRETSVC_LOG_LEVEL", one_of("debug", "info", "warning", "error", fold_case=True), "info"),
    Setting("log_format", "SECRETSVC_LOG_FORMAT", one_of("json", "text"), "json"),
    Setting("default_max_versions", "SECRETSVC_DEFAULT_MAX_VERSIONS", bounded(parse_int, 1, limits.MAX_MAX_VERSIONS),
            limits.DEFAULT_MAX_VERSIONS),
    Setting("workers", "SECRETSVC_WORKERS", bounded(parse_int, 1, 256), 16),
    Setting("shutdown_grace_seconds", "SECRETSVC_SHUTDOWN_GRACE_SECONDS", bounded(parse_float, 0, 600), 10.0),
    Setting("allow_non_loopback", "SECRETSVC_ALLOW_NON_LOOPBACK", parse_bool, False),
    Setting("max_streams", "SECRETSVC_MAX_STREAMS", bounded(parse_int, 0, 255), 0),
    Setting("max_streams_per_peer", "SECRETSVC_MAX_STREAMS_PER_PEER", bounded(parse_int, 1, 255),
            DEFAULT_MAX_STREAMS_PER_PEER),
    Setting("reflection", "SECRETSVC_REFLECTION", parse_bool, False),
    Setting("max_watches", "SECRETSVC_MAX_WATCHES", bounded(parse_int, 0, 10_000), 1000),
    Setting("max_watches_per_caller", "SECRETSVC_MAX_WATCHES_PER_CALLER", bounded(parse_int, 1, 10_000), 8),
    Setting("tls_cert", "SECRETSVC_TLS_CERT", parse_path, None),
    Setting("tls_key", "SECRETSVC_TLS_KEY", parse_path, None),
    Setting("client_ca", "SECRETSVC_CLIENT_CA", parse_path, None),
    Setting("client_auth", "SECRETSVC_CLIENT_AUTH", one_of(*CLIENT_AUTH_MODES), None),
    Setting("client_identity", "SECRETSVC_CLIENT_IDENTITY", one_of(*CLIENT_IDENTITY_SOURCES), "auto"),
    # The audit log (docs/audit.md); bounds are checked with the audit package's own limits at load.
    Setting("policy_paths", "SECRETSVC_POLICY_PATHS", parse_paths, ()),
    Setting("policy_reload_seconds", "SECRETSVC_POLICY_RELOAD_SECONDS", bounded(parse_float, 0, 3600), 5.0),
    Setting("audit_enabled", "SECRETSVC_AUDIT_ENABLED", parse_bool, True),
    Setting("audit_file", "SECRETSVC_AUDIT_FILE", parse_path, None),
    Setting("audit_fail_closed", "SECRETSVC_AUDIT_FAIL_CLOSED", parse_bool, True),
    Setting("audit_hmac_paths", "SECRETSVC_AUDIT_HMAC_PATHS", parse_bool, False),
    Setting("audit_checkpoint_every", "SECRETSVC_AUDIT_CHECKPOINT_EVERY", parse_int, 1000),
    Setting("audit_checkpoint_seconds", "SECRETSVC_AUDIT_CHECKPOINT_SECONDS", parse_float, 10.0),
    Setting("audit_rotate_bytes", "SECRETSVC_AUDIT_ROTATE_BYTES", parse_int, 64 * 1024 * 1024),
    Setting("audit_durability", "SECRETSVC_AUDIT_DURABILITY", one_of("record", "changes", "checkpoint"),
            "changes"),
    Setting("store", "SECRETSVC_STORE", parse_str, ""),
    Setting("store_password_file", "SECRETSVC_STORE_PASSWORD_FILE", parse_path, None),
    Setting("store_pool_size", "SECRETSVC_STORE_POOL_SIZE", bounded(parse_int, 1, 256), 16),
    Setting("processes", "SECRETSVC_PROCESSES", _parse_processes, "auto"),
)


def _read_file(path: Path) -> dict[str, Any]:
    raw = read_bounded(path, MAX_CONFIG_FILE_BYTES, what="config file", limit_name="MAX_CONFIG_FILE_BYTES",
                       error=ConfigError)
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("server", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [server] must be a table")
    known = {s.name for s in SETTINGS} | _service_account_setting_names() | _kek_setting_names()
    if "store_password" in section:
        # Not a setting on purpose: a password in the config file would sit beside the config in every backup.
        raise ConfigError(
            f"config file {path}: store_password is not read from the config file; put the password in a file "
            "named by store_password_file (0600), or in $SECRETSVC_STORE_PASSWORD"
        )
    unknown = sorted(set(section) - known - {"server"})
    if "server" in data:
        unknown += sorted(f"{k} (outside [server])" for k in set(data) - {"server"})
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return dict(section)


def load_config(flags: Mapping[str, Any], environ: Mapping[str, str], config_file: Path | None) -> ServerConfig:
    """Resolve every setting: a flag given on the command line, else the environment, else the file."""
    from_file = _read_file(config_file) if config_file is not None else {}
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    given = find_given(SETTINGS, flags, environ, from_file, config_file)
    for s in SETTINGS:
        if s.name not in given:
            values[s.name] = s.default
            origins[s.name] = f"default {s.name}"
            continue
        raw, origin = given[s.name].raw, given[s.name].origin
        origins[s.name] = origin
        try:
            values[s.name] = s.parse(raw)
        except (TypeError, ValueError, OverflowError) as exc:
            reason = str(exc) if str(exc).startswith("must be") else "must be a valid value"
            raise ConfigError(f"{origin}: {s.name} {reason}, got {raw!r}") from None
    if values["data_dir"] is None:
        values["data_dir"] = default_data_dir(environ)
    config = ServerConfig(**values, service_accounts=_service_accounts(flags, environ, from_file, config_file),
                          kek=_kek(flags, environ, from_file, config_file))
    config = replace(config, client_auth=_check_tls(config, origins), store_config=_store(config, origins, environ))
    _check_audit(config)
    if config.workers < 2:
        raise ConfigError(f"{origins['workers']}: workers must be at least 2, so a stream cannot take the only one")
    if config.max_streams >= config.workers:
        raise ConfigError(
            f"{origins['max_streams']}: max_streams ({config.max_streams}) must be below workers ({config.workers}): "
            "each open stream holds a worker thread, and unary calls and health checks need some left"
        )
    host, _ = split_host_port(config.listen)
    if not is_loopback(host) and config.tls_cert is None and not config.allow_non_loopback:
        raise ConfigError(
            f"{origins['listen']}: listen address {config.listen} is not loopback and TLS is not configured; bearer "
            "tokens would cross the network in the clear. Set --tls-cert and --tls-key, or use a loopback address; "
            "only behind a TLS-terminating proxy, --insecure-behind-tls-proxy (--allow-non-loopback)"
        )
    return config


def _store(config: ServerConfig, origins: Mapping[str, str], environ: Mapping[str, str]) -> StoreConfig | None:
    from secretsvc.store.target import load

    if not config.store and config.store_password_file is None:
        return None  # the default: SQLite in the data directory
    return load(config.store, origins["store"], config.store_password_file, environ, pool_size=config.store_pool_size)


def _check_audit(config: ServerConfig) -> None:
    from secretsvc.audit.writer import check_settings

    check_settings(checkpoint_every=config.audit_checkpoint_every,
                   checkpoint_seconds=config.audit_checkpoint_seconds, rotate_bytes=config.audit_rotate_bytes)


def _service_account_setting_names() -> set[str]:
    from secretsvc.auth.serviceaccount_config import SETTINGS as K8S_SETTINGS

    return {s.name for s in K8S_SETTINGS}


def _kek_setting_names() -> set[str]:
    from secretsvc.kek.settings import NAMES

    return set(NAMES)


def _kek(flags: Mapping[str, Any], environ: Mapping[str, str], from_file: Mapping[str, Any],
         config_file: Path | None) -> KekConfig | None:
    """The `kek*`, `vault_*` and `pkcs11_*` settings, checked together by `kek/settings.py`; None when none is
    given (the local keyring)."""
    from secretsvc.kek.settings import SETTINGS as KEK_SETTINGS
    from secretsvc.kek.settings import from_settings

    given = find_given(KEK_SETTINGS, flags, environ, from_file, config_file)
    if not given:
        return None
    return from_settings({name: g.raw for name, g in given.items()}, {name: g.origin for name, g in given.items()},
                         environ)


def _service_accounts(flags: Mapping[str, Any], environ: Mapping[str, str], from_file: Mapping[str, Any],
                      config_file: Path | None) -> ServiceAccountConfig | None:
    """The `k8s_*` settings, resolved like every other (flag, environment, file) and checked together by
    `auth/serviceaccount_config.py`; None when service-account tokens are off."""
    # Imported here: the auth package imports this module (is_loopback), and most commands never need it.
    from secretsvc.auth.serviceaccount_config import SETTINGS as K8S_SETTINGS
    from secretsvc.auth.serviceaccount_config import from_settings

    given = find_given(K8S_SETTINGS, flags, environ, from_file, config_file)
    # Their errors read "ORIGIN must be ...": a file origin already ends in the setting's name, the others get a colon.
    origins = {name: g.origin if g.from_file else f"{g.origin}:" for name, g in given.items()}
    return from_settings({name: g.raw for name, g in given.items()}, origins=origins)


def _check_tls(config: ServerConfig, origins: Mapping[str, str]) -> str:
    """Check the TLS settings together and read their files; returns client_auth resolved to off or required."""
    from secretsvc.crypto.pki import utc_now
    from secretsvc.tlsfiles import check_pair, read_ca_bundle, read_cert_chain, read_private_key

    def where(name: str) -> str:
        return f"{origins[name]}: {name}"

    if (config.tls_cert is None) != (config.tls_key is None):
        given, missing = ("tls_cert", "tls_key") if config.tls_key is None else ("tls_key", "tls_cert")
        raise ConfigError(f"{where(given)} is set but {missing} is not; TLS needs both the certificate and its key")
    if config.client_ca is not None and config.tls_cert is None:
        raise ConfigError(f"{where('client_ca')} is set but tls_cert is not; client certificates need TLS")
    mode = config.client_auth or ("required" if config.client_ca is not None else "off")
    if mode == "optional":
        raise ConfigError(
            f"{where('client_auth')} optional is not available: gRPC Python either requires and verifies a client "
            "certificate or does not ask for one (docs/tls.md). Use required, or off with bearer tokens"
        )
    if mode == "required" and config.client_ca is None:
        raise ConfigError(f"{where('client_auth')} required needs client_ca, the CA bundle that signs client "
                          "certificates")
    if mode == "off" and config.client_ca is not None:
        raise ConfigError(f"{where('client_ca')} is set but {where('client_auth')} is off; unset one of them")
    if config.tls_cert is None or config.tls_key is None:
        return mode
    now = utc_now()
    try:
        chain = read_cert_chain(config.tls_cert, now=now, what="TLS certificate file")
    except ConfigError as exc:
        raise ConfigError(f"{where('tls_cert')}: {exc}") from None
    try:
        key = read_private_key(config.tls_key, what="TLS key file")
        check_pair(chain, key, cert_path=config.tls_cert, key_path=config.tls_key)
    except ConfigError as exc:
        raise ConfigError(f"{where('tls_key')}: {exc}") from None
    if config.client_ca is not None:
        try:
            read_ca_bundle(config.client_ca, what="client CA bundle")
        except ConfigError as exc:
            raise ConfigError(f"{where('client_ca')}: {exc}") from None
    return mode
