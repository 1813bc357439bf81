"""`AuditLog`: the chain it writes, checkpoints by count, time and shutdown, restarts, rotation, many
threads at once, and failing closed when a record cannot be written."""

from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from secretsvc.audit import writer as writer_mod
from secretsvc.audit.files import rotated_path, rotation_set
from secretsvc.audit.keys import AuditKeys
from secretsvc.audit.record import GENESIS, record_hash, resource_hmac
from secretsvc.audit.verify import ProblemKind
from secretsvc.audit.writer import AuditLog, Durability
from secretsvc.errors import AuditUnavailable, ConfigError
from tests.unit.audit.support import (
    FakeClock,
    event,
    lines,
    open_log,
    put_lines,
    records,
    verify,
    write_log,
)


@pytest.fixture(scope="module")
def keys() -> AuditKeys:
    return AuditKeys.generate()


def test_records_form_a_chain_between_a_start_and_a_shutdown_checkpoint(tmp_path: Path, keys: AuditKeys) -> None:
    clock = FakeClock()
    log = open_log(tmp_path, keys, clock)
    clock.advance(1.5)
    log.write(event(1, code="PERMISSION_DENIED"))
    log.write(event(2))
    log.close()
    raw = lines(tmp_path / "audit.log")
    got = [json.loads(line) for line in raw]
    assert [(r["type"], r.get("reason")) for r in got] == [
        ("checkpoint", "start"), ("event", None), ("event", None), ("checkpoint", "shutdown")]
    assert [r["seq"] for r in got] == [0, 1, 2, 3]
    assert got[0]["prev"] == GENESIS
    for before, after in zip(raw, got[1:], strict=False):
        assert after["prev"] == record_hash(before.rstrip(b"\n"))
    assert got[1]["time"] == "2030-03-17T17:46:41.500000Z"
    assert got[1]["outcome"] == "denied" and got[1]["code"] == "PERMISSION_DENIED"
    assert got[0]["key_id"] == keys.signing_key.key_id == log.key_id
    assert verify([tmp_path / "audit.log"], keys).closed_cleanly


def test_a_checkpoint_follows_every_n_records(tmp_path: Path, keys: AuditKeys) -> None:
    (path,) = write_log(tmp_path, keys, 9, checkpoint_every=4)
    kinds = "".join("c" if r["type"] == "checkpoint" else "e" for r in records(path))
    assert kinds == "c" + "eeeec" + "eeeec" + "e" + "c"
    assert records(path)[5]["reason"] == "count"


def test_an_interval_checkpoint_is_written_only_when_due_and_needed(tmp_path: Path, keys: AuditKeys) -> None:
    clock = FakeClock()
    log = open_log(tmp_path, keys, clock, checkpoint_seconds=10.0)
    log.write(event(1))
    clock.advance(9.9)
    assert not log.checkpoint_if_due()
    clock.advance(0.2)
    assert log.checkpoint_if_due()
    assert records(tmp_path / "audit.log")[-1]["reason"] == "interval"
    assert log.stats().unsigned == 0
    clock.advance(60)
    assert not log.checkpoint_if_due()  # nothing to cover
    # The interval counts from the last checkpoint: after a quiet spell, a record is signed at the next tick.
    log.write(event(2))
    assert log.checkpoint_if_due()
    log.close()


def test_the_background_thread_signs_an_idle_servers_records(tmp_path: Path, keys: AuditKeys) -> None:
    log = AuditLog.open(tmp_path / "audit.log", keys, checkpoint_seconds=0.05)
    try:
        log.write(event(1))
        deadline = time.monotonic() + 10
        while log.stats().unsigned and time.monotonic() < deadline:
            time.sleep(0.02)
        assert log.stats().unsigned == 0
        assert records(tmp_path / "audit.log")[-1]["reason"] == "interval"
    finally:
        log.close()


def test_a_restart_after_a_clean_close_continues_the_chain(tmp_path: Path, keys: AuditKeys) -> None:
    write_log(tmp_path, keys, 3)
    log = open_log(tmp_path, keys)
    log.write(event(7))
    log.close()
    report = verify([tmp_path / "audit.log"], keys)
    assert report.intact and report.events == 4 and report.unclean_stops == ()
    assert [r["reason"] for r in records(tmp_path / "audit.log") if r["type"] == "checkpoint"] == [
        "start", "shutdown", "start", "shutdown"]


def test_a_crash_mid_record_is_cut_at_restart_and_recorded(tmp_path: Path, keys: AuditKeys) -> None:
    path = tmp_path / "audit.log"
    crashed = open_log(tmp_path, keys)
    crashed.write(event(1))
    crashed.write(event(2))
    with path.open("ab") as handle:
        handle.write(b'{"capability":"read","code":"OK","lat')  # the power went out here
    assert verify([path], keys).problem.kind is ProblemKind.INCOMPLETE  # type: ignore[union-attr]
    restarted = open_log(tmp_path, keys)
    restarted.close()
    report = verify([path], keys)
    assert report.intact and report.discarded_bytes == len(b'{"capability":"read","code":"OK","lat')
    assert len(report.unclean_stops) == 1 and report.unclean_stops[0].signed_late == 2


def test_a_log_damaged_while_the_server_was_down_is_not_signed_over(tmp_path: Path, keys: AuditKeys) -> None:
    # start0 e1 e2 e3 cp4 e5 e6 e7 cp8 e9 e10: e9 and e10 are signed by nothing yet.
    (path,) = write_log(tmp_path, keys, 8, close=False, checkpoint_every=3)
    all_lines = lines(path)
    record = json.loads(all_lines[-2])
    assert record["seq"] == 9
    record["principal"] = "token:nobody"
    all_lines[-2] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    put_lines(path, all_lines)
    before = path.read_bytes()
    with pytest.raises(AuditUnavailable, match=r"does not verify.*audit verify") as caught:
        open_log(tmp_path, keys)
    assert path.read_bytes() == before
    assert "audit.log:10 (seq 9)" in str(caught.value)  # the file's own line number, not the scan's


def test_a_log_signed_by_another_key_is_refused(tmp_path: Path, keys: AuditKeys) -> None:
    write_log(tmp_path, keys, 2)
    with pytest.raises(AuditUnavailable, match="another key"):
        open_log(tmp_path, AuditKeys.generate())


def test_rotation_keeps_the_chain_and_names_files_oldest_first(tmp_path: Path, keys: AuditKeys) -> None:
    files = write_log(tmp_path, keys, 40, rotate_bytes=4096)
    assert files[:3] == [rotated_path(tmp_path / "audit.log", i) for i in (1, 2, 3)]
    assert files[0].name == "audit.log.000001" and files[-1].name == "audit.log"
    for rotated in files[:-1]:
        assert records(rotated)[-1]["reason"] == "rotation"
        assert rotated.stat().st_size < 4096 + 2000  # rotated soon after passing rotate_bytes
    report = verify(files, keys)
    assert report.intact and report.events == 40 and report.closed_cleanly


def test_a_restart_after_a_crash_between_rename_and_new_file_continues_from_the_rotated_file(
    tmp_path: Path, keys: AuditKeys
) -> None:
    files = write_log(tmp_path, keys, 12, rotate_bytes=4096, close=False)
    active = tmp_path / "audit.log"
    # As if the process died after renaming the full file and before creating the new one.
    os.rename(active, rotated_path(active, len(files)))
    log = open_log(tmp_path, keys, rotate_bytes=4096)
    log.write(event(99))
    log.close()
    assert verify(rotation_set(active), keys).intact


def test_many_threads_writing_at_once_produce_one_valid_chain(tmp_path: Path, keys: AuditKeys) -> None:
    log = AuditLog.open(tmp_path / "audit.log", keys, checkpoint_every=50, rotate_bytes=64 * 1024,
                        durability=Durability.RECORD, checkpoint_seconds=0.05)
    threads, per_thread = 8, 250
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def work(t: int) -> None:
        start.wait()
        try:
            for i in range(per_thread):
                log.write(event(t * 10_000 + i))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.close()
    assert failures == []
    files = rotation_set(tmp_path / "audit.log")
    assert len(files) > 2
    report = verify(files, keys)
    assert report.intact, report.problem
    assert report.events == threads * per_thread and report.closed_cleanly
    ids = {r["request_id"] for f in files for r in records(f) if r["type"] == "event"}
    assert len(ids) == threads * per_thread


def _failing_write(after_bytes: int, error: int) -> Callable[[int, Any], int]:
    """os.write that writes `after_bytes` of the next record and then fails, as a full disk does."""
    real = os.write
    calls = {"n": 0}

    fail_at = 2 if after_bytes else 1

    def fake(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] < fail_at:
            return real(fd, bytes(data[:after_bytes]))
        if calls["n"] == fail_at:
            raise OSError(error, os.strerror(error))
        return real(fd, data)

    return fake


def test_a_failed_write_raises_and_leaves_no_half_record(tmp_path: Path, keys: AuditKeys,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(tmp_path, keys)
    log.write(event(1))
    size = (tmp_path / "audit.log").stat().st_size
    monkeypatch.setattr(writer_mod.os, "write", _failing_write(17, errno.ENOSPC))
    with pytest.raises(AuditUnavailable) as caught:
        log.write(event(2))
    assert caught.value.public_reason == "audit log is full"
    assert "No space left" in str(caught.value)
    assert (tmp_path / "audit.log").stat().st_size == size  # the partial record was cut back
    log.write(event(3))  # space came back: the chain goes on where it was
    log.close()
    report = verify([tmp_path / "audit.log"], keys)
    assert report.intact and report.events == 2 and log.stats().write_failures == 1


def test_with_fail_closed_off_a_lost_record_is_counted_in_the_next_checkpoint(
    tmp_path: Path, keys: AuditKeys, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = open_log(tmp_path, keys, fail_closed=False)
    monkeypatch.setattr(writer_mod.os, "write", _failing_write(0, errno.EIO))
    log.write(event(1))  # no exception: the call goes ahead
    log.ensure_available()  # and calls are not refused up front either
    assert log.stats().dropped == 1
    assert "fail_closed is off" in caplog.text
    log.close()
    report = verify([tmp_path / "audit.log"], keys)
    assert report.intact and report.dropped == 1 and report.events == 0


def test_a_failed_fsync_stops_the_log_until_restart(tmp_path: Path, keys: AuditKeys,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(tmp_path, keys, durability=Durability.RECORD)

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writer_mod.os, "fsync", broken_fsync)
    with pytest.raises(AuditUnavailable, match="cannot sync"):
        log.write(event(1))
    monkeypatch.undo()
    with pytest.raises(AuditUnavailable, match="restart"):
        log.write(event(2))
    with pytest.raises(AuditUnavailable):
        log.ensure_available()
    with pytest.raises(AuditUnavailable, match="without its shutdown checkpoint"):
        log.close()
    # The restart scans the file and carries on.
    again = open_log(tmp_path, keys)
    again.close()
    assert verify([tmp_path / "audit.log"], keys).intact


def test_durability_checkpoint_syncs_only_at_checkpoints(tmp_path: Path, keys: AuditKeys,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(tmp_path, keys, durability=Durability.CHECKPOINT, checkpoint_every=5)
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(writer_mod.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    for i in range(4):
        log.write(event(i))
    assert calls == []
    log.write(event(5))  # the fifth record brings a checkpoint, which must reach the disk
    assert len(calls) == 1
    log.close()


def test_a_closed_log_refuses_writes(tmp_path: Path, keys: AuditKeys) -> None:
    log = open_log(tmp_path, keys)
    log.close()
    log.close()  # twice is fine
    with pytest.raises(AuditUnavailable, match="closed"):
        log.write(event(1))
    with pytest.raises(AuditUnavailable, match="closed"):
        log.ensure_available()


def test_an_audit_directory_that_cannot_be_made_fails_at_open(tmp_path: Path, keys: AuditKeys) -> None:
    (tmp_path / "not-a-dir").write_text("")
    with pytest.raises(AuditUnavailable, match="cannot create audit directory"):
        AuditLog.open(tmp_path / "not-a-dir" / "audit.log", keys, background=False)


def test_a_symlinked_active_file_is_refused(tmp_path: Path, keys: AuditKeys) -> None:
    (tmp_path / "elsewhere").write_text("")
    (tmp_path / "audit.log").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(AuditUnavailable):
        open_log(tmp_path, keys)


_FULL_DISK_SCRIPT = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from secretsvc.audit.keys import AuditKeys
    from secretsvc.audit.writer import AuditLog
    from secretsvc.errors import AuditUnavailable
    from tests.unit.audit.support import event

    directory = Path(sys.argv[1])
    keys = AuditKeys.load_or_create(directory)
    log = AuditLog.open(directory / "audit" / "audit.log", keys, background=False)
    # From here the process may not grow any file past 3000 bytes: the kernel answers EFBIG, as a full disk
    # answers ENOSPC (Python ignores SIGXFSZ, so the write fails instead of killing the process).
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, resource.RLIM_INFINITY))
    written = 0
    try:
        for i in range(100):
            log.write(event(i))
            written += 1
    except AuditUnavailable as exc:
        print(f"{written} {exc.public_reason}: {exc}")
        sys.exit(0)
    sys.exit("no failure")
""")


def test_a_file_size_limit_in_a_real_process_raises_audit_unavailable(tmp_path: Path, keys: AuditKeys) -> None:
    result = subprocess.run([sys.executable, "-c", _FULL_DISK_SCRIPT, str(tmp_path)], capture_output=True,
                            text=True, timeout=60, check=False, cwd=Path(__file__).parents[3])
    assert result.returncode == 0, result.stderr
    written, rest = result.stdout.split(" ", 1)
    assert int(written) > 0 and rest.startswith("audit log is full:") and "File too large" in rest
    active = tmp_path / "audit" / "audit.log"
    assert active.stat().st_size <= 3000 and active.read_bytes().endswith(b"\n")
    own_keys = AuditKeys.load_or_create(tmp_path)
    report = verify([active], own_keys)
    assert report.intact and report.events == int(written) and not report.closed_cleanly
    # Once space is back (a new process without the limit), the log goes on.
    log = AuditLog.open(active, own_keys, background=False)
    log.write(event(1000))
    log.close()
    assert verify([active], own_keys).intact


def test_with_hmac_paths_no_path_appears_in_clear(tmp_path: Path, keys: AuditKeys) -> None:
    paths = ["payments/db/password", "team-x/very/secret/name"]
    log = open_log(tmp_path, keys, hmac_paths=True, rotate_bytes=4096)
    for i in range(30):
        log.write(event(i, resource=paths[i % 2]))
        log.write(event(i, resource="my-transit-key", kind="transit_key"))
    log.write(event(99, resource="root-key", kind="system"))
    log.close()
    files = rotation_set(tmp_path / "audit.log")
    everything = b"".join(f.read_bytes() for f in files)
    for clear in (*paths, "my-transit-key", "payments", "secret/name"):
        assert clear.encode() not in everything
    assert resource_hmac(keys.hmac_key, paths[0]).encode() in everything
    assert b'"resource":"root-key"' in everything  # system names are our own words, not the caller's
    assert verify(files, keys).intact


def test_without_hmac_paths_paths_are_in_clear(tmp_path: Path, keys: AuditKeys) -> None:
    (path,) = write_log(tmp_path, keys, 1)
    assert records(path)[1]["resource"] == "team/app/secret-0"


@pytest.mark.parametrize("settings", [
    {"checkpoint_every": 0}, {"checkpoint_every": 10**9}, {"checkpoint_seconds": -1},
    {"checkpoint_seconds": 0.001}, {"rotate_bytes": 100}, {"rotate_bytes": 1.5},
])
def test_out_of_range_settings_are_config_errors(tmp_path: Path, keys: AuditKeys, settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="audit"):
        open_log(tmp_path, keys, **settings)
    assert not (tmp_path / "audit.log").exists()


def test_zero_turns_off_rotation_and_interval_checkpoints(tmp_path: Path, keys: AuditKeys) -> None:
    files = write_log(tmp_path, keys, 30, rotate_bytes=0, checkpoint_seconds=0)
    assert files == [tmp_path / "audit.log"]


def test_the_log_object_keeps_its_keys_to_itself(tmp_path: Path, keys: AuditKeys) -> None:
    log = open_log(tmp_path, keys)
    assert keys.hmac_key.reveal().hex() not in repr(log) and "audit.log" in repr(log)
    with pytest.raises(TypeError):
        pickle.dumps(log)
    log.close()


def test_durability_changes_syncs_changes_at_once_and_reads_soon_after(tmp_path: Path, keys: AuditKeys,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(tmp_path, keys, durability=Durability.CHANGES)
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(writer_mod.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    log.write(event(1), changed=False)
    log.write(event(2), changed=False)
    assert calls == [] and log.stats().unsynced == 2
    log.write(event(3))  # a change waits for its fsync, which covers the reads before it
    assert len(calls) == 1 and log.stats().unsynced == 0
    log.write(event(4), changed=False)
    log.sync_written()
    assert len(calls) == 2 and log.stats().unsynced == 0
    log.sync_written()  # nothing new: no second fsync
    assert len(calls) == 2
    log.close()
    assert verify([tmp_path / "audit.log"], keys).events == 4


def test_durability_changes_background_thread_syncs_reads_within_the_window(tmp_path: Path,
                                                                            keys: AuditKeys) -> None:
    log = AuditLog.open(tmp_path / "audit.log", keys, durability=Durability.CHANGES, checkpoint_seconds=0)
    try:
        log.write(event(1), changed=False)
        deadline = time.monotonic() + 20 * writer_mod.READ_SYNC_SECONDS
        while log.stats().unsynced and time.monotonic() < deadline:
            time.sleep(writer_mod.READ_SYNC_SECONDS / 4)
        assert log.stats().unsynced == 0
    finally:
        log.close()


def test_durability_record_syncs_reads_too(tmp_path: Path, keys: AuditKeys) -> None:
    log = open_log(tmp_path, keys, durability=Durability.RECORD)
    log.write(event(1), changed=False)
    assert log.stats().unsynced == 0
    log.close()


def test_a_broken_log_is_not_synced_again_on_every_tick(tmp_path: Path, keys: AuditKeys,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    log = AuditLog.open(tmp_path / "audit.log", keys, durability=Durability.CHANGES, checkpoint_seconds=0)
    log.write(event(1), changed=False)

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writer_mod.os, "fsync", broken_fsync)
    deadline = time.monotonic() + 20 * writer_mod.READ_SYNC_SECONDS
    while log.stats().broken is None and time.monotonic() < deadline:
        time.sleep(writer_mod.READ_SYNC_SECONDS / 4)
    assert log.stats().broken is not None and "restart" in log.stats().broken
    failures = log.stats().write_failures
    time.sleep(5 * writer_mod.READ_SYNC_SECONDS)  # ticks pass: no more fsync attempts, no more warnings
    assert log.stats().write_failures == failures
    assert caplog.text.count("audit interval checkpoint or sync failed") <= 1
    monkeypatch.undo()
    with pytest.raises(AuditUnavailable):
        log.close()
