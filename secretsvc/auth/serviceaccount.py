"""Kubernetes service-account tokens: a projected token in, a `Principal` bound to namespace, account and pod out.

Two verifiers turn a token into a `ServiceAccountIdentity`: `JwksVerifier` here checks the JWT offline
against the issuer's signing keys (`secretsvc.auth.jwks`), and `TokenReviewVerifier`
(`secretsvc.auth.tokenreview`) asks the API server. `ServiceAccountAuthenticator` puts either behind the
`authenticate(token) -> Principal` call the RPC layer makes, with a size check before anything parses the
token and a short cache of verified tokens.

Every refusal looks the same to the caller: `Unauthenticated(REFUSED_MESSAGE)`, the message static tokens use,
so probing learns nothing and cannot even tell which authenticator refused. The reason goes to one log line
(`reason=...`), never with the token.

Offline verification cannot see a pod or a service account deleted after the token was issued; the token stays
valid until it expires. TokenReview sees both.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from jwt.types import Options

from secretsvc.auth.jwks import ALLOWED_ALGORITHMS, KID_PATTERN, JwksCache, KeySet, SigningKey
from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.auth.verifiedcache import VerifiedCache
from secretsvc.errors import Unauthenticated
from secretsvc.service.clock import Clock

_log = logging.getLogger(__name__)

REFUSED_MESSAGE = "missing or invalid bearer token"
KIND = "serviceaccount"
SUBJECT_PREFIX = "system:serviceaccount:"

# Checked before anything parses the token. Kubernetes tokens are 1-2 KiB; gRPC metadata is 8 KiB in all.
MAX_SERVICE_ACCOUNT_TOKEN_BYTES = 8 * 1024
# Clock skew forgiven on exp, nbf and iat (Kubernetes allows the same 60 s).
DEFAULT_LEEWAY_SECONDS = 60.0
MAX_LEEWAY_SECONDS = 300.0
# A verified token is trusted from the cache for at most this long, and never past its exp. A key dropped from
# the issuer's set, or (with TokenReview) a deleted pod, takes effect within this time.
SERVICEACCOUNT_CACHE_TTL_SECONDS = 30.0
SERVICEACCOUNT_CACHE_MAX_ENTRIES = 4096
_CACHE_KEY_DOMAIN = b"secretsvc.serviceaccount-cache.v1\x00"

# Kubernetes name rules: a namespace is a DNS-1123 label, account and pod names are DNS-1123 subdomains.
MAX_NAMESPACE_CHARS = 63
MAX_OBJECT_NAME_CHARS = 253
MAX_UID_CHARS = 64
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_NAMESPACE = re.compile(_LABEL)
_OBJECT_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_UID = re.compile(r"[A-Za-z0-9-]+")

# PyJWT checks the signature (with the algorithm pinned to the key), the issuer, the audience and that these
# claims are present. The times are checked here, against the injected clock: PyJWT reads the wall clock.
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
_DECODE_OPTIONS: Options = {
    "verify_signature": True,
    "require": _REQUIRED_CLAIMS,
    "verify_iss": True,
    "verify_aud": True,
    "verify_sub": True,
    "verify_jti": True,
    "strict_aud": False,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "enforce_minimum_key_length": True,
}


class TokenRefused(Unauthenticated):
    """A refusal with its reason for the log. Its message is always REFUSED_MESSAGE; the reason is a fixed
    phrase chosen here, never text from the token. `ServiceAccountAuthenticator` logs the reason and raises a
    plain `Unauthenticated`."""

    def __init__(self, reason: str) -> None:
        super().__init__(REFUSED_MESSAGE)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ServiceAccountIdentity:
    """Who a verified token says the caller is. Every name is checked against Kubernetes' naming rules."""

    namespace: str
    name: str
    uid: str
    pod_name: str | None = None
    pod_uid: str | None = None
    expires_at: float | None = None  # the token's exp (epoch seconds), bounding how long it may be cached

    def __post_init__(self) -> None:
        if not _valid(_NAMESPACE, self.namespace, MAX_NAMESPACE_CHARS):
            raise TokenRefused("malformed namespace")
        if not _valid(_OBJECT_NAME, self.name, MAX_OBJECT_NAME_CHARS):
            raise TokenRefused("malformed service account name")
        if not _valid(_UID, self.uid, MAX_UID_CHARS):
            raise TokenRefused("malformed service account uid")
        if (self.pod_name is None) != (self.pod_uid is None):
            raise TokenRefused("pod binding without both name and uid")
        if self.pod_name is not None and not _valid(_OBJECT_NAME, self.pod_name, MAX_OBJECT_NAME_CHARS):
            raise TokenRefused("malformed pod name")
        if self.pod_uid is not None and not _valid(_UID, self.pod_uid, MAX_UID_CHARS):
            raise TokenRefused("malformed pod uid")

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}{self.namespace}:{self.name}"

    def principal(self) -> Principal:
        return Principal(principal_id=PrincipalId(f"{KIND}:{self.namespace}/{self.name}"),
                         name=f"{self.namespace}/{self.name}", kind=KIND, namespace=self.namespace,
                         service_account=self.name, pod=self.pod_name)


def _valid(pattern: re.Pattern[str], value: object, max_chars: int) -> bool:
    return isinstance(value, str) and len(value) <= max_chars and pattern.fullmatch(value) is not None


def _str_field(mapping: Mapping[str, Any], key: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str):
        raise TokenRefused(f"kubernetes.io claim lacks {key}")
    return value


def identity_from_claims(claims: Mapping[str, Any]) -> ServiceAccountIdentity:
    """The identity in a verified token's `kubernetes.io` claim, which `sub` must agree with."""
    k8s = claims.get("kubernetes.io")
    if not isinstance(k8s, dict):
        raise TokenRefused("no kubernetes.io claim")
    account = k8s.get("serviceaccount")
    if not isinstance(account, dict):
        raise TokenRefused("kubernetes.io claim lacks serviceaccount")
    pod = k8s.get("pod")
    if pod is not None and not isinstance(pod, dict):
        raise TokenRefused("kubernetes.io pod is not an object")
    identity = ServiceAccountIdentity(
        namespace=_str_field(k8s, "namespace"),
        name=_str_field(account, "name"),
        uid=_str_field(account, "uid"),
        pod_name=_str_field(pod, "name") if pod is not None else None,
        pod_uid=_str_field(pod, "uid") if pod is not None else None,
        expires_at=float(claims["exp"]) if _is_number(claims.get("exp")) else None,
    )
    if claims.get("sub") != identity.subject:
        raise TokenRefused("sub does not match the kubernetes.io claim")
    return identity


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _time_claim(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if not _is_number(value):
        raise TokenRefused(f"{name} is not a number")
    return float(value)


def check_times(claims: Mapping[str, Any], *, now: float, leeway: float) -> None:
    """exp in the future, iat and nbf (if present) not in the future, each give or take `leeway` seconds."""
    exp = _time_claim(claims, "exp")
    iat = _time_claim(claims, "iat")
    if exp <= now - leeway:
        raise TokenRefused("expired")
    if iat > now + leeway:
        raise TokenRefused("issued in the future")
    if "nbf" in claims and _time_claim(claims, "nbf") > now + leeway:
        raise TokenRefused("not yet valid")
    if exp <= iat:
        raise TokenRefused("expires before it was issued")


class ServiceAccountVerifier(Protocol):
    def verify(self, token: str) -> ServiceAccountIdentity:
        """The identity the token proves, or TokenRefused. `token` is ASCII and within the size bound."""
        ...


def unverified_header(token: str) -> dict[str, Any]:
    """The JWS header, parsed by PyJWT, with `alg` pinned to the allowed asymmetric algorithms and `kid`, if
    any, a well-formed key id; TokenRefused otherwise. Nothing in it is trusted beyond choosing a key."""
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        raise TokenRefused("malformed token") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise TokenRefused("algorithm not allowed")  # none, HS*, EdDSA, anything unknown
    kid = header.get("kid")
    if kid is not None and KID_PATTERN.fullmatch(kid) is None:
        raise TokenRefused("malformed kid")
    return header


class JwksVerifier:
    """Verifies a projected service-account token offline against the issuer's signing keys.

    The token must name an allowed asymmetric algorithm that its key's type supports, carry a signature by
    that key, come from `issuer`, be meant for one of `audiences`, and be current (exp, iat, nbf, within
    `leeway` seconds of `clock`, a wall clock in epoch seconds).
    """

    def __init__(self, keys: JwksCache, *, issuer: str, audiences: tuple[str, ...],
                 leeway: float = DEFAULT_LEEWAY_SECONDS, clock: Clock = time.time) -> None:
        if not issuer:
            raise ValueError("issuer is required")
        if not audiences or not all(audiences):
            raise ValueError("at least one audience is required, and none may be empty")
        if not 0 <= leeway <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"leeway must be between 0 and MAX_LEEWAY_SECONDS={MAX_LEEWAY_SECONDS:g}")
        self._keys = keys
        self._issuer = issuer
        self._audiences = list(audiences)
        self._leeway = leeway
        self._clock = clock

    def verify(self, token: str) -> ServiceAccountIdentity:
        header = unverified_header(token)
        alg: str = header["alg"]
        key = self._find_key(header.get("kid")).for_algorithm(alg)
        if key is None:
            raise TokenRefused("algorithm does not match the key")
        try:
            claims = jwt.decode(token, key=key, algorithms=[alg], issuer=self._issuer, audience=self._audiences,
                                options=_DECODE_OPTIONS)
        except jwt.InvalidSignatureError:
            raise TokenRefused("bad signature") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused("wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("wrong audience") from None
        except jwt.MissingRequiredClaimError as exc:
            claim = exc.claim if exc.claim in _REQUIRED_CLAIMS else "a claim"
            raise TokenRefused(f"missing {claim}") from None
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"invalid token ({type(exc).__name__})") from None
        except (ValueError, TypeError, RecursionError):
            raise TokenRefused("malformed token") from None
        check_times(claims, now=self._clock(), leeway=self._leeway)
        return identity_from_claims(claims)

    def _find_key(self, kid: str | None) -> SigningKey:
        keys: KeySet | None = self._keys.keys()
        if keys is None:
            raise TokenRefused("no signing keys available")
        found = keys.find(kid)
        if found is None and kid is None:
            raise TokenRefused("no kid and the key set has several keys")
        if found is None:
            # The issuer may have rotated: look again, at most once per refresh interval.
            keys = self._keys.refreshed()
            found = keys.find(kid) if keys is not None else None
            if found is None:
                raise TokenRefused("unknown kid")
        return found


class VerifiedIdentityCache(VerifiedCache):
    """Service-account tokens that verified (see `VerifiedCache`): an entry lives `ttl_seconds`, and never past
    the token's own exp. `clock` is the wall clock (exp is epoch seconds)."""

    def __init__(self, *, ttl_seconds: float = SERVICEACCOUNT_CACHE_TTL_SECONDS,
                 max_entries: int = SERVICEACCOUNT_CACHE_MAX_ENTRIES, clock: Clock = time.time) -> None:
        super().__init__(key_domain=_CACHE_KEY_DOMAIN, ttl_seconds=ttl_seconds, max_entries=max_entries,
                         clock=clock)
        self._now = clock

    def put_until(self, key: bytes, principal: Principal, *, not_after: float | None) -> None:
        self.put(key, principal, valid_for=None if not_after is None else not_after - self._now())


class ServiceAccountAuthenticator:
    """Turns a Kubernetes service-account token into a Principal, or raises Unauthenticated(REFUSED_MESSAGE).

    The token's size and alphabet are checked before anything parses it. `require_pod` refuses tokens not
    bound to a pod (e.g. from `kubectl create token`), so only workloads, not people holding a token, get in.
    """

    def __init__(self, verifier: ServiceAccountVerifier, *, require_pod: bool = False,
                 cache: VerifiedIdentityCache | None = None) -> None:
        self._verifier = verifier
        self._require_pod = require_pod
        self._cache = cache if cache is not None else VerifiedIdentityCache()

    def authenticate(self, token: str) -> Principal:
        try:
            return self._authenticate(token)
        except TokenRefused as exc:
            _log.info("service-account token refused", extra={"reason": exc.reason})
        raise Unauthenticated(REFUSED_MESSAGE)

    def forget_verified(self) -> None:
        """Drop every cached verification at once."""
        self._cache.clear()

    def _authenticate(self, token: str) -> Principal:
        if not token:
            raise TokenRefused("empty token")
        if len(token) > MAX_SERVICE_ACCOUNT_TOKEN_BYTES:
            raise TokenRefused(f"longer than MAX_SERVICE_ACCOUNT_TOKEN_BYTES={MAX_SERVICE_ACCOUNT_TOKEN_BYTES}")
        if not token.isascii():
            raise TokenRefused("not ASCII")
        key = self._cache.key_for(token)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        identity = self._verifier.verify(token)
        if self._require_pod and identity.pod_name is None:
            raise TokenRefused("not bound to a pod")
        principal = identity.principal()
        self._cache.put_until(key, principal, not_after=identity.expires_at)
        _log.debug("service-account token verified",
                   extra={"namespace": identity.namespace, "service_account": identity.name,
                          "pod": identity.pod_name})
        return principal
