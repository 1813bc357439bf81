"""Helpers for the audit tests: a settable clock, events, logs written with real keys, and line surgery."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secretsvc.audit.files import rotation_set
from secretsvc.audit.keys import AuditKeys
from secretsvc.audit.record import AuditEvent
from secretsvc.audit.verify import VerifyReport, verify_files
from secretsvc.audit.writer import AuditLog

START = 1_900_000_000.0


@dataclass
class FakeClock:
    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def event(i: int = 0, *, code: str = "OK", resource: str | None = None, kind: str | None = "secret",
          principal: str | None = "token:ci") -> AuditEvent:
    return AuditEvent(request_id=f"req-{i}", method="/secretsvc.v1.Secrets/GetSecret", code=code,
                      latency_us=100 + i, principal=principal, resource_kind=kind,
                      resource=f"team/app/secret-{i}" if resource is None else resource, capability="read")


def open_log(directory: Path, keys: AuditKeys, clock: FakeClock | None = None, **settings: Any) -> AuditLog:
    settings.setdefault("background", False)
    return AuditLog.open(directory / "audit.log", keys, clock=clock or FakeClock(), **settings)


def write_log(directory: Path, keys: AuditKeys, events: int, *, close: bool = True, **settings: Any) -> list[Path]:
    """A log of `events` events; its files in chain order."""
    log = open_log(directory, keys, **settings)
    for i in range(events):
        log.write(event(i))
    if close:
        log.close()
    return rotation_set(directory / "audit.log")


def verify(files: list[Path], keys: AuditKeys) -> VerifyReport:
    return verify_files(files, keys.public_key)


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(path)]


def put_lines(path: Path, new: list[bytes]) -> None:
    path.write_bytes(b"".join(new))


def line_of(path: Path, *, seq: int) -> int:
    """The 0-based index of the line holding record `seq`."""
    for index, record in enumerate(records(path)):
        if record["seq"] == seq:
            return index
    raise AssertionError(f"no seq {seq} in {path}")


def reencode(record: dict[str, Any]) -> bytes:
    """A record in canonical form again after a test changed a field (a careful forger's line)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
