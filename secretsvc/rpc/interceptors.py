"""The one interceptor every RPC passes through: request id, identity, metrics, logs, error mapping.

This is where the identity of a call is decided (bearer tokens now; mTLS and Kubernetes service-account
tokens later), so servicers and the service layer receive a `Principal` and never look at credentials.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc

from secretsvc.auth.principal import Principal
from secretsvc.auth.tokens import TokenAuthenticator
from secretsvc.errors import SecretsvcError, Unauthenticated
from secretsvc.rpc.metrics import RpcMetrics
from secretsvc.rpc.status import status_for
from secretsvc.service import limits

log = logging.getLogger("secretsvc.rpc")

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# Health checks and reflection must answer without credentials (load balancers and grpcurl use them).
_PUBLIC_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                    "/grpc.reflection.v1.ServerReflection/")


def current_principal() -> Principal:
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("no authenticated caller")
    return principal


def current_request_id() -> str:
    return _request_id.get()


def _metadata(context: grpc.ServicerContext, key: str) -> str:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v if isinstance(v, str) else v.decode("latin-1")
    return ""


def _request_id_of(request: Any, context: grpc.ServicerContext) -> str:
    rid = getattr(request, "request_id", "") or _metadata(context, "x-request-id")
    if not rid:
        return uuid.uuid4().hex[:16]
    if len(rid) > limits.MAX_REQUEST_ID_BYTES or not rid.isprintable():
        # Don't echo it: an id that is not printable could forge log lines.
        return "invalid-" + uuid.uuid4().hex[:8]
    return str(rid)


def _log_fields(method: str, rid: str, code: grpc.StatusCode, elapsed: float,
                principal: Principal | None) -> dict[str, object]:
    return {"method": method, "request_id": rid, "code": code.name, "duration_ms": round(elapsed * 1000, 3),
            "principal": principal.display if principal else None}


if TYPE_CHECKING:  # grpc's classes are generic only in its type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor


class ServerInterceptor(_Interceptor):
    def __init__(self, authenticator: TokenAuthenticator, metrics: RpcMetrics) -> None:
        self._auth = authenticator
        self._metrics = metrics
        # Wrapped handlers, built once per method rather than on every call. The registered handlers never
        # change once the server runs, so this is keyed by method name alone (bounded by the API's size).
        self._wrapped: dict[str, Handler | None] = {}

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method: str = details.method
        try:
            return self._wrapped[method]
        except KeyError:
            pass
        handler = continuation(details)
        if handler is None:
            return None  # unknown methods are not cached: any client can make up names
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: Handler) -> Handler:
        if method.startswith(_PUBLIC_SERVICES):
            return handler
        short = method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(short, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(short, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _authenticate(self, context: grpc.ServicerContext) -> Principal:
        header = _metadata(context, "authorization")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthenticated("missing or invalid bearer token")
        return self._auth.authenticate(token.strip())

    def _begin(self, request: Any, context: grpc.ServicerContext) -> str:
        rid = _request_id_of(request, context)
        _request_id.set(rid)
        context.set_trailing_metadata((("x-request-id", rid),))
        return rid

    def _identify(self, context: grpc.ServicerContext) -> Principal:
        principal = self._authenticate(context)
        _principal.set(principal)
        return principal

    def _finish(self, method: str, rid: str, principal: Principal | None, started: float,
                error: BaseException | None, context: grpc.ServicerContext) -> None:
        """Record the outcome, and turn an error into the gRPC status the client sees."""
        elapsed = time.perf_counter() - started
        if error is None:
            code = grpc.StatusCode.OK
        elif isinstance(error, SecretsvcError):
            code = status_for(error)
        else:
            code = grpc.StatusCode.INTERNAL
        self._metrics.observe(method, code.name, elapsed)
        if error is None:
            # The fields dict costs more than the rest of this method; skip it when INFO is off.
            if log.isEnabledFor(logging.INFO):
                log.info("rpc", extra=_log_fields(method, rid, code, elapsed, principal))
            return
        fields = _log_fields(method, rid, code, elapsed, principal)
        if isinstance(error, SecretsvcError):
            log.info("rpc failed: %s", error, extra=fields)
            context.abort(code, str(error))
        log.error("rpc crashed", exc_info=error, extra=fields)
        context.abort(code, f"internal error (request id {rid})")

    def _wrap_unary(self, method: str, behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            rid, principal = self._begin(request, context), None
            try:
                principal = self._identify(context)
                response = behavior(request, context)
            except Exception as exc:  # every error must become a status; none may escape raw
                self._finish(method, rid, principal, started, exc, context)
                raise AssertionError("unreachable: abort raises") from None
            self._finish(method, rid, principal, started, None, context)
            return response

        return wrapped

    def _wrap_stream(self, method: str, behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
                     ) -> Callable[..., Iterator[Any]]:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = time.perf_counter()
            rid, principal = self._begin(request, context), None
            try:
                principal = self._identify(context)
                yield from behavior(request, context)
            except Exception as exc:
                self._finish(method, rid, principal, started, exc, context)
                return
            self._finish(method, rid, principal, started, None, context)

        return wrapped
