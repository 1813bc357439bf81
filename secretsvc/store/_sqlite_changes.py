"""Changes other processes commit to one SQLite file, for the server's worker processes (`serve --processes`).

SQLite says that another connection committed, not what: `PRAGMA data_version` on a connection of our own
changes whenever any other connection (another worker, or another thread of this process) commits. A thread
polls it every `interval` seconds and, when it moved, tells the relay that everything may have changed: every
watched secret is read again, cached token verifications are dropped and the policies reload. So a write,
a token revocation or a stored policy made through one worker reaches every other worker within about one
interval, at the cost of one pragma per interval when idle and one re-read of each watched secret per
interval while writes go on.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

log = logging.getLogger("secretsvc.store")

DEFAULT_POLL_SECONDS = 0.25


class Relay(Protocol):
    def everything_may_have_changed(self) -> None: ...


class SqliteChangeSource:
    """A `service/changes.ChangeSource` for several processes on one SQLite database."""

    def __init__(self, path: Path, *, interval: float = DEFAULT_POLL_SECONDS) -> None:
        self._path = Path(path)
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, relay: Relay) -> None:
        # Its own read-only connection: data_version counts commits made through every other connection.
        conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, check_same_thread=False)
        first = _data_version(conn)
        self._thread = threading.Thread(target=self._run, args=(conn, first, relay), name="sqlite-changes",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self, conn: sqlite3.Connection, seen: int, relay: Relay) -> None:
        try:
            while not self._stop.wait(self._interval):
                try:
                    now = _data_version(conn)
                except sqlite3.Error as exc:
                    log.warning("cannot read the database's change counter: %s", exc)
                    continue
                if now != seen:
                    seen = now
                    relay.everything_may_have_changed()
        finally:
            conn.close()


def _data_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA data_version").fetchone()
    return int(row[0])
