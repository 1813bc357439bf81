"""Readiness for remote key-encryption keys: a thread that checks each one every few seconds and reports when
the answer changes, so gRPC health says NOT_SERVING while Transit or the HSM cannot be reached."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from secretsvc.errors import SecretsvcError

log = logging.getLogger(__name__)


class Reachable(Protocol):
    @property
    def key_id(self) -> str: ...

    def check_reachable(self) -> None: ...


class KekProbe:
    def __init__(
        self, keks: Sequence[Reachable], on_change: Callable[[bool], None], interval: float, *, reachable: bool = True
    ) -> None:
        self._keks = tuple(keks)
        self._on_change = on_change
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # True: open() reached them all. False: the server started without reaching one (kek/gate.py).
        self.reachable = reachable

    def check_now(self) -> bool:
        ok = True
        for kek in self._keks:
            try:
                kek.check_reachable()
            except SecretsvcError as exc:
                ok = False
                if self.reachable:
                    log.warning(
                        "key-encryption key unreachable; reporting NOT_SERVING",
                        extra={"key_id": kek.key_id, "error": type(exc).__name__},
                    )
        if ok != self.reachable:
            self.reachable = ok
            if ok:
                log.info("key-encryption key reachable again; reporting SERVING")
            self._on_change(ok)
        return ok

    def start(self) -> None:
        if not self._keks:
            return
        self._thread = threading.Thread(target=self._run, name="kek-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.check_now()
