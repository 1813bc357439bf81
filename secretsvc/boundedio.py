"""Reading small files whose size we do not control (configs, baselines, key and token files) with a bound."""

from __future__ import annotations

from pathlib import Path

from secretsvc.errors import SecretsvcError


def read_bounded(path: Path, limit: int, *, what: str, limit_name: str, error: type[SecretsvcError]) -> bytes:
    """The file's bytes, or `error` naming the file: unreadable, or larger than `limit` (`limit_name`).

    Reads at most limit + 1 bytes, so a huge or endless file (/dev/zero, a pipe that never ends) costs
    nothing more. Pipes are allowed on purpose: `--token-file <(pass show ...)` keeps a secret off the disk.
    These paths come from the operator, not from untrusted input; image files are opened by
    `scan/sources/safeopen.py`, which refuses anything but regular files.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise error(f"{what} {path} is larger than {limit_name}={limit} bytes")
    return raw
