"""Kubernetes service-account tokens verified offline: what passes, every way a token is refused, and how little
a refusal says.

Keys and tokens are made at run time; the issuer is a real HTTPS server on 127.0.0.1 that serves an OIDC
discovery document and a JWKS, as a Kubernetes API server does.
"""

from __future__ import annotations

import base64
import logging
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.auth.serviceaccount import (
    MAX_SERVICE_ACCOUNT_TOKEN_BYTES,
    REFUSED_MESSAGE,
    ServiceAccountAuthenticator,
    ServiceAccountIdentity,
    TokenRefused,
    VerifiedIdentityCache,
)
from secretsvc.auth.serviceaccount_config import ServiceAccountConfig, build_authenticator
from secretsvc.errors import Unauthenticated
from tests.serviceaccount_fakes import (
    FakeClock,
    FakeHttpsServer,
    Response,
    TestKey,
    TlsFiles,
    ec_key,
    forge,
    jwks,
    kid_of,
    make_tls,
    rsa_key,
    sa_claims,
    serve_issuer,
)

NOW = 1_750_000_000.0
AUDIENCE = "secretsvc"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@dataclass(frozen=True)
class Keys:
    rsa: TestKey  # RS256, declared in the JWKS
    ec: TestKey  # ES256
    pss: TestKey  # RSA without a declared alg: any RSA algorithm
    stranger: TestKey  # never published


@pytest.fixture(scope="module")
def keys() -> Keys:
    base = rsa_key(None)
    return Keys(rsa=TestKey(base.private, kid_of(base), "RS256"), ec=ec_key("ec-1"),
                pss=rsa_key("pss-1", alg="PS256"), stranger=rsa_key("stranger"))


@dataclass
class Issuer:
    server: FakeHttpsServer
    url: str
    clock: FakeClock  # wall clock: token times
    mono: FakeClock  # monotonic: key refresh intervals
    auth: ServiceAccountAuthenticator

    def claims(self, **overrides: Any) -> dict[str, Any]:
        return sa_claims(NOW, issuer=self.url, audience=AUDIENCE, **overrides)

    def refuses(self, token: str) -> Unauthenticated:
        with pytest.raises(Unauthenticated) as caught:
            self.auth.authenticate(token)
        return caught.value


def _authenticator(url: str, tls: TlsFiles, clock: FakeClock, mono: FakeClock,
                   **config: Any) -> ServiceAccountAuthenticator:
    cfg = ServiceAccountConfig(audiences=(AUDIENCE, "vault"), issuer=url, ca_file=tls.ca, http_timeout_seconds=2,
                               **config)
    return build_authenticator(cfg, clock=clock, monotonic=mono)


@pytest.fixture
def issuer(tls: TlsFiles, keys: Keys) -> Iterator[Issuer]:
    with FakeHttpsServer(tls) as server:
        url = serve_issuer(server, jwks(keys.rsa, keys.ec, keys.pss.jwk(with_alg=False)))
        clock, mono = FakeClock(NOW), FakeClock(0.0)
        yield Issuer(server, url, clock, mono, _authenticator(url, tls, clock, mono))


def _reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.reason for r in caplog.records if hasattr(r, "reason") and r.msg == "service-account token refused"]


# -- what passes ---------------------------------------------------------------------------------------------


def test_a_pod_bound_token_gives_a_principal_bound_to_namespace_account_and_pod(issuer: Issuer,
                                                                              keys: Keys) -> None:
    principal = issuer.auth.authenticate(keys.rsa.sign(issuer.claims()))
    assert principal == Principal(principal_id=PrincipalId("serviceaccount:payments/api"), name="payments/api",
                                  kind="serviceaccount", namespace="payments", service_account="api",
                                  pod="api-7d9f8-xk2lp")
    assert principal.display == "serviceaccount:payments/api"


@pytest.mark.parametrize("which,alg", [("ec", "ES256"), ("pss", "PS256"), ("pss", "RS512"), ("pss", "PS512")])
def test_other_asymmetric_algorithms_the_key_allows(issuer: Issuer, keys: Keys, which: str, alg: str) -> None:
    key: TestKey = getattr(keys, which)
    assert issuer.auth.authenticate(key.sign(issuer.claims(), alg=alg)).name == "payments/api"


def test_any_one_of_the_configured_audiences_is_enough(issuer: Issuer, keys: Keys) -> None:
    token = keys.rsa.sign(issuer.claims(aud=["https://kubernetes.default.svc", "vault"]))
    assert issuer.auth.authenticate(token).name == "payments/api"


def test_a_token_without_pod_passes_unless_pods_are_required(issuer: Issuer, keys: Keys, tls: TlsFiles) -> None:
    token = keys.rsa.sign(issuer.claims(pod=None))
    assert issuer.auth.authenticate(token).pod is None
    strict = _authenticator(issuer.url, tls, issuer.clock, issuer.mono, require_pod=True)
    with pytest.raises(Unauthenticated):
        strict.authenticate(token)
    assert strict.authenticate(keys.rsa.sign(issuer.claims())).pod == "api-7d9f8-xk2lp"


def test_times_within_the_leeway_pass(issuer: Issuer, keys: Keys) -> None:
    # Default leeway is 60 s: a token 59 s past exp, or issued 59 s in the future, is forgiven.
    late = keys.rsa.sign(issuer.claims(iat=int(NOW - 3600), nbf=int(NOW - 3600), exp=int(NOW - 59)))
    early = keys.rsa.sign(issuer.claims(iat=int(NOW + 59), nbf=int(NOW + 59)))
    assert issuer.auth.authenticate(late).name == "payments/api"
    assert issuer.auth.authenticate(early).name == "payments/api"


def test_without_kid_the_only_key_is_used(tls: TlsFiles, keys: Keys) -> None:
    with FakeHttpsServer(tls) as server:
        url = serve_issuer(server, jwks(keys.ec))
        auth = _authenticator(url, tls, FakeClock(NOW), FakeClock(0))
        token = keys.ec.sign(sa_claims(NOW, issuer=url), kid=None)
        assert auth.authenticate(token).name == "payments/api"


# -- every refusal -------------------------------------------------------------------------------------------


def _refusal_cases(issuer: Issuer, keys: Keys) -> dict[str, str]:
    claims = issuer.claims()
    rsa, pem = keys.rsa, keys.rsa.public_pem()
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa.kid}
    n_bytes = base64.urlsafe_b64decode(rsa.jwk()["n"] + "==")
    return {
        "wrong issuer": rsa.sign(issuer.claims(iss="https://other-cluster.example")),
        "wrong audience": rsa.sign(issuer.claims(aud=["https://kubernetes.default.svc.cluster.local"])),
        "expired": rsa.sign(issuer.claims(iat=int(NOW - 7200), nbf=int(NOW - 7200), exp=int(NOW - 61))),
        "not yet valid": rsa.sign(issuer.claims(nbf=int(NOW + 61))),
        "issued in the future": rsa.sign(issuer.claims(iat=int(NOW + 61), nbf=None)),
        "expires before it was issued": rsa.sign(issuer.claims(iat=int(NOW), exp=int(NOW))),
        "missing exp": rsa.sign({k: v for k, v in claims.items() if k != "exp"}),
        "missing iat": rsa.sign({k: v for k, v in claims.items() if k != "iat"}),
        "missing sub": rsa.sign({k: v for k, v in claims.items() if k != "sub"}),
        "missing aud": rsa.sign({k: v for k, v in claims.items() if k != "aud"}),
        "exp not a number": rsa.sign(issuer.claims(exp="tomorrow")),
        "unknown kid": keys.stranger.sign(claims),
        "bad signature": keys.stranger.sign(claims, kid=rsa.kid),
        "alg none": forge({"alg": "none", "typ": "JWT", "kid": rsa.kid}, claims),
        "alg none, no kid": forge({"alg": "none"}, claims),
        "HS256 with the public key PEM as secret": forge(header, claims, hmac_secret=pem),
        "HS256 with the modulus as secret": forge(header, claims, hmac_secret=n_bytes),
        "HS256 without kid": forge({"alg": "HS256"}, claims, hmac_secret=pem),
        "EdDSA": forge({"alg": "EdDSA", "kid": rsa.kid}, claims, signature=b"\x00" * 64),
        "alg a list": forge({"alg": ["RS256"], "kid": rsa.kid}, claims, signature=b"\x01" * 256),
        "ES256 header on an RSA key": forge({"alg": "ES256", "kid": rsa.kid}, claims, signature=b"\x01" * 64),
        "RS256 header on an EC key": forge({"alg": "RS256", "kid": "ec-1"}, claims, signature=b"\x01" * 256),
        "PS256 on a key declared RS256": rsa.sign(claims, alg="PS256"),
        "no kid with several keys": rsa.sign(claims, kid=None),
        "kid with a line break": rsa.sign(claims, kid="abc\ndef"),
        "kid not a string": forge({"alg": "RS256", "kid": 7}, claims, signature=b"\x01" * 256),
        "sub disagrees": rsa.sign(issuer.claims(sub="system:serviceaccount:kube-system:admin")),
        "no kubernetes.io claim": rsa.sign({k: v for k, v in claims.items() if k != "kubernetes.io"}),
        "namespace not a DNS label": rsa.sign(issuer.claims(namespace="Pay_ments")),
        "name with a colon": rsa.sign(issuer.claims(name="a:b")),
        "pod without uid": rsa.sign(issuer.claims(**{"kubernetes.io": {
            **claims["kubernetes.io"], "pod": {"name": "p"}}})),
        "oversized": "a" * (MAX_SERVICE_ACCOUNT_TOKEN_BYTES + 1),
        "not ascii": rsa.sign(claims) + "é",
        "empty": "",
        "garbage": "not a token",
        "two segments": "eyJhbGciOiJSUzI1NiJ9.e30",
        "bad base64": "eyJhbGciOiJSUzI1NiJ9.!!!!.AAAA",
        "header not json": base64.urlsafe_b64encode(b"{not json").decode().rstrip("=") + ".e30.AAAA",
        "deeply nested header": base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=") + ".e30.AAAA",
    }


# Each way to be refused, and the reason the log gives for it.
CASES = {
    "wrong issuer": "wrong issuer",
    "wrong audience": "wrong audience",
    "expired": "expired",
    "not yet valid": "not yet valid",
    "issued in the future": "issued in the future",
    "expires before it was issued": "expires before it was issued",
    "missing exp": "missing exp",
    "missing iat": "missing iat",
    "missing sub": "missing sub",
    "missing aud": "missing aud",
    "exp not a number": "exp is not a number",
    "unknown kid": "unknown kid",
    "bad signature": "bad signature",
    "alg none": "algorithm not allowed",
    "alg none, no kid": "algorithm not allowed",
    "HS256 with the public key PEM as secret": "algorithm not allowed",
    "HS256 with the modulus as secret": "algorithm not allowed",
    "HS256 without kid": "algorithm not allowed",
    "EdDSA": "algorithm not allowed",
    "alg a list": "algorithm not allowed",
    "ES256 header on an RSA key": "algorithm does not match the key",
    "RS256 header on an EC key": "algorithm does not match the key",
    "PS256 on a key declared RS256": "algorithm does not match the key",
    "no kid with several keys": "no kid and the key set has several keys",
    "kid with a line break": "malformed kid",
    "kid not a string": "malformed token",
    "sub disagrees": "sub does not match the kubernetes.io claim",
    "no kubernetes.io claim": "no kubernetes.io claim",
    "namespace not a DNS label": "malformed namespace",
    "name with a colon": "malformed service account name",
    "pod without uid": "kubernetes.io claim lacks uid",
    "oversized": f"longer than MAX_SERVICE_ACCOUNT_TOKEN_BYTES={MAX_SERVICE_ACCOUNT_TOKEN_BYTES}",
    "not ascii": "not ASCII",
    "empty": "empty token",
    "garbage": "malformed token",
    "two segments": "malformed token",
    "bad base64": "malformed token",
    "header not json": "malformed token",
    "deeply nested header": "malformed token",
}


@pytest.mark.parametrize("case", CASES)
def test_refused_with_one_message_and_the_reason_only_in_the_log(issuer: Issuer, keys: Keys, case: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    token = _refusal_cases(issuer, keys)[case]
    with caplog.at_level(logging.DEBUG):
        error = issuer.refuses(token)
    assert type(error) is Unauthenticated
    assert str(error) == REFUSED_MESSAGE
    assert error.__cause__ is None and error.__context__ is None
    assert _reasons(caplog) == [CASES[case]]
    if token:
        for record in caplog.records:
            assert token not in record.getMessage()
            assert all(token not in str(v) for v in vars(record).values())


def test_the_cases_list_covers_every_case(issuer: Issuer, keys: Keys) -> None:
    assert sorted(_refusal_cases(issuer, keys)) == sorted(CASES)


def test_an_oversized_token_is_refused_before_anything_parses_it(issuer: Issuer, monkeypatch: pytest.MonkeyPatch,
                                                                 keys: Keys) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed an oversized token")

    requests_before = len(issuer.server.requests)
    monkeypatch.setattr(jwt, "get_unverified_header", boom)
    monkeypatch.setattr(jwt, "decode", boom)
    padded = keys.rsa.sign(issuer.claims(pad="x" * MAX_SERVICE_ACCOUNT_TOKEN_BYTES))
    issuer.refuses(padded)
    assert len(issuer.server.requests) == requests_before


# -- keys that change, issuers that fail ---------------------------------------------------------------------


def test_unknown_kids_refresh_the_keys_at_most_once_per_interval(issuer: Issuer) -> None:
    assert len(issuer.server.requests) == 2  # discovery and JWKS, at start
    forgers = [rsa_key(f"forged-{i}", bits=2048) for i in range(2)]
    for i in range(40):
        issuer.refuses(forgers[i % 2].sign(issuer.claims()))
    assert len(issuer.server.requests) == 2  # still inside the first interval
    issuer.mono.advance(30)
    for i in range(40):
        issuer.refuses(forgers[i % 2].sign(issuer.claims()))
    assert len(issuer.server.requests) == 4  # one more discovery and JWKS, however many forged kids


def test_rotation_a_new_key_is_found_by_refreshing(issuer: Issuer, keys: Keys) -> None:
    new = rsa_key("rotated-2")
    token = new.sign(issuer.claims())
    issuer.refuses(token)  # not published yet (and the last fetch was just now)
    issuer.server.routes["/openid/v1/jwks"] = Response(body=jwks(new, keys.rsa))
    issuer.mono.advance(30)
    assert issuer.auth.authenticate(token).name == "payments/api"
    assert issuer.auth.authenticate(keys.rsa.sign(issuer.claims(name="web"))).name == "payments/web"


def test_a_removed_key_stops_verifying_after_refresh(issuer: Issuer, keys: Keys) -> None:
    assert issuer.auth.authenticate(keys.ec.sign(issuer.claims())).name == "payments/api"
    issuer.server.routes["/openid/v1/jwks"] = Response(body=jwks(keys.rsa))
    issuer.mono.advance(600)  # past max age
    issuer.clock.advance(31)  # past the verified-token cache
    issuer.auth.authenticate(keys.rsa.sign(issuer.claims(iat=int(NOW + 31))))  # triggers the stale refresh
    issuer.refuses(keys.ec.sign(issuer.claims(iat=int(NOW + 31), name="other")))


def test_an_issuer_that_is_down_leaves_cached_keys_working(issuer: Issuer, keys: Keys) -> None:
    issuer.server.close()
    issuer.mono.advance(3600)  # the keys are stale and every refresh fails
    issuer.clock.advance(10)
    assert issuer.auth.authenticate(keys.rsa.sign(issuer.claims(iat=int(NOW + 10)))).name == "payments/api"
    issuer.refuses(keys.stranger.sign(issuer.claims(iat=int(NOW + 10))))


def test_an_issuer_unreachable_at_start_is_tried_again_later(tls: TlsFiles, keys: Keys,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with FakeHttpsServer(tls) as server:
        server.routes.clear()  # 404 for everything
        clock, mono = FakeClock(NOW), FakeClock(0)
        with caplog.at_level(logging.WARNING):
            auth = _authenticator(server.url, tls, clock, mono)
        assert any("not loaded at start" in r.getMessage() for r in caplog.records)
        token = keys.rsa.sign(sa_claims(NOW, issuer=server.url))
        with pytest.raises(Unauthenticated):
            auth.authenticate(token)
        serve_issuer(server, jwks(keys.rsa))
        with pytest.raises(Unauthenticated):
            auth.authenticate(token)  # within the refresh interval: no new fetch
        mono.advance(30)
        assert auth.authenticate(token).name == "payments/api"


# -- the verified-token cache ----------------------------------------------------------------------------------


class CountingVerifier:
    def __init__(self, identity: ServiceAccountIdentity) -> None:
        self.identity = identity
        self.calls = 0

    def verify(self, token: str) -> ServiceAccountIdentity:
        self.calls += 1
        return self.identity


def test_a_verified_token_is_cached_but_never_past_its_exp() -> None:
    clock = FakeClock(NOW)
    verifier = CountingVerifier(ServiceAccountIdentity("ns", "sa", "uid-1", expires_at=NOW + 10))
    auth = ServiceAccountAuthenticator(verifier, cache=VerifiedIdentityCache(ttl_seconds=30, clock=clock))
    auth.authenticate("token-a")
    auth.authenticate("token-a")
    assert verifier.calls == 1
    clock.advance(10)  # the token's exp: the entry is gone although the TTL is not over
    auth.authenticate("token-a")
    assert verifier.calls == 2


def test_the_cache_is_bounded_in_age_and_count() -> None:
    clock = FakeClock(NOW)
    verifier = CountingVerifier(ServiceAccountIdentity("ns", "sa", "uid-1", expires_at=NOW + 3600))
    cache = VerifiedIdentityCache(ttl_seconds=30, max_entries=2, clock=clock)
    auth = ServiceAccountAuthenticator(verifier, cache=cache)
    for token in ("a", "b", "c"):
        auth.authenticate(token)
    assert len(cache) == 2
    auth.authenticate("a")  # evicted as least recently used
    assert verifier.calls == 4
    clock.advance(30)
    auth.authenticate("a")
    assert verifier.calls == 5
    auth.forget_verified()
    assert len(cache) == 0


def test_refusals_are_not_cached() -> None:
    class Refusing:
        calls = 0

        def verify(self, token: str) -> ServiceAccountIdentity:
            self.calls += 1
            raise TokenRefused("nope")

    verifier = Refusing()
    auth = ServiceAccountAuthenticator(verifier)
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            auth.authenticate("t")
    assert verifier.calls == 3


def test_identities_hold_kubernetes_names_only() -> None:
    assert ServiceAccountIdentity("ns", "sa.with-dots", "u-1", "pod-1", "p-1").principal().pod == "pod-1"
    for bad in ({"namespace": "a" * 64}, {"name": "UPPER"}, {"uid": "x" * 65}, {"pod_name": "p"},
                {"pod_name": "p", "pod_uid": "bad uid"}, {"namespace": "-x"}):
        fields = {"namespace": "ns", "name": "sa", "uid": "u-1", **bad}
        with pytest.raises(TokenRefused) as caught:
            ServiceAccountIdentity(**fields)  # type: ignore[arg-type]
        assert str(caught.value) == REFUSED_MESSAGE


# -- tampering -------------------------------------------------------------------------------------------------


def _segments(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)) for s in token.split(".")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_character_is_refused(issuer: Issuer, keys: Keys, data: st.DataObject) -> None:
    token = keys.rsa.sign(issuer.claims())
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(string.ascii_letters + string.digits + "-_."))
    tampered = token[:position] + replacement + token[position + 1:]
    if tampered == token:
        return
    try:
        same = _segments(tampered) == _segments(token)
    except ValueError:
        same = False
    if same:
        return  # only the unused low bits of a base64 character changed: the same token
    issuer.refuses(tampered)


def test_random_junk_is_refused(issuer: Issuer) -> None:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-_."
    for _ in range(300):
        junk = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 600)))
        issuer.refuses(junk)
