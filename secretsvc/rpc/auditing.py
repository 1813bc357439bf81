"""The audit interceptor: one record per call, allowed or refused, in the tamper-evident log (`secretsvc/audit`).

It sits outside the status mapping, so it sees every outcome with its final code, and inside the metrics
layer, so a call refused for want of an audit record is counted like any other. Fail closed: if the log is
already broken the call is refused before anything runs (`ensure_available`), and if its record cannot be
written the caller gets UNAVAILABLE instead of the response. What a call changed before its record failed stays
changed (the write has happened; the record is what is missing); a stream's messages already sent stay sent.

The record names the resource from the request (a secret's NAMESPACE/PATH, a transit key, a system resource)
and the capability the method needs (`service/access.py`). `PutSecret` needs `create` or `update` depending
on whether the secret exists, which only the service knows: the servicer passes on the one it used (or the
refusal names the one refused), and a put refused before that (unauthenticated, malformed) has none.
`GetSecrets` writes one record per secret it was asked for, each with that item's status, all with the call's
request id. Health checks are not audited: load balancers call them every few seconds, anonymously, and they
touch nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import grpc

from secretsvc.audit.record import AuditEvent
from secretsvc.audit.writer import AuditLog
from secretsvc.errors import AuditUnavailable
from secretsvc.rpc.callstate import CallState, current_call
from secretsvc.rpc.handlers import Handler, HandlerCache, guarded
from secretsvc.rpc.status import public_message

_UNAUDITED_SERVICES = ("/grpc.health.v1.Health/",)


@dataclass(frozen=True, slots=True)
class _Target:
    kind: str | None  # resource kind, as service/access.py names it
    capability: str | None
    system_name: str | None = None  # for system resources: the fixed name
    # False for a method that never changes what is stored: its record need not reach the disk before the
    # answer (audit durability "changes", docs/audit.md). Unknown methods count as changing.
    changes: bool = True


_SECRET, _KEY, _SYSTEM = "secret", "transit_key", "system"
_TARGETS: dict[str, _Target] = {
    "/secretsvc.v1.Secrets/PutSecret": _Target(_SECRET, None),
    "/secretsvc.v1.Secrets/GetSecret": _Target(_SECRET, "read", changes=False),
    "/secretsvc.v1.Secrets/GetSecrets": _Target(_SECRET, "read", changes=False),
    "/secretsvc.v1.Secrets/WatchSecrets": _Target(_SECRET, "read", changes=False),
    "/secretsvc.v1.Secrets/ListSecrets": _Target(_SECRET, "list", changes=False),
    "/secretsvc.v1.Secrets/GetSecretMetadata": _Target(_SECRET, "read", changes=False),
    "/secretsvc.v1.Secrets/UpdateSecretMetadata": _Target(_SECRET, "update"),
    "/secretsvc.v1.Secrets/DeleteVersions": _Target(_SECRET, "delete"),
    "/secretsvc.v1.Secrets/UndeleteVersions": _Target(_SECRET, "delete"),
    "/secretsvc.v1.Secrets/DestroyVersions": _Target(_SECRET, "destroy"),
    "/secretsvc.v1.Secrets/DeleteSecret": _Target(_SECRET, "destroy"),
    "/secretsvc.v1.Transit/CreateKey": _Target(_KEY, "create"),
    "/secretsvc.v1.Transit/GetKey": _Target(_KEY, "read", changes=False),
    "/secretsvc.v1.Transit/ListKeys": _Target(_KEY, "list", changes=False),
    "/secretsvc.v1.Transit/RotateKey": _Target(_KEY, "rotate"),
    "/secretsvc.v1.Transit/SetMinDecryptionVersion": _Target(_KEY, "update"),
    "/secretsvc.v1.Transit/Encrypt": _Target(_KEY, "encrypt", changes=False),
    "/secretsvc.v1.Transit/EncryptBatch": _Target(_KEY, "encrypt", changes=False),
    "/secretsvc.v1.Transit/GenerateDataKey": _Target(_KEY, "encrypt", changes=False),
    "/secretsvc.v1.Transit/Decrypt": _Target(_KEY, "decrypt", changes=False),
    "/secretsvc.v1.Transit/DecryptBatch": _Target(_KEY, "decrypt", changes=False),
    "/secretsvc.v1.Transit/Rewrap": _Target(_KEY, "rewrap", changes=False),
    "/secretsvc.v1.Admin/GetRootKey": _Target(_SYSTEM, "admin", "root-key", changes=False),
    "/secretsvc.v1.Admin/RotateRootKey": _Target(_SYSTEM, "admin", "root-key"),
    "/secretsvc.v1.Admin/RewrapStored": _Target(_SYSTEM, "admin", "root-key"),
    "/secretsvc.v1.Access/CheckAccess": _Target(_SYSTEM, "admin", "access-review", changes=False),
    # One record per secret reported (with its name), or one without a resource when none was.
    "/secretsvc.v1.Matching/MatchValues": _Target(_SECRET, "match", changes=False),
    "/secretsvc.v1.Tokens/CreateToken": _Target(_SYSTEM, "admin", "tokens"),
    "/secretsvc.v1.Tokens/ListTokens": _Target(_SYSTEM, "admin", "tokens", changes=False),
    "/secretsvc.v1.Tokens/RevokeToken": _Target(_SYSTEM, "admin", "tokens"),
    "/secretsvc.v1.Policies/PutPolicyDocument": _Target(_SYSTEM, "admin", "policies"),
    "/secretsvc.v1.Policies/GetPolicyDocument": _Target(_SYSTEM, "admin", "policies", changes=False),
    "/secretsvc.v1.Policies/ListPolicyDocuments": _Target(_SYSTEM, "admin", "policies", changes=False),
    "/secretsvc.v1.Policies/DeletePolicyDocument": _Target(_SYSTEM, "admin", "policies"),
    "/secretsvc.v1.Policies/ReloadPolicies": _Target(_SYSTEM, "admin", "policies"),
    "/secretsvc.v1.Policies/ExplainPolicy": _Target(_SYSTEM, "admin", "policies", changes=False),
}
_UNKNOWN = _Target(None, None)


def resource_of(target: _Target, request: Any) -> str | None:
    """The resource a request names, as the authorizer names it; None when it names none (or was not parsed)."""
    if target.system_name is not None:
        return target.system_name
    if request is None:
        return None
    ref = getattr(request, "ref", None)
    if ref is not None and ref.namespace:
        return f"{ref.namespace}/{ref.path}"
    namespace: str = getattr(request, "namespace", "")
    if target.kind == _SECRET and namespace:
        prefix: str = getattr(request, "prefix", "")
        return f"{namespace}/{prefix}"  # a listing: the prefix listed
    key_name: str = getattr(request, "key_name", "")
    name: str = key_name or getattr(request, "name", "")
    return name or None


if TYPE_CHECKING:  # grpc's classes are generic only in its type stubs
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor


class Audit(_Interceptor):
    def __init__(self, log: AuditLog) -> None:
        self._log = log
        self._handlers = HandlerCache(self._wrap)

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
                          details: grpc.HandlerCallDetails) -> Handler | None:
        inner = continuation(details)
        if inner is None or details.method.startswith(_UNAUDITED_SERVICES):
            return inner
        return self._handlers.get(details.method, inner)

    def _wrap(self, method: str, inner: Handler) -> Handler:
        target = _TARGETS.get(method, _UNKNOWN)
        return guarded(inner, lambda context: self._audited(method, target, context))

    @contextmanager
    def _audited(self, method: str, target: _Target, context: grpc.ServicerContext) -> Iterator[None]:
        call = current_call()
        try:
            self._log.ensure_available()
        except AuditUnavailable as exc:
            self._refuse(call, context, exc)
        try:
            yield
        except BaseException as exc:
            # Ended by the status layer (an abort), or abandoned by the client: record it, then let it go on.
            # A failed call whose record cannot be written is refused too (its own status would say what
            # happened, unaudited); a client that has gone is told nothing.
            gone = isinstance(exc, GeneratorExit) or call.code in (None, grpc.StatusCode.CANCELLED)
            self._write(method, target, call, context, refuse_on_failure=not gone)
            raise
        self._write(method, target, call, context, refuse_on_failure=call.code is not grpc.StatusCode.CANCELLED)

    def _write(self, method: str, target: _Target, call: CallState, context: grpc.ServicerContext, *,
               refuse_on_failure: bool) -> None:
        event = AuditEvent(
            request_id=call.request_id,
            method=method,
            code=(call.code or grpc.StatusCode.CANCELLED).name,
            latency_us=min(int((time.perf_counter() - call.started) * 1_000_000), 24 * 3600 * 1_000_000),
            principal=call.principal.display if call.principal else None,
            resource_kind=target.kind,
            resource=resource_of(target, call.request),
            capability=target.capability or call.capability or getattr(call.error, "capability", None),
        )
        # A batch that ran records each resource it named, with that item's own status, so "who read this
        # secret" finds batch reads like single ones.
        events = ([replace(event, resource=resource, code=code) for resource, code in call.items]
                  if call.items and call.code is grpc.StatusCode.OK else [event])
        try:
            for each in events:
                self._log.write(each, changed=target.changes)
        except AuditUnavailable as exc:
            if refuse_on_failure:
                self._refuse(call, context, exc)

    @staticmethod
    def _refuse(call: CallState, context: grpc.ServicerContext, exc: AuditUnavailable) -> None:
        call.code, call.error = grpc.StatusCode.UNAVAILABLE, exc
        context.abort(grpc.StatusCode.UNAVAILABLE, public_message(exc, call.request_id))
