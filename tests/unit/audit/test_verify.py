"""Verification of real logs written with real keys: every kind of tampering is found, and the first bad
record is named; what cannot be detected (whole records cut after the last checkpoint) is reported as such."""

from __future__ import annotations

import base64
import itertools
import json
import os
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsvc.audit import limits
from secretsvc.audit.files import default_path, expand, rotated_path
from secretsvc.audit.keys import AuditKeys
from secretsvc.audit.record import record_hash
from secretsvc.audit.verify import ProblemKind, _last_checkpoint_offset, scan_tail, verify_files
from secretsvc.errors import InvalidArgument
from tests.unit.audit.support import (
    event,
    line_of,
    lines,
    open_log,
    put_lines,
    records,
    reencode,
    verify,
    write_log,
)


@pytest.fixture(scope="module")
def keys() -> AuditKeys:
    return AuditKeys.generate()


@pytest.fixture
def one_file(tmp_path: Path, keys: AuditKeys) -> Path:
    """20 events, a checkpoint every 5: start(0) e1..e5 cp6 e7..e11 cp12 e13..e17 cp18 e19..e23 cp24 shutdown25."""
    (path,) = write_log(tmp_path, keys, 20, checkpoint_every=5)
    return path


@pytest.fixture
def many_files(tmp_path: Path, keys: AuditKeys) -> list[Path]:
    files = write_log(tmp_path, keys, 60, checkpoint_every=7, rotate_bytes=4096)
    assert len(files) >= 5
    return files


def test_an_intact_log_verifies(one_file: Path, keys: AuditKeys) -> None:
    report = verify([one_file], keys)
    assert report.intact and report.problem is None
    assert (report.events, report.checkpoints, report.first_seq, report.last_seq) == (20, 6, 0, 25)
    assert report.closed_cleanly and report.unsigned == 0 and report.starts_at_genesis
    assert report.unclean_stops == () and report.dropped == 0


def test_an_intact_multi_file_log_verifies_across_rotations(many_files: list[Path], keys: AuditKeys) -> None:
    report = verify(many_files, keys)
    assert report.intact, report.problem
    assert report.events == 60 and report.closed_cleanly
    for earlier, later in itertools.pairwise(many_files):
        assert records(earlier)[-1]["reason"] == "rotation"
        first = records(later)[0] if lines(later) else None
        if first is not None:
            assert first["prev"] == record_hash(lines(earlier)[-1].rstrip(b"\n"))


def _modify(path: Path, index: int, **changes: object) -> None:
    all_lines = lines(path)
    record = json.loads(all_lines[index])
    record.update(changes)
    all_lines[index] = reencode(record)
    put_lines(path, all_lines)


def test_a_modified_field_names_the_modified_record(one_file: Path, keys: AuditKeys) -> None:
    index = line_of(one_file, seq=8)
    _modify(one_file, index, principal="token:someone-else")  # re-encoded: canonical, only the chain shows it
    problem = verify([one_file], keys).problem
    assert problem is not None and problem.kind is ProblemKind.CHAIN
    assert (problem.at.file, problem.at.line, problem.at.seq) == (one_file, index + 1, 8)
    assert "modified" in problem.message


def test_a_modified_byte_that_breaks_the_spelling_names_that_line(one_file: Path, keys: AuditKeys) -> None:
    all_lines = lines(one_file)
    index = line_of(one_file, seq=9)
    all_lines[index] = all_lines[index].replace(b'"code":"OK"', b'"code": "OK"')
    put_lines(one_file, all_lines)
    problem = verify([one_file], keys).problem
    assert problem is not None and problem.kind is ProblemKind.MALFORMED and problem.at.line == index + 1


def test_a_modified_checkpoint_signature_is_found(one_file: Path, keys: AuditKeys) -> None:
    index = line_of(one_file, seq=12)
    record = records(one_file)[index]
    assert record["type"] == "checkpoint"
    other = keys.signing_key.sign(b"something else")  # a real signature by the right key, of other bytes
    _modify(one_file, index, sig=base64.b64encode(other).decode())
    problem = verify([one_file], keys).problem
    assert problem is not None and problem.kind is ProblemKind.SIGNATURE
    assert (problem.at.line, problem.at.seq) == (index + 1, 12)


def test_an_inserted_record_is_named(one_file: Path, keys: AuditKeys) -> None:
    """A forger who links the new record to its predecessor and gives it the next number."""
    all_lines = lines(one_file)
    index = line_of(one_file, seq=8)
    forged = json.loads(all_lines[index])
    forged.update(seq=9, prev=record_hash(all_lines[index].rstrip(b"\n")), request_id="forged")
    all_lines.insert(index + 1, reencode(forged))
    put_lines(one_file, all_lines)
    problem = verify([one_file], keys).problem
    assert problem is not None and problem.kind is ProblemKind.SEQUENCE
    assert (problem.at.line, problem.at.seq) == (index + 2, 9)
    assert "inserted" in problem.message


def test_a_duplicated_line_is_found_where_it_stands(one_file: Path, keys: AuditKeys) -> None:
    all_lines = lines(one_file)
    all_lines.insert(line_of(one_file, seq=14) + 1, all_lines[line_of(one_file, seq=3)])
    put_lines(one_file, all_lines)
    problem = verify([one_file], keys).problem
    assert problem is not None and problem.kind is ProblemKind.SEQUENCE and problem.at.seq == 3


def test_a_removed_record_is_found_at_the_gap(one_file: Path, keys: AuditKeys) -> None:
    all_lines = lines(one_file)
    index = line_of(one_file, seq=8)
    del all_lines[index]
    put_lines(one_file, all_lines)
    problem = verify([one_file], keys).problem
    assert problem is not None and problem.kind is ProblemKind.SEQUENCE
    assert (problem.at.line, problem.at.seq) == (index + 1, 9)
    assert "expected seq 8" in problem.message and "removed" in problem.message


def test_a_forger_who_rebuilds_the_chain_is_stopped_by_the_next_checkpoint(one_file: Path, keys: AuditKeys) -> None:
    """Remove seq 8, renumber and re-link everything up to and including the checkpoint at 12: only the
    signature, which the forger cannot make, shows it."""
    all = records(one_file)
    index = line_of(one_file, seq=8)
    del all[index]
    out: list[bytes] = []
    for i, record in enumerate(all):
        if index <= i and record["seq"] <= 12:
            record["seq"] -= 1
        if i >= index and record["seq"] <= 11:
            record["prev"] = record_hash(out[-1].rstrip(b"\n"))
        out.append(reencode(record))
    put_lines(one_file, out)
    problem = verify([one_file], keys).problem
    assert problem is not None and problem.kind is ProblemKind.SIGNATURE and problem.at.seq == 11


def test_two_swapped_records_are_found(one_file: Path, keys: AuditKeys) -> None:
    all_lines = lines(one_file)
    a, b = line_of(one_file, seq=8), line_of(one_file, seq=9)
    all_lines[a], all_lines[b] = all_lines[b], all_lines[a]
    put_lines(one_file, all_lines)
    problem = verify([one_file], keys).problem
    assert problem is not None and problem.kind is ProblemKind.SEQUENCE
    assert (problem.at.line, problem.at.seq) == (a + 1, 9)


def test_a_file_cut_mid_line_is_found(one_file: Path, keys: AuditKeys) -> None:
    data = one_file.read_bytes()
    count = data.count(b"\n")
    one_file.write_bytes(data[:-40])
    problem = verify([one_file], keys).problem
    assert problem is not None and problem.kind is ProblemKind.INCOMPLETE and problem.at.line == count


def test_whole_records_cut_after_the_last_checkpoint_cannot_be_detected_only_counted(
    tmp_path: Path, keys: AuditKeys
) -> None:
    """A running (or crashed) server's newest records are protected by the chain alone until a checkpoint
    signs them: cutting whole lines from the end leaves a valid, shorter chain. The report does not call it
    intact-and-complete: it says how many records are unsigned and that the log was not closed."""
    log = open_log(tmp_path, keys, checkpoint_every=5)
    for i in range(13):  # start(0) e1..e5 cp6 e7..e11 cp12 e13 e14 e15
        log.write(event(i))
    (path,) = [tmp_path / "audit.log"]
    before = verify([path], keys)
    assert before.intact and before.unsigned == 3 and not before.closed_cleanly
    assert before.last_checkpoint is not None and before.last_checkpoint.seq == 12
    put_lines(path, lines(path)[:-2])
    after = verify([path], keys)
    assert after.intact and after.unsigned == 1 and not after.closed_cleanly and after.last_seq == 13


def test_a_closed_log_cut_at_a_line_boundary_no_longer_ends_closed(one_file: Path, keys: AuditKeys) -> None:
    put_lines(one_file, lines(one_file)[:-4])
    report = verify([one_file], keys)
    assert report.intact and not report.closed_cleanly and report.unsigned == 3  # e19..e21 after cp18


def test_a_deleted_middle_file_is_found(many_files: list[Path], keys: AuditKeys) -> None:
    missing = many_files[2]
    remaining = [f for f in many_files if f != missing]
    missing.unlink()
    problem = verify(remaining, keys).problem
    assert problem is not None and problem.kind is ProblemKind.SEQUENCE
    assert (problem.at.file, problem.at.line) == (many_files[3], 1)
    assert "file before it is missing" in problem.message
    # The same through the directory: the numbering has a gap, and the chain shows it.
    assert verify(expand([many_files[0].parent]), keys).problem == problem


def test_files_in_the_wrong_order_are_found(many_files: list[Path], keys: AuditKeys) -> None:
    reordered = [many_files[0], many_files[2], many_files[1], *many_files[3:]]
    problem = verify(reordered, keys).problem
    assert problem is not None and problem.kind is ProblemKind.SEQUENCE
    assert (problem.at.file, problem.at.line) == (many_files[2], 1)


def test_renumbered_files_in_a_directory_are_found(many_files: list[Path], keys: AuditKeys) -> None:
    a, b = many_files[1], many_files[2]
    spare = a.with_name("spare")
    os.rename(a, spare)
    os.rename(b, a)
    os.rename(spare, b)
    problem = verify(expand([a.parent]), keys).problem
    assert problem is not None and problem.kind is ProblemKind.SEQUENCE
    assert (problem.at.file, problem.at.line) == (a, 1)


def test_pruned_oldest_files_still_verify_from_where_they_start(many_files: list[Path], keys: AuditKeys) -> None:
    report = verify(many_files[2:], keys)
    assert report.intact and not report.starts_at_genesis and report.first_seq is not None
    assert report.first_seq > 0


def test_a_replaced_first_record_of_the_log_is_found(one_file: Path, keys: AuditKeys) -> None:
    _modify(one_file, 0, prev="f" * 64)
    problem = verify([one_file], keys).problem
    assert problem is not None and problem.kind is ProblemKind.CHAIN and problem.at.seq == 0


def test_the_wrong_public_key_is_a_usage_error_not_tampering(one_file: Path) -> None:
    report = verify([one_file], AuditKeys.generate())
    assert not report.intact and report.wrong_key
    assert report.problem is not None and report.problem.at.seq == 0


def test_a_checkpoint_claiming_another_key_midway_is_tampering(one_file: Path, keys: AuditKeys) -> None:
    _modify(one_file, line_of(one_file, seq=12), key_id="ed25519:" + "0" * 32)
    report = verify([one_file], keys)
    assert report.problem is not None and report.problem.kind is ProblemKind.UNKNOWN_KEY and not report.wrong_key


def test_a_file_of_one_huge_line_is_refused_without_reading_it_into_memory(tmp_path: Path, keys: AuditKeys) -> None:
    huge = tmp_path / "huge.log"
    with huge.open("wb") as handle:
        for _ in range(40):
            handle.write(b"x" * (1 << 20))
        handle.write(b"\n")
    tracemalloc.start()
    try:
        problem = verify([huge], keys).problem
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert problem is not None and problem.kind is ProblemKind.TOO_LONG and problem.at.line == 1
    assert "MAX_LINE_BYTES" in problem.message
    assert peak < 8 * limits.MAX_LINE_BYTES


def test_empty_files_are_not_an_intact_log(tmp_path: Path, keys: AuditKeys) -> None:
    empty = tmp_path / "audit.log"
    empty.write_bytes(b"")
    problem = verify([empty], keys).problem
    assert problem is not None and problem.kind is ProblemKind.EMPTY


def test_a_blank_line_is_malformed(one_file: Path, keys: AuditKeys) -> None:
    all_lines = lines(one_file)
    all_lines.insert(3, b"\n")
    put_lines(one_file, all_lines)
    problem = verify([one_file], keys).problem
    assert problem is not None and problem.kind is ProblemKind.MALFORMED and problem.at.line == 4


def test_an_unreadable_file_is_a_usage_error(tmp_path: Path, keys: AuditKeys) -> None:
    with pytest.raises(InvalidArgument, match="cannot read"):
        verify_files([tmp_path / "nope.log"], keys.public_key)
    with pytest.raises(InvalidArgument, match="no audit files"):
        verify_files([], keys.public_key)


def test_an_unclean_stop_is_reported_with_the_records_signed_late(tmp_path: Path, keys: AuditKeys) -> None:
    crashed = open_log(tmp_path, keys, checkpoint_every=100)
    for i in range(4):
        crashed.write(event(i))
    # No close: the process died. The next start signs what it finds and says so.
    restarted = open_log(tmp_path, keys, checkpoint_every=100)
    restarted.write(event(9))
    restarted.close()
    report = verify([tmp_path / "audit.log"], keys)
    assert report.intact and report.closed_cleanly
    assert len(report.unclean_stops) == 1
    stop = report.unclean_stops[0]
    assert stop.signed_late == 4 and stop.restart.seq == 5


def test_directory_expansion_lists_rotated_files_oldest_first(many_files: list[Path]) -> None:
    directory = many_files[0].parent
    assert expand([directory]) == many_files
    assert many_files[0] == rotated_path(directory / "audit.log", 1)
    assert many_files[-1] == directory / "audit.log"
    with pytest.raises(InvalidArgument, match="no audit files"):
        expand([directory], name="other.log")
    assert expand([many_files[1], many_files[0]]) == [many_files[1], many_files[0]]  # files: as given
    assert default_path(Path("/var/lib/secretsvc")) == Path("/var/lib/secretsvc/audit/audit.log")


def test_the_writers_tail_scan_starts_at_the_last_checkpoint_across_read_blocks(
    tmp_path: Path, keys: AuditKeys
) -> None:
    # 400 events after the last checkpoint: about 180 KB, several of the scan's 64 KiB blocks back.
    (path,) = write_log(tmp_path, keys, 450, close=False, checkpoint_every=50)
    log = open_log(tmp_path, keys, checkpoint_every=1000)
    for i in range(400):
        log.write(event(i, resource="r" * (i % 300)))  # lines of varied length straddle block edges
    raw = path.read_bytes()
    last_checkpoint = raw.rindex(b'"type":"checkpoint"')
    expected = raw.rindex(b"\n", 0, last_checkpoint) + 1
    with path.open("rb") as handle:
        assert _last_checkpoint_offset(handle, len(raw)) == expected
    tail = scan_tail(path, keys.public_key)
    assert tail.problem is None and tail.incomplete_at is None
    assert tail.next_seq == json.loads(raw.splitlines()[-1])["seq"] + 1
    assert tail.head == record_hash(raw.splitlines()[-1])


@pytest.fixture(scope="module")
def closed_log(tmp_path_factory: pytest.TempPathFactory, keys: AuditKeys) -> bytes:
    (path,) = write_log(tmp_path_factory.mktemp("closed"), keys, 12, checkpoint_every=4)
    return path.read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_to_a_closed_log_is_found(
    closed_log: bytes, keys: AuditKeys, tmp_path: Path, data: st.DataObject
) -> None:
    """A closed log is signed to its last line: no change of any byte, anywhere, verifies."""
    position = data.draw(st.integers(0, len(closed_log) - 1))
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != closed_log[position]))
    changed = closed_log[:position] + bytes([replacement]) + closed_log[position + 1:]
    path = tmp_path / "audit.log"
    path.write_bytes(changed)
    assert not verify([path], keys).intact


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_cut_of_a_closed_log_is_found_or_reported_as_not_closed(
    closed_log: bytes, keys: AuditKeys, tmp_path: Path, data: st.DataObject
) -> None:
    end = data.draw(st.integers(1, len(closed_log) - 1))
    path = tmp_path / "audit.log"
    path.write_bytes(closed_log[:end])
    report = verify([path], keys)
    assert not report.intact or not report.closed_cleanly
