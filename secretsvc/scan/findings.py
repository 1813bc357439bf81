"""Turn rule `Match`es into `Finding`s: line numbers, keyed fingerprints, redaction, chunk de-duplication.

A `Match` carries the secret; this module is the last place that sees it. `FindingCollector.add` reduces each
match at once to a `PendingFinding` (fingerprints and a redacted form, never the bytes), so nothing that
outlives a `Content` holds secret material, with one exception: a `NameRedactor` keeps the secrets of one
scan until its report is assembled, because the image can repeat a secret in a name (a file named after a
token, a label key, a member of a nested archive) and a report prints names. Locations are resolved after the
walk, because whether a file was later deleted or overwritten is known only once every layer has been read.
"""

from __future__ import annotations

import bisect
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256

from secretsvc.scan.model import Content, Finding, LayerInfo, Location, Match, Severity

#: Secrets shorter than this show no characters at all in `redacted`, only their length.
MIN_REVEAL_LENGTH = 16
#: At most this many leading characters of a secret are ever shown, and only when they are a public prefix.
MAX_REVEALED_CHARS = 4

# Prefixes that formats publish so tools can recognise them: showing them helps a reader find the credential
# and reveals nothing secret. Some are split so that secret scanners pointed at this repository stay quiet.
_PUBLIC_PREFIXES: tuple[str, ...] = (
    "AK" + "IA",
    "AS" + "IA",
    "AG" + "PA",
    "AI" + "DA",
    "AR" + "OA",
    "AN" + "PA",
    "gh" + "p_",
    "gh" + "o_",
    "gh" + "u_",
    "gh" + "s_",
    "gh" + "r_",
    "gith",
    "glpa",
    "glde",
    "glrt",
    "glso",
    "xo" + "xb",
    "xo" + "xp",
    "xo" + "xa",
    "xo" + "xr",
    "xo" + "xs",
    "xa" + "pp",
    "sk_l",
    "sk_t",
    "rk_l",
    "rk_t",
    "sk-p",
    "sk-a",
    "sk-" + "ant",
    "AI" + "za",
    "SG.",
    "npm_",
    "pypi",
    "hvs.",
    "hvb.",
    "hvr.",
    "s.",
    "SK",
    "AC",
    "eyJ",
    "-----",
    "https",
    "http",
    "postgres",
    "mysql",
    "mongodb",
    "redis",
    "amqp",
    "DefaultEndpoints",
    "AccountKey",
    "Endpoint",
    "SharedAccess",
)


def fingerprint(key: bytes, secret: bytes) -> str:
    """Hex HMAC-SHA256 of the secret: stable for one key, useless for guessing the secret without it."""
    return hmac.new(key, secret, sha256).hexdigest()


def redact(secret: bytes) -> str:
    """A form of the secret that is safe to print.

    Shows the published format prefix the secret starts with (at most `MAX_REVEALED_CHARS` characters of it,
    and only when the secret is at least `MIN_REVEAL_LENGTH` long), then the length: "ghp_…(40 chars)".
    """
    text = secret.decode("utf-8", errors="replace")
    length = len(text)
    head = ""
    if length >= MIN_REVEAL_LENGTH:
        head = next((p[:MAX_REVEALED_CHARS] for p in _PUBLIC_PREFIXES if text.startswith(p)), "")
    return f"{head}…({length} chars)"


def line_of(content: Content, start: int) -> int | None:
    """1-based line of byte `start` of `content`, or None where a line number would mislead."""
    if content.layer_index is None or content.binary:
        return None
    return content.first_line + content.data.count(b"\n", 0, start)


@dataclass(frozen=True, slots=True)
class PendingFinding:
    """A finding before its location is resolved. Holds fingerprints, never the secret."""

    rule_id: str
    severity: Severity
    layer_index: int | None
    path: str
    line: int | None
    location: Location
    start: int  # absolute byte offset within the file, for de-duplicating overlapping chunks
    end: int
    fingerprint: str
    baseline_id: str | None  # HMAC under the baseline's key, when a baseline is read or written
    redacted: str
    description: str
    documentation_example: bool = False


LocationResolver = Callable[[int, str], Location]


@dataclass(slots=True)
class FindingCollector:
    """Accumulates the matches of one image (or one directory tree) and resolves them into findings."""

    fingerprint_key: bytes = field(repr=False)
    baseline_key: bytes | None = field(default=None, repr=False)
    descriptions: Mapping[str, str] = field(default_factory=dict)
    _pending: list[PendingFinding] = field(default_factory=list)

    def add(self, content: Content, matches: Iterable[Match]) -> int:
        """Record the matches found in one `Content`; returns how many were recorded."""
        count = 0
        for match in matches:
            secret = match.secret
            self._pending.append(
                PendingFinding(
                    rule_id=match.rule_id,
                    severity=match.severity,
                    layer_index=content.layer_index,
                    path=content.path,
                    line=line_of(content, match.start),
                    location=content.location,
                    start=content.offset + match.start,
                    end=content.offset + match.end,
                    fingerprint=fingerprint(self.fingerprint_key, secret),
                    baseline_id=None if self.baseline_key is None else fingerprint(self.baseline_key, secret),
                    redacted=redact(secret),
                    description=self.descriptions.get(match.rule_id, ""),
                    documentation_example=match.documentation_example,
                )
            )
            count += 1
        return count

    def __len__(self) -> int:
        return len(self._pending)

    def resolve(
        self,
        layers: Sequence[LayerInfo] | None,
        resolver: LocationResolver | None,
    ) -> list[tuple[Finding, str | None]]:
        """Findings with their baseline ids, de-duplicated and sorted; empties the collector.

        `layers` gives each layer's diff_id (None for a plain directory: `layer_digest` is then null).
        `resolver(layer_index, path)` says whether a layer file was later deleted or overwritten.
        """
        digests = {layer.index: layer.diff_id for layer in layers} if layers is not None else {}
        resolved: dict[tuple[object, ...], tuple[Finding, str | None]] = {}
        for pending in _drop_contained(self._pending):
            location = pending.location
            if location is Location.FILE and pending.layer_index is not None and resolver is not None:
                location = resolver(pending.layer_index, outer_path(pending.path))
            finding = Finding(
                rule_id=pending.rule_id,
                severity=pending.severity,
                layer_digest=None if pending.layer_index is None else digests.get(pending.layer_index),
                layer_index=pending.layer_index,
                path=pending.path,
                line=pending.line,
                location=location,
                fingerprint=pending.fingerprint,
                redacted=pending.redacted,
                description=pending.description,
                documentation_example=pending.documentation_example,
            )
            resolved.setdefault(identity(finding), (finding, pending.baseline_id))
        self._pending = []
        return sorted(resolved.values(), key=lambda pair: sort_key(pair[0]))


def outer_path(path: str) -> str:
    """The path of the layer file that holds `path` ("a/b.zip!c/d" -> "a/b.zip")."""
    return path.split("!", 1)[0]


def identity(finding: Finding) -> tuple[object, ...]:
    """What makes two findings the same report line (the same secret found twice in one place)."""
    return (
        finding.layer_digest,
        finding.layer_index,
        finding.path,
        finding.line,
        finding.rule_id,
        finding.fingerprint,
        finding.location,
    )


def sort_key(finding: Finding) -> tuple[int, str, int, str, str]:
    """Config first, then by layer, path and line."""
    layer = -1 if finding.layer_index is None else finding.layer_index
    return (layer, finding.path, finding.line or 0, finding.rule_id, finding.fingerprint)


def _drop_contained(pending: list[PendingFinding]) -> list[PendingFinding]:
    # Chunks overlap, so one secret can be matched twice, whole in one chunk and cut short (or cut at the
    # front) in the other; keep only spans that no other span of the same rule in the same file contains.
    groups: dict[tuple[int | None, str, str, Location], list[PendingFinding]] = {}
    for item in pending:
        groups.setdefault((item.layer_index, item.path, item.rule_id, item.location), []).append(item)
    kept: list[PendingFinding] = []
    for items in groups.values():
        items.sort(key=lambda p: (p.start, -p.end))
        max_end = -1
        for item in items:
            if item.end <= max_end:
                continue
            kept.append(item)
            max_end = item.end
    return kept


#: A name is searched for secrets by looking up each position's first `NAME_GRAM_CHARS` characters, so
#: redacting a name costs about its length in dictionary lookups however many secrets the scan found.
NAME_GRAM_CHARS = 8


class NameRedactor:
    """Every secret found in one scan, to replace wherever a name the report prints repeats it.

    Paths, label keys, nested-archive member names, warning messages and created_by lines come from the image,
    and any of them can hold a secret that a rule found in some file's content, in the same layer or another.
    Each occurrence becomes the finding's own redacted form ("ghp_…(40 chars)"); overlapping secrets become one
    "…(N chars)" so that no part of either shows. The same secrets give the same names, so baselines still
    match on a rerun. A secret is looked up as the walker decodes names: UTF-8 with surrogate escapes (tar
    names, the config), and code page 437 (zip names without the UTF-8 flag).

    This is the one holder of secrets that outlives a `Content`; it lives for one scan, and `clear` drops it.
    """

    __slots__ = ("_by_gram", "_cache", "_short", "_shown")

    def __init__(self) -> None:
        self._shown: dict[str, str] = {}  # secret text -> redacted form
        self._by_gram: dict[str, list[int]] = {}  # first NAME_GRAM_CHARS chars -> lengths, ascending
        self._short: list[int] = []  # lengths of secrets shorter than NAME_GRAM_CHARS, descending
        self._cache: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"NameRedactor({len(self._shown)} secrets)"

    def __len__(self) -> int:
        return len(self._shown)

    def add(self, secret: bytes, shown: str) -> None:
        """Remember a detected secret and the redacted form to show in its place."""
        for text in {secret.decode("utf-8", "surrogateescape"), secret.decode("cp437")}:
            if not text or text in self._shown:
                continue
            self._shown[text] = shown
            self._cache.clear()
            if len(text) >= NAME_GRAM_CHARS:
                lengths = self._by_gram.setdefault(text[:NAME_GRAM_CHARS], [])
                at = bisect.bisect_left(lengths, len(text))
                if at == len(lengths) or lengths[at] != len(text):
                    lengths.insert(at, len(text))
            elif len(text) not in self._short:
                self._short.append(len(text))
                self._short.sort(reverse=True)

    def clear(self) -> None:
        self._shown.clear()
        self._by_gram.clear()
        self._short.clear()
        self._cache.clear()

    def __call__(self, text: str) -> str:
        """`text` with every occurrence of every secret replaced by its redacted form."""
        if not self._shown or not text:
            return text
        done = self._cache.get(text)
        if done is None:
            done = self._cache[text] = self._redact(text)
        return done

    def head(self, text: str, chars: int) -> str:
        """The first `chars` characters of `self(text)`, searching `text` only as far as they need (a long
        created_by line is cut for display; what lies past the cut need not be searched)."""
        if not self._shown:
            return text[:chars]
        return self._redact(text, chars)[:chars]

    def _redact(self, text: str, need: int | None = None) -> str:
        out: list[str] = []
        out_len = 0
        done = 0  # text[:done] is in `out`
        start = end = merged = 0  # the span being built: text[start:end], made of `merged` secrets
        i = 0
        while i < len(text):
            if i >= end:
                if merged:  # the span before i is complete
                    shown = self._shown[text[start:end]] if merged == 1 else f"…({end - start} chars)"
                    out += (text[done:start], shown)
                    out_len += start - done + len(shown)
                    done, merged = end, 0
                if need is not None and out_len + i - done >= need:
                    break  # no secret starts before i or runs past it: the head is final
            length = self._longest_at(text, i)
            if length and merged and i < end:
                if i + length > end:  # overlaps the span and runs past it: one span, no part shown
                    end = i + length
                    merged += 1
            elif length:
                start, end, merged = i, i + length, 1
            i += 1
        if merged:
            out += (text[done:start], self._shown[text[start:end]] if merged == 1 else f"…({end - start} chars)")
            done = end
        out.append(text[done:i])
        return "".join(out)

    def _longest_at(self, text: str, i: int) -> int:
        room = len(text) - i
        lengths = self._by_gram.get(text[i : i + NAME_GRAM_CHARS])
        if lengths:
            for at in range(bisect.bisect_right(lengths, room) - 1, -1, -1):
                if text[i : i + lengths[at]] in self._shown:
                    return lengths[at]
        for length in self._short:
            if length <= room and text[i : i + length] in self._shown:
                return length
        return 0
