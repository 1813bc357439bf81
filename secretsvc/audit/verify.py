"""Checking an audit log: every line canonical, the sequence unbroken, the hash chain intact, every
checkpoint signed by the given public key; and what the signatures do not yet cover.

Verification stops at the first bad record and names it (file, line, sequence): after a break nothing
later can be trusted to be in place. Where a break could be either of two neighbouring records (the chain
only says that one of them changed), the earlier one is named and the message mentions both.

What the files alone can show, and what they cannot (docs/audit.md says the same for operators):
- a record modified, inserted, removed or moved, and a checkpoint whose signature does not verify: always,
  unless it is in the unsigned tail and whoever changed it also rewrote every later hash;
- a file cut mid-line: always (the last line is incomplete);
- whole records cut from the end after the last checkpoint, or whole files cut from the end or the start:
  not from the files alone. The report says how many records follow the last checkpoint (protected only by
  the chain) and whether the log ends with the checkpoint a clean shutdown writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from secretsvc.audit import limits
from secretsvc.audit.record import (
    GENESIS,
    CheckpointReason,
    MalformedRecord,
    ParsedRecord,
    parse_line,
    record_hash,
    signed_message,
)
from secretsvc.crypto.signing import VerifyKey
from secretsvc.errors import InvalidArgument

_CHECKPOINT_MARK = b'"type":"checkpoint"'  # never appears unescaped inside a string of a canonical line
_SCAN_BLOCK_BYTES = 64 * 1024


class ProblemKind(StrEnum):
    EMPTY = "empty"  # no records at all: every log begins with a start checkpoint
    INCOMPLETE = "incomplete"  # the file ends in the middle of a line
    TOO_LONG = "too_long"  # a line longer than MAX_LINE_BYTES
    MALFORMED = "malformed"  # not a record of this format, or not in its one canonical spelling
    SEQUENCE = "sequence"  # not the next sequence number: removed, inserted, reordered, a file missing
    CHAIN = "chain"  # `prev` is not the hash of the record before: one of the two was changed
    SIGNATURE = "signature"  # a checkpoint whose signature does not verify
    UNKNOWN_KEY = "unknown_key"  # a checkpoint signed by another key than the one given


@dataclass(frozen=True, slots=True)
class Location:
    file: Path
    line: int  # 1-based
    seq: int | None = None  # None when the line did not parse

    def __str__(self) -> str:
        seq = "" if self.seq is None else f" (seq {self.seq})"
        return f"{self.file}:{self.line}{seq}"


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    at: Location  # the first bad record
    message: str

    def __str__(self) -> str:
        return f"{self.at}: {self.message}"


@dataclass(frozen=True, slots=True)
class UncleanStop:
    """A start checkpoint that did not follow a shutdown checkpoint: the writer stopped without closing."""

    restart: Location
    signed_late: int  # records that stayed unsigned until this restart signed them


@dataclass(frozen=True, slots=True)
class VerifyReport:
    files: tuple[Path, ...]
    key_id: str
    events: int  # event records verified
    checkpoints: int  # checkpoints whose signature verified
    first_seq: int | None
    last_seq: int | None
    unsigned: int  # event records after the last verified checkpoint: protected by the chain only
    closed_cleanly: bool  # the last record is a shutdown checkpoint
    dropped: int  # calls the writer could not record (fail_closed off), as its checkpoints counted them
    discarded_bytes: int  # incomplete final records the writer removed at start-up after a crash
    unclean_stops: tuple[UncleanStop, ...]
    last_checkpoint: Location | None
    problem: Problem | None

    @property
    def intact(self) -> bool:
        return self.problem is None

    @property
    def starts_at_genesis(self) -> bool:
        """Whether the first record given is the first record of the log (sequence 0)."""
        return self.first_seq == 0

    @property
    def wrong_key(self) -> bool:
        """No checkpoint verified and the first one names another key: probably the wrong --public-key
        (or every checkpoint's key id was altered, which is tampering all the same)."""
        return self.problem is not None and self.problem.kind is ProblemKind.UNKNOWN_KEY and self.checkpoints == 0


@dataclass(slots=True)
class ChainVerifier:
    """Feed it lines in order; it keeps what it needs to check the next one and what the report says."""

    key: VerifyKey
    head: str | None = None  # hash of the last good record; None until one is seen
    before_head: str | None = None  # hash of the record before that one
    next_seq: int | None = None
    last_location: Location | None = None
    last_kind: str | None = None
    last_reason: CheckpointReason | None = None
    first_seq: int | None = None
    events: int = 0
    checkpoints: int = 0
    unsigned: int = 0
    dropped: int = 0
    discarded_bytes: int = 0
    last_checkpoint: Location | None = None
    unclean_stops: list[UncleanStop] = field(default_factory=list)

    def feed(self, line: bytes, file: Path, line_number: int) -> Problem | None:
        try:
            record = parse_line(line)
        except MalformedRecord as exc:
            return Problem(ProblemKind.MALFORMED, Location(file, line_number), f"not a valid audit record: {exc}")
        here = Location(file, line_number, record.seq)
        problem = self._check_position(record, here) or self._check_signature(record, here)
        if problem is not None:
            return problem
        self._accept(record, line, here)
        return None

    def _check_position(self, record: ParsedRecord, here: Location) -> Problem | None:
        if self.next_seq is None:
            if record.seq == 0 and record.prev != GENESIS:
                return Problem(ProblemKind.CHAIN, here, "the first record of the log (seq 0) does not link to the "
                               "genesis value: it was modified or replaced")
            return None  # verification starts mid-chain (earlier files not given): nothing to link to
        if record.seq != self.next_seq:
            if (record.seq == self.next_seq - 1 and record.prev == self.before_head
                    and self.last_location is not None):
                # This record links past the one before it, which took its place: that one was inserted.
                return Problem(ProblemKind.SEQUENCE, self.last_location,
                               f"inserted: the next record ({here}) has the same seq and links to the record "
                               "before this one")
            if record.seq > self.next_seq:
                why = ("records before it were removed (or moved after it), or a file before it is missing or "
                       "out of order")
            else:
                why = "a record was inserted, duplicated or moved here, or files are out of order"
            return Problem(ProblemKind.SEQUENCE, here,
                           f"expected seq {self.next_seq} after {self.last_location}, found {record.seq}: {why}")
        if record.prev != self.head:
            # Either the earlier record changed (its hash moved) or this one's link did: name the earlier.
            assert self.last_location is not None
            return Problem(ProblemKind.CHAIN, self.last_location,
                           f"its hash is not the one the next record ({here}) links to: this record or the next "
                           "was modified, or a record between them was replaced")
        return None

    def _check_signature(self, record: ParsedRecord, here: Location) -> Problem | None:
        if record.kind != "checkpoint":
            return None
        key_id = record.fields["key_id"]
        if key_id != self.key.key_id:
            return Problem(ProblemKind.UNKNOWN_KEY, here,
                           f"checkpoint signed by key {key_id}, not by the given key {self.key.key_id}")
        if not self.key.verify(record.signature, signed_message(record.signed_body())):
            return Problem(ProblemKind.SIGNATURE, here, "checkpoint signature does not verify: the checkpoint was "
                           "modified or forged")
        return None

    def _accept(self, record: ParsedRecord, line: bytes, here: Location) -> None:
        if self.first_seq is None:
            self.first_seq = record.seq
        if record.kind == "event":
            self.events += 1
            self.unsigned += 1
        else:
            if (record.reason is CheckpointReason.START and self.last_kind is not None
                    and self.last_reason is not CheckpointReason.SHUTDOWN):
                self.unclean_stops.append(UncleanStop(here, self.unsigned))
            self.checkpoints += 1
            self.unsigned = 0
            self.last_checkpoint = here
            self.dropped += record.fields["dropped"]
            self.discarded_bytes += record.fields["discarded_bytes"]
        self.last_kind, self.last_reason = record.kind, record.reason
        self.before_head, self.head = self.head, record_hash(line)
        self.next_seq = record.seq + 1
        self.last_location = here

    def report(self, files: Sequence[Path], problem: Problem | None) -> VerifyReport:
        if problem is None and self.first_seq is None:
            where = Location(files[-1], 1) if files else Location(Path("-"), 1)
            problem = Problem(ProblemKind.EMPTY, where, "no audit records: every log begins with a start checkpoint, "
                              "so the files were emptied or are not this log's")
        return VerifyReport(
            files=tuple(files), key_id=self.key.key_id, events=self.events, checkpoints=self.checkpoints,
            first_seq=self.first_seq, last_seq=None if self.next_seq is None else self.next_seq - 1,
            unsigned=self.unsigned, closed_cleanly=self.last_reason is CheckpointReason.SHUTDOWN,
            dropped=self.dropped, discarded_bytes=self.discarded_bytes, unclean_stops=tuple(self.unclean_stops),
            last_checkpoint=self.last_checkpoint, problem=problem,
        )


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    offset: int
    data: bytes


def _lines(handle: BinaryIO, file: Path, *, offset: int = 0, first_number: int = 1) -> Iterator[_Line | Problem]:
    """The file's lines from `offset`, without newlines; a Problem (and nothing after it) for a line longer
    than MAX_LINE_BYTES or a final line without its newline. Memory stays within one bounded line."""
    handle.seek(offset)
    number = first_number
    while True:
        raw = handle.readline(limits.MAX_LINE_BYTES + 1)
        if not raw:
            return
        if not raw.endswith(b"\n"):
            if len(raw) > limits.MAX_LINE_BYTES:
                yield Problem(ProblemKind.TOO_LONG, Location(file, number),
                              f"line longer than MAX_LINE_BYTES={limits.MAX_LINE_BYTES}: not an audit record")
            else:
                yield Problem(ProblemKind.INCOMPLETE, Location(file, number),
                              "the file ends in the middle of a record: cut short (truncation, or a crash while "
                              "writing)")
            return
        yield _Line(number, offset, raw[:-1])
        offset += len(raw)
        number += 1


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InvalidArgument(f"cannot read audit file {path}: {exc.strerror or exc}") from None


def verify_files(files: Sequence[Path], key: VerifyKey) -> VerifyReport:
    """Verify `files` as one log, in the order given. Raises `InvalidArgument` only for a file that cannot be
    read; everything found in the files is in the report."""
    if not files:
        raise InvalidArgument("no audit files to verify")
    verifier = ChainVerifier(key)
    for path in files:
        with _open(path) as handle:
            try:
                for item in _lines(handle, path):
                    problem = item if isinstance(item, Problem) else verifier.feed(item.data, path, item.number)
                    if problem is not None:
                        return verifier.report(files, problem)
            except OSError as exc:
                raise InvalidArgument(f"cannot read audit file {path}: {exc.strerror or exc}") from None
    return verifier.report(files, None)


# -- the writer's view: where to continue a log ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tail:
    """The end of one file, as the writer needs it to continue the chain."""

    next_seq: int | None  # None: no complete record in the file
    head: str | None  # hash of the last complete record
    closed_cleanly: bool
    incomplete_at: int | None  # offset where a final line without its newline begins
    incomplete_bytes: int
    problem: Problem | None


def scan_tail(path: Path, key: VerifyKey) -> Tail:
    """Check `path` from its last checkpoint (found by reading backwards) to its end. Start-up time so
    depends on checkpoint_every, not on the file's size.

    A final line without its newline is reported as `incomplete_at`, not as a problem: the writer decides.
    """
    with _open(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        complete_end = _end_of_last_newline(handle, size)
        start = _last_checkpoint_offset(handle, complete_end)
        verifier, problem, incomplete = _scan_from(handle, path, key, start, first_number=1)
        if problem is not None and start:
            # Rare: scan again, numbering lines as the file does, so the refusal names the right line.
            verifier, problem, incomplete = _scan_from(handle, path, key, start,
                                                       first_number=_newlines_before(handle, start) + 1)
    incomplete_at = complete_end if incomplete else None
    return Tail(
        next_seq=verifier.next_seq, head=verifier.head,
        closed_cleanly=verifier.last_reason is CheckpointReason.SHUTDOWN, incomplete_at=incomplete_at,
        incomplete_bytes=0 if incomplete_at is None else size - incomplete_at, problem=problem,
    )


def _scan_from(handle: BinaryIO, path: Path, key: VerifyKey, start: int, *,
               first_number: int) -> tuple[ChainVerifier, Problem | None, bool]:
    """Verify from `start` to the end: the verifier, the first problem, and whether the last line is
    incomplete (which is not a problem here)."""
    verifier = ChainVerifier(key)
    for item in _lines(handle, path, offset=start, first_number=first_number):
        if isinstance(item, Problem):
            if item.kind is ProblemKind.INCOMPLETE:
                return verifier, None, True
            return verifier, item, False
        problem = verifier.feed(item.data, path, item.number)
        if problem is not None:
            return verifier, problem, False
    return verifier, None, False


def _newlines_before(handle: BinaryIO, offset: int) -> int:
    handle.seek(0)
    count, remaining = 0, offset
    while remaining > 0:
        block = handle.read(min(remaining, _SCAN_BLOCK_BYTES * 16))
        if not block:
            break
        count += block.count(b"\n")
        remaining -= len(block)
    return count


def _read_at(handle: BinaryIO, offset: int, size: int) -> bytes:
    handle.seek(offset)
    return handle.read(size)


def _end_of_last_newline(handle: BinaryIO, size: int) -> int:
    """The offset just after the file's last newline (0 if none), reading at most MAX_LINE_BYTES back: a longer
    final fragment is left for the forward scan to call too long."""
    end = size
    floor = max(0, size - limits.MAX_LINE_BYTES - 1)
    while end > floor:
        start = max(floor, end - _SCAN_BLOCK_BYTES)
        block = _read_at(handle, start, end - start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return floor if floor > 0 else 0


def _last_checkpoint_offset(handle: BinaryIO, end: int) -> int:
    """Where the last complete line holding a checkpoint starts, reading backwards from `end`; 0 if none
    (scan the whole file)."""
    carry = b""  # the start of a line whose beginning lies before the block just read
    position = end
    while position > 0:
        start = max(0, position - _SCAN_BLOCK_BYTES)
        block = _read_at(handle, start, position - start) + carry
        lines = block.split(b"\n")
        # lines[0] may continue before `start`; the rest are whole (the last one is empty: `end` follows a newline).
        offset = start + len(block)
        for index in range(len(lines) - 1, 0, -1):
            offset -= len(lines[index]) + 1
            if _CHECKPOINT_MARK in lines[index]:
                return offset + 1
        if start == 0:
            return 0  # lines[0] is the first line of the file: a forward scan from 0 covers it
        carry = lines[0]
        if len(carry) > limits.MAX_LINE_BYTES:
            return 0  # a line too long to be a record: let the forward scan report it
        position = start
    return 0
