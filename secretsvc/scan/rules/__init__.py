"""Credential detection rules for the leak detector: `Content` in, `Match`es out.

    rules = RuleSet.default()
    for match in rules.scan(content): ...      # Match.start/end: the secret's offsets in content.data
    result = rules.match(content)              # the same matches, and whether the block was cut short

Some detectors apply only in some files (`Detector.scope`: config files, files that hold one token). Which
scopes a content is in is decided by its path (`rules.context.file_scopes`); a caller may say otherwise with
`scopes=` (the rule examples run with `context.ALL_SCOPES`).

One pass of Hyperscan over the data finds every trigger (a keyword or token shape); only the windows around
those hits are examined further with Python `re`, checksums and precision filters. Ordinary data with no
keywords in it therefore costs little more than the Hyperscan pass. A `RuleSet` is immutable after
construction and safe to share between threads.

A block with more trigger hits than `max_hits` is examined only up to the hit where the engine stopped;
`RuleSet.match` says so (`MatchResult.truncated`), and the scan pipeline turns that into a "limit.matches"
warning, since a secret past that point would go unseen.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from secretsvc.errors import InvalidArgument
from secretsvc.scan.model import Content, Match
from secretsvc.scan.rules.cache import DatabaseCache
from secretsvc.scan.rules.context import file_scopes
from secretsvc.scan.rules.engine import MAX_HITS_PER_SCAN, TriggerEngine, build_engine
from secretsvc.scan.rules.filters import is_allowlisted
from secretsvc.scan.rules.loader import builtin_rules
from secretsvc.scan.rules.model import Detector, Rule, RuleInfo

__all__ = ["MAX_HITS_PER_SCAN", "MatchResult", "RuleInfo", "RuleSet"]


class MatchResult(NamedTuple):
    matches: list[Match]  # sorted by offset
    truncated: bool  # more than max_hits trigger hits: the block was examined only in part


class RuleSet:
    """A compiled set of rules. Build once (compiling takes a moment), scan many times, from any thread."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        engine: str = "hyperscan",
        max_hits: int = MAX_HITS_PER_SCAN,
        cache: DatabaseCache | None = None,
    ) -> None:
        if not rules:
            raise InvalidArgument("a rule set needs at least one rule")
        ids = [r.info.rule_id for r in rules]
        if len(set(ids)) != len(ids):
            raise InvalidArgument("rule ids must be unique")
        self._rules = tuple(rules)
        self._engine_pref = engine
        self._cache = cache
        self._detectors: list[tuple[int, Detector]] = [
            (ri, d) for ri, rule in enumerate(self._rules) for d in rule.detectors
        ]
        self._engine: TriggerEngine = build_engine(
            [(d.trigger, d.caseless, d.multiline) for _, d in self._detectors],
            prefer=engine,
            max_hits=max_hits,
            cache=cache,
        )

    @classmethod
    def default(
        cls, *, engine: str = "hyperscan", max_hits: int = MAX_HITS_PER_SCAN, cache: DatabaseCache | None = None
    ) -> RuleSet:
        """Every built-in rule (the package's `rules/data/*.toml`). `engine="re"` forces the pure-Python trigger
        engine (for tests); `max_hits` caps the trigger hits examined per block (tests shrink it); `cache` keeps the
        compiled Hyperscan database on disk between runs (cache.py; the CLI passes the environment's)."""
        return cls([loaded.rule for loaded in builtin_rules()], engine=engine, max_hits=max_hits, cache=cache)

    def adding(self, rules: Sequence[Rule]) -> RuleSet:
        """A new rule set with these rules as well; an id already in this set is an error."""
        clash = {r.info.rule_id for r in rules} & {r.info.rule_id for r in self._rules}
        if clash:
            raise InvalidArgument(f"rule id(s) already defined: {', '.join(sorted(clash))}")
        return RuleSet([*self._rules, *rules], engine=self._engine_pref, max_hits=self.max_hits, cache=self._cache)

    @property
    def rules(self) -> Sequence[RuleInfo]:
        return tuple(r.info for r in self._rules)

    @property
    def engine(self) -> str:
        return self._engine.name

    @property
    def max_hits(self) -> int:
        """Trigger hits examined per block; a block with more is examined only in part."""
        return self._engine.max_hits

    def without(self, rule_ids: Iterable[str]) -> RuleSet:
        """A new rule set lacking the named rules; an unknown id is an error, not a silent no-op."""
        drop = set(rule_ids)
        unknown = drop - {r.info.rule_id for r in self._rules}
        if unknown:
            raise InvalidArgument(f"unknown rule id(s): {', '.join(sorted(unknown))}")
        return RuleSet(
            [r for r in self._rules if r.info.rule_id not in drop],
            engine=self._engine_pref,
            max_hits=self.max_hits,
            cache=self._cache,
        )

    def scan(self, content: Content, *, scopes: frozenset[str] | None = None) -> list[Match]:
        """Matches in `content.data`, sorted by offset; overlapping claims go to the more specific rule."""
        return self.match(content, scopes=scopes).matches

    def match(self, content: Content, *, scopes: frozenset[str] | None = None) -> MatchResult:
        """`scan`, and whether the block held more trigger hits than `max_hits` (and was examined in part).

        A detector with a `scope` runs only when `scopes` holds it; `scopes=None`: the content's own, by its path."""
        if scopes is None:
            scopes = file_scopes(content)
        data = content.data
        hits, truncated = self._engine.hits(data)
        if not hits:
            return MatchResult([], truncated)
        by_detector: dict[int, list[int]] = {}
        for ident, end in hits:
            by_detector.setdefault(ident, []).append(end)
        # (rule, start, end) -> whether every detector that found it doubted it as a documentation example
        found: dict[tuple[int, int, int], bool] = {}
        size = len(data)
        for ident, ends in by_detector.items():
            rule_index, detector = self._detectors[ident]
            if detector.scope is not None and detector.scope not in scopes:
                continue
            for start, stop in _windows(sorted(ends), detector.back, detector.forward, size):
                for s, e in detector.confirm(data, start, stop):
                    doubted = detector.doubt is not None and detector.doubt(data, s, e)
                    found[rule_index, s, e] = found.get((rule_index, s, e), True) and doubted
        candidates = [c for c in found if not is_allowlisted(data, c[1], c[2])]
        return MatchResult(self._resolve(candidates, data, found), truncated)

    def _resolve(
        self, candidates: list[tuple[int, int, int]], data: bytes, doubted: dict[tuple[int, int, int], bool]
    ) -> list[Match]:
        # Highest priority first, then longest, so a checksum-proven token claims its span before the
        # generic heuristic that matched the same characters.
        candidates.sort(key=lambda c: (-self._rules[c[0]].priority, -(c[2] - c[1]), c[1], c[0]))
        starts: list[int] = []
        kept: list[tuple[int, int, int]] = []
        for rule_index, s, e in candidates:
            i = bisect.bisect_right(starts, s)
            if i > 0 and kept[i - 1][2] > s:
                continue
            if i < len(kept) and kept[i][1] < e:
                continue
            starts.insert(i, s)
            kept.insert(i, (rule_index, s, e))
        out = []
        for rule_index, s, e in kept:
            info = self._rules[rule_index].info
            out.append(Match(rule_id=info.rule_id, severity=info.severity, start=s, end=e, secret=data[s:e],
                             documentation_example=doubted[rule_index, s, e]))  # fmt: skip
        return out


def _windows(ends: list[int], back: int, forward: int, size: int) -> list[tuple[int, int]]:
    """Merge the windows around sorted trigger end offsets."""
    out: list[tuple[int, int]] = []
    for end in ends:
        lo, hi = max(0, end - back), min(size, end + forward)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
