"""The data directory: creation with 0700, checks, and the one-server lock across processes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from secretsvc.datadir import DataDir, default_data_dir
from secretsvc.errors import DataDirLocked, StorageError

HOLDER = """
import sys
from pathlib import Path
from secretsvc.datadir import DataDir
with DataDir.open(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_open_creates_the_directory_with_0700(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "data"
    old_umask = os.umask(0o077)  # a umask must not decide the mode, in either direction
    try:
        with DataDir.open(target) as data:
            assert stat.S_IMODE(target.stat().st_mode) == 0o700
            assert data.path == target
            assert data.database == target / "secretsvc.db"
            assert data.keyring == target / "keyring.json"
            assert (target / "lock").read_text() == f"{os.getpid()}\n"
            assert stat.S_IMODE((target / "lock").stat().st_mode) & 0o077 == 0
    finally:
        os.umask(old_umask)


def test_existing_directory_is_accepted_and_its_mode_kept(tmp_path: Path) -> None:
    tmp_path.chmod(0o750)
    with DataDir.open(tmp_path) as data:
        assert data.locked
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o750


def test_release_clears_the_pid_and_allows_reopening(tmp_path: Path) -> None:
    data = DataDir.open(tmp_path)
    data.release()
    data.release()
    assert not data.locked
    assert (tmp_path / "lock").read_text() == ""
    with DataDir.open(tmp_path):
        pass


def test_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with DataDir.open(tmp_path), pytest.raises(DataDirLocked, match=f"pid {os.getpid()}"):
        DataDir.open(tmp_path)


@pytest.mark.timeout(60)
def test_lock_held_by_another_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(DataDirLocked) as info:
            DataDir.open(tmp_path)
        assert str(info.value) == (
            f"data directory {tmp_path} is in use by another secretsvc server (pid {holder.pid})"
        )
        assert isinstance(info.value, StorageError)
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    # The holder is gone, so its lock is too.
    with DataDir.open(tmp_path) as data:
        assert data.locked


def test_killed_holder_does_not_leave_a_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    holder.kill()
    holder.wait()
    assert (tmp_path / "lock").read_text().strip() == str(holder.pid)  # the pid outlives the process
    with DataDir.open(tmp_path) as data:
        assert data.locked
        assert (tmp_path / "lock").read_text() == f"{os.getpid()}\n"


def test_unreadable_pid_is_reported_as_unknown(tmp_path: Path) -> None:
    with DataDir.open(tmp_path):
        (tmp_path / "lock").write_text("x" * 100)
        with pytest.raises(DataDirLocked, match=r"\(pid unknown\)"):
            DataDir.open(tmp_path)


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.write_text("")
    with pytest.raises(StorageError, match="not a directory"):
        DataDir.open(target)


def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.mkdir()
    target.chmod(0o777)
    with pytest.raises(StorageError, match="writable by other users"):
        DataDir.open(target)
    assert not (target / "lock").exists()


def test_a_symlinked_lock_file_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "lock").symlink_to(elsewhere)
    with pytest.raises(StorageError, match="cannot open lock file"):
        DataDir.open(data)


def test_default_data_dir() -> None:
    assert default_data_dir({"XDG_DATA_HOME": "/xdg", "HOME": "/home/u"}) == Path("/xdg/secretsvc")
    assert default_data_dir({"HOME": "/home/u"}) == Path("/home/u/.local/share/secretsvc")
    # A relative XDG_DATA_HOME is invalid by the spec and ignored.
    assert default_data_dir({"XDG_DATA_HOME": "rel", "HOME": "/home/u"}) == Path(
        "/home/u/.local/share/secretsvc")
    assert default_data_dir({"SECRETSVC_DATA_DIR": "/ignored", "HOME": "/home/u"}) == Path(
        "/home/u/.local/share/secretsvc")
    assert default_data_dir({}) == Path.home() / ".local" / "share" / "secretsvc"
