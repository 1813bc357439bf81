"""Where the agent writes: a memory-backed directory, one file at a time, never half a file.

Each file is written to a temporary name in the same directory (`secretsvc.atomicfile`: created exclusively
with its final mode and owner), fsynced, and renamed over the old one, so a reader sees the old content or the
new, whole. The directory must be a tmpfs (or ramfs): a secret written to a disk-backed volume outlives the
pod. Names starting with '.' are the agent's own (temporary files, `.version`, `.ready`); the plan never names
one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from secretsvc import atomicfile
from secretsvc.crypto.secretbytes import SecretBytes

TMPFS_MAGIC = 0x01021994
RAMFS_MAGIC = 0x858458F6
VERSION_FILE = ".version"
READY_FILE = ".ready"


class NotMemoryBacked(Exception):
    """The target directory is on a disk-backed file system."""


def filesystem_type(path: Path) -> int:
    """statfs(2)'s f_type (os.statvfs does not report the file system's type)."""
    import ctypes

    class _StatFs(ctypes.Structure):
        _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 120)]

    # The interpreter's own symbols include the C library's: ctypes.util.find_library would run ldconfig in a
    # subprocess to find it again, a tenth of the agent's start-up.
    libc = ctypes.CDLL(None, use_errno=True)
    buf = _StatFs()
    if libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(path))
    return int(buf.f_type) & 0xFFFFFFFF


def require_memory_backed(path: Path) -> None:
    kind = filesystem_type(path)
    if kind not in (TMPFS_MAGIC, RAMFS_MAGIC):
        raise NotMemoryBacked(f"{path} is not a tmpfs (file system type {kind:#x}); secrets are written only to "
                              "memory-backed volumes (emptyDir medium: Memory), or pass --unsafe-allow-disk")


def write_atomically(directory: Path, name: str, data: SecretBytes | bytes, *, mode: int,
                     uid: int | None = None, gid: int | None = None) -> None:
    raw = data.reveal() if isinstance(data, SecretBytes) else data
    atomicfile.write_atomically(directory / name, raw, mode=mode, uid=uid, gid=gid)


def write_versions(directory: Path, versions: Mapping[str, int]) -> None:
    """`.version`: for every secret written, the version it had (JSON, readable by the app's group)."""
    write_atomically(directory, VERSION_FILE, json.dumps(dict(sorted(versions.items())), indent=2).encode() + b"\n",
                     mode=0o444)


def mark_ready(directory: Path) -> None:
    write_atomically(directory, READY_FILE, b"", mode=0o444)


def is_ready(directory: Path) -> bool:
    return (directory / READY_FILE).is_file()
