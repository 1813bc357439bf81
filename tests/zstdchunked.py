"""zstd:chunked-like layer blobs for tests: many independent zstd frames with skippable frames among them.

zstd:chunked (containers/storage) compresses each file of a layer as its own frame and keeps its table of
contents in skippable frames at the end; any reader that decompresses every frame gets the plain tar.
"""

from __future__ import annotations

import io
import struct

import zstandard

SKIPPABLE_MAGIC = 0x184D2A50


def skippable(payload: bytes, nibble: int = 0) -> bytes:
    return struct.pack("<II", SKIPPABLE_MAGIC | (nibble & 0xF), len(payload)) + payload


def multi_frame(
    tar: bytes, piece: int = 700, toc: bytes = b'{"version":1,"entries":[]}', *, lead: bool = True
) -> bytes:
    """`tar` cut into `piece`-byte parts, each its own frame (checksums and content sizes on every other
    one, so both header shapes occur), a skippable frame after every third, and a table of contents.

    `lead` puts a skippable frame first, which is valid zstd but which tools that sniff the magic (skopeo)
    take for an uncompressed blob; zstd:chunked itself starts with a data frame."""
    out = [skippable(b"lead", 3)] if lead else []
    for n, start in enumerate(range(0, len(tar), piece)):
        c = zstandard.ZstdCompressor(level=3, write_checksum=n % 2 == 0, write_content_size=n % 2 == 1)
        out.append(c.compress(tar[start : start + piece]))
        if n % 3 == 2:
            out.append(skippable(b"x" * (n % 17)))
    out.append(skippable(toc, 0xE))
    return b"".join(out)


def lenient_decompress(blob: bytes) -> bytes:
    """What a reader that ignores truncation gets from `blob` (libzstd's streaming reader, every frame)."""
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob), read_across_frames=True)
    parts = []
    while chunk := reader.read(1 << 16):
        parts.append(chunk)
    return b"".join(parts)
