"""One overall deadline for a blocking call whose library only offers per-operation timeouts.

requests (under hvac) applies its timeout to each socket operation, so a server that drips a byte every few
seconds keeps a request alive far past it. `DeadlineRunner` runs the call on one of its daemon worker
threads and lets the caller wait only until the deadline; past it the caller gets the error it chose and goes
on.

An abandoned call cannot be interrupted: its worker is busy until the server finishes or falls silent for one
per-operation timeout. At most `max_threads` calls may be out at once, abandoned ones included, so a server
that holds every one of them makes further calls fail at their own deadline rather than pile up threads.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Outcome(Generic[T]):
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


_Task = tuple[Callable[[], Any], _Outcome[Any]]


class DeadlineRunner:
    """Daemon worker threads, started as needed and kept, at most `max_threads` of them, since a call holds a
    thread until it ends (abandoned or not) and the runner starts one only when none is idle."""

    def __init__(
        self, max_threads: int, *, name: str = "deadline", clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self._slots = threading.BoundedSemaphore(max_threads)
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._out = 0
        self._name = name
        self._clock = clock

    @property
    def busy(self) -> int:
        """Calls out now, those abandoned at their deadline included."""
        with self._lock:
            return self._out

    def run(self, fn: Callable[[], T], deadline: float, expired: Callable[[], BaseException]) -> T:
        """`fn()`'s value or error, if it comes before `deadline` (on this runner's clock); else `expired()` is
        raised and `fn` is left to finish on its own."""
        remaining = deadline - self._clock()
        if remaining <= 0 or not self._slots.acquire(timeout=remaining):
            raise expired()
        outcome: _Outcome[T] = _Outcome()
        try:
            with self._lock:
                self._out += 1
                start = self._idle == 0
                if not start:
                    self._idle -= 1  # that worker is spoken for
            if start:
                threading.Thread(target=self._work, name=self._name, daemon=True).start()
        except BaseException:  # no thread could be started: the call never went out
            with self._lock:
                self._out -= 1
            self._slots.release()
            raise
        self._tasks.put((fn, outcome))
        if not outcome.done.wait(max(0.0, deadline - self._clock())):
            raise expired()
        if outcome.error is not None:
            raise outcome.error
        return outcome.value  # type: ignore[return-value]  # set when fn returned

    def _work(self) -> None:
        while True:
            fn, outcome = self._tasks.get()
            try:
                outcome.value = fn()
            except BaseException as exc:  # handed to the caller, who re-raises it
                outcome.error = exc
            # Idle before the slot is free: a thread is started only when every existing one is busy, so
            # there are never more threads than slots.
            with self._lock:
                self._idle += 1
                self._out -= 1
            self._slots.release()
            outcome.done.set()
            del fn, outcome  # hold no call's arguments (a data key among them) while waiting for the next
