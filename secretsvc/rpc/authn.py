"""The innermost interceptor: who is calling, decided before any request body is parsed.

What an unauthenticated caller can cost the server is bounded here:

1. When the call arrives, before its body is read, a call to a method that needs credentials but carries no
   bearer token is given a handler that refuses it without reading the body (unless client certificates
   identify callers: the certificate is only known once the call runs).
2. Request bodies reach this layer as raw bytes (the registered deserializer is held back): the token is
   verified first, then the body's size is checked against the method's bound (`requestlimits`), and only
   then is it parsed. A body that does not parse is INVALID_ARGUMENT.
3. Streaming calls take a slot from `StreamSlots` before they run, so open streams never hold every worker.
   Watches take a slot from a pool of their own, per caller identity: the server runs them on threads beyond
   the workers, and at most `workers` unary calls run at once (the rest wait for a turn), so any number of
   watches up to `max_watches` leaves unary calls the threads they always had.

Every handler kind is authenticated, streams included; a handler of a kind this layer does not know is
refused when the server first sees it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

from secretsvc.auth.identify import REFUSED, CallerIdentifier
from secretsvc.auth.principal import Principal
from secretsvc.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, Unauthenticated
from secretsvc.rpc.callstate import CallState, current_call
from secretsvc.rpc.handlers import Handler, kind_of, make_handler
from secretsvc.rpc.requestlimits import max_request_bytes
from secretsvc.rpc.streamslots import StreamSlots

if TYPE_CHECKING:
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor

# Health checks must answer without credentials (load balancers and kubelet probes use them). Reflection is
# not here: it is off unless enabled, and then needs a token like any other method.
PUBLIC_SERVICES = ("/grpc.health.v1.Health/",)

UNAUTHENTICATED_MESSAGE = REFUSED

# gRPC's auth context of a call (peer certificate fields, transport security: name -> list of bytes values;
# grpc's stubs type the values as bytes) -> the certificate's identity.
CertificateIdentity = Callable[[Mapping[str, Any]], "Principal | None"]


def bearer_token(pairs: Iterable[tuple[str, str | bytes]] | None) -> str:
    for key, value in pairs or ():
        if key == "authorization":
            text = value if isinstance(value, str) else value.decode("latin-1")
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


@dataclass(frozen=True, slots=True)
class _Method:
    name: str  # short name, for messages
    public: bool
    max_request_bytes: int
    parse: Callable[[bytes], Any] | None  # the registered deserializer; None: the handler takes bytes
    streaming: bool
    watch: bool  # takes a watch slot (per caller) instead of a stream slot (per address)


@dataclass(frozen=True, slots=True)
class _Routes:
    handler: Handler
    refuse: Handler  # for calls that carry no credentials: answered without reading the body


class Authentication(_Interceptor):
    def __init__(self, identifier: CallerIdentifier, streams: StreamSlots, *,
                 certificate_identity: CertificateIdentity | None = None,
                 watches: StreamSlots | None = None, watch_methods: frozenset[str] = frozenset(),
                 unary_turns: threading.BoundedSemaphore | None = None) -> None:
        self._identifier = identifier
        self._streams = streams
        self._watches = watches
        self._watch_methods = watch_methods
        self._unary_turns = unary_turns  # at most `workers` unary calls run at once
        self._certificate_identity = certificate_identity
        # Keyed by method name alone: the registered handlers never change once the server runs, and unknown
        # methods are not cached (any client can make up names), so this stays as small as the API.
        self._routes: dict[str, _Routes] = {}

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
                          details: grpc.HandlerCallDetails) -> Handler | None:
        method: str = details.method
        routes = self._routes.get(method)
        if routes is None:
            handler = continuation(details)
            if handler is None:
                return None
            routes = self._build(method, handler)
            self._routes[method] = routes
        if (not bearer_token(details.invocation_metadata) and not method.startswith(PUBLIC_SERVICES)
                and not self._identifier.identifies_by_certificate):
            return routes.refuse
        return routes.handler

    def _build(self, full_name: str, handler: Handler) -> _Routes:
        public = full_name.startswith(PUBLIC_SERVICES)
        kind = kind_of(handler)  # raises TypeError for a kind this layer does not know
        method = _Method(
            name=full_name.rsplit("/", 1)[-1],
            public=public,
            max_request_bytes=max_request_bytes(full_name, public=public),
            parse=handler.request_deserializer,
            streaming=handler.request_streaming or handler.response_streaming,
            watch=full_name in self._watch_methods,
        )
        behaviour = getattr(handler, kind)
        wrappers = {
            "unary_unary": self._unary_unary,
            "unary_stream": self._unary_stream,
            "stream_unary": self._stream_unary,
            "stream_stream": self._stream_stream,
        }
        wrapped = make_handler(kind, wrappers[kind](method, behaviour), None, handler.response_serializer)
        refuse = make_handler("stream_unary", _refuse, None, handler.response_serializer)
        return _Routes(handler=wrapped, refuse=refuse)

    # -- the steps of a call ------------------------------------------------------------------------------

    def _admit(self, method: _Method, context: grpc.ServicerContext) -> tuple[CallState, Callable[[], None] | None]:
        """Authenticate (unless public) and, for a stream, take a slot; returns the slot's release."""
        call = current_call()
        if not method.public:
            call.principal = self._identifier.identify(bearer_token(context.invocation_metadata()),
                                                       lambda: self._certificate_of(context))
        if not method.streaming:
            return call, None
        if method.watch:
            if self._watches is None or call.principal is None:
                raise FailedPrecondition("watching is turned off on this server (max_watches = 0)")
            principal = call.principal
            release = self._watches.acquire(f"{principal.display}|{principal.pod or ''}", public=False)
        else:
            release = self._streams.acquire(context.peer(), public=method.public)
        if not context.add_callback(release):
            release()
            raise ResourceExhausted("the call ended before its stream could start")
        return call, release

    def _certificate_of(self, context: grpc.ServicerContext) -> Principal | None:
        if self._certificate_identity is None:
            return None
        return self._certificate_identity(context.auth_context())

    @staticmethod
    def _parse(method: _Method, call: CallState, raw: Any) -> Any:
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
        if call.request is None:
            call.request = request
        return request

    def _parse_each(self, method: _Method, call: CallState, raw_requests: Iterator[Any]) -> Iterator[Any]:
        for raw in raw_requests:
            yield self._parse(method, call, raw)

    # -- one wrapper per handler kind -------------------------------------------------------------------

    def _unary_unary(self, method: _Method, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        turns = self._unary_turns

        def call(raw: Any, context: grpc.ServicerContext) -> Any:
            # Authenticated before waiting for a turn: a caller with a bad token is refused at once rather
            # than holding a thread in the queue.
            state, _ = self._admit(method, context)
            if turns is None:
                return behaviour(self._parse(method, state, raw), context)
            with turns:
                return behaviour(self._parse(method, state, raw), context)

        return call

    def _unary_stream(self, method: _Method, behaviour: Callable[..., Iterator[Any]]) -> Callable[..., Any]:
        def call(raw: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            state, release = self._admit(method, context)
            try:
                yield from behaviour(self._parse(method, state, raw), context)
            finally:
                if release is not None:
                    release()

        return call

    def _stream_unary(self, method: _Method, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def call(raw_requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            state, release = self._admit(method, context)
            try:
                return behaviour(self._parse_each(method, state, raw_requests), context)
            finally:
                if release is not None:
                    release()

        return call

    def _stream_stream(self, method: _Method, behaviour: Callable[..., Iterator[Any]]) -> Callable[..., Any]:
        def call(raw_requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            state, release = self._admit(method, context)
            try:
                yield from behaviour(self._parse_each(method, state, raw_requests), context)
            finally:
                if release is not None:
                    release()

        return call


def _refuse(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
    raise Unauthenticated(UNAUTHENTICATED_MESSAGE)
