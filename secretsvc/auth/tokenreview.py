"""Service-account tokens checked by the Kubernetes API server: an authentication.k8s.io/v1 TokenReview.

Unlike offline verification, the API server also refuses a token whose pod or service account was deleted.
The review asks for our audiences, and the answer must confirm one of them in `status.audiences`: an API
server that ignores audiences answers with none, and a token for the API server itself must not pass here.
Only service-account users (`system:serviceaccount:NS:NAME`) are accepted; the pod comes from the user's
`extra` (`authentication.kubernetes.io/pod-name`, `.../pod-uid`).

The reviewer's own credentials need the `system:auth-delegator` ClusterRole. Reviews are bounded: at most
`MAX_CONCURRENT_REVIEWS` in flight (junk tokens from many callers cannot queue unbounded work on the API
server), a timeout per review, no retries, and a bounded answer.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt

from secretsvc.auth.serviceaccount import (
    SUBJECT_PREFIX,
    ServiceAccountIdentity,
    TokenRefused,
    unverified_header,
)
from secretsvc.errors import ConfigError

_log = logging.getLogger(__name__)

MAX_TOKENREVIEW_RESPONSE_BYTES = 64 * 1024
MAX_CONCURRENT_REVIEWS = 8
MAX_LOGGED_ERROR_CHARS = 200
DEFAULT_TOKENREVIEW_TIMEOUT_SECONDS = 5.0
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"


def reviewer_api_client(*, kubeconfig: Path | None, unsafe_allow_http: bool = False) -> Any:
    """A `kubernetes.client.ApiClient` for the reviewer: from `kubeconfig`, or the pod's own service account
    (in-cluster: its token, refreshed by the client as the kubelet rotates it, and the cluster CA)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig), client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError, ValueError) as exc:
        where = str(kubeconfig) if kubeconfig is not None else "the in-cluster service account"
        raise ConfigError(f"cannot load Kubernetes credentials for TokenReview from {where}: {exc}") from None
    return configured_client(configuration, unsafe_allow_http=unsafe_allow_http)


def configured_client(configuration: Any, *, unsafe_allow_http: bool = False) -> Any:
    """An ApiClient for `configuration` (a `kubernetes.client.Configuration`), HTTPS-only and without retries."""
    from kubernetes import client

    host = str(configuration.host)
    if not host.startswith("https://") and not (unsafe_allow_http and host.startswith("http://")):
        raise ConfigError(f"TokenReview needs an https API server, got {host!r}")
    if not configuration.verify_ssl:
        raise ConfigError("TokenReview refuses an API server connection without certificate checks")
    configuration.retries = False  # a review is retried by the caller, within its own deadline
    return client.ApiClient(configuration)


class TokenReviewVerifier:
    """Asks the API server whether a token is valid for `audiences`, and who it belongs to."""

    def __init__(self, api_client: Any, *, audiences: tuple[str, ...],
                 timeout: float = DEFAULT_TOKENREVIEW_TIMEOUT_SECONDS,
                 max_concurrent: int = MAX_CONCURRENT_REVIEWS) -> None:
        from kubernetes import client

        if not audiences or not all(audiences):
            raise ValueError("at least one audience is required, and none may be empty")
        if timeout <= 0 or max_concurrent < 1:
            raise ValueError("timeout must be positive and max_concurrent at least 1")
        self._api = client.AuthenticationV1Api(api_client)
        self._audiences = list(audiences)
        self._timeout = timeout
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def verify(self, token: str) -> ServiceAccountIdentity:
        # A token that is not even a JWT with an allowed algorithm costs the API server nothing.
        unverified_header(token)
        if not self._slots.acquire(timeout=self._timeout):
            raise TokenRefused("too many TokenReviews in flight")
        try:
            raw = self._review(token)
        finally:
            self._slots.release()
        return self._identity(_json_object(raw), token)

    def _review(self, token: str) -> bytes:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            body = client.V1TokenReview(api_version="authentication.k8s.io/v1", kind="TokenReview",
                                        spec=client.V1TokenReviewSpec(token=token, audiences=self._audiences))
        except ValueError:  # a model validation error would quote the token: never let it out
            raise TokenRefused("TokenReview request not valid") from None
        try:
            # Without preloading, the answer is the raw urllib3 response, so its size can be bounded here.
            response: Any = self._api.create_token_review(body, _preload_content=False,
                                                          _request_timeout=self._timeout,
                                                          # the generated client sends no Content-Type itself
                                                          _headers={"Content-Type": "application/json"})
        except ApiException as exc:
            if not exc.status:  # the client reports TLS failures as status 0
                _log.warning("TokenReview failed", extra={"error": "TLS"})
                raise TokenRefused("TokenReview unreachable") from None
            _log.warning("TokenReview failed", extra={"status": exc.status})
            raise TokenRefused(f"TokenReview answered HTTP {exc.status}") from None
        except (HTTPError, OSError) as exc:
            _log.warning("TokenReview failed", extra={"error": type(exc).__name__})
            raise TokenRefused("TokenReview unreachable") from None
        try:
            raw: bytes = response.read(MAX_TOKENREVIEW_RESPONSE_BYTES + 1)
        except (HTTPError, OSError) as exc:
            response.close()
            _log.warning("TokenReview failed", extra={"error": type(exc).__name__})
            raise TokenRefused("TokenReview answer unreadable") from None
        if len(raw) > MAX_TOKENREVIEW_RESPONSE_BYTES:
            response.close()  # the rest is unread: the connection cannot be reused
            raise TokenRefused(f"TokenReview answer larger than MAX_TOKENREVIEW_RESPONSE_BYTES="
                               f"{MAX_TOKENREVIEW_RESPONSE_BYTES}")
        response.release_conn()
        return raw

    def _identity(self, doc: Mapping[str, Any], token: str) -> ServiceAccountIdentity:
        status = doc.get("status")
        if not isinstance(status, dict):
            raise TokenRefused("TokenReview answer has no status")
        if status.get("authenticated") is not True:
            error = status.get("error")
            if isinstance(error, str) and error:
                # The API server's reason (expired, audience, deleted pod) helps operators; it never holds the
                # token, and repr() keeps a hostile line break out of the log.
                _log.info("TokenReview refused the token", extra={"error": repr(error[:MAX_LOGGED_ERROR_CHARS])})
            raise TokenRefused("TokenReview: not authenticated")
        audiences = status.get("audiences")
        if not isinstance(audiences, list) or not set(self._audiences).intersection(
                a for a in audiences if isinstance(a, str)):
            raise TokenRefused("TokenReview did not confirm an expected audience")
        user = status.get("user")
        if not isinstance(user, dict):
            raise TokenRefused("TokenReview answer has no user")
        username, uid = user.get("username"), user.get("uid")
        if not isinstance(username, str) or not username.startswith(SUBJECT_PREFIX):
            raise TokenRefused("TokenReview user is not a service account")
        namespace, sep, name = username.removeprefix(SUBJECT_PREFIX).partition(":")
        if not sep or not isinstance(uid, str):
            raise TokenRefused("TokenReview user is not a service account")
        extra = user.get("extra")
        extra = extra if isinstance(extra, dict) else {}
        return ServiceAccountIdentity(namespace=namespace, name=name, uid=uid,
                                      pod_name=_single(extra, POD_NAME_EXTRA), pod_uid=_single(extra, POD_UID_EXTRA),
                                      expires_at=_unverified_exp(token))


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise TokenRefused("TokenReview answer is not JSON") from None
    if not isinstance(doc, dict):
        raise TokenRefused("TokenReview answer is not a JSON object")
    return doc


def _single(extra: Mapping[str, Any], key: str) -> str | None:
    values = extra.get(key)
    if values is None:
        return None
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str):
        raise TokenRefused(f"TokenReview extra {key} is not one string")
    return values[0]


def _unverified_exp(token: str) -> float | None:
    """The token's exp, read without checking the signature: the API server has just vouched for the token,
    and the value only shortens how long the verification is cached."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        return None
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or not math.isfinite(exp):
        return None
    return float(exp)
