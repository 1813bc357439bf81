"""What changes when a file is rewritten in place, or swapped by a rename or a symlink flip (a Kubernetes
mounted Secret or ConfigMap): its device, inode, size and modification time, following links. Cheap enough to
take every second, so files that reload without a restart (certificates, policies) compare signatures."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

Signature = tuple[tuple[int, int, int, int] | None, ...]


def signature(paths: Iterable[Path]) -> Signature:
    """One entry per path, None for a path that cannot be stat'ed (missing, unreadable)."""
    result: list[tuple[int, int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            result.append(None)
        else:
            result.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(result)
