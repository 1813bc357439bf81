"""Opening archives found inside layer files (zip/jar/war/whl/egg, gzip) without letting them explode.

Everything happens in memory on bytes already bounded by `ScanLimits.max_file_bytes`. A shared
`ExpansionBudget` caps the total expanded size of one outermost archive and everything nested in it, each
member is read with an explicit size cap (declared sizes are only used to refuse early, never trusted), and
the compression ratio is checked both from the declared sizes and from what was actually produced. When a
limit is hit the caller gets a `ScanWarning` with a stable "limit.*" code and the rest is skipped: a bomb is
stopped, not expanded. Tar archives are walked by `walk`, which owns tar handling.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import ScanWarning

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
GZIP_MAGIC = b"\x1f\x8b"
_READ_BLOCK = 1 << 20

Warn = Callable[[str, str, str], None]  # (code, message, path)


class ExpansionBudget:
    """Bytes an outermost archive and its nested archives may still expand to. Mutable, per archive."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.exhausted = False


def archive_kind(data: bytes) -> str | None:
    """ "zip", "gzip", "tar" or None, from magic bytes."""
    if data.startswith(ZIP_MAGICS):
        return "zip"
    if data.startswith(GZIP_MAGIC):
        return "gzip"
    if len(data) >= 262 and data[257:262] == b"ustar":
        return "tar"
    return None


def member_name(name: str) -> str:
    """A member name for display: no leading '/', no '..' escaping (never used on a filesystem)."""
    return posixpath.normpath("/" + name.replace("\\", "/")).lstrip("/")


def _ratio_exceeded(expanded: int, compressed: int, limits: ScanLimits) -> bool:
    return expanded > limits.ratio_check_min_bytes and expanded > limits.max_compression_ratio * max(compressed, 1)


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # path inside the archive
    data: bytes


def zip_members(data: bytes, path: str, limits: ScanLimits, budget: ExpansionBudget, warn: Warn) -> Iterator[Member]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        warn("archive.corrupt", "not a readable zip archive", path)
        return
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_archive_entries:
            warn(
                "limit.archive_entries",
                f"archive has {len(infos)} entries; only the first {limits.max_archive_entries} are scanned",
                path,
            )
            infos = infos[: limits.max_archive_entries]
        for info in infos:
            if info.is_dir() or info.file_size == 0:
                continue
            name = member_name(info.filename)
            inner = f"{path}!{name}"
            if _ratio_exceeded(info.file_size, info.compress_size, limits):
                warn(
                    "limit.compression_ratio",
                    f"entry declares a compression ratio over {limits.max_compression_ratio}; skipped",
                    inner,
                )
                continue
            cap = min(limits.max_file_bytes, budget.left)
            if cap <= 0:
                _exhausted(budget, limits, warn, path)
                return
            try:
                with zf.open(info) as f:
                    out = _read_capped(f, cap, info.compress_size, limits)
            except _RatioExceeded:
                warn(
                    "limit.compression_ratio",
                    f"entry expands over {limits.max_compression_ratio}x; skipped",
                    inner,
                )
                continue
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                OSError,
                ValueError,
                NotImplementedError,
                RuntimeError,
            ):
                # RuntimeError: encrypted entry; NotImplementedError: unsupported compression method
                warn("archive.corrupt", "zip entry cannot be read", inner)
                continue
            budget.left -= len(out)
            if len(out) >= cap and info.file_size > cap:
                if cap < limits.max_file_bytes:
                    _exhausted(budget, limits, warn, path)
                else:
                    warn(
                        "limit.file_size",
                        f"entry larger than {limits.max_file_bytes} bytes; scanned in part",
                        inner,
                    )
            yield Member(name, out)


class _RatioExceeded(Exception):
    pass


def _read_capped(f: IO[bytes], cap: int, compressed: int, limits: ScanLimits) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < cap:
        block = f.read(min(_READ_BLOCK, cap - got))
        if not block:
            break
        parts.append(block)
        got += len(block)
        if _ratio_exceeded(got, compressed, limits):
            raise _RatioExceeded
    return b"".join(parts)


def _exhausted(budget: ExpansionBudget, limits: ScanLimits, warn: Warn, path: str) -> None:
    if not budget.exhausted:
        budget.exhausted = True
        warn(
            "limit.expanded_bytes",
            f"archive expands beyond {limits.max_expanded_bytes_per_archive} bytes; the rest is skipped",
            path,
        )


def gunzip_member(data: bytes, path: str, limits: ScanLimits, budget: ExpansionBudget, warn: Warn) -> Member | None:
    """The single member of a .gz/.tgz, decompressed with caps; None (after a warning) if unusable."""
    base = posixpath.basename(path.rsplit("!", 1)[-1])
    if base.endswith(".tgz"):
        name = base[:-4] + ".tar"
    elif base.endswith(".gz") and len(base) > 3:
        name = base[:-3]
    else:
        name = base + ".out"
    cap = min(limits.max_file_bytes, budget.left)
    if cap <= 0:
        _exhausted(budget, limits, warn, path)
        return None
    d = zlib.decompressobj(wbits=31)
    parts: list[bytes] = []
    got = 0
    buf = data
    try:
        while buf and got < cap and not d.eof:
            out = d.decompress(buf, min(_READ_BLOCK, cap - got))
            buf = d.unconsumed_tail
            parts.append(out)
            got += len(out)
            if _ratio_exceeded(got, len(data), limits):
                warn("limit.compression_ratio", f"expands over {limits.max_compression_ratio}x; skipped", path)
                return None
            if not out and not buf:
                break
    except zlib.error:
        warn("archive.corrupt", "corrupt gzip data", path)
        return None
    budget.left -= got
    if got >= cap and not d.eof:
        if cap < limits.max_file_bytes:
            _exhausted(budget, limits, warn, path)
        else:
            warn("limit.file_size", f"expands beyond {limits.max_file_bytes} bytes; scanned in part", path)
    elif not d.eof:
        warn("archive.truncated", "gzip data ends early; scanned what was there", path)
    return Member(name, b"".join(parts))


def make_warn(on_warning: Callable[[ScanWarning], None], layer_index: int | None) -> Warn:
    def warn(code: str, message: str, path: str) -> None:
        on_warning(ScanWarning(code=code, message=message, layer_index=layer_index, path=path))

    return warn
