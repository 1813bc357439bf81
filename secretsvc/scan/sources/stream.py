"""Streaming readers for layer blobs: digest verification and decompression chosen by magic bytes.

A layer is read once, front to back, through two hashing readers: one over the blob as stored (checked
against the manifest's descriptor digest) and one over the uncompressed tar (checked against the config's
`rootfs.diff_ids`). Verification can only finish at the end of the stream: `LayerStream.verify()` (called
by the walker after the tar, and by leaving `Image.open_layer`'s context after a full read) raises
`DigestMismatch`, an `errors.InvalidArgument`. By then the walker has yielded the layer's contents and turns
the error into a "digest.mismatch" warning, so findings in a tampered layer are still reported.

The compression is detected from the first bytes (gzip, zstd, or none), never from the media type alone,
and every read returns at most the size asked for, so memory stays bounded whatever the compression ratio.
Multi-member gzip and multi-frame zstd (zstd:chunked: a frame per file, skippable frames for metadata) are
read whole; a stream that ends inside a member or frame is `CorruptStream`, never a quietly shorter layer.
Time is bounded too: past `max_layer_expanded_bytes`, `max_image_expanded_bytes` (all layers of one image,
counted in an `ImageExpansion`) or `max_layer_compression_ratio`, decompression stops and the reader gets
`ExpansionLimit`, carrying the warning code; the digests of that layer are then never checked.

The blob as stored is bounded as well, whatever its compression and including anything after the end of a
gzip or zstd stream (which is still read, to check the digest): when its descriptor gives a size, reading
more than that stops with `ReadStopped` ("layer.size_mismatch"), and a blob that ends short of it fails
`verify` with `BlobSizeMismatch`; with no size (`docker save` archives, whose tar members bound each blob
themselves) the bound is `max_blob_bytes` ("limit.blob_size"). A registry or layout that streams without
end is cut off there.

Reading, decompressing and hashing run on one worker thread per open layer, at most `READ_AHEAD_BLOCKS`
blocks ahead of the walker, so they overlap with tar parsing and rule matching on a second core.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
import weakref
import zlib
from types import TracebackType
from typing import IO, Protocol

import zstandard

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE_MAGIC_TAIL = b"\x2a\x4d\x18"
_SHA256_PREFIX = "sha256:"
#: Uncompressed blocks the worker thread may decompress ahead of the reader (memory: this many blocks).
READ_AHEAD_BLOCKS = 8
#: Smallest read from the blob; tiny reads would make the worker thread's hand-offs dominate.
MIN_BLOCK_BYTES = 64 * 1024
_PUT_POLL_S = 0.05  # how often a worker blocked on a full queue checks whether it was stopped


class DigestMismatch(errors.InvalidArgument):
    """A blob's bytes do not hash to the digest that names it. Carries digests only (never content)."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what} digest mismatch: expected {expected}, got {actual}")
        self.what = what
        self.expected = expected
        self.actual = actual


class CorruptStream(errors.InvalidArgument):
    """A compressed stream is corrupt or ends early."""


class ReadStopped(errors.LimitExceeded):
    """Reading a layer stopped at a bound before its end, so its digests cannot be verified.

    `code` is the warning to report: "layer.size_mismatch" (the blob runs past its descriptor's size) or
    "limit.blob_size"; the subclass `ExpansionLimit` carries the decompression limits' codes.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ExpansionLimit(ReadStopped):
    """A layer expanded past a named limit; decompression stopped, so its digests cannot be verified.

    `code` is the warning to report: "limit.layer_size", "limit.image_size" or "limit.layer_ratio".
    """


class BlobSizeMismatch(errors.InvalidArgument):
    """A blob ended before the size its descriptor gives (warning code "layer.size_mismatch")."""

    code = "layer.size_mismatch"

    def __init__(self, what: str, expected: int, actual: int) -> None:
        super().__init__(f"{what} is {actual} bytes, but its descriptor says {expected}")
        self.expected = expected
        self.actual = actual


class ImageExpansion:
    """Uncompressed bytes the layers of one image have expanded to so far, against `limit`.

    Shared by the image's layer streams in turn (one at a time: the walker stops a layer's worker before it
    opens the next), so it needs no lock.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def exhausted(self) -> bool:
        return self.used > self.limit


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def check_digest_syntax(digest: str) -> str:
    """Return the hex part of a "sha256:<64 hex>" digest, or raise InvalidArgument."""
    if not isinstance(digest, str) or not digest.startswith(_SHA256_PREFIX):
        raise errors.InvalidArgument(f"unsupported digest {str(digest)[:80]!r} (only sha256 is supported)")
    hexpart = digest[len(_SHA256_PREFIX) :]
    if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise errors.InvalidArgument(f"malformed digest {digest[:80]!r}")
    return hexpart


def sha256_digest(data: bytes) -> str:
    return _SHA256_PREFIX + hashlib.sha256(data).hexdigest()


def verify_bytes(what: str, data: bytes, expected: str) -> None:
    """Raise DigestMismatch unless `data` hashes to `expected`."""
    check_digest_syntax(expected)
    actual = sha256_digest(data)
    if actual != expected:
        raise DigestMismatch(what, expected, actual)


def check_size(what: str, data: bytes, size: int | None) -> None:
    """Raise BlobSizeMismatch unless `data` is `size` bytes long (None: the descriptor gives no size)."""
    if size is not None and len(data) != size:
        raise BlobSizeMismatch(what, size, len(data))


def descriptor_size(value: object) -> int | None:
    """A descriptor's "size" if it is one (a non-negative integer), else None: the size is unknown."""
    if type(value) is int and value >= 0:
        return value
    return None


def read_bounded(stream: Readable, max_bytes: int, what: str) -> bytes:
    """Read a whole small document (JSON) but refuse it if it is larger than `max_bytes`."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise errors.LimitExceeded(f"{what} is larger than the limit of {max_bytes} bytes")
    return data


class SizedReader:
    """The blob as stored, never read past its descriptor's `size` (None: past `limit`).

    One byte past the bound is asked for, to tell a blob that ends there from one that goes on; one that goes
    on raises ReadStopped and nothing more is read. A blob that ends short of `size` leaves `short` set
    (kept, like `HashingReader`'s verdict, for the owner to raise once reading is over).
    """

    def __init__(self, raw: Readable, size: int | None, limit: int, what: str) -> None:
        self._raw = raw
        self._size = size
        self._limit = limit
        self._what = what
        self._bound = size if size is not None and size <= limit else limit
        self.bytes_read = 0
        self.short: BlobSizeMismatch | None = None

    def read(self, n: int = -1, /) -> bytes:
        if n == 0:
            return b""
        left = self._bound - self.bytes_read
        data = self._raw.read(left if n < 0 else min(n, left)) if left > 0 else self._raw.read(1)
        if not data:
            if self._size is not None and self.bytes_read < self._size:
                self.short = BlobSizeMismatch(self._what, self._size, self.bytes_read)
            return b""
        if left > 0:
            self.bytes_read += len(data)
            return data
        stopped = "reading stopped: the rest of the layer is not scanned and its digest could not be verified"
        if self._bound == self._size:
            raise ReadStopped(
                "layer.size_mismatch",
                f"{self._what} is larger than the {self._size} bytes its descriptor says; {stopped}",
            )
        raise ReadStopped("limit.blob_size", f"{self._what} is larger than max_blob_bytes={self._limit}; {stopped}")


class HashingReader:
    """Hashes what passes through; at EOF compares with `expected` (None: hash only) and keeps the verdict.

    The verdict is kept rather than raised so a reader in the middle of a tar header (tarfile) sees a plain
    end of data and reports it as such; the owner raises `mismatch` once reading is over.
    """

    def __init__(self, raw: Readable, expected: str | None, what: str) -> None:
        if expected is not None:
            check_digest_syntax(expected)
        self._raw = raw
        self._hash = hashlib.sha256()
        self._expected = expected
        self._what = what
        self._done = False
        self.bytes_read = 0
        self.mismatch: DigestMismatch | None = None

    def read(self, n: int = -1, /) -> bytes:
        data = self._raw.read(n)
        if data:
            self._hash.update(data)
            self.bytes_read += len(data)
        elif n != 0 and not self._done:
            self._done = True
            actual = self.digest
            if self._expected is not None and actual != self._expected:
                self.mismatch = DigestMismatch(self._what, self._expected, actual)
        return data

    @property
    def digest(self) -> str:
        return _SHA256_PREFIX + self._hash.hexdigest()

    @property
    def finished(self) -> bool:
        return self._done


class _Prepend:
    """Gives back bytes already read for sniffing before reading on from the underlying stream."""

    def __init__(self, head: bytes, raw: Readable) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1, /) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                out, self._head = self._head, b""
                return out
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._raw.read(n)


class _GzipReader:
    """Multi-member gzip, decompressed with zlib in bounded steps (C does the work).

    After a member ends, what follows (in the same block or the next) is another member, or zero padding
    read on to the end of the blob so its digest is checked; anything else is corrupt.
    """

    def __init__(self, raw: Readable, block: int) -> None:
        self._raw = raw
        self._block = block
        self._d = zlib.decompressobj(wbits=31)
        self._pending = b""  # compressed input not yet given to the decompressor
        self._between = False  # a member has ended and no other has begun
        self._padding = False  # zero bytes have followed the last member
        self._eof = False

    def read(self, n: int = -1, /) -> bytes:
        if n < 0:
            n = 1 << 62
        while not self._eof:
            if self._d.unconsumed_tail:
                data = self._d.unconsumed_tail
            elif self._pending:
                data, self._pending = self._pending, b""
            else:
                data = self._raw.read(self._block)
                if not data:
                    if not self._between:
                        raise CorruptStream("gzip stream ends early (truncated)")
                    self._eof = True
                    break
            if self._between:
                if len(data) < len(GZIP_MAGIC) and GZIP_MAGIC.startswith(data):
                    data += self._raw.read(self._block)  # a block boundary inside the next member's magic
                if data.startswith(GZIP_MAGIC) and not self._padding:
                    self._between = False
                elif data.strip(b"\0"):
                    raise CorruptStream("unexpected bytes after the end of the gzip stream")
                else:
                    self._padding = True  # read on, so the digest check at the blob's end runs
                    continue
            try:
                out = self._d.decompress(data, n)
            except zlib.error as exc:
                raise CorruptStream(f"corrupt gzip stream: {exc}") from None
            if self._d.eof:
                self._pending = self._d.unused_data
                self._d = zlib.decompressobj(wbits=31)
                self._between = True
            if out:
                return out
        return b""


class ZstdFrames:
    """Follows the frame structure of a zstd stream as it passes, to tell where the stream may end.

    libzstd's streaming reader ends quietly when its input stops inside a frame, so a truncated layer
    would look complete. This reads only headers (frame headers, block headers, skippable frame sizes) and
    counts past the rest, so its cost does not depend on the data; `at_boundary` is true between frames.
    Frames it cannot follow (an unknown magic) are left to the decompressor to reject: `lost` is set.
    """

    def __init__(self) -> None:
        self._state = "magic"
        self._want = 4  # header bytes still needed, or payload bytes still to skip
        self._head = b""  # header bytes gathered so far
        self._checksum = False
        self._last = False
        self.frames = 0
        self.lost = False

    @property
    def at_boundary(self) -> bool:
        return self.lost or (self._state == "magic" and not self._head)

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n and not self.lost:
            if self._state in ("skip", "block_data", "checksum"):
                step = min(self._want, n - i)
                i += step
                self._want -= step
                if self._want == 0:
                    self._after_payload()
                continue
            take = min(self._want - len(self._head), n - i)
            self._head += data[i : i + take]
            i += take
            if len(self._head) == self._want:
                head, self._head = self._head, b""
                self._on_header(head)

    def _on_header(self, head: bytes) -> None:
        state = self._state
        if state == "magic":
            if head == ZSTD_MAGIC:
                self._state, self._want = "fhd", 1
            elif is_zstd_skippable_magic(head):
                self._state, self._want = "skip_size", 4
            else:
                self.lost = True
        elif state == "skip_size":
            self._state, self._want = "skip", int.from_bytes(head, "little")
            if self._want == 0:
                self._after_payload()
        elif state == "fhd":
            fhd = head[0]
            single = bool(fhd & 0x20)
            self._checksum = bool(fhd & 0x04)
            fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
            rest = (0 if single else 1) + (0, 1, 2, 4)[fhd & 0x03] + fcs
            self._state, self._want = ("header_rest", rest) if rest else ("block_header", 3)
        elif state == "header_rest":
            self._state, self._want = "block_header", 3
        elif state == "block_header":
            value = int.from_bytes(head, "little")
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            self._last = bool(last)
            if kind == 3:
                self.lost = True  # reserved block type: corrupt, the decompressor says so
                return
            self._state, self._want = "block_data", 1 if kind == 1 else size
            if self._want == 0:
                self._after_payload()

    def _after_payload(self) -> None:
        if self._state == "block_data" and not self._last:
            self._state, self._want = "block_header", 3
        elif self._state == "block_data" and self._checksum:
            self._state, self._want = "checksum", 4
        else:  # a skippable frame's data, a checksum, or the last block of a frame without one
            self.frames += 1
            self._state, self._want = "magic", 4


class _FrameWatch:
    """Passes reads through to the decompressor, following the zstd frames in them (`ZstdFrames`).

    An error reading the blob (a bound reached: `ReadStopped`) is kept and shown to the decompressor as the
    end of its input, so the output it already holds is still handed on; the reader raises it after that.
    """

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self.frames = ZstdFrames()
        self.failed: Exception | None = None

    def read(self, n: int = -1, /) -> bytes:
        if self.failed is not None:
            return b""
        try:
            data = self._raw.read(n)
        except Exception as exc:  # re-raised by _ZstdReader once the decompressor's output is out
            self.failed = exc
            return b""
        self.frames.feed(data)
        return data


class _ZstdReader:
    """Every frame of a zstd stream (zstd:chunked layers are many independent frames, with skippable frames
    between them), decompressed in bounded steps; a stream that ends inside a frame is CorruptStream."""

    def __init__(self, raw: Readable, block: int) -> None:
        self._watch = _FrameWatch(raw)
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            self._watch,  # type: ignore[arg-type]  # any object with read() will do
            read_size=block,
            read_across_frames=True,
            closefd=False,
        )

    def read(self, n: int = -1, /) -> bytes:
        try:
            data = bytes(self._reader.read(n if n >= 0 else 1 << 30))
        except zstandard.ZstdError as exc:
            if self._watch.failed is not None:
                raise self._watch.failed from None
            raise CorruptStream(f"corrupt zstd stream: {exc}") from None
        if not data and n != 0:
            if self._watch.failed is not None:
                raise self._watch.failed
            if not self._watch.frames.at_boundary:
                raise CorruptStream("zstd stream ends early (truncated inside a frame)")
        return data


class _Bounded:
    """Counts what the decompressor produces and raises ExpansionLimit, instead of handing on the block
    that crosses a limit, so nothing more is pulled from the decompressor (or read from the blob)."""

    def __init__(
        self, inner: Readable, blob: HashingReader, compressed: bool, limits: ScanLimits, image: ImageExpansion | None
    ) -> None:
        self._inner = inner
        self._blob = blob
        self._compressed = compressed
        self._limits = limits
        self._image = image
        self.expanded = 0

    def read(self, n: int = -1, /) -> bytes:
        data = self._inner.read(n)
        if data:
            self.expanded += len(data)
            if self._image is not None:
                self._image.used += len(data)
            self._check()
        return data

    def _check(self) -> None:
        lim, out = self._limits, self.expanded
        stopped = "decompression stopped: the rest of the layer is not scanned and its digest could not be verified"
        if out > lim.max_layer_expanded_bytes:
            raise ExpansionLimit(
                "limit.layer_size",
                f"layer expands past max_layer_expanded_bytes={lim.max_layer_expanded_bytes}; {stopped}",
            )
        if self._image is not None and self._image.exhausted:
            raise ExpansionLimit(
                "limit.image_size",
                f"the image's layers expand past max_image_expanded_bytes={self._image.limit}; {stopped}",
            )
        read = self._blob.bytes_read  # compressed bytes read so far (ahead of `out`: the ratio errs low)
        if self._compressed and out > lim.layer_ratio_check_min_bytes and out > lim.max_layer_compression_ratio * read:
            raise ExpansionLimit(
                "limit.layer_ratio",
                f"layer expands more than max_layer_compression_ratio={lim.max_layer_compression_ratio} times"
                f" ({out} bytes from {read}); {stopped}",
            )


def is_zstd_skippable_magic(head: bytes) -> bool:
    """A skippable frame's magic (0x184D2A50 to 0x184D2A5F, little-endian): metadata inside a zstd stream."""
    return len(head) >= 4 and head[1:4] == _SKIPPABLE_MAGIC_TAIL and head[0] & 0xF0 == 0x50


def compression_of(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC) or is_zstd_skippable_magic(head):
        return "zstd"
    return "none"


class _Pump:
    """Runs the read-hash-decompress-hash chain on a worker thread, a bounded number of blocks ahead.

    zlib, zstandard and hashlib release the GIL on large buffers, so decompression and both digests run
    on a second core while the walker parses tar headers and matches rules. The queue bounds memory to
    `READ_AHEAD_BLOCKS` blocks. The thread holds no reference to its `LayerStream`: when the stream is
    stopped (or garbage-collected) the thread notices at its next put and exits.
    """

    def __init__(self, source: Readable, block: int) -> None:
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(READ_AHEAD_BLOCKS)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_pump, args=(source, block, self._queue, self._stop), name="layer-reader", daemon=True
        )
        self._thread.start()

    def get(self) -> bytes | BaseException | None:
        """The next block; an exception the chain raised; None at the end."""
        return self._queue.get()

    def stop(self) -> None:
        self._stop.set()
        # Unblock a worker waiting to put, then wait for it so the caller may close the raw stream.
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join()


def _pump(
    source: Readable,
    block: int,
    out: queue.Queue[bytes | BaseException | None],
    stop: threading.Event,
) -> None:
    def put(item: bytes | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=_PUT_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    try:
        while not stop.is_set():
            data = source.read(block)
            if not data:
                put(None)
                return
            if not put(data):
                return
    except Exception as exc:  # handed to the reading thread, which raises it where a read would have
        put(exc)


class LayerStream:
    """The uncompressed tar of one layer, verified against both digests as it is read.

    Once the stream has been read to its end, `verify` raises DigestMismatch if either digest is wrong
    (leaving the `open_layer` context does so too); `read` raises CorruptStream for bad compression.
    Decompression and hashing run on a worker thread started by the first read; `stop` (or `close`) ends it.
    Past a limit of `limits` (or of the shared `image` count), `read` raises ExpansionLimit and the worker
    has ended; past `blob_size` (or `limits.max_blob_bytes` when it is None), ReadStopped.
    """

    def __init__(
        self,
        raw: IO[bytes],
        *,
        blob_digest: str | None,
        diff_id: str | None,
        block: int,
        limits: ScanLimits | None = None,
        image: ImageExpansion | None = None,
        blob_size: int | None = None,
    ) -> None:
        self._raw = raw
        self._block = max(block, MIN_BLOCK_BYTES)
        limits = limits or ScanLimits()
        self.sized = SizedReader(raw, blob_size, limits.max_blob_bytes, "layer blob")
        self.blob = HashingReader(self.sized, blob_digest, "layer blob")
        head = self.blob.read(self._block)
        self.compression = compression_of(head)
        source = _Prepend(head, self.blob)
        inner: Readable
        if self.compression == "gzip":
            inner = _GzipReader(source, self._block)
        elif self.compression == "zstd":
            inner = _ZstdReader(source, self._block)
        else:
            inner = source
        bounded = _Bounded(inner, self.blob, self.compression != "none", limits, image)
        self.tar = HashingReader(bounded, diff_id, "layer diff_id")
        self._pump: _Pump | None = None
        self._stopper: weakref.finalize[[], LayerStream] | None = None
        self._buf = b""
        self._pos = 0
        self._consumed = 0
        self._eof = False

    def _next_block(self) -> bool:
        """Refill the buffer from the worker; False at the end of the stream."""
        if self._eof:
            return False
        if self._pump is None:
            self._pump = _Pump(self.tar, self._block)
            self._stopper = weakref.finalize(self, self._pump.stop)
        item = self._pump.get()
        if item is None:
            self._eof = True
            return False
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        self._buf, self._pos = item, 0
        return True

    def read(self, n: int = -1, /) -> bytes:
        """Up to `n` bytes (at most one worker block when `n` is larger; everything left when negative)."""
        if n == 0:
            return b""
        if self._pos >= len(self._buf) and not self._next_block():
            return b""
        if n < 0:
            parts = [self._buf[self._pos :]]
            self._consumed += len(parts[0])
            self._buf, self._pos = b"", 0
            while self._next_block():
                parts.append(self._buf)
                self._consumed += len(self._buf)
                self._buf = b""
            return b"".join(parts)
        start = self._pos
        out = self._buf[start : start + n]  # the whole block itself (no copy) when n covers it
        self._pos = start + len(out)
        self._consumed += len(out)
        return out

    @property
    def bytes_out(self) -> int:
        """Uncompressed bytes handed to the reader so far."""
        return self._consumed

    def drain(self, block: int) -> None:
        """Read to the end so both digests are checked (tar readers stop at the end-of-archive marker)."""
        while self.read(block):
            pass

    @property
    def finished(self) -> bool:
        return self._eof and self.tar.finished

    def verify(self) -> None:
        """Raise BlobSizeMismatch if the blob ended short of its descriptor's size, else DigestMismatch if the
        stream, read to its end, did not match (blob first, then diff_id)."""
        if self.sized.short is not None:
            raise self.sized.short
        for reader in (self.blob, self.tar):
            if reader.mismatch is not None:
                raise reader.mismatch

    def stop(self) -> None:
        """End the worker thread (idempotent); the raw stream may be closed after this returns."""
        if self._stopper is not None:
            self._stopper()

    def close(self) -> None:
        self.stop()
        self._raw.close()

    def __enter__(self) -> LayerStream:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
