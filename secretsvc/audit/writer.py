"""`AuditLog`: the writer of the tamper-evident audit log (format in docs/audit.md).

One record per call, appended as one line by one `os.write` under a lock, so records from many gRPC worker
threads never interleave and each one's `prev` is the hash of the line before it. Every `checkpoint_every`
records, every `checkpoint_seconds` (a background thread) and at `close()`, a checkpoint signed with the
Ed25519 key covers the chain so far. Past `rotate_bytes` the file ends with a checkpoint and is renamed
(`audit/files.py`); the next file's first record links to it.

Failures are loud: a record that cannot be written raises `AuditUnavailable` (fail closed, the default), or,
with fail_closed off, is counted and the count goes into the next checkpoint. A partial write is cut back to
the last whole record, so the file never holds half a line the writer knows about. A failed fsync is final
for this process (the kernel may have dropped the pages it could not write): the log refuses writes until
the server restarts and scans the file again.

Shared by several processes (`shared=True`, the server's worker processes, docs/server.md): an exclusive
`flock` on `<active>.lock` is held around every append, checkpoint, rotation and the opening scan. Holding
it, a writer first catches up with the file: if another process appended (the size moved) or rotated (the
name points at another inode), it reads the last whole line and continues the chain from that record's seq
and hash. So the processes write one chain, in the order they took the lock. Each process syncs its own
records (one fsync covers every record in the file before it), so durability is per record as below.

Durability (what a crash of the machine, not just the process, can lose; a process crash loses nothing a
`write` returned for, since the bytes are in the kernel):
    record      `write` returns after its record is on disk; threads waiting at once share one fsync
    changes     the record of a call that changed something is on disk before `write` returns, as with
                record; a record of a call that changed nothing (a read) is synced by the next such write,
                checkpoint or the background thread, within READ_SYNC_SECONDS
    checkpoint  records reach the disk at each checkpoint, rotation and close: a power loss can lose those
                written since the last checkpoint (at most checkpoint_every records or checkpoint_seconds)
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

from secretsvc.atomicfile import fsync_dir
from secretsvc.audit import limits
from secretsvc.audit.files import rotated_files, rotated_path
from secretsvc.audit.keys import AuditKeys
from secretsvc.audit.record import (
    GENESIS,
    AuditEvent,
    CheckpointReason,
    MalformedRecord,
    checkpoint_body,
    checkpoint_record,
    event_fields,
    event_line,
    format_time,
    parse_line,
    record_hash,
    signed_message,
)
from secretsvc.audit.verify import ProblemKind, Tail, scan_tail
from secretsvc.errors import AuditUnavailable, ConfigError, InvalidArgument

log = logging.getLogger("secretsvc.audit")

# Wall-clock seconds; injected so tests can pin record times and interval checkpoints.
Clock = Callable[[], float]

DEFAULT_CHECKPOINT_EVERY = 1000
DEFAULT_CHECKPOINT_SECONDS = 10.0
DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024
GENESIS_SEQ = 0  # the sequence number of a new log's first record
DIR_MODE = 0o700
FILE_MODE = 0o600
# After a rotation fails (rename refused, no new file), try again no sooner than this.
ROTATION_RETRY_SECONDS = 60.0
# Beside the active file: the lock that processes sharing the log take around each append (`shared=True`).
CHAIN_LOCK_SUFFIX = ".lock"
# The background thread looks this often whether an interval checkpoint is due.
MAX_TIMER_WAKE_SECONDS = 1.0


class Durability(StrEnum):
    RECORD = "record"
    CHANGES = "changes"
    CHECKPOINT = "checkpoint"


# A read's record waits for no fsync: a call that only reads would otherwise spend most of its time waiting
# for the disk (docs/audit.md, "Durability"). The record is in the kernel before the answer, so only a crash of
# the machine can lose it, and only within this window.
DEFAULT_DURABILITY = Durability.CHANGES
READ_SYNC_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class AuditStats:
    next_seq: int
    unsigned: int  # records since the last checkpoint
    unsynced: int  # records written but not yet known to be on disk
    dropped: int  # records not written since the last checkpoint (fail_closed off)
    write_failures: int  # since open
    broken: str | None  # why the log refuses writes, if it does


def check_settings(*, checkpoint_every: int, checkpoint_seconds: float, rotate_bytes: int) -> None:
    """Raise `ConfigError` naming the setting and its bounds; config validation can call this too."""
    if type(checkpoint_every) is not int or not (
        limits.MIN_CHECKPOINT_EVERY <= checkpoint_every <= limits.MAX_CHECKPOINT_EVERY
    ):
        raise ConfigError(f"audit checkpoint_every must be {limits.MIN_CHECKPOINT_EVERY}.."
                          f"{limits.MAX_CHECKPOINT_EVERY} (MAX_CHECKPOINT_EVERY), got {checkpoint_every!r}")
    if checkpoint_seconds != 0 and not (
        limits.MIN_CHECKPOINT_SECONDS <= checkpoint_seconds <= limits.MAX_CHECKPOINT_SECONDS
    ):
        raise ConfigError(f"audit checkpoint_seconds must be 0 (off) or {limits.MIN_CHECKPOINT_SECONDS}.."
                          f"{limits.MAX_CHECKPOINT_SECONDS} (MAX_CHECKPOINT_SECONDS), got {checkpoint_seconds!r}")
    if type(rotate_bytes) is not int or (
        rotate_bytes != 0 and not limits.MIN_ROTATE_BYTES <= rotate_bytes <= limits.MAX_ROTATE_BYTES
    ):
        raise ConfigError(f"audit rotate_bytes must be 0 (off) or {limits.MIN_ROTATE_BYTES}.."
                          f"{limits.MAX_ROTATE_BYTES} (MAX_ROTATE_BYTES), got {rotate_bytes!r}")


class AuditLog:
    """The open audit log. Thread-safe; use `AuditLog.open`, then `write` per call and `close` at shutdown."""

    __slots__ = (
        "_broken", "_chain_lock_fd", "_checkpoint_every", "_checkpoint_seconds", "_clock", "_closed", "_dropped",
        "_durability", "_fail_closed", "_failures", "_fd", "_fd_is_active", "_head", "_hmac_paths", "_keys",
        "_last_checkpoint_at", "_lock", "_next_index", "_next_seq", "_path", "_rotate_bytes",
        "_rotation_retry_at", "_since_checkpoint", "_size", "_stop", "_sync_lock", "_synced_seq", "_thread",
        "_warned",
    )

    def __init__(self, path: Path, keys: AuditKeys, *, fd: int, size: int, next_seq: int, head: str,
                 next_index: int, checkpoint_every: int, checkpoint_seconds: float, rotate_bytes: int,
                 hmac_paths: bool, durability: Durability, fail_closed: bool, clock: Clock,
                 chain_lock_fd: int | None = None) -> None:
        # Use AuditLog.open; this only assembles the parts.
        self._path = path
        self._chain_lock_fd = chain_lock_fd  # the flock of a log shared by processes; None when not shared
        self._keys = keys
        self._fd = fd
        self._fd_is_active = True  # False after a rotation renamed the file but could not create the next
        self._size = size
        self._next_seq = next_seq
        self._head = head
        self._next_index = next_index
        self._checkpoint_every = checkpoint_every
        self._checkpoint_seconds = checkpoint_seconds
        self._rotate_bytes = rotate_bytes
        self._hmac_paths = hmac_paths
        self._durability = durability
        self._fail_closed = fail_closed
        self._clock = clock
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # taken before _lock, never while holding it
        self._synced_seq = next_seq - 1
        self._since_checkpoint = 0
        self._last_checkpoint_at = clock()
        self._dropped = 0
        self._failures = 0
        self._broken: str | None = None
        self._closed = False
        self._warned = False
        self._rotation_retry_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- opening ---------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        keys: AuditKeys,
        *,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        hmac_paths: bool = False,
        durability: Durability = DEFAULT_DURABILITY,
        fail_closed: bool = True,
        clock: Clock = time.time,
        background: bool = True,
        shared: bool = False,
        start_checkpoint: bool = True,
    ) -> AuditLog:
        """Open (or create) the log whose active file is `path` and write a start checkpoint.

        An existing log is continued: the writer checks its end from the last checkpoint on, and refuses
        (`AuditUnavailable`) a log that does not verify with `keys` rather than sign over damage. The one
        repair it makes is to cut an incomplete final line (a crash while writing), which the start
        checkpoint records as `discarded_bytes`. `background` runs the thread that writes interval
        checkpoints; tests turn it off and call `checkpoint_if_due`. `shared` makes the log safe to write from
        several processes at once (see the module docstring); `start_checkpoint=False` joins a shared log that
        another process of the same server is writing without marking a start (unless a cut was needed).
        """
        check_settings(checkpoint_every=checkpoint_every, checkpoint_seconds=checkpoint_seconds,
                       rotate_bytes=rotate_bytes)
        active = Path(path)
        _prepare_directory(active.parent)
        lock_fd = _open_chain_lock(active) if shared else None
        try:
            if lock_fd is not None:
                _flock(lock_fd, active)
            try:
                audit = cls._open_end(active, keys, lock_fd, start_checkpoint, checkpoint_every=checkpoint_every,
                                      checkpoint_seconds=checkpoint_seconds, rotate_bytes=rotate_bytes,
                                      hmac_paths=hmac_paths, durability=durability, fail_closed=fail_closed,
                                      clock=clock)
            finally:
                if lock_fd is not None:
                    fcntl.flock(lock_fd, fcntl.LOCK_UN)
            try:
                audit._sync_through(audit._next_seq - 1)
            except AuditUnavailable:
                os.close(audit._fd)
                raise
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        if background and (checkpoint_seconds or durability is Durability.CHANGES):
            audit._thread = threading.Thread(target=audit._run_timer, name="audit-checkpoints", daemon=True)
            audit._thread.start()
        return audit

    @classmethod
    def _open_end(cls, active: Path, keys: AuditKeys, lock_fd: int | None, start_checkpoint: bool, *,
                  checkpoint_every: int, checkpoint_seconds: float, rotate_bytes: int, hmac_paths: bool,
                  durability: Durability, fail_closed: bool, clock: Clock) -> AuditLog:
        """Find the chain's end (cutting an incomplete final line) and continue it; holds the chain lock if any."""
        try:
            rotated = rotated_files(active)
        except InvalidArgument as exc:
            raise AuditUnavailable(f"cannot open audit log {active}: {exc}") from None
        tail, discarded = None, 0
        if os.path.lexists(active):
            tail = _scan(active, keys)
            if tail.incomplete_at is not None:
                discarded = tail.incomplete_bytes
                _cut(active, tail.incomplete_at)
                log.warning("audit log ended in an incomplete record (a crash while writing): removed it",
                            extra={"file": str(active), "discarded_bytes": discarded})
            if tail.next_seq is None:
                tail = None  # empty: the previous file (if any) holds the chain's end
        if tail is None and rotated:
            newest = rotated[-1][1]
            tail = _scan(newest, keys)
            if tail.incomplete_at is not None or tail.next_seq is None:
                raise AuditUnavailable(f"rotated audit file {newest} does not end in a whole record; run "
                                       "`secretsvc audit verify` on the log and move the damaged files aside")
        next_seq = GENESIS_SEQ if tail is None or tail.next_seq is None else tail.next_seq
        head = GENESIS if tail is None or tail.head is None else tail.head
        fd, size = _open_active(active)
        audit = cls(active, keys, fd=fd, size=size, next_seq=next_seq, head=head,
                    next_index=rotated[-1][0] + 1 if rotated else 1, checkpoint_every=checkpoint_every,
                    checkpoint_seconds=checkpoint_seconds, rotate_bytes=rotate_bytes, hmac_paths=hmac_paths,
                    durability=durability, fail_closed=fail_closed, clock=clock, chain_lock_fd=lock_fd)
        if start_checkpoint or discarded or tail is None:
            try:
                with audit._lock:
                    audit._checkpoint_locked(CheckpointReason.START, discarded_bytes=discarded)
            except AuditUnavailable:
                os.close(fd)
                raise
        return audit

    # -- writing ---------------------------------------------------------------------------------------

    def write(self, event: AuditEvent, *, changed: bool = True) -> None:
        """Append one record. Returns once it is written, and on disk with durability "record", or with
        "changes" when `changed` (the call changed something, or may have; False only for reads).

        Raises `AuditUnavailable` if it could not be, unless fail_closed is off: then the record is counted
        as dropped, the next checkpoint says how many, and a warning is logged once per outage.
        """
        fields = event_fields(event, hmac_key=self._keys.hmac_key if self._hmac_paths else None)
        try:
            with self._lock:
                self._check_usable_locked()
                with self._chain_locked():
                    line = event_line(fields, seq=self._next_seq, prev=self._head, time=format_time(self._clock()))
                    self._append_locked(line)
                    self._since_checkpoint += 1
                    checkpointed, rotated = self._after_append_locked()
                    target = self._next_seq - 1
                self._warned = False
        except AuditUnavailable as exc:
            if self._fail_closed:
                raise
            with self._lock:
                self._dropped += 1
                warn, self._warned = not self._warned, True
            if warn:
                log.warning("audit record not written; the call goes ahead (fail_closed is off): %s", exc)
            return
        # A rotation has synced everything; a checkpoint must reach the disk under either durability.
        must_sync = self._durability is Durability.RECORD or (changed and self._durability is Durability.CHANGES)
        if (must_sync or checkpointed) and not rotated:
            try:
                self._sync_through(target)
            except AuditUnavailable as exc:
                if self._fail_closed:
                    raise
                log.warning("audit log could not be synced (fail_closed is off): %s", exc)

    def ensure_available(self) -> None:
        """Raise `AuditUnavailable` now if a record could not be written (closed, or broken by a failed
        fsync), so a call can be refused before it runs. A no-op with fail_closed off."""
        if not self._fail_closed:
            return
        # Without the lock: every call asks, and a state that changes just after is caught by the write
        # itself, under the lock.
        self._check_usable_locked()

    def checkpoint_if_due(self) -> bool:
        """Write an interval checkpoint if checkpoint_seconds have passed and records (or drops) await one."""
        with self._lock:
            if self._closed or self._broken is not None or not self._checkpoint_seconds:
                return False
            if self._since_checkpoint == 0 and self._dropped == 0:
                return False
            if self._clock() - self._last_checkpoint_at < self._checkpoint_seconds:
                return False
            with self._chain_locked():
                if not self._try_checkpoint_locked(CheckpointReason.INTERVAL):
                    return False
            target = self._next_seq - 1
        self._sync_through(target)
        return True

    def close(self) -> None:
        """Stop the timer, write the shutdown checkpoint, sync and close. Safe to call twice. Raises
        `AuditUnavailable` if the shutdown checkpoint could not be written (the file is closed anyway)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._sync_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            error: str | None = self._broken
            try:
                if error is None:
                    with self._chain_locked():
                        self._checkpoint_locked(CheckpointReason.SHUTDOWN)
                    os.fsync(self._fd)
            except AuditUnavailable as exc:
                error = str(exc)
            except OSError as exc:
                error = f"cannot sync audit log {self._path}: {exc.strerror or exc}"
            finally:
                os.close(self._fd)
                if self._chain_lock_fd is not None:
                    os.close(self._chain_lock_fd)
        if error is not None:
            raise AuditUnavailable(f"audit log closed without its shutdown checkpoint: {error}")

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- information -----------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def key_id(self) -> str:
        return self._keys.signing_key.key_id

    def stats(self) -> AuditStats:
        with self._lock:
            return AuditStats(self._next_seq, self._since_checkpoint, self._next_seq - 1 - self._synced_seq,
                              self._dropped, self._failures, self._broken)

    def __repr__(self) -> str:
        return f"AuditLog(path={str(self._path)!r}, next_seq={self._next_seq}, key_id={self.key_id!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("AuditLog cannot be pickled")

    # -- internals (the caller holds _lock where the name ends in _locked) -------------------------------

    def _check_usable_locked(self) -> None:
        if self._closed:
            raise AuditUnavailable(f"audit log {self._path} is closed")
        if self._broken is not None:
            raise AuditUnavailable(self._broken)

    def _append_locked(self, line: bytes) -> None:
        if len(line) > limits.MAX_LINE_BYTES:
            # Clipping keeps every record far below this; reaching it is a bug, not a caller's doing.
            raise AuditUnavailable(f"audit record of {len(line)} bytes exceeds MAX_LINE_BYTES={limits.MAX_LINE_BYTES}")
        data = memoryview(line + b"\n")
        done = 0
        try:
            while done < len(data):
                written = os.write(self._fd, data[done:])
                if written <= 0:
                    raise OSError(errno.EIO, "write returned no progress")
                done += written
        except OSError as exc:
            self._failures += 1
            if done:
                self._cut_back_locked()
            full = exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
            raise AuditUnavailable(f"cannot write audit log {self._path}: {exc.strerror or exc}",
                                   public_reason="audit log is full" if full else "audit log unavailable") from None
        self._size += len(data)
        self._head = record_hash(line)
        self._next_seq += 1

    @contextmanager
    def _chain_locked(self) -> Iterator[None]:
        """Inside _lock, for a log shared by processes: hold the chain lock and continue from the chain's end
        as the file has it now (another process may have appended or rotated). A no-op when not shared."""
        if self._chain_lock_fd is None:
            yield
            return
        _flock(self._chain_lock_fd, self._path)
        try:
            self._catch_up_locked()
            yield
        finally:
            fcntl.flock(self._chain_lock_fd, fcntl.LOCK_UN)

    def _catch_up_locked(self) -> None:
        try:
            ours = os.fstat(self._fd)
            try:
                named: os.stat_result | None = os.stat(self._path)
            except FileNotFoundError:
                named = None  # renamed by a rotation that could not create the next file: keep appending here
            if named is not None and (named.st_ino, named.st_dev) != (ours.st_ino, ours.st_dev):
                # Another process rotated: the old file's end (if it grew since) is the chain's end unless
                # the new file already holds records.
                if ours.st_size != self._size:
                    self._adopt_tail(self._fd, ours.st_size)
                fd, size = _open_active(self._path)
                old, self._fd, self._fd_is_active = self._fd, fd, True
                os.close(old)
                if size:
                    self._adopt_tail(fd, size)
                else:
                    self._size = 0
            elif ours.st_size != self._size:
                self._adopt_tail(self._fd, ours.st_size)
        except OSError as exc:
            raise AuditUnavailable(f"cannot read the end of audit log {self._path}: {exc.strerror or exc}") from None

    def _adopt_tail(self, fd: int, size: int) -> None:
        """Continue the chain from the last record of the file open at `fd`, `size` bytes long."""
        want = min(size, limits.MAX_LINE_BYTES + 1)
        data = os.pread(fd, want, size - want)
        start = data.rfind(b"\n", 0, len(data) - 1) + 1
        if not data.endswith(b"\n") or (start == 0 and want < size):
            raise AuditUnavailable(f"audit log {self._path} does not end in a whole record; run `secretsvc audit "
                                   "verify` and restart the server")
        line = data[start:-1]
        try:
            record = parse_line(line)
        except MalformedRecord as exc:
            raise AuditUnavailable(f"audit log {self._path} ends in a record that does not parse ({exc}); run "
                                   "`secretsvc audit verify`") from None
        self._next_seq, self._head, self._size = record.seq + 1, record_hash(line), size

    def _cut_back_locked(self) -> None:
        """Remove the part of a record a failed write left, so the file ends in a whole record again."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError as exc:
            self._broken = (f"audit log {self._path} holds a partial record that could not be removed "
                            f"({exc.strerror or exc}); restart the server to recover it")
            log.error("%s", self._broken)

    def _checkpoint_locked(self, reason: CheckpointReason, *, discarded_bytes: int = 0) -> None:
        now = self._clock()
        body = checkpoint_body(seq=self._next_seq, prev=self._head, time=format_time(now), key_id=self.key_id,
                               reason=reason, dropped=self._dropped, discarded_bytes=discarded_bytes)
        self._append_locked(checkpoint_record(body, self._keys.signing_key.sign(signed_message(body))))
        self._since_checkpoint = 0
        self._dropped = 0
        self._last_checkpoint_at = now

    def _try_checkpoint_locked(self, reason: CheckpointReason) -> bool:
        try:
            self._checkpoint_locked(reason)
        except AuditUnavailable as exc:
            # The records it would cover are written; the next write or tick tries again.
            log.warning("audit checkpoint not written: %s", exc)
            return False
        return True

    def _after_append_locked(self) -> tuple[bool, bool]:
        """The count checkpoint and the rotation a record may trigger: (checkpoint written, rotated; a
        rotation syncs everything before it)."""
        checkpointed = False
        if self._since_checkpoint >= self._checkpoint_every:
            checkpointed = self._try_checkpoint_locked(CheckpointReason.COUNT)
        if self._rotate_bytes and self._size >= self._rotate_bytes and self._clock() >= self._rotation_retry_at:
            return checkpointed, self._rotate_locked()
        return checkpointed, False

    def _rotate_locked(self) -> bool:
        """End the file with a checkpoint, sync it, rename it to the next rotated name and start a new one.
        A failure leaves the writer appending where it was and retrying later; it never loses a record."""
        if self._fd_is_active:
            try:
                self._checkpoint_locked(CheckpointReason.ROTATION)
                os.fsync(self._fd)
                target = rotated_path(self._path, self._next_index)
                while os.path.lexists(target):  # never replace a file; a gap in the numbers is harmless
                    self._next_index += 1
                    target = rotated_path(self._path, self._next_index)
                os.rename(self._path, target)
            except (AuditUnavailable, OSError) as exc:
                self._rotation_retry_at = self._clock() + ROTATION_RETRY_SECONDS
                log.warning("audit log not rotated, will retry: %s", exc)
                return False
            self._next_index += 1
            self._fd_is_active = False
        try:
            fd, size = _open_active(self._path)
        except AuditUnavailable as exc:
            # Keep appending to the renamed file through the open descriptor; the chain does not care.
            self._rotation_retry_at = self._clock() + ROTATION_RETRY_SECONDS
            log.warning("new audit file not created, will retry: %s", exc)
            return False
        old, self._fd, self._size, self._fd_is_active = self._fd, fd, size, True
        os.close(old)
        log.info("audit log rotated", extra={"file": str(self._path), "next_seq": self._next_seq})
        return True

    def _sync_through(self, target: int) -> None:
        """Make records up to `target` durable. Group commit: a thread that finds its record already synced
        by another's fsync returns at once; one fsync covers every record written before it started."""
        with self._sync_lock:
            if self._synced_seq >= target:
                return
            with self._lock:
                if self._closed:
                    return  # close() synced everything
                self._check_usable_locked()
                # A duplicate descriptor stays valid if a rotation closes the original meanwhile.
                try:
                    fd = os.dup(self._fd)
                except OSError as exc:
                    raise AuditUnavailable(f"cannot sync audit log {self._path}: {exc.strerror or exc}") from None
                upto = self._next_seq - 1
            try:
                os.fsync(fd)
            except OSError as exc:
                with self._lock:
                    self._failures += 1
                    # After a failed fsync the kernel may have dropped the dirty pages: nothing written since
                    # the last good sync can be trusted to be on disk. Stop until a restart re-reads the file.
                    self._broken = (f"cannot sync audit log {self._path}: {exc.strerror or exc}; "
                                    "restart the server to recover")
                    log.error("%s", self._broken)
                raise AuditUnavailable(self._broken) from None
            finally:
                os.close(fd)
            self._synced_seq = upto

    def _run_timer(self) -> None:
        wake = min(self._checkpoint_seconds or MAX_TIMER_WAKE_SECONDS, MAX_TIMER_WAKE_SECONDS)
        if self._durability is Durability.CHANGES:
            wake = min(wake, READ_SYNC_SECONDS)
        while not self._stop.wait(wake):
            try:
                self.checkpoint_if_due()
                # A broken log has said why once (and refuses every call); it is not retried every tick.
                if self._durability is Durability.CHANGES and self._broken is None:
                    self.sync_written()
            except AuditUnavailable as exc:
                log.warning("audit interval checkpoint or sync failed: %s", exc)

    def sync_written(self) -> None:
        """Make every record written so far durable (a no-op when they are). Raises `AuditUnavailable` if the
        fsync fails, which also stops the log as for any failed fsync."""
        with self._lock:
            target = self._next_seq - 1
        self._sync_through(target)



def _open_chain_lock(active: Path) -> int:
    lock_path = active.with_name(active.name + CHAIN_LOCK_SUFFIX)
    try:
        return os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise AuditUnavailable(f"cannot open audit lock file {lock_path}: {exc.strerror or exc}") from None


def _flock(fd: int, active: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        raise AuditUnavailable(f"cannot lock audit log {active}: {exc.strerror or exc}") from None


def _prepare_directory(directory: Path) -> None:
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditUnavailable(f"cannot create audit directory {directory}: {exc.strerror or exc}") from None
    if not directory.is_dir():
        raise AuditUnavailable(f"audit directory {directory} is not a directory")


def _open_active(path: Path) -> tuple[int, int]:
    """The active file opened for appending (created 0600), and its size."""
    try:
        # Readable too: a log shared by processes reads its last record to continue another process's chain.
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise AuditUnavailable(f"cannot open audit log {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AuditUnavailable(f"audit log {path} is not a regular file")
        fsync_dir(path.parent)  # the file's name must survive a crash as well as its records
    except OSError as exc:
        os.close(fd)
        raise AuditUnavailable(f"cannot open audit log {path}: {exc.strerror or exc}") from None
    except AuditUnavailable:
        os.close(fd)
        raise
    return fd, info.st_size


def _scan(path: Path, keys: AuditKeys) -> Tail:
    try:
        tail = scan_tail(path, keys.public_key)
    except InvalidArgument as exc:
        raise AuditUnavailable(f"cannot open audit log: {exc}") from None
    problem = tail.problem
    if problem is None:
        return tail
    if problem.kind is ProblemKind.UNKNOWN_KEY:
        raise AuditUnavailable(
            f"audit log {path} is signed by another key than this server's ({keys.signing_key.key_id}): "
            f"{problem}. Was audit-signing.key replaced? Restore it, or move the old log aside with its public key"
        )
    raise AuditUnavailable(
        f"audit log {path} does not verify, so nothing more is written to it: {problem}. Run "
        "`secretsvc audit verify`, keep the files as evidence, and move them aside to start a new log"
    )


def _cut(path: Path, offset: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise AuditUnavailable(f"cannot remove the incomplete final record of {path}: {exc.strerror or exc}") from None
