"""Which key-encryption key the server runs on, from flags, environment or the config file.

`SETTINGS` lists each setting with its environment variable, default and meaning (the serve flags are built
from it, `add_flags`); `from_settings` checks them together into a frozen `KekConfig`. The Vault token comes
from `VAULT_TOKEN` or `vault_token_file`; AppRole from two files; the PKCS#11 PIN from a file. No secret is
ever taken from a flag or the config file itself.

The `kek_previous_*` settings give the previous key's own settings where they differ from the current key's
(another Transit key, mount or Vault server, another PKCS#11 key or token), so data can move between two keys
of one backend type. Each defaults to the setting of the same name without the prefix.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import ConfigError
from secretsvc.kek import limits
from secretsvc.kek.cache import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_USES,
    MAX_MAX_AGE_SECONDS,
    MAX_MAX_ENTRIES,
    CacheLimits,
)
from secretsvc.settings import Setting, bounded, one_of, parse_float, parse_int, parse_path, parse_str

if TYPE_CHECKING:
    from secretsvc.kek.pkcs11 import Pkcs11Settings
    from secretsvc.kek.transit import TransitSettings

BACKENDS = ("local", "vault-transit", "pkcs11")
DEFAULT_HEALTH_SECONDS = 10.0

SETTINGS = (
    Setting("kek", "SECRETSVC_KEK", one_of(*BACKENDS), "local",
            meaning="key-encryption key: local (the keyring in the data directory), vault-transit or pkcs11"),
    Setting("kek_previous", "SECRETSVC_KEK_PREVIOUS", one_of(*BACKENDS), None,
            meaning="a backend whose keys still unwrap while `root-key rewrap` moves data keys to --kek "
                    "(docs/kek.md, 'Moving to another backend')"),
    Setting("vault_addr", "SECRETSVC_VAULT_ADDR", parse_str, None, meaning="Vault/OpenBao address, http(s)://host:port"),
    Setting("vault_key", "SECRETSVC_VAULT_KEY", parse_str, None, meaning="Transit key name"),
    Setting("vault_transit_mount", "SECRETSVC_VAULT_TRANSIT_MOUNT", parse_str, "transit",
            meaning="where the Transit engine is mounted (default transit)"),
    Setting("vault_token_file", "SECRETSVC_VAULT_TOKEN_FILE", parse_path, None,
            meaning="file holding the Vault token, re-read when Vault refuses it (else $VAULT_TOKEN)"),
    Setting("vault_approle_role_id_file", "SECRETSVC_VAULT_APPROLE_ROLE_ID_FILE", parse_path, None,
            meaning="AppRole login: file holding the role id (with --vault-approle-secret-id-file)"),
    Setting("vault_approle_secret_id_file", "SECRETSVC_VAULT_APPROLE_SECRET_ID_FILE", parse_path, None,
            meaning="AppRole login: file holding the secret id"),
    Setting("vault_approle_mount", "SECRETSVC_VAULT_APPROLE_MOUNT", parse_str, "approle",
            meaning="where AppRole is mounted (default approle)"),
    Setting("vault_ca_file", "SECRETSVC_VAULT_CA_FILE", parse_path, None,
            meaning="CA bundle for an https Vault address (default: the system's)"),
    Setting("vault_timeout_seconds", "SECRETSVC_VAULT_TIMEOUT_SECONDS",
            bounded(parse_float, 0.1, limits.MAX_TRANSIT_TIMEOUT_SECONDS), limits.TRANSIT_TIMEOUT_SECONDS,
            meaning=f"deadline of each Vault request (default {limits.TRANSIT_TIMEOUT_SECONDS:g})"),
    Setting("pkcs11_module", "SECRETSVC_PKCS11_MODULE", parse_path, None, meaning="the PKCS#11 module (.so)"),
    Setting("pkcs11_token", "SECRETSVC_PKCS11_TOKEN", parse_str, None, meaning="token label"),
    Setting("pkcs11_key", "SECRETSVC_PKCS11_KEY", parse_str, None,
            meaning="key label; versions are LABEL.v1, LABEL.v2, ..."),
    Setting("pkcs11_pin_file", "SECRETSVC_PKCS11_PIN_FILE", parse_path, None, meaning="file holding the user PIN"),
    Setting("pkcs11_pool_size", "SECRETSVC_PKCS11_POOL_SIZE", bounded(parse_int, 1, limits.MAX_PKCS11_POOL_SIZE),
            limits.PKCS11_POOL_SIZE, meaning=f"PKCS#11 sessions kept open (default {limits.PKCS11_POOL_SIZE})"),
    Setting("kek_cache_entries", "SECRETSVC_KEK_CACHE_ENTRIES", bounded(parse_int, 0, MAX_MAX_ENTRIES),
            DEFAULT_MAX_ENTRIES,
            meaning=f"unwrapped data keys kept in memory, 0 for none (default {DEFAULT_MAX_ENTRIES})"),
    Setting("kek_cache_max_age_seconds", "SECRETSVC_KEK_CACHE_MAX_AGE_SECONDS",
            bounded(parse_float, 0.001, MAX_MAX_AGE_SECONDS), DEFAULT_MAX_AGE_SECONDS,
            meaning=f"how long a cached data key is kept (default {DEFAULT_MAX_AGE_SECONDS:g})"),
    Setting("kek_cache_max_uses", "SECRETSVC_KEK_CACHE_MAX_USES", bounded(parse_int, 1, 10**9), DEFAULT_MAX_USES,
            meaning=f"reads one cached data key may serve (default {DEFAULT_MAX_USES})"),
    # The previous key's own settings; each defaults to the setting of the same name without the prefix.
    Setting("kek_previous_vault_addr", "SECRETSVC_KEK_PREVIOUS_VAULT_ADDR", parse_str, None,
            meaning="the previous key's Vault/OpenBao address (default: --vault-addr)"),
    Setting("kek_previous_vault_key", "SECRETSVC_KEK_PREVIOUS_VAULT_KEY", parse_str, None,
            meaning="the previous key's Transit key name (default: --vault-key)"),
    Setting("kek_previous_vault_transit_mount", "SECRETSVC_KEK_PREVIOUS_VAULT_TRANSIT_MOUNT", parse_str, None,
            meaning="where the previous key's Transit engine is mounted (default: --vault-transit-mount)"),
    Setting("kek_previous_vault_token_file", "SECRETSVC_KEK_PREVIOUS_VAULT_TOKEN_FILE", parse_path, None,
            meaning="file holding a token for the previous key's Vault (default: the current key's login)"),
    Setting("kek_previous_vault_ca_file", "SECRETSVC_KEK_PREVIOUS_VAULT_CA_FILE", parse_path, None,
            meaning="CA bundle for the previous key's Vault (default: --vault-ca-file)"),
    Setting("kek_previous_pkcs11_token", "SECRETSVC_KEK_PREVIOUS_PKCS11_TOKEN", parse_str, None,
            meaning="the previous key's token label (default: --pkcs11-token)"),
    Setting("kek_previous_pkcs11_key", "SECRETSVC_KEK_PREVIOUS_PKCS11_KEY", parse_str, None,
            meaning="the previous key's label (default: --pkcs11-key)"),
    Setting("kek_previous_pkcs11_pin_file", "SECRETSVC_KEK_PREVIOUS_PKCS11_PIN_FILE", parse_path, None,
            meaning="file holding the previous token's user PIN (default: --pkcs11-pin-file)"),
    Setting("kek_health_seconds", "SECRETSVC_KEK_HEALTH_SECONDS", bounded(parse_float, 0.1, 3600),
            DEFAULT_HEALTH_SECONDS,
            meaning=f"how often readiness checks a remote KEK is reachable (default {DEFAULT_HEALTH_SECONDS:g})"),
)  # fmt: skip

NAMES = frozenset(s.name for s in SETTINGS)
PREVIOUS_PREFIX = "kek_previous_"
# The settings a previous key may give for itself, by the backend they belong to.
PREVIOUS_OVERRIDES = {
    "vault-transit": ("vault_addr", "vault_key", "vault_transit_mount", "vault_token_file", "vault_ca_file"),
    "pkcs11": ("pkcs11_token", "pkcs11_key", "pkcs11_pin_file"),
}


@dataclass(frozen=True, slots=True)
class KekConfig:
    backend: str = "local"
    previous: str | None = None
    # The vault_* and pkcs11_* settings: the current backend's, or a previous one's of another type that gives
    # no kek_previous_* settings of its own (as before those existed).
    transit: TransitSettings | None = None
    pkcs11: Pkcs11Settings | None = None
    # The previous backend's own settings when they differ from those above (kek_previous_*).
    previous_transit: TransitSettings | None = None
    previous_pkcs11: Pkcs11Settings | None = None
    cache: CacheLimits = field(default_factory=CacheLimits)
    health_seconds: float = DEFAULT_HEALTH_SECONDS


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("key-encryption key (docs/kek.md)")
    for s in SETTINGS:
        flag = "--" + s.name.replace("_", "-")
        text = f"{s.meaning} (${s.env})"
        if s.name in {"kek", "kek_previous"}:
            group.add_argument(flag, choices=BACKENDS, help=text)
        else:
            group.add_argument(flag, metavar=s.name.split("_")[-1].upper(), help=text)


def from_settings(values: Mapping[str, Any], origins: Mapping[str, str], environ: Mapping[str, str]) -> KekConfig:
    """Parse and check the settings given (raw values by name; `origins` says where each came from)."""
    parsed: dict[str, Any] = {}
    for s in SETTINGS:
        if s.name not in values or values[s.name] is None:
            parsed[s.name] = s.default
            continue
        try:
            parsed[s.name] = s.parse(values[s.name])
        except (TypeError, ValueError, OverflowError) as exc:
            reason = str(exc) if str(exc).startswith("must be") else "must be a valid value"
            raise ConfigError(f"{origins.get(s.name, s.name)}: {s.name} {reason}, got {values[s.name]!r}") from None

    def where(name: str) -> str:
        return origins.get(name, f"default {name}")

    backend, previous = parsed["kek"], parsed["kek_previous"]
    overrides = {
        name[len(PREVIOUS_PREFIX) :]: parsed[name]
        for name in sorted(NAMES)
        if name.startswith(PREVIOUS_PREFIX) and parsed[name] is not None
    }
    _check_overrides(overrides, previous, where)
    transit = _transit(parsed, environ, where) if backend == "vault-transit" else None
    pkcs11 = _pkcs11(parsed, where) if backend == "pkcs11" else None
    previous_transit = previous_pkcs11 = None
    if previous is not None:
        mine = _previous_settings(parsed, overrides)
        try:
            if previous == "vault-transit":
                previous_transit = _transit(mine, environ, where)
            elif previous == "pkcs11":
                previous_pkcs11 = _pkcs11(mine, where)
        except ConfigError as exc:
            if not overrides:  # the plain settings, as they always were: their message says it all
                raise
            given = ", ".join(PREVIOUS_PREFIX + name for name in overrides)
            raise ConfigError(f"the previous key ({given} over the plain settings): {exc}") from None
        if previous == backend:
            _refuse_same_key(backend, transit or pkcs11, previous_transit or previous_pkcs11, where)
        elif not overrides:  # a previous backend of another type, from the plain settings (as it always was)
            transit, previous_transit = transit or previous_transit, None
            pkcs11, previous_pkcs11 = pkcs11 or previous_pkcs11, None
    cache = CacheLimits(parsed["kek_cache_entries"], parsed["kek_cache_max_age_seconds"], parsed["kek_cache_max_uses"])
    return KekConfig(
        backend, previous, transit, pkcs11, previous_transit, previous_pkcs11, cache, parsed["kek_health_seconds"]
    )


def _check_overrides(overrides: Mapping[str, Any], previous: str | None, where: Any) -> None:
    for name in overrides:
        setting = PREVIOUS_PREFIX + name
        if previous is None:
            raise ConfigError(f"{where(setting)}: {setting} describes the previous key; it needs kek_previous")
        if name not in PREVIOUS_OVERRIDES.get(previous, ()):
            raise ConfigError(f"{where(setting)}: {setting} does not apply to kek_previous {previous}")


def _previous_settings(parsed: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the previous key is built from: the plain ones, with its own in their place."""
    mine = {**parsed, **overrides}
    if "vault_token_file" in overrides:  # its own token, not the current key's AppRole
        mine["vault_approle_role_id_file"] = mine["vault_approle_secret_id_file"] = None
    return mine


def _refuse_same_key(backend: str, current: Any, previous: Any, where: Any) -> None:
    """Two keys of one backend type must be two keys: an envelope names its key by key id, which for Transit
    is mount and key name (not the address) and for PKCS#11 token and key label."""
    if backend == "local":  # one keyring per data directory: there is no other local key to name
        raise ConfigError(
            f"{where('kek_previous')}: kek_previous must name another backend than kek (local), or for "
            "vault-transit and pkcs11 another key of the same backend"
        )
    if backend == "vault-transit":
        same = (current.mount, current.key_name) == (previous.mount, previous.key_name)
        hint = "--kek-previous-vault-key or --kek-previous-vault-transit-mount (key ids do not name the address)"
    else:
        same = (current.token_label, current.key_label) == (previous.token_label, previous.key_label)
        hint = "--kek-previous-pkcs11-key or --kek-previous-pkcs11-token"
    if same:
        raise ConfigError(
            f"{where('kek_previous')}: kek_previous names the same {backend} key as kek; to move data between "
            f"two {backend} keys, name the previous one with {hint}"
        )


def _require(parsed: dict[str, Any], names: tuple[str, ...], backend: str) -> None:
    missing = [n for n in names if parsed[n] in (None, "")]
    if missing:
        flags = ", ".join("--" + n.replace("_", "-") for n in missing)
        raise ConfigError(f"the {backend} key-encryption key needs {flags}")


def _transit(parsed: dict[str, Any], environ: Mapping[str, str], where: Any) -> TransitSettings:
    # The backends are loaded only when a setting names them (kek/limits.py says why).
    from secretsvc.kek.transit import TransitSettings
    from secretsvc.kek.vaultauth import AppRoleLogin, TokenLogin

    _require(parsed, ("vault_addr", "vault_key"), "vault-transit")
    role_id, secret_id = parsed["vault_approle_role_id_file"], parsed["vault_approle_secret_id_file"]
    login: TokenLogin | AppRoleLogin
    if (role_id is None) != (secret_id is None):
        raise ConfigError("AppRole needs both --vault-approle-role-id-file and --vault-approle-secret-id-file")
    if role_id is not None:
        if parsed["vault_token_file"] is not None:
            raise ConfigError(f"{where('vault_token_file')}: give a Vault token file or AppRole files, not both")
        login = AppRoleLogin(role_id, secret_id, parsed["vault_approle_mount"])
    elif parsed["vault_token_file"] is not None:
        login = TokenLogin(token_file=parsed["vault_token_file"])
    elif environ.get("VAULT_TOKEN", "").strip():
        login = TokenLogin(token=SecretBytes(environ["VAULT_TOKEN"].strip().encode()))
    else:
        raise ConfigError(
            "the vault-transit key-encryption key needs a token: set VAULT_TOKEN, --vault-token-file, or the "
            "AppRole files"
        )
    return TransitSettings(
        parsed["vault_addr"],
        parsed["vault_key"],
        login,
        mount=parsed["vault_transit_mount"],
        timeout_seconds=parsed["vault_timeout_seconds"],
        ca_file=parsed["vault_ca_file"],
    )


def _pkcs11(parsed: dict[str, Any], where: Any) -> Pkcs11Settings:
    from secretsvc.kek.pkcs11 import Pkcs11Settings

    _require(parsed, ("pkcs11_module", "pkcs11_token", "pkcs11_key", "pkcs11_pin_file"), "pkcs11")
    module: Path = parsed["pkcs11_module"]
    if not module.is_file():
        raise ConfigError(f"{where('pkcs11_module')}: PKCS#11 module {module} is not a file")
    return Pkcs11Settings(
        module,
        parsed["pkcs11_token"],
        parsed["pkcs11_key"],
        parsed["pkcs11_pin_file"],
        pool_size=parsed["pkcs11_pool_size"],
    )
