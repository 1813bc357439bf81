"""Rewrapping handlers of every kind with a guard, as each interceptor of the chain does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import grpc
import pytest

from secretsvc.rpc.handlers import HandlerCache, guarded, kind_of


def _echo(request: Any, context: Any) -> Any:
    return request


def _echo_stream(request: Any, context: Any) -> Iterator[Any]:
    yield from request if isinstance(request, list) else [request]


HANDLERS = {
    "unary_unary": grpc.unary_unary_rpc_method_handler(_echo),
    "unary_stream": grpc.unary_stream_rpc_method_handler(_echo_stream),
    "stream_unary": grpc.stream_unary_rpc_method_handler(_echo),
    "stream_stream": grpc.stream_stream_rpc_method_handler(_echo_stream),
}


@pytest.mark.parametrize("kind", list(HANDLERS))
def test_the_guard_spans_the_whole_call_of_every_kind(kind: str) -> None:
    events: list[str] = []

    @contextmanager
    def guard(context: Any) -> Iterator[None]:
        events.append("enter")
        yield
        events.append("exit")

    wrapped = guarded(HANDLERS[kind], guard)
    assert kind_of(wrapped) == kind
    result = getattr(wrapped, kind)(["a", "b"], None)
    if kind.endswith("_stream"):
        assert events == []  # a streaming response runs when it is iterated
        assert list(result) == ["a", "b"]
    else:
        assert result == ["a", "b"]
    assert events == ["enter", "exit"]


def test_a_guard_that_swallows_the_error_ends_a_unary_call_without_a_response() -> None:
    @contextmanager
    def swallow(context: Any) -> Iterator[None]:
        with suppress(RuntimeError):
            yield

    def boom(request: Any, context: Any) -> Any:
        raise RuntimeError("gone")

    wrapped = guarded(grpc.unary_unary_rpc_method_handler(boom), swallow)
    assert wrapped.unary_unary(b"", None) is None


def test_a_handler_of_no_known_kind_is_refused() -> None:
    empty = grpc.unary_unary_rpc_method_handler(_echo)._replace(unary_unary=None)
    with pytest.raises(TypeError, match="known kind"):
        kind_of(empty)


def test_the_cache_wraps_each_inner_handler_once() -> None:
    built: list[str] = []

    def wrap(method: str, inner: Any) -> Any:
        built.append(method)
        return inner._replace(request_deserializer=None)

    cache = HandlerCache(wrap)
    first, second = HANDLERS["unary_unary"], HANDLERS["stream_unary"]
    assert cache.get("/a", first) is cache.get("/a", first)
    assert cache.get("/a", second) is not cache.get("/a", first)
    assert built == ["/a", "/a"]
