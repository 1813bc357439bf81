"""One overall deadline for a blocking call whose library only offers per-operation timeouts.

requests (under hvac) applies its timeout to each socket operation, so a server that drips a byte every few
seconds keeps a request alive far past it. `DeadlineRunner` runs the call on a daemon thread and lets the
caller wait only until the deadline; past it the caller gets the error it chose and goes on.

The abandoned thread cannot be interrupted: it ends when the server finishes or falls silent for one
per-operation timeout. A bounded number of threads may be out at once (`max_threads`), so a server that holds
every one of them makes further calls fail at their own deadline rather than pile up threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Outcome(Generic[T]):
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


class DeadlineRunner:
    def __init__(
        self, max_threads: int, *, name: str = "deadline", clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self._slots = threading.BoundedSemaphore(max_threads)
        self._name = name
        self._clock = clock

    def run(self, fn: Callable[[], T], deadline: float, expired: Callable[[], BaseException]) -> T:
        """`fn()`'s value or error, if it comes before `deadline` (on this runner's clock); else `expired()` is
        raised and `fn` is left to finish on its own."""
        remaining = deadline - self._clock()
        if remaining <= 0 or not self._slots.acquire(timeout=remaining):
            raise expired()
        outcome: _Outcome[T] = _Outcome()

        def target() -> None:
            try:
                outcome.value = fn()
            except BaseException as exc:  # handed to the caller, who re-raises it
                outcome.error = exc
            finally:
                self._slots.release()
                outcome.done.set()

        try:
            threading.Thread(target=target, name=self._name, daemon=True).start()
        except BaseException:
            self._slots.release()
            raise
        if not outcome.done.wait(max(0.0, deadline - self._clock())):
            raise expired()
        if outcome.error is not None:
            raise outcome.error
        return outcome.value  # type: ignore[return-value]  # set when fn returned
