"""The signing keys of a Kubernetes service-account issuer: fetched, bounded, parsed and cached.

Keys come from one `KeySource`: a JWKS file (e.g. the output of `kubectl get --raw /openid/v1/jwks`), a JWKS
URL, or the issuer's OIDC discovery document (`{issuer}/.well-known/openid-configuration` -> `jwks_uri`).
Remote sources go through `HttpsGetter`: HTTPS only (plain http only with `unsafe_allow_http`), an optional CA
bundle (in-cluster issuers are signed by the cluster CA), a timeout, no redirects, and a bounded body.

`JwksCache` holds the last good `KeySet`. It fetches again when the set is older than `max_age`, or when a
token names a key id it does not know (the issuer may have rotated), but never twice within
`min_refresh_interval`: forged key ids cannot make us hammer the issuer. A failed fetch keeps the keys we have,
so an issuer that is down does not stop callers whose keys are cached.

Only asymmetric keys (RSA, EC) are kept, each bound to the algorithms its type allows; symmetric and private
keys in a JWKS are dropped, so no token can pick an HMAC algorithm and use a public key as its secret.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Protocol

import jwt

from secretsvc.boundedio import read_bounded
from secretsvc.errors import SecretsvcError
from secretsvc.netaddr import is_loopback
from secretsvc.service.clock import Clock

_log = logging.getLogger(__name__)

# RSA with PKCS#1 v1.5 or PSS, and ECDSA on the NIST curves: what a Kubernetes API server can sign with.
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHM_CURVES = MappingProxyType({"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"})
ALLOWED_ALGORITHMS = frozenset(RSA_ALGORITHMS) | frozenset(EC_ALGORITHM_CURVES)

MAX_JWKS_BYTES = 64 * 1024  # a Kubernetes JWKS with a few keys is 1-3 KiB
MAX_DISCOVERY_BYTES = 64 * 1024
MAX_JWKS_KEYS = 32
MAX_KID_CHARS = 128
MAX_URL_CHARS = 2048
# Verifying with a huge RSA modulus is slow; Kubernetes uses 2048-4096 bits.
MAX_KEY_BITS = 8192
# Key ids are public names (Kubernetes uses the base64url SHA-256 of the key); anything else is refused, so a
# key id can go into a log line as it is.
KID_PATTERN = re.compile(rf"[A-Za-z0-9._~+/=-]{{1,{MAX_KID_CHARS}}}")

DEFAULT_MIN_REFRESH_INTERVAL_SECONDS = 30.0
DEFAULT_MAX_AGE_SECONDS = 600.0
DEFAULT_HTTP_TIMEOUT_SECONDS = 5.0
_READ_CHUNK = 16 * 1024
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


class FetchFailed(SecretsvcError):
    """A key source could not deliver a usable key set. The message is for the operator's log; it never
    reaches a caller, and `JwksCache` keeps the keys it already has."""


# -- keys ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One public key from the set, ready to verify with each algorithm its type allows."""

    kid: str | None
    kty: str
    verifiers: Mapping[str, jwt.PyJWK]  # algorithm -> the key bound to exactly that algorithm

    def for_algorithm(self, alg: str) -> jwt.PyJWK | None:
        return self.verifiers.get(alg)


@dataclass(frozen=True, slots=True)
class KeySet:
    keys: tuple[SigningKey, ...]

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(k.kid for k in self.keys if k.kid is not None)

    def find(self, kid: str | None) -> SigningKey | None:
        """The key named `kid`; for a token without a kid, the only key, or None when there are several."""
        if kid is None:
            return self.keys[0] if len(self.keys) == 1 else None
        for key in self.keys:
            if key.kid == kid:
                return key
        return None

    @classmethod
    def parse(cls, raw: bytes, *, origin: str) -> KeySet:
        """A key set from JWKS JSON (at most MAX_JWKS_BYTES), or FetchFailed. Unusable keys are skipped and
        counted in a log line; a set with no usable key, too many keys, or a repeated kid is refused whole."""
        if len(raw) > MAX_JWKS_BYTES:
            raise FetchFailed(f"JWKS from {origin} is larger than MAX_JWKS_BYTES={MAX_JWKS_BYTES}")
        doc = _json_object(raw, what=f"JWKS from {origin}")
        members = doc.get("keys")
        if not isinstance(members, list):
            raise FetchFailed(f"JWKS from {origin} has no 'keys' list")
        if len(members) > MAX_JWKS_KEYS:
            raise FetchFailed(f"JWKS from {origin} has {len(members)} keys, more than MAX_JWKS_KEYS={MAX_JWKS_KEYS}")
        keys: list[SigningKey] = []
        skipped: dict[str, int] = {}
        for member in members:
            key, why = _signing_key(member)
            if key is None:
                skipped[why] = skipped.get(why, 0) + 1
                continue
            if key.kid is not None and any(k.kid == key.kid for k in keys):
                raise FetchFailed(f"JWKS from {origin} names key id {key.kid!r} twice")
            keys.append(key)
        if skipped:
            _log.warning("JWKS keys skipped", extra={"origin": origin, "skipped": skipped})
        if not keys:
            raise FetchFailed(f"JWKS from {origin} holds no usable RSA or EC signing key")
        return cls(tuple(keys))


def _signing_key(member: object) -> tuple[SigningKey | None, str]:
    """The key, or None and a short reason (for a log line) why it cannot be used."""
    if not isinstance(member, dict):
        return None, "not an object"
    kty = member.get("kty")
    if kty not in ("RSA", "EC"):
        return None, "not an RSA or EC key"
    if member.get("use", "sig") != "sig":
        return None, "not a signing key"
    if any(name in member for name in _PRIVATE_MEMBERS):
        return None, "private key material"
    kid = member.get("kid")
    if kid is not None and not (isinstance(kid, str) and KID_PATTERN.fullmatch(kid)):
        return None, "malformed kid"
    if kty == "RSA":
        possible: tuple[str, ...] = RSA_ALGORITHMS
    else:
        possible = tuple(alg for alg, crv in EC_ALGORITHM_CURVES.items() if crv == member.get("crv"))
        if not possible:
            return None, "unsupported EC curve"
    declared = member.get("alg")
    if declared is not None:
        if declared not in possible:
            return None, "alg does not match the key type"
        possible = (declared,)
    verifiers: dict[str, jwt.PyJWK] = {}
    try:
        for alg in possible:
            bound = jwt.PyJWK(member, algorithm=alg)
            if bound.Algorithm.check_key_length(bound.key) is not None:
                return None, "key too short"
            if getattr(bound.key, "key_size", 0) > MAX_KEY_BITS:
                return None, "key longer than MAX_KEY_BITS"
            verifiers[alg] = bound
    except (jwt.PyJWTError, ValueError, TypeError):
        return None, "malformed key"
    return SigningKey(kid=kid, kty=kty, verifiers=MappingProxyType(verifiers)), ""


def _json_object(raw: bytes, *, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the decoder allows
        raise FetchFailed(f"{what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise FetchFailed(f"{what} is not a JSON object")
    return doc


# -- fetching ------------------------------------------------------------------------------------------------


class HttpGetter(Protocol):
    def get(self, url: str, *, max_bytes: int) -> bytes:
        """The body of a 200 answer to GET `url`, at most `max_bytes`; FetchFailed otherwise."""
        ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        return None  # the 3xx surfaces as an HTTPError: keys come only from the URL that was configured


class HttpsGetter:
    """GETs small documents from an issuer: HTTPS with certificate checks, a timeout, a size bound.

    `timeout` bounds connecting and every read; the whole body must also arrive within it (checked between
    reads, so the worst case is about twice `timeout`), so an issuer that drips bytes cannot hold a caller.
    `ca_file` replaces the system trust store (in-cluster issuers present the cluster CA).
    `unsafe_allow_http` allows plain http, which lets anyone on the path forge every identity: tests only.
    """

    def __init__(self, *, ca_file: Path | None = None, timeout: float = DEFAULT_HTTP_TIMEOUT_SECONDS,
                 unsafe_allow_http: bool = False, clock: Clock = time.monotonic) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._timeout = timeout
        self._unsafe_allow_http = unsafe_allow_http
        self._clock = clock
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
        self._https = urllib.request.HTTPSHandler(context=self._context)
        if unsafe_allow_http:
            _log.warning("UNSAFE: plain http allowed for service-account key fetches; tokens can be forged by "
                         "anyone on the network path")

    def check_url(self, url: str) -> None:
        """Raise FetchFailed unless `url` is one this getter may fetch."""
        if len(url) > MAX_URL_CHARS:
            raise FetchFailed(f"URL longer than MAX_URL_CHARS={MAX_URL_CHARS}")
        if not url.isascii() or not url.isprintable() or " " in url:
            raise FetchFailed(f"malformed URL {url!r}")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "http" and not self._unsafe_allow_http:
            raise FetchFailed(f"refusing plain http URL {url!r} (HTTPS only)")
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise FetchFailed(f"not an https URL: {url!r}")

    def get(self, url: str, *, max_bytes: int) -> bytes:
        self.check_url(url)
        handlers: list[urllib.request.BaseHandler] = [self._https, _NoRedirects()]
        if is_loopback(urllib.parse.urlsplit(url).hostname or ""):
            handlers.append(urllib.request.ProxyHandler({}))
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(url, method="GET", headers={"Accept": "application/json"})  # noqa: S310 - scheme checked above
        deadline = self._clock() + self._timeout
        try:
            response: HTTPResponse
            with opener.open(request, timeout=self._timeout) as response:
                if response.status != 200:
                    raise FetchFailed(f"{url} answered HTTP {response.status}")
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise FetchFailed(f"{url} answered {declared} bytes, more than the bound of {max_bytes}")
                return self._read(response, url, max_bytes, deadline)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise FetchFailed(f"{url} answered HTTP {exc.code}") from None
        except (OSError, HTTPException, ValueError) as exc:  # URLError, TLS, timeouts, resets are OSErrors
            reason = getattr(exc, "reason", None) or exc
            raise FetchFailed(f"cannot fetch {url}: {reason}") from None

    def _read(self, response: HTTPResponse, url: str, max_bytes: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = response.read1(_READ_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > max_bytes:
                raise FetchFailed(f"{url} answered more than the bound of {max_bytes} bytes")
            if self._clock() > deadline:
                raise FetchFailed(f"{url} did not answer within {self._timeout:g} s")
            chunks.append(chunk)


class KeySource(Protocol):
    @property
    def origin(self) -> str:
        """Where the keys come from, for log lines."""
        ...

    def fetch(self) -> KeySet:
        """The current key set, or FetchFailed."""
        ...


@dataclass(frozen=True, slots=True)
class FileKeySource:
    """A JWKS file, read again at every refresh (a mounted ConfigMap updates in place)."""

    path: Path

    @property
    def origin(self) -> str:
        return str(self.path)

    def fetch(self) -> KeySet:
        raw = read_bounded(self.path, MAX_JWKS_BYTES, what="JWKS file", limit_name="MAX_JWKS_BYTES",
                           error=FetchFailed)
        return KeySet.parse(raw, origin=self.origin)


@dataclass(frozen=True, slots=True)
class UrlKeySource:
    """A JWKS document at a fixed URL (e.g. the API server's /openid/v1/jwks)."""

    url: str
    http: HttpGetter

    @property
    def origin(self) -> str:
        return self.url

    def fetch(self) -> KeySet:
        return KeySet.parse(self.http.get(self.url, max_bytes=MAX_JWKS_BYTES), origin=self.url)


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True)
class DiscoveryKeySource:
    """The issuer's OIDC discovery document, then the JWKS at its `jwks_uri`, both fetched at every refresh.

    The document must name the configured issuer exactly (OIDC Discovery 1.0, section 4.3), so a document
    copied from another issuer is refused. The `jwks_uri` may be on another path or host, but is held to the
    same rules as every URL (HTTPS, size, timeout).
    """

    issuer: str
    http: HttpGetter

    @property
    def origin(self) -> str:
        return discovery_url(self.issuer)

    def fetch(self) -> KeySet:
        doc = _json_object(self.http.get(self.origin, max_bytes=MAX_DISCOVERY_BYTES),
                           what=f"discovery document {self.origin}")
        if doc.get("issuer") != self.issuer:
            raise FetchFailed(f"discovery document {self.origin} names another issuer")
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise FetchFailed(f"discovery document {self.origin} has no jwks_uri")
        return KeySet.parse(self.http.get(jwks_uri, max_bytes=MAX_JWKS_BYTES), origin=jwks_uri[:MAX_URL_CHARS])


# -- caching -------------------------------------------------------------------------------------------------


class JwksCache:
    """The last good key set of one source, refreshed when stale or on an unknown key id, rate-limited.

    Fetch attempts (successful or not) are at least `min_refresh_interval` apart. `keys()` fetches when
    nothing is cached yet (waiting for a fetch in progress), and when the set is older than `max_age` (then
    without waiting: callers keep verifying with the cached set while one thread fetches). `refreshed()` is for
    an unknown key id: it waits for a fetch in progress, or makes one if the interval allows, and returns what
    is cached afterwards. Thread-safe; `clock` is monotonic seconds.
    """

    def __init__(self, source: KeySource, *,
                 min_refresh_interval: float = DEFAULT_MIN_REFRESH_INTERVAL_SECONDS,
                 max_age: float = DEFAULT_MAX_AGE_SECONDS, clock: Clock = time.monotonic) -> None:
        if min_refresh_interval <= 0:
            raise ValueError("min_refresh_interval must be positive")
        if max_age < min_refresh_interval:
            raise ValueError("max_age must be at least min_refresh_interval")
        self._source = source
        self._min_interval = min_refresh_interval
        self._max_age = max_age
        self._clock = clock
        self._state = threading.Lock()  # guards the three fields below; never held during a fetch
        self._fetching = threading.Lock()  # one fetch at a time
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self.fetch_count = 0  # attempts made, for metrics and tests

    @property
    def origin(self) -> str:
        return self._source.origin

    def keys(self) -> KeySet | None:
        with self._state:
            keys, fetched_at = self._keys, self._fetched_at
        if keys is None:
            self._refresh(wait=True, why="initial")
        elif self._clock() - fetched_at >= self._max_age:
            self._refresh(wait=False, why="max age")
        with self._state:
            return self._keys

    def refreshed(self) -> KeySet | None:
        self._refresh(wait=True, why="unknown kid")
        with self._state:
            return self._keys

    def load_now(self) -> KeySet:
        """Fetch at once (start-up), whatever the interval says; FetchFailed if the source fails."""
        with self._fetching:
            with self._state:
                self._attempted_at = self._clock()
                self.fetch_count += 1
            keys = self._source.fetch()
            self._install(keys)
            return keys

    def _refresh(self, *, wait: bool, why: str) -> None:
        if not self._fetching.acquire(blocking=wait):
            return
        try:
            with self._state:
                now = self._clock()
                if self._attempted_at is not None and now - self._attempted_at < self._min_interval:
                    return
                self._attempted_at = now
                self.fetch_count += 1
            try:
                keys = self._source.fetch()
            except FetchFailed as exc:
                with self._state:
                    cached = self._keys is not None
                _log.warning("service-account signing keys not refreshed; keeping the cached set",
                             extra={"origin": self.origin, "reason": str(exc), "trigger": why, "cached": cached})
                return
            self._install(keys)
        finally:
            self._fetching.release()

    def _install(self, keys: KeySet) -> None:
        with self._state:
            before = self._keys.kids if self._keys is not None else frozenset()
            self._keys = keys
            self._fetched_at = self._clock()
        after = keys.kids
        if after != before:
            _log.info("service-account signing keys loaded",
                      extra={"origin": self.origin, "keys": len(keys.keys), "added": sorted(after - before),
                             "removed": sorted(before - after)})
