"""The dry-run access check: may the pod's service account read each secret it asks for, and does each exist?

One `Access.CheckAccess` call per pod covers every secret (the identity is `sa:NAMESPACE/SERVICEACCOUNT`),
with the client library's channel: TLS, the token file read again when it rotates, retries of UNAVAILABLE,
and one bounded deadline across all attempts, so a slow or absent service never holds an admission request
past the webhook's own timeout. The answer is either the problems found, or why the service could not be
asked (what the webhook then does is `--on-service-unavailable`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from injector.plan import SecretRef
from secretsvc.v1 import access_pb2, access_pb2_grpc, secrets_pb2

log = logging.getLogger("injector.webhook.access")

MAX_REASON_CHARS = 300  # of the service's words, quoted into a message for the pod's author
DEFAULT_CACHE_SECONDS = 5.0
MAX_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class AccessReport:
    problems: tuple[str, ...] = ()  # one per secret denied or missing, naming it and the fix
    unavailable: str | None = None  # the service could not answer, and why


class AccessChecker(Protocol):
    def check(self, namespace: str, service_account: str, refs: Sequence[SecretRef],
              request_id: str) -> AccessReport: ...


def identity(namespace: str, service_account: str) -> str:
    return f"sa:{namespace}/{service_account}"


def _ref(ref: SecretRef) -> secrets_pb2.SecretVersionRef:
    return secrets_pb2.SecretVersionRef(ref=secrets_pb2.SecretRef(namespace=ref.namespace, path=ref.path),
                                        version=ref.version or 0)


def _unavailable(exc: grpc.RpcError) -> str:
    code = exc.code()
    detail = (exc.details() or "")[:MAX_REASON_CHARS]
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return (f"the webhook may not review access ({code.name}: {detail}); grant its identity admin on the "
                "system resource access-review (docs/policy.md)")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "the secrets service did not answer within the webhook's --timeout"
    return f"the secrets service could not be asked ({code.name}: {detail})"


class GrpcAccessChecker:
    def __init__(self, channel: grpc.Channel, timeout: float) -> None:
        self._stub = access_pb2_grpc.AccessStub(channel)
        self._timeout = timeout

    def check(self, namespace: str, service_account: str, refs: Sequence[SecretRef],
              request_id: str) -> AccessReport:
        who = identity(namespace, service_account)
        request = access_pb2.CheckAccessRequest(request_id=request_id[:128], identity=who,
                                                secrets=[_ref(r) for r in refs])
        try:
            response = self._stub.CheckAccess(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            reason = _unavailable(exc)
            log.warning("access check failed", extra={"code": exc.code().name, "request_id": request_id})
            return AccessReport(unavailable=reason)
        results = list(response.results)
        if len(results) != len(refs):
            return AccessReport(unavailable=f"the secrets service answered {len(results)} results for {len(refs)} "
                                            "secrets")
        problems = []
        for ref, result in zip(refs, results, strict=True):
            reason = result.reason[:MAX_REASON_CHARS]
            if not result.allowed:
                problems.append(f"secret {ref}: service account {namespace}/{service_account} may not read it "
                                f"({reason or 'denied'}); bind a policy granting read on {ref.namespace}/{ref.path} "
                                f"to serviceaccount {namespace}/{service_account} (docs/policy.md), or use another "
                                "service account")
            elif not result.exists:
                problems.append(f"secret {ref}: {reason or 'cannot be read'}; put it first, or fix the reference")
        return AccessReport(problems=tuple(problems))


class CachedAccessChecker:
    """Remembers the service's answer for one service account and one list of secrets for `ttl` seconds.

    A rollout creates its pods in a burst, all with the same service account and annotations: one review
    answers the burst. An answer at most `ttl` old can be out of date after a policy change; the admission
    check only spares authors a pod that would crash-loop (the agent is refused or admitted by the service
    itself when it fetches), so that staleness costs at most one pod started or refused a few seconds early.
    "Could not ask" is never remembered.
    """

    def __init__(self, inner: AccessChecker, ttl: float = DEFAULT_CACHE_SECONDS, *,
                 monotonic: Callable[[], float] = time.monotonic, max_entries: int = MAX_CACHE_ENTRIES) -> None:
        self._inner = inner
        self._ttl = ttl
        self._monotonic = monotonic
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str, tuple[SecretRef, ...]], tuple[float, AccessReport]] = {}

    def check(self, namespace: str, service_account: str, refs: Sequence[SecretRef],
              request_id: str) -> AccessReport:
        key = (namespace, service_account, tuple(refs))
        now = self._monotonic()
        with self._lock:
            cached = self._answers.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        report = self._inner.check(namespace, service_account, refs, request_id)
        if report.unavailable is None:
            with self._lock:
                if len(self._answers) >= self._max_entries:
                    self._answers.clear()
                self._answers[key] = (now, report)
        return report
