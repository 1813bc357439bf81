"""An on-disk cache of compiled trigger databases, so a scan does not compile the same rules at every start.

One file per rule set, named by a SHA-256 over the Hyperscan version, the machine, and every trigger with
its flags in order (a trigger's position is its detector id, so the order is part of the database): any
change to the rules (an edit, `--rules`, `[rules] disabled`) is another file. A file holds a magic, a
SHA-256 of the database and the database as `hyperscan.dumpb` wrote it. A file that is missing, too
large, truncated, corrupt, not ours (another owner, writable by others) or from another Hyperscan version
is ignored and the database compiled again (a debug log line says why); a directory that cannot be
written only means there is no cache. The files hold compiled patterns only, never scanned data.

Directory: `$SECRETSVC_RULE_CACHE` if set (`0` or `off` disables the cache), else
`$XDG_CACHE_HOME/secretsvc`, else `~/.cache/secretsvc`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secretsvc.atomicfile import write_atomically

log = logging.getLogger(__name__)

CACHE_ENV = "SECRETSVC_RULE_CACHE"
DISABLED_VALUES = frozenset({"0", "off", "no", "false"})
MAGIC = b"secretsvc trigger db 1\n"
SUFFIX = ".hsdb"
MAX_CACHE_FILE_BYTES = 64 << 20  # the built-in rules compile to ~170 KB; ten times as many to ~2 MB
MAX_CACHE_FILES = 16  # older files (by last use) are removed when a new one is written


@dataclass(frozen=True, slots=True)
class DatabaseCache:
    directory: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> DatabaseCache | None:
        """The cache the environment asks for, or None when it is turned off or there is no home."""
        chosen = environ.get(CACHE_ENV, "").strip()
        if chosen.lower() in DISABLED_VALUES:
            return None
        if chosen:
            return cls(Path(chosen))
        xdg = environ.get("XDG_CACHE_HOME", "").strip()
        if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative value is to be ignored
            return cls(Path(xdg) / "secretsvc")
        try:
            return cls(Path.home() / ".cache" / "secretsvc")
        except RuntimeError:  # no $HOME and no password entry
            return None

    def key(self, engine_version: str, triggers: Sequence[tuple[bytes, int]]) -> str:
        """The file name for a database of these (expression, flags) triggers, in order."""
        canonical = json.dumps(
            [engine_version, platform.machine(), [[t.hex(), flags] for t, flags in triggers]], separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest() + SUFFIX

    def load(self, key: str, deserialize: Callable[[bytes], Any]) -> Any | None:
        """The cached database, or None (with a debug line saying why) when there is no usable file."""
        path = self.directory / key
        try:
            raw = self._read(path)
            if raw is None:
                return None
            database = deserialize(_unwrap(raw))
        except Exception as exc:
            log.debug("rule cache: ignoring %s: %s", path, _reason(exc))
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last use, for pruning
        log.debug("rule cache: loaded %s (%d bytes)", path.name, len(raw))
        return database

    def store(self, key: str, serialized: bytes) -> None:
        """Write the database; a failure is logged at debug level and otherwise ignored."""
        data = MAGIC + hashlib.sha256(serialized).digest() + serialized
        if len(data) > MAX_CACHE_FILE_BYTES:
            log.debug("rule cache: a %d-byte database is larger than MAX_CACHE_FILE_BYTES; not cached", len(data))
            return
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomically(self.directory / key, data, mode=0o600)
            self._prune(keep=key)
        except OSError as exc:
            log.debug("rule cache: cannot write in %s: %s", self.directory, exc.strerror or exc)
            return
        log.debug("rule cache: wrote %s (%d bytes)", key, len(data))

    def _read(self, path: Path) -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            # A compiled database is code-like input to a C library: take only our own, unshared files.
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
                raise ValueError("not a regular file of this user, or writable by others")
            raw = handle.read(MAX_CACHE_FILE_BYTES + 1)
        if len(raw) > MAX_CACHE_FILE_BYTES:
            raise ValueError("larger than MAX_CACHE_FILE_BYTES")
        return raw

    def _prune(self, keep: str) -> None:
        files = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(SUFFIX) and entry.name != keep and entry.is_file(follow_symlinks=False):
                files.append((entry.stat(follow_symlinks=False).st_mtime, entry.path))
        files.sort(reverse=True)
        for _, old in files[MAX_CACHE_FILES - 1 :]:
            with contextlib.suppress(OSError):
                os.unlink(old)


def _unwrap(raw: bytes) -> bytes:
    header = len(MAGIC) + 32
    if len(raw) < header or not raw.startswith(MAGIC):
        raise ValueError("not a trigger database file")
    body = raw[header:]
    if hashlib.sha256(body).digest() != raw[len(MAGIC) : header]:
        raise ValueError("checksum mismatch (truncated or corrupt)")
    return body


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    return f"{type(exc).__name__}: {exc}"
