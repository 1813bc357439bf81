"""Turn rule `Match`es into `Finding`s: line numbers, keyed fingerprints, redaction, chunk de-duplication.

A `Match` carries the secret; this module is the last place that sees it. `FindingCollector.add` reduces each
match at once to a `PendingFinding` (fingerprints and a redacted form, never the bytes), so nothing that
outlives a `Content` holds secret material. Locations are resolved after the walk, because whether a file was
later deleted or overwritten is known only once every layer has been read.
"""

from __future__ import annotations

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
