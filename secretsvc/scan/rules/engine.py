"""The trigger engine: every detector's trigger in one Hyperscan database, scanned in one pass.

Hyperscan runs in block mode and reports the end offset of each trigger hit; the rule set then confirms
candidates with Python `re` on a small window, so start-of-match tracking (HS_FLAG_SOM_LEFTMOST) is not
needed and the database stays small and fast. Scratch space is per thread, so one compiled database serves
concurrent scans.

When the `hyperscan` module cannot be imported (a platform without wheels), the same triggers run through
Python `re`: correct, far slower, and said once in the log when the rule set is built.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

MAX_HITS_PER_SCAN = 20_000  # trigger hits examined per Content; the rest are dropped and logged


class TriggerEngine(Protocol):
    name: str

    def hits(self, data: bytes) -> list[tuple[int, int]]:
        """(detector index, end offset) of every trigger hit in `data`."""
        ...


class _Collector:
    __slots__ = ("hits", "overflow")

    def __init__(self) -> None:
        self.hits: list[tuple[int, int]] = []
        self.overflow = False

    def __call__(self, ident: int, _start: int, end: int, _flags: int, _ctx: object) -> bool | None:
        if len(self.hits) >= MAX_HITS_PER_SCAN:
            self.overflow = True
            return True  # stop the scan
        self.hits.append((ident, end))
        return None


class HyperscanEngine:
    name = "hyperscan"

    def __init__(self, triggers: Sequence[tuple[str, bool, bool]]) -> None:
        import hyperscan

        self._hs: Any = hyperscan
        flags = []
        for _pattern, caseless, multiline in triggers:
            f = 0
            if caseless:
                f |= hyperscan.HS_FLAG_CASELESS
            if multiline:
                f |= hyperscan.HS_FLAG_MULTILINE
            flags.append(f)
        self._db: Any = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=[p.encode() for p, _, _ in triggers],
            ids=list(range(len(triggers))),
            elements=len(triggers),
            flags=flags,
        )
        self._local = threading.local()

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._hs.Scratch(self._db)
            self._local.scratch = scratch
        return scratch

    def hits(self, data: bytes) -> list[tuple[int, int]]:
        if not data:
            return []
        collector = _Collector()
        try:
            self._db.scan(data, match_event_handler=collector, scratch=self._scratch())
        except self._hs.ScanTerminated:
            if not collector.overflow:
                raise
        if collector.overflow:
            log.warning("rule triggers: more than %d hits in one block; the rest were not examined", MAX_HITS_PER_SCAN)
        return collector.hits


class ReEngine:
    name = "re"

    def __init__(self, triggers: Sequence[tuple[str, bool, bool]]) -> None:
        self._patterns = [
            re.compile(p.encode(), (re.IGNORECASE if ci else 0) | (re.MULTILINE if ml else 0)) for p, ci, ml in triggers
        ]

    def hits(self, data: bytes) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for ident, pattern in enumerate(self._patterns):
            for m in pattern.finditer(data):
                out.append((ident, m.end()))
                if len(out) >= MAX_HITS_PER_SCAN:
                    log.warning(
                        "rule triggers: more than %d hits in one block; the rest were not examined", MAX_HITS_PER_SCAN
                    )
                    return out
        return out


def build_engine(triggers: Sequence[tuple[str, bool, bool]], prefer: str = "hyperscan") -> TriggerEngine:
    """Hyperscan when available (and preferred), else Python `re` with a log line saying so."""
    if prefer == "hyperscan":
        try:
            return HyperscanEngine(triggers)
        except ImportError:
            log.warning("hyperscan is not importable; rule triggers fall back to Python re (much slower)")
    return ReEngine(triggers)
