"""Names of the audit log's files: the active file, and the rotated files before it, oldest first.

The server appends to the active file (`audit.log` by default). When it passes rotate_bytes, it ends with a
rotation checkpoint and is renamed to `audit.log.000001`, then `audit.log.000002`, and so on: the number only
grows, so the oldest file has the smallest number, one rename rotates, and a shell glob
(`audit.log.* audit.log`) lists them in chain order up to 999999 rotations (the number widens after that;
`secretsvc audit verify DIR` sorts numerically). Rotated files are never renamed again, so a log shipper
can read them by name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from secretsvc.audit import limits
from secretsvc.errors import InvalidArgument

DEFAULT_DIRECTORY = "audit"
DEFAULT_NAME = "audit.log"
INDEX_DIGITS = 6


def default_path(data_dir: Path) -> Path:
    """Where the server writes the log unless told otherwise: DATA_DIR/audit/audit.log. A directory of its
    own, so a log shipper can be given it without the keys beside it in the data directory."""
    return data_dir / DEFAULT_DIRECTORY / DEFAULT_NAME


def rotated_path(active: Path, index: int) -> Path:
    return active.with_name(f"{active.name}.{index:0{INDEX_DIGITS}d}")


def rotated_files(active: Path) -> list[tuple[int, Path]]:
    """The rotated files of `active` that exist, with their numbers, oldest first."""
    pattern = re.compile(re.escape(active.name) + r"\.(\d{" + str(INDEX_DIGITS) + r",})")
    found: list[tuple[int, Path]] = []
    try:
        entries = os.scandir(active.parent)
    except FileNotFoundError:
        return []
    with entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match and int(match.group(1)) > 0:
                found.append((int(match.group(1)), Path(entry.path)))
                if len(found) > limits.MAX_FILES:
                    raise InvalidArgument(f"more than MAX_FILES={limits.MAX_FILES} rotated audit files")
    return sorted(found)


def rotation_set(active: Path) -> list[Path]:
    """Every file of the log, in chain order: rotated files, oldest first, then the active file if present."""
    files = [path for _, path in rotated_files(active)]
    if active.exists():
        files.append(active)
    return files


def expand(arguments: Sequence[Path], *, name: str = DEFAULT_NAME) -> list[Path]:
    """The files `secretsvc audit verify` reads, in order: each file as given, in the order given, and each
    directory replaced by its rotation set for the active file `name`."""
    files: list[Path] = []
    for argument in arguments:
        if argument.is_dir():
            found = rotation_set(argument / name)
            if not found:
                raise InvalidArgument(f"{argument} holds no audit files named {name} or {name}.NNNNNN")
            files.extend(found)
        else:
            files.append(argument)
        if len(files) > limits.MAX_FILES:
            raise InvalidArgument(f"more than MAX_FILES={limits.MAX_FILES} audit files to verify")
    return files
