"""The server's data directory: where it lives, who may use it, and the lock that keeps it to one server.

`DataDir.open` creates the directory (mode 0700) if needed, checks that it is a directory this process can
write and that no other user can write into, then takes an exclusive, non-blocking `flock` on `<dir>/lock`
and writes our pid there. A second server pointed at the same directory fails at start-up with
`DataDirLocked` naming the holder's pid, instead of two servers sharing one keyring and database. The lock
goes with the process: kill -9 releases it, so a stale lock file never blocks a restart.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from secretsvc.errors import DataDirLocked, StorageError

DIR_MODE = 0o700
LOCK_FILE = "lock"
DATABASE_FILE = "secretsvc.db"
KEYRING_FILE = "keyring.json"
# The lock file holds one pid; anything longer was not written by us.
MAX_LOCK_FILE_BYTES = 32


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_DATA_HOME/secretsvc, else ~/.local/share/secretsvc. ($SECRETSVC_DATA_DIR is config's business.)"""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_DATA_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "secretsvc"
    home = env.get("HOME", "")
    base = Path(home) if home and Path(home).is_absolute() else Path.home()
    return base / ".local" / "share" / "secretsvc"


class DataDir:
    """A locked data directory. Use as a context manager, or call `release()`."""

    __slots__ = ("_fd", "_path")

    def __init__(self, path: Path, fd: int | None) -> None:
        self._path = path
        self._fd: int | None = fd

    @classmethod
    def open(cls, path: Path) -> DataDir:
        path = Path(path)
        _prepare_dir(path)
        lock_path = path / LOCK_FILE
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open lock file {lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = "unknown" if holder is None else str(holder)
                raise DataDirLocked(
                    f"data directory {path} is in use by another secretsvc server (pid {who})"
                ) from None
            raise StorageError(f"cannot lock {lock_path}: {exc.strerror}") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)  # also drops the lock
            raise StorageError(f"cannot write lock file {lock_path}: {exc.strerror}") from None
        return cls(path, fd)

    @classmethod
    def held_by_supervisor(cls, path: Path) -> DataDir:
        """The directory of a worker process whose supervisor holds the lock for all of them
        (`serve --processes`, rpc/workers.py): checked like `open`, not locked again."""
        path = Path(path)
        _prepare_dir(path)
        return cls(path, None)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def database(self) -> Path:
        return self._path / DATABASE_FILE

    @property
    def keyring(self) -> Path:
        return self._path / KEYRING_FILE

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give up the lock; safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Clear the pid first so no reader sees ours after we are gone.
            os.ftruncate(fd, 0)
        except OSError:
            pass  # the lock still goes with the descriptor
        finally:
            os.close(fd)

    def __enter__(self) -> DataDir:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"DataDir({str(self._path)!r}, locked={self.locked})"


def _prepare_dir(path: Path) -> None:
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=False)
        # mkdir's mode passes through the umask; set it exactly.
        os.chmod(path, DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageError(f"cannot create data directory {path}: {exc.strerror}") from None
    try:
        info = os.stat(path)
    except OSError as exc:
        raise StorageError(f"cannot use data directory {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StorageError(f"data directory {path} exists and is not a directory")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StorageError(
            f"data directory {path} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}); "
            f"make it 0700"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise StorageError(f"data directory {path} is not writable by this process")


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, MAX_LOCK_FILE_BYTES + 1, 0)
    except OSError:
        return None
    if len(raw) > MAX_LOCK_FILE_BYTES:
        return None
    text = raw.decode("ascii", errors="replace").strip()
    return int(text) if text.isdigit() else None
