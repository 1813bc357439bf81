"""Opening the files an image source names without following links out of it or blocking on special files.

A layout directory comes from whoever built the image: `blobs/sha256/<hex>` may be a symbolic link to
/dev/zero, /etc/passwd or another tarball, a FIFO, or `blobs` itself a link to elsewhere. So inside a
layout nothing is followed by the kernel: `open_in` opens each path component relative to its parent with
O_NOFOLLOW. A symbolic link is resolved by name, within the layout (`docker save` links a repeated layer
as `../<id>/layer.tar`), and refused if it is absolute or climbs out of it.

A path the user gives (the archive or layout on the command line, a docker config) may be a symbolic
link (people link their archives) and is followed, by `open_file` and for the layout root.

Either way what is opened must be a regular file: every open is O_NONBLOCK, so a FIFO cannot block it,
`fstat` then refuses FIFOs, devices, sockets and directories, and O_NONBLOCK is cleared for the reads.
Failures raise `errors.NotFound` (absent) or `errors.InvalidArgument` naming the file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import posixpath
import stat
from pathlib import Path
from typing import BinaryIO

from secretsvc import errors

#: Symbolic links resolved for one name inside a layout; real layouts use one, a loop stops here.
MAX_LINK_HOPS = 8
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _regular(fd: int, what: str) -> BinaryIO:
    """`fd` as a blocking binary file if it is a regular file; closed and refused otherwise."""
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise errors.InvalidArgument(f"{what} is {_kind(mode)}, not a regular file")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_file(path: Path) -> BinaryIO:
    """A file the user named: symbolic links followed, but it must be a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise errors.NotFound(f"{path} does not exist") from None
    except OSError as exc:
        raise errors.InvalidArgument(f"cannot open {path}: {exc.strerror or exc}") from None
    return _regular(fd, str(path))


def layout_parts(name: str) -> list[str]:
    """The components of a name inside a layout: no leading "/", ".." kept from climbing above the root."""
    if "\0" in name:
        raise errors.InvalidArgument(f"name {name[:100]!r} in an image layout holds a NUL character")
    norm = posixpath.normpath("/" + name).lstrip("/")
    return norm.split("/") if norm else []


def open_in(root: Path, name: str) -> BinaryIO:
    """The regular file `name` inside the layout directory `root`, never leaving it (see the module doc)."""
    what = f"{name!r} in {root}"
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the user's path: may be a link
    except FileNotFoundError:
        raise errors.NotFound(f"{root} does not exist") from None
    except OSError as exc:
        raise errors.InvalidArgument(f"cannot open layout {root}: {exc.strerror or exc}") from None
    try:
        parts = layout_parts(name)
        for _ in range(MAX_LINK_HOPS + 1):
            if not parts:
                raise errors.InvalidArgument(f"{what} names the layout directory itself")
            opened = _open_parts(root_fd, parts, what)
            if isinstance(opened, int):
                return _regular(opened, what)
            parts = opened
        raise errors.InvalidArgument(f"{what}: more than {MAX_LINK_HOPS} symbolic links (a loop?)")
    finally:
        os.close(root_fd)


def _open_parts(root_fd: int, parts: list[str], what: str) -> int | list[str]:
    """An fd of the file `parts` names below `root_fd`, or, at a symbolic link, the parts it stands for."""
    dir_fd = root_fd
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                fd = os.open(part, _FILE_FLAGS if last else _DIR_FLAGS, dir_fd=dir_fd)
            except FileNotFoundError:
                raise errors.NotFound(f"{what} does not exist") from None
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise errors.InvalidArgument(f"cannot open {what}: {exc.strerror or exc}") from None
                return _through_link(dir_fd, parts, i, what)
            if last:
                return fd
            if dir_fd != root_fd:
                os.close(dir_fd)
            dir_fd = fd
        raise AssertionError("unreachable: parts is not empty")
    finally:
        if dir_fd != root_fd:
            os.close(dir_fd)


def _through_link(dir_fd: int, parts: list[str], i: int, what: str) -> list[str]:
    """`parts` with the symbolic link at `parts[i]` replaced by its target, which must stay in the layout."""
    try:
        target = os.readlink(parts[i], dir_fd=dir_fd)
    except OSError:
        # Not a link: a plain file where a directory was expected.
        raise errors.InvalidArgument(f"{what}: {'/'.join(parts[: i + 1])!r} is not a directory") from None
    if target.startswith("/"):
        raise errors.InvalidArgument(f"{what} is a symbolic link to an absolute path, outside the layout")
    joined = posixpath.normpath(posixpath.join(*parts[:i], target) if i else target)
    if joined == ".." or joined.startswith("../"):
        raise errors.InvalidArgument(f"{what} is a symbolic link that leads out of the layout")
    rest = parts[i + 1 :]
    return [p for p in joined.split("/") if p not in ("", ".")] + rest
