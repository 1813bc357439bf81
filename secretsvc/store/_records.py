"""Validators and row<->record mapping that every store backend shares, whatever its SQL dialect.

Arguments are checked here before any transaction opens (so a bad call costs no lock), and every value read
back goes through `_columns` before it becomes a record kind of `base.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.store import _columns as col
from secretsvc.store import _keyset
from secretsvc.store._columns import MAX_JSON_COLUMN_BYTES
from secretsvc.store.base import TokenRecord, VersionState

# A backstop above any value size the service accepts; the service enforces its own, smaller limit.
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
# How many version numbers one delete/undelete/destroy call may name.
MAX_VERSIONS_PER_CALL = 1000
MAX_SCAN_BATCH = 10_000
# Version columns are signed 64-bit in both dialects; a larger Python int would fail to bind.
MAX_VERSION = 2**63 - 1

SECRET_KIND = "secret"  # noqa: S105 (an envelope kind, not a credential)
TRANSIT_KIND = "transit_key"
FINGERPRINT_KEY_KIND = "fingerprint_key"
KINDS = (SECRET_KIND, TRANSIT_KIND, FINGERPRINT_KEY_KIND)


TOKEN_COLUMNS = "token_id, name, token_hash, created_at, policies, expires_at"  # noqa: S105 - column names


def token_record(row: tuple[Any, ...]) -> TokenRecord:
    policies = col.json_value(row[4], "token policies")
    if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
        raise col.damaged("token policies")
    return TokenRecord(
        token_id=col.text(row[0], "token id"),
        name=col.text(row[1], "token name"),
        token_hash=col.blob(row[2], "token hash"),
        created_at=col.real(row[3], "token creation time"),
        policies=tuple(policies),
        expires_at=col.optional_real(row[5], "token expiry time"),
    )


# --- helpers (run inside a transaction) -------------------------------------------------------------------


def state(value: object) -> VersionState:
    try:
        return VersionState(value)
    except ValueError:
        raise col.damaged("version state") from None


def check_envelope(envelope: bytes) -> None:
    if not isinstance(envelope, bytes | bytearray | memoryview):
        raise InvalidArgument("an envelope must be bytes")
    if len(envelope) == 0:
        raise InvalidArgument("an envelope must not be empty")
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise LimitExceeded(f"envelope of {len(envelope)} bytes exceeds the maximum of {MAX_ENVELOPE_BYTES}")


def check_name(*parts: str) -> None:
    for part in parts:
        if not isinstance(part, str) or part == "":
            raise InvalidArgument("names must be non-empty strings")
        _keyset.check_text(part, "name")


def check_versions(versions: Sequence[int]) -> list[int]:
    if len(versions) > MAX_VERSIONS_PER_CALL:
        raise LimitExceeded(f"{len(versions)} versions in one call exceed the maximum of {MAX_VERSIONS_PER_CALL}")
    for v in versions:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_VERSION:
            raise InvalidArgument(f"version numbers must be integers 1..{MAX_VERSION}, got {v!r}")
    return sorted(set(versions))


def metadata_to_json(metadata: Mapping[str, str]) -> str:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise InvalidArgument("custom metadata keys and values must be strings")
    for key, value in metadata.items():
        _keyset.check_text(key, "custom metadata key")
        _keyset.check_text(value, "custom metadata value")
    text = json.dumps(dict(metadata), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode("utf-8")) > MAX_JSON_COLUMN_BYTES:
        raise LimitExceeded(f"custom metadata exceeds the maximum of {MAX_JSON_COLUMN_BYTES} bytes")
    return text


def metadata_from_json(value: object) -> dict[str, str]:
    parsed = col.json_value(value, "custom metadata")
    if not isinstance(parsed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()):
        raise col.damaged("custom metadata")
    return parsed


def check_version_arg(version: int | None) -> None:
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise InvalidArgument(f"version must be 1..{MAX_VERSION}, got {version}")


def check_scan_limit(limit: int) -> None:
    if limit < 1:
        raise InvalidArgument(f"scan limit must be at least 1, got {limit}")
    if limit > MAX_SCAN_BATCH:
        raise LimitExceeded(f"scan limit {limit} exceeds the maximum of {MAX_SCAN_BATCH}")
