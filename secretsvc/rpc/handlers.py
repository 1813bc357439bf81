"""Rewrapping a gRPC method handler, whatever its kind, so an interceptor can run code around every call.

A handler is one of four kinds (unary or streaming request, unary or streaming response). Each interceptor of
the chain needs the same thing: its own code around the behaviour, for the whole call, streams included. A
guard is a context manager made per call; for a streaming response it stays open while the stream runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:  # grpc's classes are generic only in its type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = Any

Guard = Callable[[grpc.ServicerContext], AbstractContextManager[None]]


def kind_of(handler: Handler) -> str:
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        if getattr(handler, kind) is not None:
            return kind
    raise TypeError("a method handler with no behaviour of a known kind")


def guarded(handler: Handler, guard: Guard) -> Handler:
    """`handler` with every call run inside `guard(context)`; request and response types unchanged."""
    kind = kind_of(handler)
    inner = getattr(handler, kind)
    if kind in ("unary_unary", "stream_unary"):
        def unary_response(request: Any, context: grpc.ServicerContext) -> Any:
            response = None  # stays None if the guard ends the call (the client had gone)
            with guard(context):
                response = inner(request, context)
            return response

        behaviour: Callable[..., Any] = unary_response
    else:
        def streaming_response(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with guard(context):
                yield from inner(request, context)

        behaviour = streaming_response
    return make_handler(kind, behaviour, handler.request_deserializer, handler.response_serializer)


def make_handler(kind: str, behaviour: Callable[..., Any], deserializer: Callable[[bytes], Any] | None,
                 serializer: Callable[[Any], bytes] | None) -> Handler:
    factory = {
        "unary_unary": grpc.unary_unary_rpc_method_handler,
        "unary_stream": grpc.unary_stream_rpc_method_handler,
        "stream_unary": grpc.stream_unary_rpc_method_handler,
        "stream_stream": grpc.stream_stream_rpc_method_handler,
    }[kind]
    return factory(behaviour, request_deserializer=deserializer, response_serializer=serializer)


class HandlerCache:
    """Wrapped handlers, built once per inner handler rather than on every call.

    Keyed by the inner handler's identity: the layers below hand out a fixed set of handler objects per
    method (and keep them alive), so the cache stays as small as the API.
    """

    def __init__(self, wrap: Callable[[str, Handler], Handler]) -> None:
        self._wrap = wrap
        self._cache: dict[int, tuple[Handler, Handler]] = {}

    def get(self, method: str, inner: Handler) -> Handler:
        entry = self._cache.get(id(inner))
        if entry is None or entry[0] is not inner:
            entry = (inner, self._wrap(method, inner))
            self._cache[id(inner)] = entry
        return entry[1]
