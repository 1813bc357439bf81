"""One audit chain written by several processes at once (`AuditLog.open(shared=True)`, the server's workers)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from secretsvc.audit.files import rotation_set
from secretsvc.audit.keys import AuditKeys
from secretsvc.audit.writer import AuditLog
from tests.unit.audit.support import event, records, verify

# Each process writes its events as fast as it can, from two threads, into the same log, rotating small files.
_WRITER = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    from secretsvc.audit.keys import AuditKeys
    from secretsvc.audit.writer import AuditLog
    from tests.unit.audit.support import event

    directory, name, count, first = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    keys = AuditKeys.load_or_create(directory)
    log = AuditLog.open(directory / "audit" / "audit.log", keys, shared=True, start_checkpoint=first,
                        checkpoint_every=7, rotate_bytes=8192, background=False)

    def run(part):
        for i in range(count):
            log.write(event(i, resource=f"{name}/{part}/{i}"))

    threads = [threading.Thread(target=run, args=(part,)) for part in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
""")


def _writer(directory: Path, name: str, count: int, *, first: bool) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(directory), name, str(count), "1" if first else "0"],
                            cwd=Path(__file__).parents[3], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_processes_sharing_a_log_write_one_chain_across_rotations(tmp_path: Path) -> None:
    keys = AuditKeys.load_or_create(tmp_path)
    # The first process marks the start; the others join it, as the server's workers do.
    AuditLog.open(tmp_path / "audit" / "audit.log", keys, shared=True, background=False).close()
    procs = [_writer(tmp_path, f"p{n}", 150, first=False) for n in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    files = rotation_set(tmp_path / "audit" / "audit.log")
    assert len(files) > 3  # rotations happened while the others wrote
    report = verify(files, keys)
    assert report.intact, report.problem
    assert report.events == 3 * 2 * 150
    assert report.unclean_stops == ()
    written = {r["resource"] for f in files for r in records(f) if r["type"] == "event"}
    assert written == {f"p{n}/{part}/{i}" for n in range(3) for part in range(2) for i in range(150)}


def test_a_log_not_shared_is_unchanged_by_the_lock_file(tmp_path: Path) -> None:
    keys = AuditKeys.generate()
    log = AuditLog.open(tmp_path / "audit.log", keys, background=False)
    log.write(event(1))
    log.close()
    assert not (tmp_path / "audit.log.lock").exists()
    assert verify(rotation_set(tmp_path / "audit.log"), keys).intact
