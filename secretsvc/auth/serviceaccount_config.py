"""Settings for Kubernetes service-account authentication, and the authenticator built from them.

`SETTINGS` names each setting, its environment variable, default and meaning, so the server configuration can
adopt them; `from_settings` turns resolved values (strings from the environment, or typed values from a file)
into a validated, frozen `ServiceAccountConfig`, or None when service-account authentication is off (no
issuer and no TokenReview). `build_authenticator` wires the keys, the verifier and the cache.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secretsvc.auth.jwks import (
    DEFAULT_HTTP_TIMEOUT_SECONDS,
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_MIN_REFRESH_INTERVAL_SECONDS,
    MAX_URL_CHARS,
    DiscoveryKeySource,
    FetchFailed,
    FileKeySource,
    HttpGetter,
    HttpsGetter,
    JwksCache,
    KeySource,
    UrlKeySource,
)
from secretsvc.auth.serviceaccount import (
    DEFAULT_LEEWAY_SECONDS,
    MAX_LEEWAY_SECONDS,
    JwksVerifier,
    ServiceAccountAuthenticator,
    ServiceAccountVerifier,
    VerifiedIdentityCache,
)
from secretsvc.auth.tokenreview import TokenReviewVerifier, reviewer_api_client
from secretsvc.errors import ConfigError
from secretsvc.service.clock import Clock
from secretsvc.settings import Setting, find_given, parse_bool, parse_float, parse_optional_path, parse_str

_log = logging.getLogger(__name__)

MAX_AUDIENCES = 16
MAX_AUDIENCE_CHARS = 256
MIN_REFRESH_FLOOR_SECONDS = 1.0
MAX_MIN_REFRESH_SECONDS = 3600.0
MAX_JWKS_MAX_AGE_SECONDS = 86400.0
MAX_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ServiceAccountConfig:
    """Where service-account tokens are checked. Offline (JWKS) unless `use_tokenreview`.

    Offline keys come from `jwks_file`, else `jwks_url`, else the issuer's OIDC discovery document.
    """

    audiences: tuple[str, ...]
    issuer: str = ""
    jwks_file: Path | None = None
    jwks_url: str = ""
    ca_file: Path | None = None
    http_timeout_seconds: float = DEFAULT_HTTP_TIMEOUT_SECONDS
    jwks_min_refresh_seconds: float = DEFAULT_MIN_REFRESH_INTERVAL_SECONDS
    jwks_max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS
    leeway_seconds: float = DEFAULT_LEEWAY_SECONDS
    require_pod: bool = False
    use_tokenreview: bool = False
    tokenreview_kubeconfig: Path | None = None  # None: the pod's own service account (in-cluster)
    tokenreview_timeout_seconds: float = DEFAULT_HTTP_TIMEOUT_SECONDS
    unsafe_allow_http_issuer: bool = False

    def __post_init__(self) -> None:
        if not self.audiences:
            raise ConfigError("k8s_audiences: at least one audience is required (e.g. 'secretsvc')")
        if len(self.audiences) > MAX_AUDIENCES:
            raise ConfigError(f"k8s_audiences: more than MAX_AUDIENCES={MAX_AUDIENCES}")
        if not all(0 < len(a) <= MAX_AUDIENCE_CHARS for a in self.audiences):
            raise ConfigError(f"k8s_audiences: each audience must be 1 to {MAX_AUDIENCE_CHARS} characters")
        if not self.use_tokenreview:
            if not self.issuer:
                raise ConfigError("k8s_issuer is required unless k8s_tokenreview is on")
            self._check_url("k8s_issuer", self.issuer)
            if self.jwks_url:
                self._check_url("k8s_jwks_url", self.jwks_url)
            if self.jwks_file is not None and self.jwks_url:
                raise ConfigError("k8s_jwks_file and k8s_jwks_url exclude each other")
        _check_range("k8s_http_timeout_seconds", self.http_timeout_seconds, 0.1, MAX_TIMEOUT_SECONDS)
        _check_range("k8s_tokenreview_timeout_seconds", self.tokenreview_timeout_seconds, 0.1, MAX_TIMEOUT_SECONDS)
        _check_range("k8s_jwks_min_refresh_seconds", self.jwks_min_refresh_seconds, MIN_REFRESH_FLOOR_SECONDS,
                     MAX_MIN_REFRESH_SECONDS)
        _check_range("k8s_jwks_max_age_seconds", self.jwks_max_age_seconds, self.jwks_min_refresh_seconds,
                     MAX_JWKS_MAX_AGE_SECONDS)
        _check_range("k8s_leeway_seconds", self.leeway_seconds, 0, MAX_LEEWAY_SECONDS)

    def _check_url(self, setting: str, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        allowed = ("https", "http") if self.unsafe_allow_http_issuer else ("https",)
        if len(url) > MAX_URL_CHARS or parts.scheme not in allowed or not parts.hostname:
            hint = "" if self.unsafe_allow_http_issuer else " (plain http only with k8s_unsafe_allow_http_issuer)"
            raise ConfigError(f"{setting} must be an https URL{hint}, got {url!r}")


def _check_range(setting: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{setting} must be between {low:g} and {high:g}, got {value!r}")


# -- settings ------------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return parse_str(value).strip()


def _number(value: Any) -> float:
    # float() words its own refusals; these settings have always said "must be a number" for any of them.
    try:
        return parse_float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number") from None


def _audiences(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError("must be a comma-separated string or a list of strings")
    return tuple(i.strip() for i in items if i.strip())


SETTINGS = (
    Setting("k8s_issuer", "SECRETSVC_K8S_ISSUER", _text, "", field="issuer",
            meaning="service-account token issuer URL (the API server's --service-account-issuer); turns on "
            "offline verification"),
    Setting("k8s_audiences", "SECRETSVC_K8S_AUDIENCES", _audiences, (), field="audiences",
            meaning="audiences a token must carry (comma-separated); at least one, e.g. secretsvc"),
    Setting("k8s_jwks_file", "SECRETSVC_K8S_JWKS_FILE", parse_optional_path, None, field="jwks_file",
            meaning="JWKS file with the issuer's public keys, instead of fetching them"),
    Setting("k8s_jwks_url", "SECRETSVC_K8S_JWKS_URL", _text, "", field="jwks_url",
            meaning="JWKS URL, instead of the issuer's OIDC discovery document"),
    Setting("k8s_ca_file", "SECRETSVC_K8S_CA_FILE", parse_optional_path, None, field="ca_file",
            meaning="CA bundle trusted for the issuer's HTTPS (e.g. the cluster CA); default: the system store"),
    Setting("k8s_http_timeout_seconds", "SECRETSVC_K8S_HTTP_TIMEOUT_SECONDS", _number, DEFAULT_HTTP_TIMEOUT_SECONDS,
            field="http_timeout_seconds", meaning="timeout of one discovery or JWKS fetch"),
    Setting("k8s_jwks_min_refresh_seconds", "SECRETSVC_K8S_JWKS_MIN_REFRESH_SECONDS", _number,
            DEFAULT_MIN_REFRESH_INTERVAL_SECONDS, field="jwks_min_refresh_seconds",
            meaning="minimum interval between key fetches (unknown key ids do not fetch more often)"),
    Setting("k8s_jwks_max_age_seconds", "SECRETSVC_K8S_JWKS_MAX_AGE_SECONDS", _number, DEFAULT_MAX_AGE_SECONDS,
            field="jwks_max_age_seconds",
            meaning="keys are fetched again when older than this (stale keys stay in use if the fetch fails)"),
    Setting("k8s_leeway_seconds", "SECRETSVC_K8S_LEEWAY_SECONDS", _number, DEFAULT_LEEWAY_SECONDS,
            field="leeway_seconds", meaning="clock skew forgiven on exp, iat and nbf"),
    Setting("k8s_require_pod", "SECRETSVC_K8S_REQUIRE_POD", parse_bool, False, field="require_pod",
            meaning="refuse tokens not bound to a pod (e.g. from kubectl create token)"),
    Setting("k8s_tokenreview", "SECRETSVC_K8S_TOKENREVIEW", parse_bool, False, field="use_tokenreview",
            meaning="check tokens with the API server's TokenReview instead of offline"),
    Setting("k8s_tokenreview_kubeconfig", "SECRETSVC_K8S_TOKENREVIEW_KUBECONFIG", parse_optional_path, None,
            field="tokenreview_kubeconfig",
            meaning="kubeconfig for TokenReview; default: the in-cluster service account"),
    Setting("k8s_tokenreview_timeout_seconds", "SECRETSVC_K8S_TOKENREVIEW_TIMEOUT_SECONDS", _number,
            DEFAULT_HTTP_TIMEOUT_SECONDS, field="tokenreview_timeout_seconds", meaning="timeout of one TokenReview"),
    Setting("k8s_unsafe_allow_http_issuer", "SECRETSVC_K8S_UNSAFE_ALLOW_HTTP_ISSUER", parse_bool, False,
            field="unsafe_allow_http_issuer",
            meaning="UNSAFE: allow plain http for the issuer and the API server (anyone on the path can forge "
            "identities); tests only"),
)


def from_settings(values: Mapping[str, Any], *, origins: Mapping[str, str] | None = None,
                  ) -> ServiceAccountConfig | None:
    """A validated config from setting values keyed by setting name, or None when neither `k8s_issuer` nor
    `k8s_tokenreview` is set. Unknown `k8s_*` names are refused; errors name the origin of the value."""
    known = {s.name for s in SETTINGS}
    unknown = sorted(k for k in values if k.startswith("k8s_") and k not in known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    parsed: dict[str, Any] = {}
    for s in SETTINGS:
        if s.name not in values or values[s.name] is None:
            parsed[s.field] = s.default
            continue
        try:
            parsed[s.field] = s.parse(values[s.name])
        except ValueError as exc:
            origin = (origins or {}).get(s.name, s.name)
            raise ConfigError(f"{origin} {exc}, got {values[s.name]!r}") from None
    if not parsed["issuer"] and not parsed["use_tokenreview"]:
        return None
    return ServiceAccountConfig(**parsed)


def from_environ(environ: Mapping[str, str]) -> ServiceAccountConfig | None:
    """`from_settings` over the `SECRETSVC_K8S_*` environment variables."""
    given = find_given(SETTINGS, {}, environ, {}, None)
    return from_settings({name: g.raw for name, g in given.items()},
                         origins={name: g.origin for name, g in given.items()})


# -- wiring --------------------------------------------------------------------------------------------------


def _key_source(config: ServiceAccountConfig, http: HttpGetter) -> KeySource:
    if config.jwks_file is not None:
        return FileKeySource(config.jwks_file)
    if config.jwks_url:
        return UrlKeySource(config.jwks_url, http)
    return DiscoveryKeySource(config.issuer, http)


def build_verifier(config: ServiceAccountConfig, *, clock: Clock = time.time, monotonic: Clock = time.monotonic,
                   http: HttpGetter | None = None, api_client: Any = None) -> ServiceAccountVerifier:
    """The verifier `config` asks for. Keys are fetched once here: a JWKS file that cannot be used is a
    ConfigError; an issuer that does not answer is logged and tried again on the first token."""
    if config.use_tokenreview:
        client = api_client if api_client is not None else reviewer_api_client(
            kubeconfig=config.tokenreview_kubeconfig, unsafe_allow_http=config.unsafe_allow_http_issuer)
        return TokenReviewVerifier(client, audiences=config.audiences, timeout=config.tokenreview_timeout_seconds)
    if http is None:
        try:
            http = HttpsGetter(ca_file=config.ca_file, timeout=config.http_timeout_seconds,
                               unsafe_allow_http=config.unsafe_allow_http_issuer)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"k8s_ca_file {config.ca_file}: cannot load: {exc}") from None
    source = _key_source(config, http)
    cache = JwksCache(source, min_refresh_interval=config.jwks_min_refresh_seconds,
                      max_age=config.jwks_max_age_seconds, clock=monotonic)
    try:
        cache.load_now()
    except FetchFailed as exc:
        if isinstance(source, FileKeySource):
            raise ConfigError(f"k8s_jwks_file: {exc}") from None
        _log.warning("service-account signing keys not loaded at start; will retry on the first token",
                     extra={"origin": source.origin, "reason": str(exc)})
    return JwksVerifier(cache, issuer=config.issuer, audiences=config.audiences, leeway=config.leeway_seconds,
                        clock=clock)


def build_authenticator(config: ServiceAccountConfig, *, clock: Clock = time.time,
                        monotonic: Clock = time.monotonic, http: HttpGetter | None = None,
                        api_client: Any = None) -> ServiceAccountAuthenticator:
    verifier = build_verifier(config, clock=clock, monotonic=monotonic, http=http, api_client=api_client)
    return ServiceAccountAuthenticator(verifier, require_pod=config.require_pod,
                                       cache=VerifiedIdentityCache(clock=clock))
