"""The server's interceptor chain: one small interceptor per job, outermost first.

    RequestIds      a request id and the per-call state every later layer shares (`rpc/callstate.py`)
    Observe         one metric sample and one log line per call, whatever its outcome
    Audit           one record per call in the tamper-evident audit log, fail closed (`rpc/auditing.py`)
    StatusMapping   every exception becomes the gRPC status the client sees (`rpc/status.py`), once
    Authentication  who is calling, before the request body is parsed (`rpc/authn.py`)

The order is what makes each one simple: Observe sees the code StatusMapping chose; StatusMapping sees the
errors of authentication and of the handler alike; Authentication, innermost, is the only layer that sees
request bodies as bytes and the only one that changes what the handler receives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import grpc

from secretsvc.audit.writer import AuditLog
from secretsvc.auth.identify import CallerIdentifier
from secretsvc.errors import SecretsvcError
from secretsvc.rpc.auditing import Audit
from secretsvc.rpc.authn import Authentication, CertificateIdentity
from secretsvc.rpc.callstate import CallState, begin_call, checked_request_id, current_call
from secretsvc.rpc.handlers import Handler, HandlerCache, guarded
from secretsvc.rpc.metrics import RpcMetrics
from secretsvc.rpc.status import public_message, retry_trailers, status_for
from secretsvc.rpc.streamslots import StreamSlots

# Re-exported for the servicers and tests: the caller and request id of the call in progress.
from secretsvc.rpc.callstate import current_principal, current_request_id  # noqa: F401  isort: skip

log = logging.getLogger("secretsvc.rpc")

if TYPE_CHECKING:  # grpc's classes are generic only in its type stubs
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor

Continuation = Callable[[grpc.HandlerCallDetails], "Handler | None"]

# Codes the operator should look at: the log line is a warning and carries the full message.
_OPERATOR_CODES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS, grpc.StatusCode.UNAVAILABLE})


def _metadata(context: grpc.ServicerContext, key: str) -> str:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v if isinstance(v, str) else v.decode("latin-1")
    return ""


class _Guarding(_Interceptor):
    """Runs `guard` around every call of every method; subclasses say what the guard does."""

    def __init__(self) -> None:
        self._handlers = HandlerCache(self._wrap)

    def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Handler | None:
        inner = continuation(details)
        if inner is None:
            return None  # unknown methods are answered UNIMPLEMENTED by gRPC, and not cached
        return self._handlers.get(details.method, inner)

    def _wrap(self, method: str, inner: Handler) -> Handler:
        short = method.rsplit("/", 1)[-1]
        return guarded(inner, lambda context: self.guard(short, context))

    def guard(self, method: str, context: grpc.ServicerContext) -> Any:
        raise NotImplementedError


class RequestIds(_Guarding):
    @contextmanager
    def guard(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        begin_call(CallState(method=method, context=context,
                             request_id=checked_request_id(_metadata(context, "x-request-id"))))
        yield


class Observe(_Guarding):
    def __init__(self, metrics: RpcMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    @contextmanager
    def guard(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        call = current_call()
        try:
            yield
        finally:
            # A stream abandoned by its client ends here without a code from the status layer.
            self._record(call, call.code or grpc.StatusCode.CANCELLED)

    def _record(self, call: CallState, code: grpc.StatusCode) -> None:
        elapsed = time.perf_counter() - call.started
        self._metrics.observe(call.method, code.name, elapsed)
        if code is grpc.StatusCode.OK:
            # The fields dict costs more than the rest of this method; skip it when INFO is off.
            if log.isEnabledFor(logging.INFO):
                log.info("rpc", extra=_fields(call, code, elapsed))
            return
        error = call.error
        if code is grpc.StatusCode.CANCELLED and error is None:
            log.info("rpc cancelled", extra=_fields(call, code, elapsed))
        elif isinstance(error, SecretsvcError):
            level = logging.WARNING if code in _OPERATOR_CODES else logging.INFO
            log.log(level, "rpc failed: %s", error, extra=_fields(call, code, elapsed))  # paths included
        else:
            log.error("rpc crashed", exc_info=error, extra=_fields(call, code, elapsed))


def _fields(call: CallState, code: grpc.StatusCode, elapsed: float) -> dict[str, object]:
    return {"method": call.method, "request_id": call.request_id, "code": code.name,
            "duration_ms": round(elapsed * 1000, 3),
            "principal": call.principal.display if call.principal else None}


class StatusMapping(_Guarding):
    @contextmanager
    def guard(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        call = current_call()
        try:
            yield
        except Exception as exc:  # every error must become a status; none may escape raw
            call.error = exc
            if not context.is_active():
                # The client had gone (a cancelled stream's request iterator raises when read): nobody to
                # tell, and not a crash.
                call.code, call.error = grpc.StatusCode.CANCELLED, None
                return
            if isinstance(exc, SecretsvcError):
                call.code = status_for(exc)
                if trailers := retry_trailers(exc):
                    context.set_trailing_metadata(trailers)
                context.abort(call.code, public_message(exc, call.request_id))
            call.code = grpc.StatusCode.INTERNAL
            context.abort(call.code, f"internal error (request id {call.request_id})")
        else:
            # A stream whose client went away can also end without an error (its request iterator simply
            # stops): that is a cancellation, not a success.
            call.code = grpc.StatusCode.OK if context.is_active() else grpc.StatusCode.CANCELLED


def server_interceptors(identifier: CallerIdentifier, metrics: RpcMetrics, *, streams: StreamSlots,
                        certificate_identity: CertificateIdentity | None = None, audit: AuditLog | None = None,
                        watches: StreamSlots | None = None, watch_methods: frozenset[str] = frozenset(),
                        unary_turns: threading.BoundedSemaphore | None = None,
                        ) -> list[grpc.ServerInterceptor[Any, Any]]:
    """The chain, in the order gRPC runs it (outermost first); the audit layer when an audit log is given."""
    chain: list[grpc.ServerInterceptor[Any, Any]] = [RequestIds(), Observe(metrics)]
    if audit is not None:
        chain.append(Audit(audit))
    return [*chain, StatusMapping(),
            Authentication(identifier, streams, certificate_identity=certificate_identity, watches=watches,
                           watch_methods=watch_methods, unary_turns=unary_turns)]
