"""The shape of a detection rule: what it is called, how it is triggered, how a candidate is confirmed.

A rule has one or more `Detector`s. Each detector names a *trigger*, a regular expression in the subset
that both Hyperscan and Python `re` accept, which is cheap to run over all data and fires near every
possible secret; and a *confirm* step that runs Python `re` only on a small window around each trigger hit,
extracts the secret span, and applies the precision checks (checksums, placeholders, entropy, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from secretsvc.scan.model import Severity

# A confirmer looks at data[start:end] (it may read outside it for context) and yields the spans of
# confirmed secrets.
Confirmer = Callable[[bytes, int, int], Iterator[tuple[int, int]]]
# A check sees the whole data and the secret's span, and says whether the candidate is a real secret.
Check = Callable[[bytes, int, int], bool]


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What a rule is, for reports, docs and configuration."""

    rule_id: str
    severity: Severity
    description: str
    keywords: tuple[str, ...] = ()
    family: str = ""  # the vendor or product; breadth is counted per family
    source: str = ""  # the rule file it came from ("core.toml", or a user's file path)


@dataclass(frozen=True, slots=True)
class Detector:
    """One trigger and its confirmation.

    `back`/`forward` bound the window around a trigger's end offset in which `confirm` looks; they must
    cover the longest secret the detector accepts plus its context.
    """

    trigger: str
    confirm: Confirmer
    back: int
    forward: int
    caseless: bool = False
    multiline: bool = False
    # A check whose only doubt is a documentation feature (an RFC 2606 host): when it holds, the match is
    # kept and marked `documentation_example`, and the pipeline sets confidence by the file's context.
    doubt: Check | None = None
    # A detector that applies only in some files (config files, token files: rules/context.py) names that
    # scope; `RuleSet.match` runs it only where the caller says the content is in that scope.
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    info: RuleInfo
    detectors: tuple[Detector, ...]
    # When two rules claim overlapping spans the higher priority wins: a token whose format proves what
    # it is beats the context it was found in, which beats a generic heuristic.
    priority: int = 2


def regex_confirmer(
    pattern: str | re.Pattern[bytes],
    *checks: Check,
    group: str | int = "secret",
    flags: int = 0,
    max_extent: int = 65536,
) -> Confirmer:
    """A confirmer from a Python regex with a named `secret` group, filtered by `checks`.

    A match that runs into the window's end is re-matched without the end bound (up to `max_extent`
    bytes), so a window cut never truncates a secret or fakes a boundary.
    """
    compiled = re.compile(pattern.encode(), flags) if isinstance(pattern, str) else pattern

    def confirm(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
        for found in compiled.finditer(data, start, end):
            m: re.Match[bytes] | None = found
            if found.end() >= end and end < len(data):
                m = compiled.match(data, found.start(), min(len(data), found.start() + max_extent))
            if m is None:
                continue
            s, e = m.span(group)
            if s < 0 or e <= s:
                continue
            if all(check(data, s, e) for check in checks):
                yield s, e

    return confirm
