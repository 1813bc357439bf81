"""Service-account tokens checked through the Kubernetes TokenReview API, at the real protocol boundary.

No Kubernetes API server can run here, so each test starts a real HTTPS server on 127.0.0.1, with a
certificate from a CA made in the test, that answers `POST /apis/authentication.k8s.io/v1/tokenreviews` with
TokenReview JSON shaped as kube-apiserver answers it (the spec echoed back, `status.user` with the pod in
`extra`, `status.audiences`). The `kubernetes` client is pointed at it through its own `Configuration` (or a
kubeconfig file), so everything from the client's request serialization, TLS and bearer credentials to our
parsing of the answer runs for real; only the API server's decision is scripted.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from secretsvc.auth.serviceaccount import (
    REFUSED_MESSAGE,
    ServiceAccountAuthenticator,
    TokenRefused,
    VerifiedIdentityCache,
)
from secretsvc.auth.serviceaccount_config import build_authenticator, from_settings
from secretsvc.auth.tokenreview import (
    MAX_TOKENREVIEW_RESPONSE_BYTES,
    POD_NAME_EXTRA,
    POD_UID_EXTRA,
    TokenReviewVerifier,
    configured_client,
)
from secretsvc.errors import ConfigError, Unauthenticated
from tests.serviceaccount_fakes import (
    FakeClock,
    FakeHttpsServer,
    HungServer,
    Request,
    Response,
    TestKey,
    TlsFiles,
    make_tls,
    rsa_key,
    sa_claims,
)

REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
AUDIENCE = "secretsvc"
POD_UID = "7e2d1c0b-aaaa-4bbb-8ccc-123456789abc"


@dataclass
class FakeApiServer:
    """Answers TokenReviews as kube-apiserver does, from a table of token -> status."""

    reviewer_token: str
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    override: Response | None = None  # answer every request with this instead

    def respond(self, request: Request) -> Response:
        if self.override is not None:
            return self.override
        if request.method != "POST" or request.path.split("?")[0] != REVIEW_PATH:
            return Response.json({"kind": "Status", "status": "Failure", "code": 404}, status=404)
        if request.headers.get("authorization") != f"Bearer {self.reviewer_token}":
            return Response.json({"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401},
                                 status=401)
        review = json.loads(request.body)
        token = review["spec"]["token"]
        status = self.answers.get(token, {"user": {}, "error": "[invalid bearer token, square/go-jose: error in "
                                                               "cryptographic primitive]"})
        review["status"] = status
        review.setdefault("metadata", {})["creationTimestamp"] = None
        return Response.json(review, status=201)


def service_account_status(namespace: str = "payments", name: str = "api", pod: str | None = "api-7d9f8-xk2lp",
                           audiences: list[str] | None = None) -> dict[str, Any]:
    extra: dict[str, list[str]] = {
        "authentication.kubernetes.io/credential-id": ["JTI=2b9a4d3e-9c1e-4f0a-8b7d-6e5f4a3b2c1d"],
        "authentication.kubernetes.io/node-name": ["node-1"],
    }
    if pod is not None:
        extra[POD_NAME_EXTRA] = [pod]
        extra[POD_UID_EXTRA] = [POD_UID]
    return {
        "authenticated": True,
        "user": {
            "username": f"system:serviceaccount:{namespace}:{name}",
            "uid": "0b5c3f5e-6a0c-4b1d-9d0e-1f2a3b4c5d6e",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
            "extra": extra,
        },
        "audiences": [AUDIENCE] if audiences is None else audiences,
    }


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def key() -> TestKey:
    return rsa_key("cluster-key")


@dataclass
class Cluster:
    api: FakeApiServer
    server: FakeHttpsServer
    configuration: Any  # kubernetes.client.Configuration
    clock: FakeClock
    auth: ServiceAccountAuthenticator
    key: TestKey

    def token(self, **overrides: Any) -> str:
        return self.key.sign(sa_claims(self.clock.now, issuer="https://kubernetes.default.svc.cluster.local",
                                       **overrides))

    def reviews(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.server.requests]


def _configuration(url: str, ca: Path, reviewer_token: str) -> Any:
    configuration = client.Configuration()
    configuration.host = url
    configuration.ssl_ca_cert = str(ca)
    configuration.api_key = {"authorization": reviewer_token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return configuration


@pytest.fixture
def cluster(tls: TlsFiles, key: TestKey) -> Iterator[Cluster]:
    api = FakeApiServer(reviewer_token=secrets.token_urlsafe(24))
    with FakeHttpsServer(tls, responder=api.respond) as server:
        configuration = _configuration(server.url, tls.ca, api.reviewer_token)
        clock = FakeClock(time.time())
        verifier = TokenReviewVerifier(configured_client(configuration), audiences=(AUDIENCE,), timeout=2.0)
        auth = ServiceAccountAuthenticator(verifier, cache=VerifiedIdentityCache(clock=clock))
        yield Cluster(api, server, configuration, clock, auth, key)


def _refused(auth: ServiceAccountAuthenticator, token: str, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.DEBUG), pytest.raises(Unauthenticated) as caught:
        auth.authenticate(token)
    assert str(caught.value) == REFUSED_MESSAGE
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    for record in caplog.records:
        assert all(token not in str(v) for v in vars(record).values())
        assert token not in record.getMessage()
    return [getattr(r, "reason", "") for r in caplog.records if r.msg == "service-account token refused"]


def test_a_reviewed_token_gives_a_principal_bound_to_the_pod(cluster: Cluster) -> None:
    token = cluster.token()
    cluster.api.answers[token] = service_account_status()
    principal = cluster.auth.authenticate(token)
    assert (principal.kind, principal.name, principal.namespace, principal.service_account, principal.pod) == (
        "serviceaccount", "payments/api", "payments", "api", "api-7d9f8-xk2lp")
    [request] = cluster.server.requests
    assert (request.method, request.path) == ("POST", REVIEW_PATH)
    assert request.headers["content-type"].startswith("application/json")
    review = json.loads(request.body)
    assert review["apiVersion"] == "authentication.k8s.io/v1" and review["kind"] == "TokenReview"
    assert review["spec"] == {"token": token, "audiences": [AUDIENCE]}


def test_a_verified_review_is_cached_until_the_ttl_or_the_token_exp(cluster: Cluster) -> None:
    token = cluster.token(lifetime=20)
    cluster.api.answers[token] = service_account_status()
    cluster.auth.authenticate(token)
    cluster.auth.authenticate(token)
    assert len(cluster.server.requests) == 1
    cluster.clock.advance(20)  # the token's exp comes before the 30 s TTL
    cluster.auth.authenticate(token)
    assert len(cluster.server.requests) == 2


def test_a_token_without_pod_binding(cluster: Cluster) -> None:
    token = cluster.token(pod=None)
    cluster.api.answers[token] = service_account_status(pod=None)
    assert cluster.auth.authenticate(token).pod is None


def test_the_api_servers_refusal_is_logged_without_the_token(cluster: Cluster,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    assert _refused(cluster.auth, cluster.token(), caplog) == ["TokenReview: not authenticated"]
    assert any("invalid bearer token" in str(getattr(r, "error", "")) for r in caplog.records)


@pytest.mark.parametrize("status,reason", [
    (service_account_status(audiences=[]), "TokenReview did not confirm an expected audience"),
    (service_account_status(audiences=["https://kubernetes.default.svc.cluster.local"]),
     "TokenReview did not confirm an expected audience"),
    ({**service_account_status(), "audiences": None}, "TokenReview did not confirm an expected audience"),
    ({**service_account_status(), "user": {"username": "alice", "uid": "1"}},
     "TokenReview user is not a service account"),
    ({**service_account_status(), "user": {"username": "system:node:node-1", "uid": "1"}},
     "TokenReview user is not a service account"),
    ({**service_account_status(), "user": {"username": "system:serviceaccount:payments", "uid": "1"}},
     "TokenReview user is not a service account"),
    (service_account_status(namespace="Bad_NS"), "malformed namespace"),
    ({**service_account_status(), "authenticated": "true"}, "TokenReview: not authenticated"),
    ({**service_account_status(), "user": {**service_account_status()["user"],
                                           "extra": {POD_NAME_EXTRA: ["a", "b"]}}},
     f"TokenReview extra {POD_NAME_EXTRA} is not one string"),
], ids=["no-audience", "api-server-audience", "audiences-null", "a-person", "a-node", "no-name", "bad-namespace",
        "authenticated-string", "two-pods"])
def test_answers_that_do_not_prove_a_service_account_for_us_are_refused(
        cluster: Cluster, caplog: pytest.LogCaptureFixture, status: dict[str, Any], reason: str) -> None:
    token = cluster.token()
    cluster.api.answers[token] = status
    assert _refused(cluster.auth, token, caplog) == [reason]


@pytest.mark.parametrize("response,reason", [
    (Response.json({"kind": "Status", "code": 403}, status=403), "TokenReview answered HTTP 403"),
    (Response.json({"kind": "Status", "code": 500}, status=500), "TokenReview answered HTTP 500"),
    (Response(body=b"not json", status=201), "TokenReview answer is not JSON"),
    (Response.json([1, 2], status=201), "TokenReview answer is not a JSON object"),
    (Response.json({"kind": "TokenReview"}, status=201), "TokenReview answer has no status"),
    (Response(body=b" " * (MAX_TOKENREVIEW_RESPONSE_BYTES + 1), status=201),
     f"TokenReview answer larger than MAX_TOKENREVIEW_RESPONSE_BYTES={MAX_TOKENREVIEW_RESPONSE_BYTES}"),
], ids=["403", "500", "not-json", "not-object", "no-status", "oversize"])
def test_failed_or_malformed_answers_are_refusals(cluster: Cluster, caplog: pytest.LogCaptureFixture,
                                                  response: Response, reason: str) -> None:
    cluster.api.override = response
    assert _refused(cluster.auth, cluster.token(), caplog) == [reason]


def test_wrong_reviewer_credentials_are_refusals(cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    cluster.api.reviewer_token = secrets.token_urlsafe(24)  # ours no longer matches
    token = cluster.token()
    cluster.api.answers[token] = service_account_status()
    assert _refused(cluster.auth, token, caplog) == ["TokenReview answered HTTP 401"]


def test_junk_never_reaches_the_api_server(cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    for junk in ("not-a-jwt", "a.b.c", "x" * 9000):
        _refused(cluster.auth, junk, caplog)
    assert cluster.server.requests == []


def test_a_hung_api_server_is_a_refusal_within_the_timeout(tls: TlsFiles, key: TestKey,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    hung = HungServer()
    try:
        configuration = _configuration(hung.url, tls.ca, "unused")
        auth = ServiceAccountAuthenticator(TokenReviewVerifier(configured_client(configuration),
                                                               audiences=(AUDIENCE,), timeout=0.5))
        started = time.monotonic()
        assert _refused(auth, key.sign(sa_claims(time.time(), issuer="x")), caplog) == ["TokenReview unreachable"]
        assert time.monotonic() - started < 3
    finally:
        hung.close()


def test_an_api_server_the_ca_does_not_vouch_for_is_a_refusal(cluster: Cluster, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    other = make_tls(tmp_path / "other", common_name="another CA")
    configuration = _configuration(cluster.server.url, other.ca, cluster.api.reviewer_token)
    auth = ServiceAccountAuthenticator(TokenReviewVerifier(configured_client(configuration), audiences=(AUDIENCE,),
                                                           timeout=2.0))
    token = cluster.token()
    cluster.api.answers[token] = service_account_status()
    assert _refused(auth, token, caplog) == ["TokenReview unreachable"]


def test_the_client_must_be_https_with_certificate_checks(tls: TlsFiles) -> None:
    with pytest.raises(ConfigError, match="https"):
        configured_client(_configuration("http://127.0.0.1:1", tls.ca, "t"))
    insecure = _configuration("https://127.0.0.1:1", tls.ca, "t")
    insecure.verify_ssl = False
    with pytest.raises(ConfigError, match="certificate checks"):
        configured_client(insecure)


def test_settings_with_a_kubeconfig_reach_the_api_server(cluster: Cluster, tls: TlsFiles, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({  # JSON is YAML
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": cluster.server.url,
                                                  "certificate-authority": str(tls.ca)}}],
        "users": [{"name": "reviewer", "user": {"token": cluster.api.reviewer_token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "reviewer"}}],
    }))
    config = from_settings({"k8s_tokenreview": "true", "k8s_audiences": AUDIENCE,
                            "k8s_tokenreview_kubeconfig": str(kubeconfig), "k8s_require_pod": "yes"})
    assert config is not None
    auth = build_authenticator(config)
    token = cluster.token()
    cluster.api.answers[token] = service_account_status()
    assert auth.authenticate(token).pod == "api-7d9f8-xk2lp"
    unbound = cluster.token(pod=None, name="batch")
    cluster.api.answers[unbound] = service_account_status(pod=None, name="batch")
    with pytest.raises(Unauthenticated):
        auth.authenticate(unbound)  # k8s_require_pod


def test_missing_in_cluster_credentials_are_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = from_settings({"k8s_tokenreview": True, "k8s_audiences": [AUDIENCE]})
    assert config is not None
    with pytest.raises(ConfigError, match="in-cluster"):
        build_authenticator(config)


def test_the_client_recovers_after_an_oversize_answer(cluster: Cluster,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    cluster.api.override = Response(body=b" " * (4 * MAX_TOKENREVIEW_RESPONSE_BYTES), status=201)
    _refused(cluster.auth, cluster.token(name="first"), caplog)
    cluster.api.override = None
    token = cluster.token()
    cluster.api.answers[token] = service_account_status()
    assert cluster.auth.authenticate(token).name == "payments/api"


def test_reviews_in_flight_are_bounded(cluster: Cluster, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    verifier = TokenReviewVerifier(configured_client(cluster.configuration), audiences=(AUDIENCE,), timeout=0.2,
                                   max_concurrent=1)
    release, entered = threading.Event(), threading.Event()

    def held(token: str) -> bytes:
        entered.set()
        release.wait(5)
        raise TokenRefused("held")

    def first() -> None:
        with pytest.raises(TokenRefused):
            verifier.verify(cluster.token())

    monkeypatch.setattr(verifier, "_review", held)
    holder = threading.Thread(target=first)
    holder.start()
    assert entered.wait(5)
    auth = ServiceAccountAuthenticator(verifier)
    assert _refused(auth, cluster.token(name="second"), caplog) == ["too many TokenReviews in flight"]
    release.set()
    holder.join()
