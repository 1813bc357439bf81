"""Glob patterns over names made of segments: secret paths, transit keys, system names and identities.

One syntax for every kind of name:
    *     any run of characters within one segment, including none (`db-*`, `*-prod`, `a*b*c`)
    **    a whole segment only: zero or more whole segments (`payments/**`, `**/password`, `a/**/b`)
    else  itself, exactly (`.`, `+`, `@`, `:` and the rest are never special; there is no `?`, `[...]`,
          `{...}` or escape, and `*` cannot be matched literally: no name we match may contain it)

Each kind of name says what separates its segments (`/` for paths and URIs, `.` for DNS names, nothing for
single names, where `*` then runs over the whole name), which characters a segment may hold, and whether
`**` is allowed. A pattern that could never match a valid name is refused rather than kept.

Matching is linear in the name: a segment glob is matched by finding its literal parts left to right, and
the blocks between `**` segments by placing each at its leftmost fit. Both are exact for patterns whose only
wildcards are `*` and `**` (a leftmost fit never blocks a later part), and neither backtracks, so no pattern
costs more than a pass over the name per block.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.policy import limits

DOUBLE = "**"


@dataclass(frozen=True, slots=True)
class Syntax:
    """What a kind of name looks like, for the patterns that match it."""

    what: str  # for messages: "secret pattern"
    separator: str | None  # None: the name is one segment
    double_star: bool
    segment_ok: Callable[[str], bool]  # a literal segment part (no '*') holds only allowed characters
    alphabet: str  # for messages
    first_segment_ok: Callable[[str], bool] | None = None  # the namespace of a secret path is narrower
    first_alphabet: str = ""
    empty_segments: bool = False  # a URI has them ("spiffe://")
    dot_segments: bool = False  # whether '.' and '..' can be names or segments (URIs, subjects)
    min_segments: int = 1  # unless the pattern holds `**`
    max_segments: int | None = None
    lower_case: bool = False  # DNS names compare without case


def _chars(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern)
    return lambda text: compiled.fullmatch(text) is not None


def _printable_no_space(text: str) -> bool:
    return text.isascii() and text.isprintable() and " " not in text


def _printable(text: str) -> bool:
    return text.isprintable()


# These alphabets mirror secretsvc.service.naming (paths, namespaces, key names), auth.serviceaccount
# (Kubernetes names) and crypto.pki (DNS names, URIs); tests/unit/policy/test_glob.py checks the first ones
# against naming.py so that they cannot drift apart unnoticed.
_NAME = _chars(r"[A-Za-z0-9._-]*")
SECRET = Syntax("secret pattern", "/", True, _chars(r"[A-Za-z0-9._@+=,:~-]*"),
                "letters, digits and . _ @ + = , : ~ -", first_segment_ok=_NAME,
                first_alphabet="letters, digits and . _ - (a namespace)", min_segments=2)
TRANSIT_KEY = Syntax("transit key pattern", None, False, _NAME, "letters, digits and . _ -")
SYSTEM = Syntax("system resource pattern", None, False, _NAME, "letters, digits and . _ -")
TOKEN = Syntax("token name pattern", None, False, _NAME, "letters, digits and . _ -")
SERVICEACCOUNT = Syntax("service account pattern", "/", False, _chars(r"[a-z0-9.-]*"),
                        "lower-case letters, digits and . - (Kubernetes names)", min_segments=2, max_segments=2)
MTLS_URI = Syntax("certificate URI pattern", "/", True, _printable_no_space, "printable ASCII without spaces",
                  empty_segments=True, dot_segments=True)
MTLS_DNS = Syntax("certificate DNS name pattern", ".", True, _chars(r"[a-z0-9-]*"),
                  "letters, digits and - (DNS labels)", lower_case=True)
MTLS_SUBJECT = Syntax("certificate subject pattern", None, False, _printable, "printable characters",
                      dot_segments=True)


class SegmentGlob:
    """One segment with `*` in it, e.g. `db-*-prod`."""

    __slots__ = ("_first", "_last", "_middle", "_min_len", "text")

    def __init__(self, text: str) -> None:
        parts = text.split("*")
        self.text = text
        self._first, self._last = parts[0], parts[-1]
        self._middle = tuple(p for p in parts[1:-1] if p)
        self._min_len = sum(len(p) for p in parts)

    def match(self, segment: str) -> bool:
        if len(segment) < self._min_len or not segment.startswith(self._first) or not segment.endswith(self._last):
            return False
        pos, end = len(self._first), len(segment) - len(self._last)
        for part in self._middle:
            found = segment.find(part, pos, end)
            if found < 0:
                return False
            pos = found + len(part)
        return True

    def __repr__(self) -> str:
        return f"SegmentGlob({self.text!r})"


Item = str | SegmentGlob  # a literal segment, or one with `*`


def _item_matches(item: Item, segment: str) -> bool:
    return item == segment if item.__class__ is str else item.match(segment)  # type: ignore[union-attr]


def _block_at(block: Sequence[Item], segments: Sequence[str], at: int) -> bool:
    # A plain loop: on this path, once per candidate rule, it is faster than all() over a generator.
    for offset, item in enumerate(block):  # noqa: SIM110
        if not _item_matches(item, segments[at + offset]):
            return False
    return True


class Glob:
    """A compiled pattern: the literal segments it starts with (`prefix`, for an index to key on) and a
    matcher for the segments after them."""

    __slots__ = ("_blocks", "_double", "_head", "_min_rest", "_tail", "last", "lead", "literal_free", "prefix",
                 "syntax", "text")

    def __init__(self, text: str, syntax: Syntax, segments: Sequence[str]) -> None:
        self.text = text
        self.syntax = syntax
        prefix: list[str] = []
        for segment in segments:
            if "*" in segment:
                break
            prefix.append(segment)
        self.prefix = tuple(prefix)
        # The literal last segment of a pattern with wildcards before it (`**/password`, `*/db/url`): a second
        # key for an index, so such patterns are not tested against names that end differently.
        self.last = segments[-1] if len(segments) > len(prefix) and "*" not in segments[-1] else None
        # The literal start of the first segment with a wildcard (`team-` in `team-*`), the index's third key.
        following = segments[len(prefix)] if len(segments) > len(prefix) else DOUBLE
        self.lead = following.split("*", 1)[0] if following != DOUBLE else ""
        rest = [s if s == DOUBLE or "*" not in s else SegmentGlob(s) for s in segments[len(prefix):]]
        self._double = DOUBLE in rest
        groups: list[list[Item]] = [[]]
        for item in rest:
            if item == DOUBLE:
                groups.append([])
            else:
                groups[-1].append(item)
        self._head = tuple(groups[0])
        self._tail = tuple(groups[-1]) if self._double else ()
        self._blocks = tuple(tuple(g) for g in groups[1:-1])
        self._min_rest = sum(len(g) for g in groups)
        self.literal_free = all(s.strip("*") == "" for s in segments)

    def match_from(self, segments: Sequence[str], start: int) -> bool:
        """Whether `segments[start:]` matches what follows the prefix (the caller has matched the prefix)."""
        count = len(segments) - start
        if not self._double:
            return count == len(self._head) and _block_at(self._head, segments, start)
        if count < self._min_rest:
            return False
        end = len(segments) - len(self._tail)
        if not _block_at(self._head, segments, start) or not _block_at(self._tail, segments, end):
            return False
        pos = start + len(self._head)
        for block in self._blocks:
            last = end - len(block)
            while pos <= last and not _block_at(block, segments, pos):
                pos += 1
            if pos > last:
                return False
            pos += len(block)
        return True

    def matches(self, name: str) -> bool:
        segments = split(self.syntax, name)
        n = len(self.prefix)
        return len(segments) >= n and tuple(segments[:n]) == self.prefix and self.match_from(segments, n)

    def __repr__(self) -> str:
        return f"Glob({self.text!r})"


def split(syntax: Syntax, name: str) -> list[str]:
    if syntax.lower_case:
        name = name.lower()
    return name.split(syntax.separator) if syntax.separator is not None else [name]


def compile_glob(text: str, syntax: Syntax) -> Glob:
    """The pattern compiled, or `InvalidArgument` saying what is wrong with it (`LimitExceeded` for size)."""
    if len(text) > limits.MAX_PATTERN_CHARS:
        raise LimitExceeded(f"{syntax.what} is longer than MAX_PATTERN_CHARS={limits.MAX_PATTERN_CHARS}")
    if not text:
        raise InvalidArgument(f"{syntax.what} is empty")
    if text.count("*") > limits.MAX_WILDCARDS_PER_PATTERN:
        raise LimitExceeded(f"{syntax.what} has more than MAX_WILDCARDS_PER_PATTERN="
                            f"{limits.MAX_WILDCARDS_PER_PATTERN} '*'")
    if syntax.lower_case:
        text = text.lower()
    segments = split(syntax, text)
    for index, segment in enumerate(segments):
        _check_segment(syntax, segments, index, segment)
    if syntax.max_segments is not None and len(segments) > syntax.max_segments:
        raise InvalidArgument(f"{syntax.what} has more than {syntax.max_segments} segments")
    if DOUBLE not in segments and len(segments) < syntax.min_segments:
        shape = "NAMESPACE/PATH" if syntax is SECRET else f"at least {syntax.min_segments} segments"
        raise InvalidArgument(f"{syntax.what} cannot match any name: it needs {shape} (or '**')")
    return Glob(text, syntax, segments)


def _check_segment(syntax: Syntax, segments: Sequence[str], index: int, segment: str) -> None:
    if segment == DOUBLE:
        if not syntax.double_star:
            raise InvalidArgument(f"{syntax.what} may not use '**': '*' already matches the whole name"
                                  if syntax.separator is None else f"{syntax.what} may not use '**'")
        if index > 0 and segments[index - 1] == DOUBLE:
            raise InvalidArgument(f"{syntax.what} has '**' twice in a row")
        return
    if "**" in segment:
        raise InvalidArgument(f"{syntax.what} has '**' inside a segment; '**' must be a whole segment")
    if not segment:
        if not syntax.empty_segments:
            raise InvalidArgument(f"{syntax.what} has an empty segment (leading, trailing or doubled "
                                  f"{syntax.separator!r})")
        return
    if segment in {".", ".."} and not syntax.dot_segments:
        raise InvalidArgument(f"{syntax.what} has a {segment!r} segment, which no name has")
    literal = segment.replace("*", "")
    if index == 0 and syntax.first_segment_ok is not None:
        if not syntax.first_segment_ok(literal):
            raise InvalidArgument(f"{syntax.what} has a character outside {syntax.first_alphabet} "
                                  "in its first segment")
    elif not syntax.segment_ok(literal):
        raise InvalidArgument(f"{syntax.what} has a character outside {syntax.alphabet}")
