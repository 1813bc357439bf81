"""Writing a file so that a crash leaves either the old content or the new, never a torn one.

The data goes to a temporary file in the same directory, created with the final mode (so a secret is 0600
from the moment it exists), fsynced, then published under the real name, and the directory is fsynced so the
name survives a crash too. Errors are the OSError they are: each caller words them for its own file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600, overwrite: bool = True,
                     uid: int | None = None, gid: int | None = None) -> None:
    """Write `data` to `path` with file mode `mode` (and owner `uid`/`gid` where given), whole or not at all.

    `overwrite` renames the temporary file over `path`. Without it the file is published with a hard link,
    which raises FileExistsError if `path` exists, even one that appeared while this was writing (two first
    starts racing): an existing file is never replaced. The temporary file is gone whatever happens.
    """
    temp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(temp, _TEMP_FLAGS, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            if uid is not None or gid is not None:
                os.fchown(handle.fileno(), -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(handle.fileno(), mode)  # the umask may have taken bits from a mode such as 0644
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            os.link(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make the names created, renamed or removed in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
