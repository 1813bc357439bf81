"""The audit record format: what one line of the log holds, its canonical bytes, and the strict parser.

A line is the canonical JSON of one record: keys sorted, no whitespace, ASCII only (anything else escaped as
`\\uXXXX`), integers only (no floats), as `json.dumps(record, sort_keys=True, separators=(",", ":"),
ensure_ascii=True)` writes it. The line's SHA-256 (without the newline) is the record's hash, and the next
record carries it in `prev`. The parser re-encodes what it read and refuses a line that is not byte for byte
canonical, so one record has exactly one spelling. Format reference: docs/audit.md.

`AuditEvent` is what the server hands the writer. It has no field that could hold a secret value, a token or
a key: only names, ids and outcomes.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from secretsvc.audit import limits
from secretsvc.crypto import aead
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.crypto.signing import SIGNATURE_BYTES
from secretsvc.errors import InvalidArgument

FORMAT_VERSION = 1
# The `prev` of the first record of a log: there is no record before it.
GENESIS = "0" * 64
# Signatures and HMACs are bound to their purpose, so neither can be replayed as the other's input.
CHECKPOINT_SIGNATURE_DOMAIN = b"secretsvc.audit.checkpoint.v1\n"
RESOURCE_HMAC_LABEL = b"secretsvc.audit.resource.v1\x00"
HMAC_PREFIX = "hmac-sha256:"
# Resource kinds whose names are written in clear even with hmac_paths: fixed words from our own code.
CLEAR_RESOURCE_KINDS = frozenset({"system"})
# Status codes that mean the caller was refused, not that the call failed.
DENIED_CODES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})

EVENT_FIELDS = frozenset({"v", "type", "seq", "prev", "time", "request_id", "principal", "method",
                          "resource_kind", "resource", "capability", "outcome", "code", "latency_us"})
CHECKPOINT_FIELDS = frozenset({"v", "type", "seq", "prev", "time", "key_id", "reason", "dropped",
                               "discarded_bytes", "sig"})

_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")
_CODE = re.compile(r"[A-Z][A-Z_]*")
_HASH = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_KEY_ID = re.compile(r"ed25519:[0-9a-f]{32}")
_CLIP_MARK = "...[clipped]"


class Outcome(StrEnum):
    OK = "ok"  # the call succeeded
    DENIED = "denied"  # no identity, or the identity may not do this
    ERROR = "error"  # the call failed for another reason (bad argument, not found, server failure)


class CheckpointReason(StrEnum):
    START = "start"  # the writer opened the log (a restart after a crash shows as a start without a shutdown)
    COUNT = "count"  # checkpoint_every records since the last one
    INTERVAL = "interval"  # checkpoint_seconds since the last one, with records to cover
    ROTATION = "rotation"  # the last line of a file that was rotated
    SHUTDOWN = "shutdown"  # the writer closed the log cleanly: nothing after it is missing


def outcome_of(code: str) -> Outcome:
    if code == "OK":
        return Outcome.OK
    return Outcome.DENIED if code in DENIED_CODES else Outcome.ERROR


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One RPC as the audit log records it. Time and sequence are added by the writer.

    `code` is the gRPC status name the caller saw ("OK", "PERMISSION_DENIED"); the outcome is derived from
    it. `resource` is the secret's NAMESPACE/PATH, the transit key name, or a system resource name, as the
    authorizer named it; with hmac_paths it is written as an HMAC (except `system` names). Text fields are
    clipped to the limits in `audit/limits.py`, so a caller's oversized path still gets a record.
    """

    request_id: str
    method: str
    code: str
    latency_us: int
    principal: str | None = None  # Principal.display ("token:ci"); None before authentication
    resource_kind: str | None = None  # "secret", "transit_key", "system"
    resource: str | None = None
    capability: str | None = None  # "read", "create", ... (service/access.py Capability)

    def __post_init__(self) -> None:
        # These come from the server's own code, not from the caller: a wrong one is a bug, said loudly.
        if not isinstance(self.code, str) or not _short_match(_CODE, self.code):
            raise InvalidArgument(f"audit code must be a status name like 'OK', got {self.code!r}")
        for name in ("resource_kind", "capability"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not _short_match(_IDENTIFIER, value)):
                raise InvalidArgument(f"audit {name} must be a lower-case identifier, got {value!r}")
        if type(self.latency_us) is not int or self.latency_us < 0:
            raise InvalidArgument("audit latency_us must be a non-negative integer")
        for name in ("request_id", "method", "principal", "resource"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidArgument(f"audit {name} must be text")

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.code)


def _short_match(pattern: re.Pattern[str], value: str) -> bool:
    return len(value) <= limits.MAX_IDENTIFIER_CHARS and pattern.fullmatch(value) is not None


def canonical(record: dict[str, Any]) -> bytes:
    """The one byte spelling of a record (no newline)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def record_hash(line: bytes) -> str:
    """SHA-256 of a record's canonical bytes, hex: what the next record's `prev` must be."""
    return hashlib.sha256(line).hexdigest()


def format_time(timestamp: float) -> str:
    """UTC, microseconds, always the same width: `2026-01-02T03:04:05.000006Z`.

    Every call's record has one, so the seconds part is formatted once per second (`_second_text`) and the
    microseconds, rounded half to even as `datetime.fromtimestamp` rounds them, are appended."""
    fraction, whole = math.modf(timestamp)
    micros = round(fraction * 1e6)
    seconds = int(whole)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    elif micros < 0:
        seconds, micros = seconds - 1, micros + 1_000_000
    return f"{_second_text(seconds)}.{micros:06d}Z"


@functools.lru_cache(maxsize=4)
def _second_text(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def resource_hmac(key: SecretBytes, name: str) -> str:
    """What the log holds instead of a resource name under hmac_paths; `secretsvc audit hash` computes it.

    HMAC-SHA256(key, "secretsvc.audit.resource.v1" || 0x00 || UTF-8(name)), hex, prefixed `hmac-sha256:`.
    """
    return HMAC_PREFIX + aead.hmac_sha256(key, RESOURCE_HMAC_LABEL + name.encode("utf-8", "surrogatepass")).hex()


def _clip(value: str | None, limit: int) -> str | None:
    if value is None or len(value) <= limit:
        return value
    return value[:limit] + _CLIP_MARK


def event_fields(event: AuditEvent, *, hmac_key: SecretBytes | None) -> dict[str, Any]:
    """An event's fields as written, without its place in the chain (seq, prev, time). With `hmac_key`, the
    resource name is replaced by its HMAC (of the whole name, before any clipping)."""
    resource = event.resource
    if resource is not None and hmac_key is not None and event.resource_kind not in CLEAR_RESOURCE_KINDS:
        resource = resource_hmac(hmac_key, resource)
    return {
        "v": FORMAT_VERSION,
        "type": "event",
        "request_id": _clip(event.request_id, limits.MAX_REQUEST_ID_CHARS),
        "principal": _clip(event.principal, limits.MAX_PRINCIPAL_CHARS),
        "method": _clip(event.method, limits.MAX_METHOD_CHARS),
        "resource_kind": event.resource_kind,
        "resource": _clip(resource, limits.MAX_RESOURCE_CHARS),
        "capability": event.capability,
        "outcome": event.outcome.value,
        "code": event.code,
        "latency_us": min(event.latency_us, limits.MAX_LATENCY_US),
    }


def event_line(fields: dict[str, Any], *, seq: int, prev: str, time: str) -> bytes:
    """The canonical line for an event's fields at position `seq` of the chain."""
    return canonical({**fields, "seq": seq, "prev": prev, "time": time})


def event_record(event: AuditEvent, *, seq: int, prev: str, time: str, hmac_key: SecretBytes | None) -> bytes:
    return event_line(event_fields(event, hmac_key=hmac_key), seq=seq, prev=prev, time=time)


def checkpoint_body(*, seq: int, prev: str, time: str, key_id: str, reason: CheckpointReason, dropped: int,
                    discarded_bytes: int) -> dict[str, Any]:
    """A checkpoint without its signature: what is signed."""
    return {"v": FORMAT_VERSION, "type": "checkpoint", "seq": seq, "prev": prev, "time": time, "key_id": key_id,
            "reason": reason.value, "dropped": dropped, "discarded_bytes": discarded_bytes}


def signed_message(body: dict[str, Any]) -> bytes:
    """The bytes a checkpoint's signature covers: a domain label, then the canonical body without `sig`."""
    return CHECKPOINT_SIGNATURE_DOMAIN + canonical(body)


def checkpoint_record(body: dict[str, Any], signature: bytes) -> bytes:
    return canonical({**body, "sig": base64.b64encode(signature).decode("ascii")})


# -- parsing what the verifier reads ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedRecord:
    """A line that parsed, is canonical and has every field of its type with the right type."""

    kind: str  # "event" or "checkpoint"
    seq: int
    prev: str
    fields: dict[str, Any]
    reason: CheckpointReason | None = None  # checkpoints only
    signature: bytes = b""  # checkpoints only

    def signed_body(self) -> dict[str, Any]:
        return {k: v for k, v in self.fields.items() if k != "sig"}


class MalformedRecord(InvalidArgument):
    """A line that is not a valid record; the message says which rule it breaks, never its content."""


def _want_int(record: dict[str, Any], name: str, maximum: int) -> int:
    value = record[name]
    # bool is an int to Python, never a count here.
    if type(value) is not int or not 0 <= value <= maximum:
        raise MalformedRecord(f"{name} is not an integer in 0..{maximum}")
    return value


def _want_text(record: dict[str, Any], name: str, limit: int, *, nullable: bool) -> None:
    value = record[name]
    if value is None and nullable:
        return
    if not isinstance(value, str) or len(value) > limit + len(_CLIP_MARK):
        raise MalformedRecord(f"{name} is not text of at most {limit} characters")


def _want_pattern(record: dict[str, Any], name: str, pattern: re.Pattern[str], *, nullable: bool = False) -> None:
    value = record[name]
    if value is None and nullable:
        return
    if not isinstance(value, str) or len(value) > 128 or not pattern.fullmatch(value):
        raise MalformedRecord(f"{name} is not in the expected form")


def parse_line(line: bytes) -> ParsedRecord:
    """Parse one line (without its newline). Raises `MalformedRecord` for anything that is not exactly a
    record this module would write."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError and int-too-long are ValueErrors
        raise MalformedRecord("not JSON") from None
    if not isinstance(record, dict):
        raise MalformedRecord("not a JSON object")
    try:
        spelled = canonical(record)
    except ValueError:  # NaN or infinity
        raise MalformedRecord("not canonical JSON") from None
    if spelled != line:
        raise MalformedRecord("not canonical JSON (keys sorted, no whitespace, ASCII, one spelling)")
    kind = record.get("type")
    if kind == "event":
        expected = EVENT_FIELDS
    elif kind == "checkpoint":
        expected = CHECKPOINT_FIELDS
    else:
        raise MalformedRecord("type is neither 'event' nor 'checkpoint'")
    if set(record) != expected:
        missing, extra = sorted(expected - set(record)), sorted(set(record) - expected)
        raise MalformedRecord(f"wrong fields for a {kind} (missing {missing}, unexpected {extra})")
    if record["v"] != FORMAT_VERSION or type(record["v"]) is not int:
        raise MalformedRecord(f"format version is not {FORMAT_VERSION}")
    seq = _want_int(record, "seq", limits.MAX_SEQUENCE)
    _want_pattern(record, "prev", _HASH)
    _want_pattern(record, "time", _TIME)
    if kind == "event":
        _want_text(record, "request_id", limits.MAX_REQUEST_ID_CHARS, nullable=False)
        _want_text(record, "principal", limits.MAX_PRINCIPAL_CHARS, nullable=True)
        _want_text(record, "method", limits.MAX_METHOD_CHARS, nullable=False)
        _want_text(record, "resource", limits.MAX_RESOURCE_CHARS, nullable=True)
        _want_pattern(record, "resource_kind", _IDENTIFIER, nullable=True)
        _want_pattern(record, "capability", _IDENTIFIER, nullable=True)
        _want_pattern(record, "code", _CODE)
        _want_int(record, "latency_us", limits.MAX_LATENCY_US)
        if record["outcome"] != outcome_of(record["code"]).value:
            raise MalformedRecord("outcome does not match the status code")
        return ParsedRecord("event", seq, record["prev"], record)
    _want_pattern(record, "key_id", _KEY_ID)
    try:
        reason = CheckpointReason(record["reason"])
    except ValueError:
        raise MalformedRecord("reason is not a checkpoint reason") from None
    _want_int(record, "dropped", limits.MAX_COUNTER)
    _want_int(record, "discarded_bytes", limits.MAX_COUNTER)
    sig_text = record["sig"]
    if not isinstance(sig_text, str) or len(sig_text) > 4 * SIGNATURE_BYTES:
        raise MalformedRecord("sig is not a base64 signature")
    try:
        signature = base64.b64decode(sig_text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRecord("sig is not a base64 signature") from None
    # One spelling: base64 ignores stray low bits in the last character unless we re-encode and compare.
    if len(signature) != SIGNATURE_BYTES or base64.b64encode(signature).decode("ascii") != sig_text:
        raise MalformedRecord(f"sig is not {SIGNATURE_BYTES} bytes in canonical base64")
    return ParsedRecord("checkpoint", seq, record["prev"], record, reason=reason, signature=signature)
