"""The values that flow through the leak detector.

    sources/   image reference -> `Image` (config + layers, digests verified)
    walk       layers -> `Content` units (file bytes, config strings, nested-archive members) + `ScanWarning`s
    rules/     bytes -> `Match`es (rule id, severity, span)
    pipeline   matches -> `Finding`s (location resolved across layers, secret replaced by fingerprint)
               -> `ScanReport` (findings, warnings, stats; any detected secret redacted from names too)
    reporters/ `ScanReport` -> text / json / sarif

A `Match` holds the secret while it is being turned into a finding; it is never printed, logged or stored.
A `Finding` never holds it: only `redacted` and a keyed `fingerprint`. A `ScanReport` never holds it either,
not even in a path, label key or warning that happens to repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from secretsvc.scan.origin import APPLICATION, Confidence, Origin


class Severity(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (expected one of: low, medium, high, critical)") from None


class Location(StrEnum):
    FILE = "file"
    DELETED_FILE = "deleted_file"  # a later layer whited it out, but anyone who pulls the image has it
    OVERWRITTEN_FILE = "overwritten_file"  # a later layer replaced it
    CONFIG_ENV = "config_env"
    CONFIG_LABEL = "config_label"
    CONFIG_HISTORY = "config_history"
    CONFIG_OTHER = "config_other"


@dataclass(frozen=True, slots=True)
class LayerInfo:
    index: int  # 0 = base layer
    diff_id: str  # "sha256:<hex>" of the uncompressed tar
    digest: str  # "sha256:<hex>" of the blob as stored (compressed), for messages
    created_by: str | None  # from the config history entry that produced this layer
    size: int | None  # compressed size, when the manifest says


@dataclass(frozen=True, slots=True)
class Content:
    """A piece of data to match rules against, and where it came from.

    `path` is inside the layer with no leading "/"; for a member of a nested archive it is
    "outer/path.zip!inner/path". For the image config it is a descriptive key such as "Env[3]" or
    "history[2].created_by". Large files arrive as several `Content`s with increasing `offset` and
    `first_line`, overlapping by a small margin so a secret on a boundary is not lost.
    """

    data: bytes
    path: str
    layer_index: int | None  # None for the image config
    location: Location  # FILE for layer files; resolved to deleted/overwritten by the pipeline
    offset: int = 0  # byte offset of `data` within the file
    first_line: int = 1  # line number of data[0]
    binary: bool = False  # a binary file, non-printable bytes read as newlines: no line numbers

    def __repr__(self) -> str:
        return f"Content(path={self.path!r}, layer={self.layer_index}, {len(self.data)} bytes @ {self.offset})"


@dataclass(frozen=True, slots=True)
class Match:
    """A rule hit inside one `Content`. `secret` is the credential itself: never print it."""

    rule_id: str
    severity: Severity
    start: int  # offset in Content.data of the secret
    end: int
    secret: bytes
    # Set by a rule whose only reason to doubt the match is a documentation feature (e.g. an RFC 2606 example
    # host): instead of dropping it, the rule keeps it and the pipeline decides by the file's context: LOW in
    # a doc/test/example path or a package-owned file, normal confidence in an application's own file.
    documentation_example: bool = False

    def __repr__(self) -> str:
        return f"Match({self.rule_id!r}, {self.start}..{self.end}, secret=<redacted>)"


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    severity: Severity
    layer_digest: str | None  # diff_id, or None for the image config
    layer_index: int | None
    path: str
    line: int | None
    location: Location
    fingerprint: str  # hex HMAC-SHA256 of the secret, keyed per run or by --fingerprint-key
    redacted: str
    description: str = ""
    origin: Origin = APPLICATION  # who shipped the file (scan/origin.py); resolved once the image is walked
    confidence: Confidence = Confidence.HIGH  # by origin and path kind; below min_confidence: hidden, counted
    documentation_example: bool = False  # Match.documentation_example: the file's context sets confidence

    def to_json(self) -> dict[str, object]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity.label,
            "layer_digest": self.layer_digest,
            "layer_index": self.layer_index,
            "path": self.path,
            "line": self.line,
            "location": self.location.value,
            "fingerprint": self.fingerprint,
            "redacted": self.redacted,
            "description": self.description,
            "origin": self.origin.to_json(),
            "confidence": self.confidence.label,
        }


#: Warning codes that lose no content: what they name was still read in full. Every other code, including any
#: code added later, means part of the image was not read, and the scan is incomplete until a user accepts it.
#: Keep this list short; a code belongs here only if no byte goes unscanned when it is raised.
INFORMATIONAL_WARNINGS: frozenset[str] = frozenset(
    {
        "path.unsafe",  # an absolute or ".." member name: normalised, and the member is read in full
        "limit.warnings",  # only warning records are dropped; every dropped warning still counts as not read
        "origin.truncated",  # only package-ownership claims are dropped: the files are still read and reported
    }
)


def loses_content(code: str) -> bool:
    """Whether a warning with this code means some of the image was not read (unknown codes: yes)."""
    return code not in INFORMATIONAL_WARNINGS


@dataclass(frozen=True, slots=True)
class ScanWarning:
    """Something the scan could not read fully (a limit, a malformed tar, a digest mismatch)."""

    code: str  # stable, e.g. "limit.nested_depth", "tar.truncated", "path.unsafe"
    message: str
    layer_index: int | None = None
    path: str | None = None

    @property
    def incomplete(self) -> bool:
        """Whether this warning means content was not read (see `INFORMATIONAL_WARNINGS`)."""
        return loses_content(self.code)

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "layer_index": self.layer_index,
            "path": self.path,
            "incomplete": self.incomplete,
        }


# -- the report ------------------------------------------------------------------------------------------

#: Exit statuses of a scan (`ScanReport.exit_code`, and `secretsvc scan`).
EXIT_CLEAN = 0  # no finding at or above fail_on, and everything was read (or the user accepted what was not)
EXIT_FINDINGS = 1  # at least one finding at or above fail_on, whether or not the scan is complete
EXIT_USAGE = 2  # usage or input error: no report at all
EXIT_INCOMPLETE = 3  # no failing finding, but part of the image was not read and that was not accepted


@dataclass(frozen=True, slots=True)
class LayerSummary:
    """What a report says about a layer: its identity and (secret-free) `created_by`."""

    index: int
    diff_id: str | None
    created_by: str | None
    platform: str | None


@dataclass(frozen=True, slots=True)
class RuleSummary:
    rule_id: str
    severity: Severity
    description: str


@dataclass(frozen=True, slots=True)
class ScanStats:
    bytes_scanned: int = 0  # uncompressed layer bytes read, plus config and plain-file bytes
    files_scanned: int = 0
    layers: int = 0
    images: int = 0
    duration_s: float = 0.0
    findings: int = 0
    suppressed_by_baseline: int = 0
    suppressed_by_config: int = 0
    warnings: int = 0
    #: (code, count) of every warning that lost content, sorted by code; counted even past the report's
    #: warning limit. Empty when the whole image was read.
    not_read: tuple[tuple[str, int], ...] = ()
    #: (reason, count) of findings below min_confidence, left out of the findings list; reason is the origin
    #: kind and path kind, e.g. "os-package doc". Sorted by reason.
    hidden: tuple[tuple[str, int], ...] = ()
    min_confidence: Confidence = Confidence.MEDIUM

    @property
    def incomplete(self) -> bool:
        return bool(self.not_read)

    def to_json(self) -> dict[str, object]:
        return {
            "bytes_scanned": self.bytes_scanned,
            "files_scanned": self.files_scanned,
            "layers": self.layers,
            "images": self.images,
            "duration_s": round(self.duration_s, 3),
            "findings": self.findings,
            "suppressed_by_baseline": self.suppressed_by_baseline,
            "suppressed_by_config": self.suppressed_by_config,
            "warnings": self.warnings,
            "incomplete": self.incomplete,
            "not_read": dict(self.not_read),
            "min_confidence": self.min_confidence.label,
            "hidden": {"total": sum(n for _, n in self.hidden), "by_reason": dict(self.hidden)},
        }


@dataclass(frozen=True, slots=True)
class ScanReport:
    image: str
    findings: tuple[Finding, ...]
    warnings: tuple[ScanWarning, ...]
    stats: ScanStats
    layers: tuple[LayerSummary, ...] = ()
    rules: tuple[RuleSummary, ...] = ()
    fail_on: Severity = Severity.LOW
    baseline_written: int | None = None  # entries written by --write-baseline
    allow_incomplete: bool = False  # an incomplete read never changes the exit status
    accepted_warnings: frozenset[str] = frozenset()  # these codes never make the scan fail as incomplete

    @property
    def failed(self) -> bool:
        """Whether any finding is at or above the failing severity."""
        return any(f.severity >= self.fail_on for f in self.findings)

    @property
    def complete(self) -> bool:
        """Whether the whole image was read: no warning lost content. Accepting an incomplete scan does not
        change this, only the exit status."""
        return not self.stats.incomplete

    @property
    def incomplete_fails(self) -> bool:
        """Whether the scan is incomplete in a way the user has not accepted."""
        if self.allow_incomplete:
            return False
        return any(code not in self.accepted_warnings for code, _ in self.stats.not_read)

    @property
    def exit_code(self) -> int:
        """1 for a failing finding, else 3 for an unaccepted incomplete read, else 0.

        Findings come first: a leak that was found is certain and needs acting on whatever else went unread,
        and 1 is what CI scripts written before exit status 3 existed test for.
        """
        if self.failed:
            return EXIT_FINDINGS
        if self.incomplete_fails:
            return EXIT_INCOMPLETE
        return EXIT_CLEAN

    def to_json(self) -> dict[str, object]:
        """The PRODUCT.md document: {"image", "findings", "stats"}, plus the scan's "warnings"."""
        stats = self.stats.to_json()
        stats["incomplete_accepted"] = not self.complete and not self.incomplete_fails
        return {
            "image": self.image,
            "findings": [f.to_json() for f in self.findings],
            "stats": stats,
            "warnings": [w.to_json() for w in self.warnings],
        }
