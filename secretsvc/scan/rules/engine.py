"""The trigger engine: every detector's trigger in one Hyperscan database, scanned in one pass.

Hyperscan runs in block mode and reports the end offset of each trigger hit; the rule set then confirms
candidates with Python `re` on a small window, so start-of-match tracking (HS_FLAG_SOM_LEFTMOST) is not
needed and the database stays small and fast. Scratch space is per thread, so one compiled database serves
concurrent scans.

Compiling takes a moment (tens of milliseconds for the built-in rules, more for large user rule sets), so
the compiled database is kept on disk (`cache.py`) and loaded instead when the same triggers come again.

When the `hyperscan` module cannot be imported (a platform without wheels), the same triggers run through
Python `re`: correct, far slower, and said once in the log when the rule set is built.

Hits are capped per scanned block (`max_hits`, by default `MAX_HITS_PER_SCAN`): a block that holds more
stops the engine there, and the result says it was cut short (`TriggerHits.truncated`), so the caller can
report that the rest of the block was never examined.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from secretsvc.errors import InvalidArgument
from secretsvc.scan.rules.cache import DatabaseCache

log = logging.getLogger(__name__)

#: Trigger hits examined per block (one `Content`); past it the rest of the block is not examined.
MAX_HITS_PER_SCAN = 20_000


class TriggerHits(NamedTuple):
    hits: list[tuple[int, int]]  # (detector index, end offset)
    truncated: bool  # more than max_hits: the engine stopped, and what follows was not examined


class TriggerEngine(Protocol):
    name: str
    max_hits: int

    def hits(self, data: bytes) -> TriggerHits:
        """(detector index, end offset) of every trigger hit in `data`, up to `max_hits`."""
        ...


class _Collector:
    __slots__ = ("hits", "max_hits", "overflow")

    def __init__(self, max_hits: int) -> None:
        self.hits: list[tuple[int, int]] = []
        self.max_hits = max_hits
        self.overflow = False

    def __call__(self, ident: int, _start: int, end: int, _flags: int, _ctx: object) -> bool | None:
        if len(self.hits) >= self.max_hits:
            self.overflow = True
            return True  # stop the scan
        self.hits.append((ident, end))
        return None


def _check_max_hits(max_hits: int) -> int:
    if max_hits < 1:
        raise ValueError("max_hits must be at least 1")
    return max_hits


class HyperscanEngine:
    name = "hyperscan"

    def __init__(
        self,
        triggers: Sequence[tuple[str, bool, bool]],
        max_hits: int = MAX_HITS_PER_SCAN,
        cache: DatabaseCache | None = None,
    ) -> None:
        import hyperscan

        self.max_hits = _check_max_hits(max_hits)

        self._hs: Any = hyperscan
        flags = []
        for _pattern, caseless, multiline in triggers:
            f = 0
            if caseless:
                f |= hyperscan.HS_FLAG_CASELESS
            if multiline:
                f |= hyperscan.HS_FLAG_MULTILINE
            flags.append(f)
        expressions = [p.encode() for p, _, _ in triggers]
        db, key = None, ""
        if cache is not None:
            key = cache.key(str(getattr(hyperscan, "__version__", "")), list(zip(expressions, flags, strict=True)))
            db = cache.load(key, lambda data: hyperscan.loadb(data, hyperscan.HS_MODE_BLOCK))
        if db is None:
            db = _compile(hyperscan, expressions, flags)
            if cache is not None:
                cache.store(key, hyperscan.dumpb(db))
        self._db: Any = db
        self._local = threading.local()

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._hs.Scratch(self._db)
            self._local.scratch = scratch
        return scratch

    def hits(self, data: bytes) -> TriggerHits:
        if not data:
            return TriggerHits([], False)
        collector = _Collector(self.max_hits)
        try:
            self._db.scan(data, match_event_handler=collector, scratch=self._scratch())
        except self._hs.ScanTerminated:
            if not collector.overflow:
                raise
        return TriggerHits(collector.hits, collector.overflow)


def _compile(hs: Any, expressions: list[bytes], flags: list[int]) -> Any:
    db = hs.Database(mode=hs.HS_MODE_BLOCK)
    try:
        db.compile(expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions), flags=flags)
    except hs.error:
        # Hyperscan names no expression; find the one it refuses (a user's trigger outside the subset it
        # shares with Python re: lookarounds, backreferences, ...) so the error can say which.
        for expression, f in zip(expressions, flags, strict=True):
            try:
                hs.Database(mode=hs.HS_MODE_BLOCK).compile(expressions=[expression], ids=[0], elements=1, flags=[f])
            except hs.error as exc:
                shown = expression.decode("utf-8", "replace")
                raise InvalidArgument(f"rule trigger {shown!r} is not supported by Hyperscan: {exc}") from None
        raise
    return db


class ReEngine:
    name = "re"

    def __init__(self, triggers: Sequence[tuple[str, bool, bool]], max_hits: int = MAX_HITS_PER_SCAN) -> None:
        self.max_hits = _check_max_hits(max_hits)
        self._patterns = [
            re.compile(p.encode(), (re.IGNORECASE if ci else 0) | (re.MULTILINE if ml else 0)) for p, ci, ml in triggers
        ]

    def hits(self, data: bytes) -> TriggerHits:
        out: list[tuple[int, int]] = []
        for ident, pattern in enumerate(self._patterns):
            for m in pattern.finditer(data):
                if len(out) >= self.max_hits:
                    return TriggerHits(out, True)
                out.append((ident, m.end()))
        return TriggerHits(out, False)


def build_engine(
    triggers: Sequence[tuple[str, bool, bool]],
    prefer: str = "hyperscan",
    max_hits: int = MAX_HITS_PER_SCAN,
    cache: DatabaseCache | None = None,
) -> TriggerEngine:
    """Hyperscan when available (and preferred), else Python `re` with a log line saying so. The compiled
    database comes from and goes to `cache` when one is given (the CLI passes the environment's, cache.py)."""
    if prefer == "hyperscan":
        try:
            return HyperscanEngine(triggers, max_hits, cache)
        except ImportError:
            log.warning("hyperscan is not importable; rule triggers fall back to Python re (much slower)")
    return ReEngine(triggers, max_hits)
