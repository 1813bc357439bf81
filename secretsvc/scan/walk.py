"""The layer walker: image config and layer tars -> `Content` units, plus warnings and a `LayerIndex`.

Layers are read as streams and never extracted: each regular file is read up to
`max_file_bytes` and handed on in `chunk_bytes` pieces that overlap by `chunk_overlap_bytes` (so a match
inside the overlap can be seen twice: deduplicate on `offset + match.start`). Whiteouts, opaque directories,
links and every added path are recorded in the `LayerIndex` so the pipeline can later say whether a file a
finding came from was deleted or overwritten by a later layer. Links are recorded, never followed: a hard
link's content is its target's, which this layer already yielded.

Tar headers are parsed here rather than by `tarfile`, whose stream mode costs more per member than
scanning the member does: `TarReader` reads ustar, GNU (long names, base-256 numbers, old sparse) and
pax headers, checks every header checksum, refuses extended headers over `max_tar_header_bytes` before
reading them, keeps only the pax keys it uses, and hands member data out of the stream's blocks with
one copy. Like `tarfile`, it stops at the first zero block and accepts a stream that ends right after
the last member's data (some writers omit the padding and end blocks).

Nested archives are expanded in memory to `max_nested_depth` (paths "outer.zip!inner/file"); binary files
are scanned with every non-printable byte read as a newline (`binary=True`), and with each run of at least
`MIN_UTF16_RUN` printable UTF-16LE characters (Windows binaries, some SQLite databases) read as its ASCII text
in place (the run's first half holds the text, the rest newlines, so offsets stay the file's). UTF-16 text
files (a byte-order mark, or NULs in every other byte of the sniff window) are decoded and scanned as UTF-8;
their offsets and line numbers are those of the decoded text. A SQLite database (up to
`sqlitetext.MAX_DATABASE_BYTES`) is scanned as a binary and, as one more block of the same file, as the text
values of its rows, one per line: a row's columns sit in the file with no separator between them.

Anything malformed or over a limit becomes a `ScanWarning` with a stable code and the walk goes on with the
next file or layer:

    digest.mismatch      the layer blob or its uncompressed tar does not match its digest (the findings
                         in it are still reported: the bytes are what anyone pulling the image gets)
    layer.corrupt        bad or truncated gzip/zstd data          layer.unreadable  the blob cannot be opened
    tar.truncated        the tar ends inside a header or member   tar.corrupt       a malformed tar header
    path.unsafe          an absolute path or ".." (normalised)
    file.unreadable      (walk_path) a listed file not read: an OS error, or no longer a regular file when opened
    archive.corrupt / archive.truncated                           a nested archive cannot be read fully
    limit.file_size  limit.tar_header  limit.path  limit.nested_depth  limit.archive_entries
    limit.compression_ratio  limit.expanded_bytes
    limit.layer_size  limit.image_size  limit.layer_ratio    a whole layer expands past a limit: decompression
                         stops there, the rest is not scanned and the layer's digest cannot be verified
    layer.size_mismatch  the layer blob runs past the size its descriptor gives (reading stops there, as
                         above) or ends short of it
    limit.blob_size      a layer blob with no size in its descriptor runs past max_blob_bytes
    limit.matches        (pipeline) a block holds more rule trigger hits than the rule set examines
"""

from __future__ import annotations

import codecs
import io
import os
import posixpath
import re
import stat
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from secretsvc import errors
from secretsvc.scan import sqlitetext
from secretsvc.scan.archives import (
    ExpansionBudget,
    Warn,
    archive_kind,
    gunzip_member,
    make_warn,
    zip_members,
)
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import Content, Location, ScanWarning
from secretsvc.scan.sources.image import Image
from secretsvc.scan.sources.safeopen import open_file, open_in
from secretsvc.scan.sources.stream import BlobSizeMismatch, CorruptStream, DigestMismatch, ReadStopped
from secretsvc.scan.tarstream import MemberData, Reader, TarError, TarMember, TarReader, clean_path

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_BINARY_MAGICS = (
    b"\x7fELF",
    b"\xcf\xfa\xed\xfe",
    b"\xce\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"\x28\xb5\x2f\xfd",
    b"BZh",
    b"\xfd7zXZ",
)
_TAR_SNIFF_BYTES = 512  # a tar's magic sits in its first header block
_BINARY_AS_TEXT = bytes(b if 0x20 <= b <= 0x7E or b == 0x09 else 0x0A for b in range(256))
MIN_UTF16_RUN = 8  # printable UTF-16LE characters in a row that count as a string inside a binary
MAX_UTF16_CARRY = 1024  # bytes of a UTF-16 run held back at a read's end, to be joined with the next read
# Each byte as 1 (printable ASCII), 0 (NUL) or 2 (anything else): a UTF-16LE string is "\x01\x00" repeated,
# which bytes.find locates at C speed (a regular expression over the raw bytes is ten times slower).
_UTF16_CLASSES = bytes(1 if 0x20 <= b <= 0x7E else 0 if b == 0 else 2 for b in range(256))
_UTF16_SEED = b"\x01\x00" * MIN_UTF16_RUN
_UTF16_PAIRS = re.compile(rb"(?:\x01\x00)+")
_UTF16_TAIL = re.compile(rb"(?:[\x20-\x7e]\x00)+[\x20-\x7e]?\Z|[\x20-\x7e]\Z")
_TEXT_BYTES = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x7F)])
UTF16_TEXT_SHARE = 0.9  # of the sniff window's byte pairs that must be ASCII text and a NUL for UTF-16


def utf16_strings_in_place(raw: bytes) -> bytes:
    """`raw` with every UTF-16LE run of printable characters rewritten as its ASCII text followed by newlines
    (same length), then every other non-printable byte mapped to a newline."""
    classes = raw.translate(_UTF16_CLASSES)
    i = classes.find(_UTF16_SEED)
    if i < 0:
        return raw.translate(_BINARY_AS_TEXT)
    out = bytearray(raw.translate(_BINARY_AS_TEXT))
    while i >= 0:
        m = _UTF16_PAIRS.match(classes, i)
        assert m is not None  # the seed itself matches
        end = m.end()
        half = (end - i) // 2
        out[i:end] = raw[i:end:2] + b"\n" * half
        i = classes.find(_UTF16_SEED, end)
    return bytes(out)


def utf16_encoding(head: bytes) -> tuple[str, int] | None:
    """The codec of a UTF-16 text file and the length of its byte-order mark, from its first bytes."""
    if head.startswith(codecs.BOM_UTF16_LE) and not head.startswith(codecs.BOM_UTF32_LE):
        return "utf-16-le", 2
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    pairs = len(head) // 2
    if pairs < MIN_UTF16_RUN:
        return None
    evens, odds = head[0 : 2 * pairs : 2], head[1 : 2 * pairs : 2]
    for text, nuls, codec in ((evens, odds, "utf-16-le"), (odds, evens, "utf-16-be")):
        if (
            nuls.count(0) >= UTF16_TEXT_SHARE * pairs
            and len(text.translate(None, _TEXT_BYTES)) <= (1 - UTF16_TEXT_SHARE) * pairs
        ):
            return codec, 0
    return None


class _Translating:
    """A reader that hands out a binary file's bytes already mapped by `utf16_strings_in_place`.

    A UTF-16 run that reaches the end of a read is held back (up to `MAX_UTF16_CARRY` bytes) and handed out
    with the next read, so a string is never cut in two at a read boundary."""

    __slots__ = ("_carry", "_raw")

    def __init__(self, raw: Reader, carry: bytes = b"") -> None:
        self._raw = raw
        self._carry = carry

    @staticmethod
    def split_tail(raw: bytes) -> tuple[bytes, bytes]:
        """`raw` without a trailing partial UTF-16 run, and that run."""
        if len(raw) <= 2 * MAX_UTF16_CARRY:
            return raw, b""
        m = _UTF16_TAIL.search(raw, len(raw) - MAX_UTF16_CARRY)
        if m is None or m.start() == len(raw) - MAX_UTF16_CARRY:  # no run, or one longer than the carry
            return raw, b""
        return raw[: m.start()], raw[m.start() :]

    def read(self, n: int = -1, /) -> bytes:
        carry, self._carry = self._carry, b""
        want = n - len(carry) if n >= 0 else -1
        fresh = self._raw.read(want) if want != 0 else b""
        raw = carry + fresh
        if fresh and (want < 0 or len(fresh) == want):  # more may follow: keep a run at the end for then
            raw, self._carry = self.split_tail(raw)
        return utf16_strings_in_place(raw)


class _Utf16Text:
    """A reader that decodes a UTF-16 file's bytes and hands them out as UTF-8, reading at most `limit`."""

    __slots__ = ("_decoder", "_left", "_limit", "_raw", "short")

    def __init__(self, raw: Reader, codec: str, limit: int) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        self._limit = self._left = limit
        self.short = False  # the file ended before `limit` bytes

    @property
    def got(self) -> int:
        """Bytes of the file read so far."""
        return self._limit - self._left

    def decode(self, raw: bytes, *, final: bool) -> bytes:
        return self._decoder.decode(raw, final=final).encode("utf-8", "surrogatepass")

    def read(self, n: int = -1, /) -> bytes:
        while self._left > 0:
            raw = self._raw.read(min(n if n > 0 else self._left, self._left))
            if not raw:
                self.short = True
                break
            self._left -= len(raw)
            out = self.decode(raw, final=self._left == 0)
            if out:
                return out
        return self.decode(b"", final=True)


@dataclass(slots=True)
class _LayerRecord:
    added: set[str] = field(default_factory=set)
    nondirs: set[str] = field(default_factory=set)  # files, links: a path beneath one of these is gone
    whiteouts: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)


class LayerIndex:
    """What each layer added and removed, to tell FILE from DELETED_FILE / OVERWRITTEN_FILE."""

    def __init__(self) -> None:
        self._layers: dict[int, _LayerRecord] = {}

    def _rec(self, layer: int) -> _LayerRecord:
        rec = self._layers.get(layer)
        if rec is None:
            rec = self._layers[layer] = _LayerRecord()
        return rec

    def add(self, layer: int, path: str, *, is_dir: bool) -> None:
        rec = self._rec(layer)
        rec.added.add(path)
        if not is_dir:
            rec.nondirs.add(path)

    def whiteout(self, layer: int, path: str) -> None:
        self._rec(layer).whiteouts.add(path)

    def opaque(self, layer: int, directory: str) -> None:
        self._rec(layer).opaque.add(directory)

    def location_of(self, layer_index: int, path: str) -> Location:
        """Where a file of `layer_index` stands once every later layer is applied.

        The last later layer that touches the path decides: re-adding it means OVERWRITTEN_FILE; a
        whiteout of it or of a parent, an opaque parent, or a parent replaced by a non-directory means
        DELETED_FILE. For "outer.zip!inner" the outer path is what counts.
        """
        base = path.split("!", 1)[0].strip("/")
        parts = base.split("/")
        ancestors = ["/".join(parts[:i]) for i in range(1, len(parts))]
        state = Location.FILE
        for j in sorted(k for k in self._layers if k > layer_index):
            rec = self._layers[j]
            if base in rec.added:
                state = Location.OVERWRITTEN_FILE
            elif base in rec.whiteouts or any(
                a in rec.whiteouts or a in rec.opaque or a in rec.nondirs for a in ancestors
            ):
                state = Location.DELETED_FILE
        return state


class _Walker:
    def __init__(
        self,
        limits: ScanLimits,
        index: LayerIndex | None,
        on_warning: Callable[[ScanWarning], None],
        on_progress: Callable[[int], None] | None,
    ) -> None:
        self.limits = limits
        self.index = index
        self.on_warning = on_warning
        self.on_progress = on_progress

    def warn(self, code: str, message: str, layer: int | None, path: str | None) -> None:
        self.on_warning(ScanWarning(code=code, message=message, layer_index=layer, path=path))

    # -- files ---------------------------------------------------------------------------------------

    def scan_file(
        self, f: Reader, size: int, path: str, *, layer: int, depth: int, budget: ExpansionBudget | None
    ) -> Iterator[Content]:
        lim = self.limits
        to_read = min(size, lim.max_file_bytes)
        if size > lim.max_file_bytes:
            self.warn(
                "limit.file_size",
                f"file larger than {lim.max_file_bytes} bytes; scanned in part",
                layer,
                path,
            )
        head = f.read(min(to_read, lim.chunk_bytes))
        if not head:
            if to_read:
                self._short(path, layer, 0, to_read)
            return
        kind = archive_kind(head)
        if kind is not None:
            if depth < lim.max_nested_depth and size <= lim.max_file_bytes:
                rest = f.read(to_read - len(head)) if len(head) < to_read else b""
                yield from self.expand(head + rest, kind, path, layer=layer, depth=depth, budget=budget)
                return
            if depth >= lim.max_nested_depth:
                self.warn(
                    "limit.nested_depth",
                    f"archive nested deeper than {lim.max_nested_depth}; scanned as binary",
                    layer,
                    path,
                )
            yield from self.binary_chunks(head, f, to_read, path, layer)
            return
        if head.startswith(_BINARY_MAGICS):
            yield from self.binary_chunks(head, f, to_read, path, layer)
            return
        if head.startswith(sqlitetext.MAGIC) and to_read <= sqlitetext.MAX_DATABASE_BYTES:
            yield from self.sqlite_chunks(head, f, to_read, path, layer)
            return
        sniff = head[: lim.binary_sniff_bytes]
        has_nul = b"\0" in sniff
        # Without a NUL only a byte-order mark can make it UTF-16 (a 0xFF or 0xFE byte is rare in text).
        utf16 = utf16_encoding(sniff) if has_nul or sniff[:1] in (b"\xff", b"\xfe") else None
        if utf16 is not None:
            yield from self.utf16_chunks(head, f, to_read, path, layer, *utf16)
        elif has_nul:
            yield from self.binary_chunks(head, f, to_read, path, layer)
        else:
            yield from self.text_chunks(head, f, to_read, path, layer)

    def _short(self, path: str, layer: int, got: int, wanted: int) -> None:
        self.warn("tar.truncated", f"file data ends after {got} of {wanted} bytes", layer, path)

    def text_chunks(
        self, head: bytes, f: Reader, to_read: int, path: str, layer: int, *, binary: bool = False, exact: bool = True
    ) -> Iterator[Content]:
        """`head` and the rest of `f` in overlapping blocks. `exact`: `f` holds `to_read` bytes, and ending
        sooner is a truncated file; otherwise `f` ends when it ends (decoded text) and says itself."""
        lim = self.limits
        data, offset, line, tail = head, 0, 1, b""
        while True:
            block = tail + data if tail else data
            yield Content(
                data=block,
                path=path,
                layer_index=layer,
                location=Location.FILE,
                offset=offset - len(tail),
                first_line=1 if binary else line - tail.count(b"\n"),
                binary=binary,
            )
            offset += len(data)
            if offset >= to_read:
                return
            if not binary:  # line numbers mean nothing in a binary file
                line += data.count(b"\n")
            tail = block[-lim.chunk_overlap_bytes :] if lim.chunk_overlap_bytes else b""
            data = f.read(min(lim.chunk_bytes, to_read - offset))
            if not data:
                if exact:
                    self._short(path, layer, offset, to_read)
                return

    def binary_chunks(self, head: bytes, f: Reader, to_read: int, path: str, layer: int) -> Iterator[Content]:
        """A binary file as text: every byte outside printable ASCII becomes a newline, in one C-level pass.

        The patterns only match printable characters, so nothing is lost, offsets stay those of the file,
        and there is no per-string Python work however many strings a binary holds.
        """
        first, carry = _Translating.split_tail(head) if len(head) < to_read else (head, b"")
        yield from self.text_chunks(
            utf16_strings_in_place(first), _Translating(f, carry), to_read, path, layer, binary=True
        )

    def sqlite_chunks(self, head: bytes, f: Reader, to_read: int, path: str, layer: int) -> Iterator[Content]:
        """A SQLite database as a binary, then its text values one per line (offset: the file's end, as they
        are no bytes of the file in that order)."""
        data = head + (f.read(to_read - len(head)) if len(head) < to_read else b"")
        yield from self.binary_chunks(head, io.BytesIO(data[len(head) :]), to_read, path, layer)
        values = b"\n".join(sqlitetext.text_values(data))
        if values:
            yield Content(
                data=values, path=path, layer_index=layer, location=Location.FILE, offset=to_read, binary=True
            )

    def utf16_chunks(
        self, head: bytes, f: Reader, to_read: int, path: str, layer: int, codec: str, bom: int
    ) -> Iterator[Content]:
        """A UTF-16 text file, decoded to UTF-8 block by block (each block bounded by `chunk_bytes` read)."""
        rest = _Utf16Text(f, codec, to_read - len(head))
        first = rest.decode(head[bom:], final=len(head) >= to_read)
        # The decoded length is not known in advance: read until the file ends, then check it was all there.
        yield from self.text_chunks(first, rest, sys.maxsize, path, layer, exact=False)
        if rest.short:
            self._short(path, layer, len(head) + rest.got, to_read)

    def expand(
        self, data: bytes, kind: str, path: str, *, layer: int, depth: int, budget: ExpansionBudget | None
    ) -> Iterator[Content]:
        lim = self.limits
        if budget is None:
            budget = ExpansionBudget(lim.max_expanded_bytes_per_archive)
        warn: Warn = make_warn(self.on_warning, layer)
        if kind == "zip":
            for m in zip_members(data, path, lim, budget, warn):
                inner = f"{path}!{m.name}"
                yield from self.scan_file(
                    io.BytesIO(m.data), len(m.data), inner, layer=layer, depth=depth + 1, budget=budget
                )
        elif kind == "gzip":
            member = gunzip_member(data, path, lim, budget, warn)
            if member is not None and archive_kind(member.data[:_TAR_SNIFF_BYTES]) == "tar":
                # A .tar.gz is one archive to its users: members read "x.tar.gz!inner", not "x.tar.gz!x.tar!inner".
                yield from self.walk_tar(
                    io.BytesIO(member.data), layer=layer, prefix=path + "!", depth=depth + 1, budget=budget
                )
            elif member is not None:
                inner = f"{path}!{member.name}"
                yield from self.scan_file(
                    io.BytesIO(member.data),
                    len(member.data),
                    inner,
                    layer=layer,
                    depth=depth + 1,
                    budget=budget,
                )
        else:
            yield from self.walk_tar(io.BytesIO(data), layer=layer, prefix=path + "!", depth=depth + 1, budget=budget)

    # -- tars ----------------------------------------------------------------------------------------

    def walk_tar(
        self,
        stream: Reader,
        *,
        layer: int,
        prefix: str = "",
        depth: int = 0,
        budget: ExpansionBudget | None = None,
        progress: Callable[[], None] | None = None,
    ) -> Iterator[Content]:
        """Contents of one tar; malformed input ends the walk with a warning (never an exception)."""
        top = depth == 0
        where = prefix.rstrip("!") or None
        reader = TarReader(stream, self.limits.max_tar_header_bytes)
        try:
            while True:
                member = reader.next()
                if member is None:
                    return
                data = MemberData(reader.src, member.size)
                yield from self._member(data, member, layer=layer, prefix=prefix, depth=depth, top=top, budget=budget)
                reader.finish_member(data)
                if progress is not None:
                    progress()
        except TarError as exc:
            self.warn(exc.code, str(exc), layer, where)

    def _member(
        self,
        data: MemberData,
        member: TarMember,
        *,
        layer: int,
        prefix: str,
        depth: int,
        top: bool,
        budget: ExpansionBudget | None,
    ) -> Iterator[Content]:
        name = member.name
        if len(name) * 4 > self.limits.max_path_bytes and (
            len(name.encode("utf-8", "surrogateescape")) > self.limits.max_path_bytes
        ):
            self.warn("limit.path", f"path longer than {self.limits.max_path_bytes} bytes; skipped", layer, None)
            return
        path, unsafe = clean_path(name)
        if unsafe:
            self.warn("path.unsafe", "absolute or '..' path in tar; normalised", layer, prefix + path)
        if not path or path == ".":
            return
        if top and self.index is not None:
            base = posixpath.basename(path)
            if base.startswith(WHITEOUT_PREFIX):
                parent = posixpath.dirname(path)
                if base == OPAQUE_MARKER:
                    self.index.opaque(layer, parent)
                else:
                    self.index.whiteout(layer, posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]))
                return
            self.index.add(layer, path, is_dir=member.isdir)
        if not member.isreg or member.size == 0:
            return  # directories, links (content already seen via the target), devices, fifos
        yield from self.scan_file(data, member.size, prefix + path, layer=layer, depth=depth, budget=budget)


def config_contents(config: Mapping[str, Any] | None) -> Iterator[Content]:
    """The image config's strings: Env, Labels, history, Cmd/Entrypoint and everything else."""
    if not isinstance(config, Mapping):
        return
    cfg = config.get("config")
    if isinstance(cfg, Mapping):
        env = cfg.get("Env")
        if isinstance(env, list):
            for i, e in enumerate(env):
                if isinstance(e, str):
                    yield _cfg(e, f"config.Env[{i}]", Location.CONFIG_ENV)
        labels = cfg.get("Labels")
        if isinstance(labels, Mapping):
            for k, v in labels.items():
                if isinstance(v, str):
                    yield _cfg(f"{k}={v}", f"config.Labels.{k}", Location.CONFIG_LABEL)
        for key in ("Cmd", "Entrypoint"):
            v = cfg.get(key)
            if isinstance(v, list) and all(isinstance(x, str) for x in v):
                yield _cfg(" ".join(v), f"config.{key}", Location.CONFIG_OTHER)
            elif isinstance(v, str):
                yield _cfg(v, f"config.{key}", Location.CONFIG_OTHER)
        for k, v in cfg.items():
            if k not in ("Env", "Labels", "Cmd", "Entrypoint"):
                yield from _strings(v, f"config.{k}")
    history = config.get("history")
    if isinstance(history, list):
        for i, h in enumerate(history):
            if isinstance(h, Mapping):
                for key in ("created_by", "comment"):
                    if isinstance(h.get(key), str) and h[key]:
                        yield _cfg(h[key], f"history[{i}].{key}", Location.CONFIG_HISTORY)
    for key in ("author", "comment"):
        if isinstance(config.get(key), str) and config[key]:
            yield _cfg(config[key], key, Location.CONFIG_OTHER)


def _cfg(text: str, path: str, location: Location) -> Content:
    return Content(data=text.encode("utf-8", "surrogateescape"), path=path, layer_index=None, location=location)


def _strings(v: Any, path: str) -> Iterator[Content]:
    if isinstance(v, str):
        if v:
            yield _cfg(v, path, Location.CONFIG_OTHER)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _strings(x, f"{path}[{i}]")
    elif isinstance(v, Mapping):
        for k, x in v.items():
            yield from _strings(x, f"{path}.{k}")


def walk_image(
    image: Image,
    *,
    limits: ScanLimits,
    index: LayerIndex,
    on_warning: Callable[[ScanWarning], None],
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Content]:
    """Config Contents first, then every layer's files, base layer first.

    `on_progress` receives increments of uncompressed layer bytes consumed (not running totals).
    Problems with one layer become warnings and the walk goes on with the next; see the module docstring.
    How far layers may expand is bounded by the source's `image.limits`, like the blob reads themselves.
    """
    yield from config_contents(image.config)
    walker = _Walker(limits, index, on_warning, on_progress)
    expansion = image.expansion()
    for layer in image.layers:
        i = layer.index
        if expansion.exhausted:
            walker.warn(
                "limit.image_size",
                f"layers {i} to {len(image.layers) - 1} not read: the image's layers expand past"
                f" max_image_expanded_bytes={expansion.limit}, so their digests could not be verified",
                i,
                None,
            )
            return
        try:
            with image.open_layer(i, expansion) as stream:
                seen = 0

                def progress(s: Any = stream) -> None:
                    nonlocal seen
                    if on_progress is not None:
                        now = s.bytes_out
                        if now > seen:
                            on_progress(now - seen)
                            seen = now

                try:
                    yield from walker.walk_tar(stream, layer=i, progress=progress)
                    stream.drain(limits.read_block_bytes)
                    progress()
                    stream.verify()
                finally:
                    # The worker thread must be gone before the opener closes the raw blob, including
                    # when the consumer abandons the walk half-way.
                    stream.stop()
        except ReadStopped as exc:  # a layer past an expansion limit, or a blob past its size
            walker.warn(exc.code, str(exc), i, None)
        except BlobSizeMismatch as exc:
            walker.warn(exc.code, str(exc), i, None)
        except DigestMismatch as exc:
            walker.warn("digest.mismatch", str(exc), i, None)
        except CorruptStream as exc:
            walker.warn("layer.corrupt", str(exc), i, None)
        except (zlib.error, zstandard.ZstdError) as exc:
            walker.warn("layer.corrupt", f"corrupt compressed layer: {exc}", i, None)
        except (errors.SecretsvcError, OSError) as exc:
            walker.warn("layer.unreadable", f"layer {layer.digest} cannot be read: {exc}", i, None)


def walk_path(
    path: Path,
    *,
    limits: ScanLimits,
    on_warning: Callable[[ScanWarning], None],
    on_progress: Callable[[int], None] | None = None,
    index: LayerIndex | None = None,
) -> Iterator[Content]:
    """Contents of a plain directory (recursively, symlinks not followed) or file, as layer 0.

    Paths are relative to `path` (a single file is named by its base name). Only regular files are content:
    symbolic links, FIFOs, sockets and devices in the tree are skipped without a warning, and never opened.
    Each file is opened as `safeopen.open_in` opens layout files (no link followed out of the tree, O_NONBLOCK,
    then `fstat`), so one swapped for a FIFO, a device or a link after it was listed cannot block the scan or
    lead outside the tree: it becomes a "file.unreadable" warning, since what was listed was not read.
    """
    walker = _Walker(limits, index, on_warning, on_progress)
    if path.is_file():
        try:
            f = open_file(path)  # the user's own path: a link to a regular file is followed
        except errors.SecretsvcError as exc:
            walker.warn("file.unreadable", str(exc), 0, path.name)
            return
        yield from _scan_disk_file(walker, f, path.name, on_progress)
        return
    if not path.is_dir():
        raise errors.NotFound(f"{path} does not exist")

    def unlisted(exc: OSError) -> None:
        where = Path(os.path.relpath(exc.filename, path)).as_posix() if exc.filename else "."
        walker.warn("file.unreadable", f"cannot list directory: {exc.strerror}", 0, where)

    for root, dirs, files in os.walk(path, onerror=unlisted, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            try:
                listed = os.lstat(full).st_mode
            except OSError:
                continue  # gone since it was listed
            if not stat.S_ISREG(listed):
                continue  # a link, FIFO, socket or device is not content
            rel = full.relative_to(path).as_posix()
            try:
                f = open_in(path, rel)
            except (errors.SecretsvcError, OSError) as exc:
                walker.warn("file.unreadable", f"cannot open: {exc}", 0, rel)
                continue
            yield from _scan_disk_file(walker, f, rel, on_progress)


def _scan_disk_file(
    walker: _Walker, f: BinaryIO, rel: str, on_progress: Callable[[int], None] | None
) -> Iterator[Content]:
    """Scan an opened regular file, and close it (also when the consumer stops early)."""
    try:
        size = os.fstat(f.fileno()).st_size
        if walker.index is not None:
            walker.index.add(0, rel, is_dir=False)
        yield from walker.scan_file(f, size, rel, layer=0, depth=0, budget=None)
        if on_progress is not None:
            on_progress(min(size, walker.limits.max_file_bytes))
    except OSError as exc:
        walker.warn("file.unreadable", f"read failed: {exc.strerror}", 0, rel)
    finally:
        f.close()
