"""What every call on a client channel gets: the bearer token, a deadline, and retries of idempotent calls.

Unary calls get the default deadline when they bring none, and are retried per `RetryPolicy` within that
one deadline. Streaming calls get only the token: a stream's length is the caller's business (a watch stays
open, a rewrap runs as long as the data), and a stream that failed part-way cannot be replayed blindly.
A call that already carries `authorization` metadata keeps it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import grpc

from secretsvc.client.retry import RetryPolicy
from secretsvc.client.tokens import TokenSource

if TYPE_CHECKING:  # grpc's interceptor classes are generic only in its type stubs
    _UnaryUnary = grpc.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnary = grpc.StreamUnaryClientInterceptor[Any, Any]
    _StreamStream = grpc.StreamStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = grpc.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.UnaryStreamClientInterceptor
    _StreamUnary = grpc.StreamUnaryClientInterceptor
    _StreamStream = grpc.StreamStreamClientInterceptor


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


def _method_name(details: grpc.ClientCallDetails) -> str:
    method: str | bytes = details.method
    return method.decode() if isinstance(method, bytes) else method


@dataclass(frozen=True, slots=True)
class CallPolicy(_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream):
    token: TokenSource | None
    timeout: float
    retry: RetryPolicy
    uniform: Callable[[], float]  # a draw from [0, 1), for jitter
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic

    def _details(self, details: grpc.ClientCallDetails, timeout: float | None) -> _Details:
        metadata = list(details.metadata or ())
        if self.token is not None and not any(key == "authorization" for key, _ in metadata):
            metadata.append(("authorization", f"Bearer {self.token.token()}"))
        return _Details(_method_name(details), timeout, metadata, details.credentials,
                        getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails,
                              request: Any) -> Any:
        timeout = client_call_details.timeout if client_call_details.timeout is not None else self.timeout
        deadline = self.monotonic() + timeout
        retries = self.retry.retries(_method_name(client_call_details))
        attempt = 1
        while True:
            remaining = max(0.0, deadline - self.monotonic())
            outcome = continuation(self._details(client_call_details, remaining), request)
            if not retries or attempt >= self.retry.max_attempts:
                return outcome
            if outcome.code() != grpc.StatusCode.UNAVAILABLE:
                return outcome
            pause = self.retry.delay(attempt, self.uniform)
            if self.monotonic() + pause >= deadline:
                return outcome
            self.sleep(pause)
            attempt += 1

    def intercept_unary_stream(self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails,
                               request: Any) -> Any:
        return continuation(self._details(client_call_details, client_call_details.timeout), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails,
                               request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details, client_call_details.timeout), request_iterator)

    def intercept_stream_stream(self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails,
                                request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details, client_call_details.timeout), request_iterator)
