"""The values that flow through the leak detector.

    sources/   image reference -> `Image` (config + layers, digests verified)
    walk       layers -> `Content` units (file bytes, config strings, nested-archive members) + `ScanWarning`s
    rules/     bytes -> `Match`es (rule id, severity, span)
    pipeline   matches -> `Finding`s (location resolved across layers, secret replaced by fingerprint)
    reporters/ findings -> text / json / sarif

A `Match` holds the secret while it is being turned into a finding; it is never printed, logged or stored.
A `Finding` never holds it: only `redacted` and a keyed `fingerprint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


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
        }


@dataclass(frozen=True, slots=True)
class ScanWarning:
    """Something the scan could not read fully (a limit, a malformed tar, a digest mismatch)."""

    code: str  # stable, e.g. "limit.nested_depth", "tar.truncated", "path.unsafe"
    message: str
    layer_index: int | None = None
    path: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "layer_index": self.layer_index, "path": self.path}
