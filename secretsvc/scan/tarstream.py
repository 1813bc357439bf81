"""The project's one tar reader: bounded, checked headers over a stream, or an index of a seekable file.

`tarfile`'s stream mode costs more per member than scanning the member does, and its pax parsing backtracks
quadratically on some inputs (the CVE-2024-6232 pattern). `TarReader` reads ustar, GNU (long names and
links, base-256 numbers, old sparse) and pax headers, checks every header checksum, refuses extended headers
over `max_header` bytes before reading them, reads each pax record's length from at most 20 digits, keeps
only the pax keys it uses, and hands member data out of the stream's blocks with one copy. Like `tarfile`,
it stops at the first zero block and accepts a stream that ends right after the last member's data (some
writers omit the padding and end blocks). Every problem raises `TarError` carrying the warning code.

The layer walker reads layers through `TarReader`; `index_tar` runs the same reader over an image archive
on disk (`docker save`, an OCI archive), seeking over member data, so blobs can then be read in place.
"""

from __future__ import annotations

import posixpath
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

_BLOCKSIZE = 512
_ZERO_BLOCK = bytes(_BLOCKSIZE)
_AREGTYPE, _DIRTYPE = 0, ord("5")
_LNKTYPE, _SYMTYPE = ord("1"), ord("2")
_LINK_TYPES = frozenset((_LNKTYPE, _SYMTYPE))
_GNU_LONGNAME, _GNU_LONGLINK, _GNU_SPARSE = ord("L"), ord("K"), ord("S")
_PAX_GLOBAL = ord("g")
_REGULAR_TYPES = frozenset(b"07S\0")
_KNOWN_TYPES = frozenset(b"01234567LKSxgX\0")
_GNU_TYPES = frozenset(b"LKS")
_EXTENDED_TYPES = frozenset(b"LKxgX")  # read whole into memory: bounded by max_tar_header_bytes
_GNU_MAGIC = b"ustar  \0"
_PAX_KEPT = frozenset({b"path", b"size", b"linkpath"})
_TAR_READ_BYTES = 1 << 20  # per read from the layer stream (its worker hands out blocks of about this size)
_INDEX_READ_BYTES = 64 * 1024  # per read while indexing a file: headers and small members, data is seeked over


class Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class TarError(Exception):
    """A tar stream that cannot be read on; `code` is the warning code to report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Buffered:
    """Exact-size reads over a stream that hands out blocks, copying only what a caller keeps."""

    __slots__ = ("_buf", "_pos", "_raw", "_read_bytes", "_seek", "consumed")

    def __init__(
        self, raw: Reader, read_bytes: int = _TAR_READ_BYTES, seek: Callable[[int], int] | None = None
    ) -> None:
        self._raw = raw
        self._read_bytes = read_bytes
        self._seek = seek  # skips up to n bytes of `raw` without reading them; returns how many were there
        self._buf = b""
        self._pos = 0
        self.consumed = 0  # bytes taken or skipped so far

    def take(self, n: int) -> bytes:
        """`n` bytes, or fewer only at the end of the stream."""
        buf, pos = self._buf, self._pos
        end = pos + n
        if end <= len(buf):
            self._pos = end
            self.consumed += n
            return buf[pos:end]
        parts = [buf[pos:]] if pos < len(buf) else []
        got = len(buf) - pos
        self._buf, self._pos = b"", 0
        while got < n:
            block = self._raw.read(self._read_bytes)
            if not block:
                break
            need = n - got
            if len(block) > need:
                parts.append(block[:need])
                self._buf, self._pos = block, need
                got = n
                break
            parts.append(block)
            got += len(block)
        self.consumed += got
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def skip(self, n: int) -> int:
        """Discard up to `n` bytes; returns how many were there."""
        left = n
        while left > 0:
            avail = len(self._buf) - self._pos
            if avail <= 0:
                if self._seek is not None:
                    self._buf, self._pos = b"", 0
                    left -= self._seek(left)
                    break
                block = self._raw.read(self._read_bytes)
                if not block:
                    break
                self._buf, self._pos = block, 0
                continue
            step = min(avail, left)
            self._pos += step
            left -= step
        self.consumed += n - left
        return n - left


class MemberData:
    """The data of one tar member, read through the shared buffer (never past the member's end)."""

    __slots__ = ("_src", "left", "size")

    def __init__(self, src: Buffered, size: int) -> None:
        self._src = src
        self.size = size
        self.left = size

    def read(self, n: int = -1, /) -> bytes:
        if n < 0 or n > self.left:
            n = self.left
        if n <= 0:
            return b""
        data = self._src.take(n)
        self.left -= len(data)
        return data


@dataclass(frozen=True, slots=True)
class TarMember:
    name: str
    type: int  # the typeflag byte
    size: int  # data bytes that follow the header
    linkname: str = ""  # target of a hard or symbolic link

    @property
    def isdir(self) -> bool:
        return self.type == _DIRTYPE

    @property
    def isreg(self) -> bool:
        return self.type in _REGULAR_TYPES

    @property
    def issym(self) -> bool:
        return self.type == _SYMTYPE

    @property
    def islnk(self) -> bool:
        return self.type == _LNKTYPE


def _tar_number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 for values too large for it."""
    if field and field[0] in (0x80, 0xFF):
        n = int.from_bytes(field[1:], "big")
        return n - (1 << (8 * (len(field) - 1))) if field[0] == 0xFF else n
    text = field.split(b"\0", 1)[0].strip()
    if text and not text.isdigit():
        raise TarError("tar.corrupt", "malformed number in tar header")
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise TarError("tar.corrupt", "malformed number in tar header") from None


def _tar_text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _checksum_ok(hdr: bytes) -> bool:
    stored = _tar_number(hdr[148:156])
    # The byte sum, in C: adler32's low half is 1 + the sum mod 65521, exact for 256 bytes (at most 65280).
    total = (zlib.adler32(hdr[:256]) & 0xFFFF) + (zlib.adler32(hdr[256:]) & 0xFFFF) - 2
    # The checksum field itself counts as eight spaces (8 * 0x20 = 256).
    if 256 + total - sum(hdr[148:156]) == stored:
        return True
    signed: tuple[int, ...] = struct.unpack_from("148b8x356b", hdr)  # some old writers summed signed chars
    return 256 + sum(signed) == stored


def _pax_records(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(keyword, value) of each "LEN KEY=VALUE\\n" record of a pax extended header."""
    pos, end = 0, len(data)
    while pos < end and data[pos] != 0:
        space = data.find(b" ", pos, min(end, pos + 20))
        length_text = data[pos:space] if space > pos else b""
        if not length_text.isdigit():
            raise TarError("tar.corrupt", "malformed pax extended header")
        length = int(length_text)
        record = data[space + 1 : pos + length]
        if length <= len(length_text) + 1 or pos + length > end or not record.endswith(b"\n") or b"=" not in record:
            raise TarError("tar.corrupt", "malformed pax extended header")
        key, _, value = record[:-1].partition(b"=")
        yield key, value
        pos += length


class TarReader:
    """Tar headers (ustar, GNU long names, pax, old GNU sparse) read from a stream, bounded and checked.

    Only what the walker needs is parsed: the path, the type and the data size. Extended headers larger
    than `max_header` are refused before they are read. Errors raise `TarError` with a warning code.
    """

    def __init__(
        self,
        raw: Reader,
        max_header: int,
        *,
        read_bytes: int = _TAR_READ_BYTES,
        seek: Callable[[int], int] | None = None,
    ) -> None:
        self.src = Buffered(raw, read_bytes, seek)
        self._max_header = max_header
        self._global: dict[bytes, bytes] = {}  # pax global header: only path and size are kept
        self._members = 0
        self._complete = True  # the previous member's data was all there

    def next(self) -> TarMember | None:
        """The next member whose data follows; None at the end of the archive."""
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[bytes, bytes] = {}
        while True:
            hdr = self.src.take(_BLOCKSIZE)
            if len(hdr) < _BLOCKSIZE:
                if not hdr and self._complete and not pax and long_name is None:
                    return None  # an empty stream, or a writer that omits the end-of-archive blocks
                if self._members == 0 and not pax and long_name is None:
                    raise TarError("tar.corrupt", "not a readable tar: shorter than one header")
                raise TarError("tar.truncated", "tar stream stops inside a header")
            if hdr == _ZERO_BLOCK:
                return None
            if not _checksum_ok(hdr):
                what = "not a readable tar" if self._members == 0 else "tar stream stops"
                raise TarError("tar.corrupt", f"{what}: bad tar header checksum")
            typ = hdr[156]
            size = _tar_number(hdr[124:136])
            if size < 0:
                raise TarError("tar.corrupt", "negative size in tar header")
            if typ in _EXTENDED_TYPES:
                if size > self._max_header:
                    raise TarError(
                        "limit.tar_header",
                        f"tar extended header of {size} bytes (limit {self._max_header}); rest of the tar skipped",
                    )
                data = self.src.take(size)
                if len(data) < size or self.src.skip(-size % _BLOCKSIZE) < -size % _BLOCKSIZE:
                    raise TarError("tar.truncated", "tar stream stops inside an extended header")
                if typ == _GNU_LONGNAME:
                    long_name = _tar_text(data)
                elif typ == _GNU_LONGLINK:
                    long_link = _tar_text(data)
                elif typ == _PAX_GLOBAL:
                    for key, value in _pax_records(data):
                        if key in _PAX_KEPT:
                            self._global[key] = value
                else:
                    # Only the keys used are kept, so a chain of extended headers cannot grow memory.
                    pax.update(kv for kv in _pax_records(data) if kv[0] in _PAX_KEPT)
                continue
            if typ == _GNU_SPARSE and hdr[482]:
                self._skip_sparse_extensions()
            name = _tar_text(hdr[0:100])
            if hdr[257:265] != _GNU_MAGIC and hdr[345] and typ not in _GNU_TYPES:
                name = _tar_text(hdr[345:500]) + "/" + name
            if long_name is not None:
                name = long_name
            merged = {**self._global, **pax} if self._global else pax
            if b"path" in merged:
                name = merged[b"path"].decode("utf-8", "surrogateescape")
            if b"size" in merged:
                if not merged[b"size"].isdigit():
                    raise TarError("tar.corrupt", "malformed size in pax header")
                size = int(merged[b"size"])
            linkname = ""
            if typ in _LINK_TYPES:
                linkname = long_link if long_link is not None else _tar_text(hdr[157:257])
                if b"linkpath" in merged:
                    linkname = merged[b"linkpath"].decode("utf-8", "surrogateescape")
            if typ == _AREGTYPE and name.endswith("/"):
                typ = _DIRTYPE
            if typ == _DIRTYPE:
                name = name.rstrip("/")
            # As tarfile: data follows regular files and unknown types, not links, dirs or devices.
            if typ not in _REGULAR_TYPES and typ in _KNOWN_TYPES:
                size = 0
            self._members += 1
            return TarMember(name=name, type=typ, size=size, linkname=linkname)

    def _skip_sparse_extensions(self) -> None:
        while True:
            ext = self.src.take(_BLOCKSIZE)
            if len(ext) < _BLOCKSIZE:
                raise TarError("tar.truncated", "tar stream stops inside a sparse header")
            if not ext[504]:
                return

    def finish_member(self, data: MemberData) -> None:
        """Skip what the walker left of a member's data, and its padding."""
        left = data.left
        skipped = self.src.skip(left) if left else 0
        self._complete = skipped == left
        if not self._complete:
            raise TarError("tar.truncated", "tar stream stops inside a member's data")
        # The padding may be missing at the very end of the stream: `next` then sees a clean end.
        self.src.skip(-data.size % _BLOCKSIZE)


def index_tar(f: BinaryIO, *, max_entries: int, max_header: int) -> Iterator[tuple[TarMember, int]]:
    """Each member of a seekable tar file with the offset of its data, member data seeked over, not read.

    Headers are read and bounded exactly as in a layer (`max_header`); more than `max_entries` members
    raise TarError "limit.archive_entries", and data running past the end of the file "tar.truncated".
    """
    size = f.seek(0, 2)
    f.seek(0)

    def seek(n: int) -> int:
        here = f.tell()
        to = min(here + n, size)
        f.seek(to)
        return to - here

    reader = TarReader(f, max_header, read_bytes=_INDEX_READ_BYTES, seek=seek)
    count = 0
    while (member := reader.next()) is not None:
        count += 1
        if count > max_entries:
            raise TarError("limit.archive_entries", f"more than max_archive_entries={max_entries} members")
        yield member, reader.src.consumed
        reader.finish_member(MemberData(reader.src, member.size))


def clean_path(name: str) -> tuple[str, bool]:
    """Layer path without leading "/" or "./"; `unsafe` when it was absolute or used ".."."""
    unsafe = name.startswith("/") or ".." in name.split("/")
    if name.startswith("./"):
        name = name[2:]
    norm = posixpath.normpath("/" + name).lstrip("/")
    return norm, unsafe
