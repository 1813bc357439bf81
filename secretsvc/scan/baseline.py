"""The baseline file: findings a team has accepted, suppressed on later scans.

A finding's identity across runs is (rule id, path, HMAC-SHA256 of the secret under the baseline's own key).
Report fingerprints cannot serve: their key is random per run unless one is supplied. The key is generated
when a baseline is first written and stored in it, so the file alone is enough to match later scans of the
same or a rebuilt image; layer digests and line numbers are left out because a rebuild changes them.

    {"version": 1, "key": "<64 hex>", "findings": [
        {"rule_id": "...", "path": "...", "secret_hmac": "<64 hex>",
         "severity": "high", "location": "file", "redacted": "ghp_…(40 chars)"}]}

The extra fields are for the reader reviewing the file; only the first three are the identity. Anyone holding
the file can test guesses of a low-entropy secret against its HMAC, so keep baselines where the image is.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsvc.atomicfile import write_atomically
from secretsvc.boundedio import read_bounded
from secretsvc.errors import InvalidArgument
from secretsvc.scan.model import Finding

BASELINE_VERSION = 1
BASELINE_KEY_BYTES = 32
MAX_BASELINE_BYTES = 64 * 1024 * 1024
MAX_BASELINE_ENTRIES = 200_000
MAX_RULE_ID_CHARS = 128
MAX_ENTRY_PATH_CHARS = 65_536

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    rule_id: str
    path: str
    secret_hmac: str


@dataclass(frozen=True, slots=True)
class Baseline:
    key: bytes = field(repr=False)
    entries: frozenset[BaselineEntry] = frozenset()

    @classmethod
    def new(cls) -> Baseline:
        return cls(key=secrets.token_bytes(BASELINE_KEY_BYTES))

    def suppresses(self, finding: Finding, secret_hmac: str | None) -> bool:
        """Whether the finding is one the baseline accepted; `secret_hmac` is under this baseline's key."""
        if secret_hmac is None:
            return False
        return BaselineEntry(finding.rule_id, finding.path, secret_hmac) in self.entries


def load_baseline(path: Path) -> Baseline:
    """Read and check a baseline file; `InvalidArgument` names the file and the problem."""
    raw = read_bounded(
        path, MAX_BASELINE_BYTES, what="baseline", limit_name="MAX_BASELINE_BYTES", error=InvalidArgument
    )
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"baseline {path} is not valid JSON: {exc}") from None
    return parse_baseline(document, source=f"baseline {path}")


def parse_baseline(document: Any, *, source: str = "baseline") -> Baseline:
    if not isinstance(document, dict):
        raise InvalidArgument(f"{source}: expected a JSON object")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidArgument(f"{source}: missing or non-integer 'version'")
    if version != BASELINE_VERSION:
        raise InvalidArgument(f"{source}: version {version} is not supported (this secretsvc reads 1)")
    key_hex = document.get("key")
    if not isinstance(key_hex, str) or not _HEX64.fullmatch(key_hex):
        raise InvalidArgument(f"{source}: 'key' must be {BASELINE_KEY_BYTES} bytes as lowercase hex")
    items = document.get("findings")
    if not isinstance(items, list):
        raise InvalidArgument(f"{source}: 'findings' must be a list")
    if len(items) > MAX_BASELINE_ENTRIES:
        raise InvalidArgument(f"{source}: more than MAX_BASELINE_ENTRIES ({MAX_BASELINE_ENTRIES}) findings")
    entries = set()
    for number, item in enumerate(items):
        where = f"{source}: findings[{number}]"
        if not isinstance(item, dict):
            raise InvalidArgument(f"{where} must be an object")
        rule_id, path, secret_hmac = item.get("rule_id"), item.get("path"), item.get("secret_hmac")
        if not isinstance(rule_id, str) or not rule_id or len(rule_id) > MAX_RULE_ID_CHARS:
            raise InvalidArgument(f"{where}.rule_id must be 1 to {MAX_RULE_ID_CHARS} characters")
        if not isinstance(path, str) or len(path) > MAX_ENTRY_PATH_CHARS:
            raise InvalidArgument(f"{where}.path must be at most {MAX_ENTRY_PATH_CHARS} characters")
        if not isinstance(secret_hmac, str) or not _HEX64.fullmatch(secret_hmac):
            raise InvalidArgument(f"{where}.secret_hmac must be 64 lowercase hex characters")
        entries.add(BaselineEntry(rule_id, path, secret_hmac))
    return Baseline(key=bytes.fromhex(key_hex), entries=frozenset(entries))


def baseline_document(key: bytes, findings: Iterable[tuple[Finding, str]]) -> dict[str, Any]:
    """The document for these findings, each paired with its HMAC under `key`; sorted for stable diffs."""
    rows: dict[BaselineEntry, dict[str, Any]] = {}
    for finding, secret_hmac in findings:
        entry = BaselineEntry(finding.rule_id, finding.path, secret_hmac)
        rows.setdefault(
            entry,
            {
                "rule_id": finding.rule_id,
                "path": finding.path,
                "secret_hmac": secret_hmac,
                "severity": finding.severity.label,
                "location": finding.location.value,
                "redacted": finding.redacted,
            },
        )
    ordered = [rows[entry] for entry in sorted(rows, key=lambda e: (e.path, e.rule_id, e.secret_hmac))]
    return {"version": BASELINE_VERSION, "key": key.hex(), "findings": ordered}


def write_baseline(path: Path, key: bytes, findings: Iterable[tuple[Finding, str]]) -> int:
    """Write a baseline atomically (no half-written file replaces a good one); returns the entry count."""
    if len(key) != BASELINE_KEY_BYTES:
        raise InvalidArgument(f"baseline key must be {BASELINE_KEY_BYTES} bytes")
    document = baseline_document(key, findings)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        write_atomically(path, text.encode("utf-8"), mode=0o600)
    except OSError as exc:
        raise InvalidArgument(f"cannot write {path}: {exc.strerror or exc}") from None
    return len(document["findings"])
