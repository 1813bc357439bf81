"""Changes between replicas on one PostgreSQL database: the NOTIFY payloads a write sends, and the listener
that hears them.

Every write that other replicas must learn of sends `pg_notify` on one channel inside its own transaction
(`PostgresStore._write`), so a notification is delivered only if the write committed, and after it. Each
process runs one `PgChangeListener`: a thread with a connection of its own that LISTENs and hands what it
hears to a `ChangeSink` (the service layer's `ChangeRelay`, which this module only knows by shape).

PostgreSQL keeps no notification for a session that was not listening, so a lost connection can lose some.
After every (re)connect the listener first LISTENs, then tells the sink that everything may have changed: the
sink re-reads what it watches, drops cached token checks and reloads policies, and anything written after the
LISTEN arrives as a notification. Reconnects back off from `BACKOFF_INITIAL_S` to `BACKOFF_MAX_S`.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Mapping
from typing import Any, Protocol

import psycopg

log = logging.getLogger("secretsvc.store.notify")

CHANNEL = "secretsvc_changes"
# PostgreSQL refuses payloads of 8000 bytes or more; ours are far smaller (names are bounded by the store).
MAX_PAYLOAD_BYTES = 7999
ORIGIN_HEX_CHARS = 16

SECRET = "secret"  # noqa: S105 - a kind of change, not a credential
TOKEN = "token"  # noqa: S105 - a kind of change, not a credential
POLICY = "policy"
_KINDS = frozenset({SECRET, TOKEN, POLICY})

BACKOFF_INITIAL_S = 0.1
BACKOFF_MAX_S = 5.0
# How long one wait for notifications lasts before the thread checks whether it should stop.
POLL_S = 1.0


class ChangeSink(Protocol):
    """Where a listener delivers what other processes changed."""

    def secret_changed(self, namespace: str, path: str) -> None: ...

    def tokens_changed(self) -> None: ...

    def policies_changed(self) -> None: ...

    def everything_may_have_changed(self) -> None: ...


def new_origin() -> str:
    """An id for one store instance, so its listener can skip the notifications its own writes sent (those
    were delivered in-process already)."""
    return secrets.token_hex(ORIGIN_HEX_CHARS // 2)


def payload(origin: str, kind: str, namespace: str = "", path: str = "") -> str:
    text = json.dumps([origin, kind, namespace, path], ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        # Cannot happen with the store's name limits; a kind-only notice still tells replicas to look.
        text = json.dumps([origin, kind, "", ""])
    return text


def parse(text: str) -> tuple[str, str, str, str] | None:
    """(origin, kind, namespace, path), or None for anything that is not one of our payloads."""
    if len(text) > MAX_PAYLOAD_BYTES:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not (isinstance(value, list) and len(value) == 4 and all(isinstance(v, str) for v in value)):
        return None
    origin, kind, namespace, path = value
    if kind not in _KINDS:
        return None
    return origin, kind, namespace, path


class PgChangeListener:
    """One LISTEN connection per process; `start(sink)` runs it on a daemon thread, `close()` ends it."""

    def __init__(
        self,
        url: str,
        connect_kwargs: Mapping[str, Any],
        display: str,
        origin: str,
        *,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self._url = url
        self._kwargs = {
            **connect_kwargs,
            "autocommit": True,
            "application_name": "secretsvc-listen",
            # Notice a silently dead peer (a cut network) within ~20 s, not TCP's two hours.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 2,
        }
        self._display = display
        self._origin = origin
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connects = 0  # successful LISTENs so far, for tests and logs

    def start(self, sink: ChangeSink) -> None:
        if self._thread is not None:
            raise RuntimeError("the change listener is already started")
        self._thread = threading.Thread(target=self._run, args=(sink,), name="pg-change-listener", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=POLL_S + 5)

    def _run(self, sink: ChangeSink) -> None:
        backoff = self._backoff_initial_s
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, **self._kwargs) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connects += 1
                    if self.connects > 1:
                        log.info("change listener reconnected to %s; catching up", self._display)
                    _deliver(sink.everything_may_have_changed)
                    backoff = self._backoff_initial_s
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=POLL_S):
                            self._dispatch(sink, notice.payload)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                log.warning(
                    "change listener lost %s (%s); reconnecting in %.1fs",
                    self._display,
                    getattr(exc, "sqlstate", None) or type(exc).__name__,
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(self._backoff_max_s, backoff * 2)

    def _dispatch(self, sink: ChangeSink, text: str) -> None:
        parsed = parse(text)
        if parsed is None:
            log.warning("change listener ignored a notification it cannot read (%d bytes)", len(text))
            return
        origin, kind, namespace, path = parsed
        if origin == self._origin:
            return
        if kind == SECRET:
            if namespace and path:
                _deliver(sink.secret_changed, namespace, path)
            else:
                _deliver(sink.everything_may_have_changed)
        elif kind == TOKEN:
            _deliver(sink.tokens_changed)
        else:
            _deliver(sink.policies_changed)


def _deliver(fn: Any, *args: str) -> None:
    # A failing consumer must not end listening for the life of the process.
    try:
        fn(*args)
    except Exception:
        log.exception("change listener: delivering a change failed")
