"""What the interceptors of one call share: its request id, caller, timing and outcome.

gRPC runs a call's interceptors, and its handler, on one worker thread, so the state travels in a context
variable set by the outermost interceptor at the start of each call. Only the rpc package reads it; the
servicers take the `Principal` from here and hand it to the service layer as an argument.
"""

from __future__ import annotations

import contextvars
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc

from secretsvc.auth.principal import Principal
from secretsvc.errors import Unauthenticated
from secretsvc.service import limits


def checked_request_id(rid: str) -> str:
    """A request id fit to log and echo: the caller's if it is short and printable, else a new one."""
    if not rid:
        return uuid.uuid4().hex[:16]
    if len(rid) > limits.MAX_REQUEST_ID_BYTES or not rid.isprintable():
        # Don't echo it: an id that is not printable could forge log lines.
        return "invalid-" + uuid.uuid4().hex[:8]
    return rid


@dataclass(slots=True)
class CallState:
    method: str  # short name ("GetSecret"), for metrics and logs
    request_id: str
    context: grpc.ServicerContext
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    code: grpc.StatusCode | None = None  # set by the status interceptor when the call ends
    error: BaseException | None = None
    request: Any = None  # the parsed request (the first, for a request stream), once authentication let it in
    # The capability the service used, when the method alone does not say (PutSecret: create or update).
    capability: str | None = None
    # A batch that names several resources (GetSecrets): each one and the status name its item ended with,
    # so the audit log holds a record per resource.
    items: list[tuple[str, str]] | None = None

    def adopt_request_id(self, request: Any) -> None:
        """Prefer the id the request body carries, once it has been parsed."""
        rid = getattr(request, "request_id", "")
        if rid:
            self.request_id = checked_request_id(str(rid))
            self.context.set_trailing_metadata((("x-request-id", self.request_id),))


_current: contextvars.ContextVar[CallState | None] = contextvars.ContextVar("secretsvc_call", default=None)


def begin_call(state: CallState) -> None:
    _current.set(state)
    state.context.set_trailing_metadata((("x-request-id", state.request_id),))


def current_call() -> CallState:
    state = _current.get()
    if state is None:
        raise RuntimeError("no RPC in progress on this thread")
    return state


def current_principal() -> Principal:
    """The authenticated caller of the RPC in progress."""
    state = _current.get()
    if state is None or state.principal is None:
        raise Unauthenticated("no authenticated caller")
    return state.principal


def current_request_id() -> str:
    state = _current.get()
    return state.request_id if state is not None else ""
