"""The one interceptor every RPC passes through: request id, identity, admission, metrics, logs, error mapping.

This is where the identity of a call is decided (bearer tokens now; mTLS and Kubernetes service-account
tokens later), so servicers and the service layer receive a `Principal` and never look at credentials.

Order matters for what an unauthenticated caller can cost the server:

1. When the handler is looked up, before any request body is read, a call to a method that needs credentials
   but carries no bearer token is given a handler that refuses it without reading the body.
2. Request bodies reach the wrapper as raw bytes (the registered deserializer is held back): the token is
   verified first, then the body's size is checked against the method's bound (`requestlimits`), and only
   then is it parsed. A body that does not parse is INVALID_ARGUMENT, counted and logged like any refusal.
3. Streaming calls take a slot from `StreamSlots` before they run, so open streams never hold every worker.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

from secretsvc.auth.principal import Principal
from secretsvc.auth.tokens import TokenAuthenticator
from secretsvc.errors import InvalidArgument, ResourceExhausted, SecretsvcError, Unauthenticated
from secretsvc.rpc.metrics import RpcMetrics
from secretsvc.rpc.requestlimits import max_request_bytes
from secretsvc.rpc.status import public_message, status_for
from secretsvc.rpc.streamslots import StreamSlots
from secretsvc.service import limits

log = logging.getLogger("secretsvc.rpc")

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# Health checks must answer without credentials (load balancers and kubelet probes use them). Reflection is
# not here: it is off unless enabled, and then needs a token like any other method.
PUBLIC_SERVICES = ("/grpc.health.v1.Health/",)

_UNAUTHENTICATED = "missing or invalid bearer token"


def current_principal() -> Principal:
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("no authenticated caller")
    return principal


def current_request_id() -> str:
    return _request_id.get()


def _metadata(pairs: Iterable[tuple[str, str | bytes]] | None, key: str) -> str:
    for k, v in pairs or ():
        if k == key:
            return v if isinstance(v, str) else v.decode("latin-1")
    return ""


def _bearer(pairs: Iterable[tuple[str, str | bytes]] | None) -> str:
    scheme, _, token = _metadata(pairs, "authorization").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _checked_request_id(rid: str) -> str:
    if not rid:
        return uuid.uuid4().hex[:16]
    if len(rid) > limits.MAX_REQUEST_ID_BYTES or not rid.isprintable():
        # Don't echo it: an id that is not printable could forge log lines.
        return "invalid-" + uuid.uuid4().hex[:8]
    return rid


def _log_fields(method: str, rid: str, code: grpc.StatusCode, elapsed: float,
                principal: Principal | None) -> dict[str, object]:
    return {"method": method, "request_id": rid, "code": code.name, "duration_ms": round(elapsed * 1000, 3),
            "principal": principal.display if principal else None}


if TYPE_CHECKING:  # grpc's classes are generic only in its type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor


@dataclass(frozen=True, slots=True)
class _Method:
    """What the wrapper knows of one registered method."""

    name: str  # short name, for metrics and logs
    public: bool
    max_request_bytes: int
    parse: Callable[[bytes], Any] | None  # the registered deserializer; None: the handler takes bytes
    streaming: bool


@dataclass(frozen=True, slots=True)
class _Routes:
    handler: Handler
    refuse: Handler  # for calls that carry no credentials: answered without reading the body


class _Call:
    """The bookkeeping of one call: request id, principal, timing, and how it ended."""

    __slots__ = ("context", "method", "principal", "rid", "started")

    def __init__(self, method: _Method, context: grpc.ServicerContext) -> None:
        self.started = time.perf_counter()
        self.method = method
        self.context = context
        self.principal: Principal | None = None
        self.rid = _checked_request_id(_metadata(context.invocation_metadata(), "x-request-id"))
        _request_id.set(self.rid)

    def adopt_request_id(self, request: Any) -> None:
        rid = getattr(request, "request_id", "")
        if rid:
            self.rid = _checked_request_id(str(rid))
            _request_id.set(self.rid)


class ServerInterceptor(_Interceptor):
    def __init__(self, authenticator: TokenAuthenticator, metrics: RpcMetrics, *,
                 streams: StreamSlots | None = None) -> None:
        self._auth = authenticator
        self._metrics = metrics
        self._streams = streams or StreamSlots(max_total=8, max_per_peer=4)
        # Wrapped handlers, built once per method rather than on every call. The registered handlers never
        # change once the server runs, so this is keyed by method name alone (bounded by the API's size).
        self._routes: dict[str, _Routes | None] = {}

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method: str = details.method
        routes = self._routes.get(method)
        if routes is None:
            handler = continuation(details)
            if handler is None:
                return None  # unknown methods are not cached: any client can make up names
            routes = self._build(method, handler)
            self._routes[method] = routes
        if not _bearer(details.invocation_metadata) and not method.startswith(PUBLIC_SERVICES):
            return routes.refuse
        return routes.handler

    # -- building wrapped handlers ------------------------------------------------------------------------

    def _build(self, full_name: str, handler: Handler) -> _Routes:
        public = full_name.startswith(PUBLIC_SERVICES)
        method = _Method(
            name=full_name.rsplit("/", 1)[-1],
            public=public,
            max_request_bytes=max_request_bytes(full_name, public=public),
            parse=handler.request_deserializer,
            streaming=handler.request_streaming or handler.response_streaming,
        )
        out = handler.response_serializer
        refuse = grpc.stream_unary_rpc_method_handler(self._refusal(method), response_serializer=out)
        if handler.unary_unary is not None:
            wrapped = grpc.unary_unary_rpc_method_handler(self._unary_unary(method, handler.unary_unary),
                                                          response_serializer=out)
        elif handler.unary_stream is not None:
            wrapped = grpc.unary_stream_rpc_method_handler(self._unary_stream(method, handler.unary_stream),
                                                           response_serializer=out)
        elif handler.stream_unary is not None:
            wrapped = grpc.stream_unary_rpc_method_handler(self._stream_unary(method, handler.stream_unary),
                                                           response_serializer=out)
        elif handler.stream_stream is not None:
            wrapped = grpc.stream_stream_rpc_method_handler(self._stream_stream(method, handler.stream_stream),
                                                            response_serializer=out)
        else:
            raise TypeError(f"handler for {full_name} has no behaviour of a known kind")
        return _Routes(handler=wrapped, refuse=refuse)

    def _refusal(self, method: _Method) -> Callable[[Iterator[bytes], grpc.ServicerContext], Any]:
        def refuse(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
            call = _Call(method, context)
            self._fail(call, Unauthenticated(_UNAUTHENTICATED))

        return refuse

    # -- the steps of a call ------------------------------------------------------------------------------

    def _admit(self, call: _Call) -> Callable[[], None] | None:
        """Authenticate (unless public) and, for a stream, take a slot; returns the slot's release."""
        if not call.method.public:
            token = _bearer(call.context.invocation_metadata())
            if not token:
                raise Unauthenticated(_UNAUTHENTICATED)
            call.principal = self._auth.authenticate(token)
            _principal.set(call.principal)
        if not call.method.streaming:
            return None
        release = self._streams.acquire(call.context.peer(), public=call.method.public)
        if not call.context.add_callback(release):
            release()  # the call has already ended
            raise ResourceExhausted("the call ended before it started")
        return release

    def _parse(self, call: _Call, raw: Any) -> Any:
        method = call.method
        if method.parse is None:
            return raw
        if len(raw) > method.max_request_bytes:
            raise ResourceExhausted(
                f"request of {len(raw)} bytes exceeds this method's maximum of {method.max_request_bytes}"
            )
        try:
            request = method.parse(raw)
        except (DecodeError, RecursionError, ValueError):
            raise InvalidArgument(f"request body is not a valid {method.name} request message") from None
        call.adopt_request_id(request)
        return request

    def _parse_each(self, call: _Call, raw_requests: Iterator[Any]) -> Iterator[Any]:
        for raw in raw_requests:
            yield self._parse(call, raw)

    def _succeed(self, call: _Call) -> None:
        elapsed = time.perf_counter() - call.started
        self._metrics.observe(call.method.name, "OK", elapsed)
        call.context.set_trailing_metadata((("x-request-id", call.rid),))
        # The fields dict costs more than the rest of this method; skip it when INFO is off.
        if log.isEnabledFor(logging.INFO):
            log.info("rpc", extra=_log_fields(call.method.name, call.rid, grpc.StatusCode.OK, elapsed,
                                              call.principal))

    def _fail(self, call: _Call, error: BaseException) -> None:
        """Record the outcome and end the call with the status the client sees. Raises, unless the client
        had already gone (a cancelled stream's request iterator raises when it is read)."""
        elapsed = time.perf_counter() - call.started
        if not call.context.is_active():
            self._metrics.observe(call.method.name, grpc.StatusCode.CANCELLED.name, elapsed)
            log.info("rpc cancelled", extra=_log_fields(call.method.name, call.rid, grpc.StatusCode.CANCELLED,
                                                        elapsed, call.principal))
            return
        code = status_for(error) if isinstance(error, SecretsvcError) else grpc.StatusCode.INTERNAL
        self._metrics.observe(call.method.name, code.name, elapsed)
        call.context.set_trailing_metadata((("x-request-id", call.rid),))
        fields = _log_fields(call.method.name, call.rid, code, elapsed, call.principal)
        if isinstance(error, SecretsvcError):
            message = public_message(error, call.rid)
            if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS, grpc.StatusCode.UNAVAILABLE):
                log.warning("rpc failed: %s", error, extra=fields)  # the full message, paths included
            else:
                log.info("rpc failed: %s", error, extra=fields)
            call.context.abort(code, message)
        log.error("rpc crashed", exc_info=error, extra=fields)
        call.context.abort(code, f"internal error (request id {call.rid})")

    # -- one wrapper per handler kind -------------------------------------------------------------------

    def _unary_unary(self, method: _Method, behavior: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(raw: Any, context: grpc.ServicerContext) -> Any:
            call = _Call(method, context)
            try:
                self._admit(call)
                response = behavior(self._parse(call, raw), context)
            except Exception as exc:  # every error must become a status; none may escape raw
                self._fail(call, exc)
                return None
            self._succeed(call)
            return response

        return wrapped

    def _unary_stream(self, method: _Method, behavior: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        def wrapped(raw: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            call, release = _Call(method, context), None
            try:
                release = self._admit(call)
                yield from behavior(self._parse(call, raw), context)
            except Exception as exc:
                self._fail(call, exc)
                return
            finally:
                if release is not None:
                    release()
            self._succeed(call)

        return wrapped

    def _stream_unary(self, method: _Method, behavior: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(raw_requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            call, release = _Call(method, context), None
            try:
                release = self._admit(call)
                response = behavior(self._parse_each(call, raw_requests), context)
            except Exception as exc:
                self._fail(call, exc)
                return None
            finally:
                if release is not None:
                    release()
            self._succeed(call)
            return response

        return wrapped

    def _stream_stream(self, method: _Method, behavior: Callable[..., Iterator[Any]]
                       ) -> Callable[..., Iterator[Any]]:
        def wrapped(raw_requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            call, release = _Call(method, context), None
            try:
                release = self._admit(call)
                yield from behavior(self._parse_each(call, raw_requests), context)
            except Exception as exc:
                self._fail(call, exc)
                return
            finally:
                if release is not None:
                    release()
            self._succeed(call)

        return wrapped
