"""Multi-frame zstd layers (zstd:chunked-like) are read whole; one cut inside a frame never looks clean."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsvc.scan.model import EXIT_FINDINGS, EXIT_INCOMPLETE
from secretsvc.scan.pipeline import scan
from secretsvc.scan.sources.stream import ZSTD_MAGIC, CorruptStream, LayerStream, ZstdFrames
from tests import fakecreds
from tests import scanimages as si
from tests.zstdchunked import lenient_decompress, multi_frame, skippable


def frame_ends(blob: bytes) -> set[int]:
    """Offsets at which `blob` may end: after each whole frame (found by decompressing frame by frame)."""
    ends, pos = {0}, 0
    while pos < len(blob):
        if blob[pos : pos + 4] == ZSTD_MAGIC:
            d = zstandard.ZstdDecompressor().decompressobj()
            d.decompress(blob[pos:])
            pos = len(blob) - len(d.unused_data)
        else:
            pos += 8 + int.from_bytes(blob[pos + 4 : pos + 8], "little")
        ends.add(pos)
    return ends


def read_layer(blob: bytes, block: int = 4096) -> bytes:
    stream = LayerStream(io.BytesIO(blob), blob_digest=None, diff_id=None, block=block)
    with stream:
        out = []
        while chunk := stream.read(block):
            out.append(chunk)
        return b"".join(out)


def test_every_frame_of_a_chunked_layer_is_read() -> None:
    tar = si.layer_tar([si.file(f"f{i}.txt", f"file {i}\n" * 300) for i in range(12)])
    blob = multi_frame(tar, piece=1000)
    frames = ZstdFrames()
    frames.feed(blob)
    assert frames.at_boundary and not frames.lost
    assert frames.frames > 20  # data frames and skippable ones
    assert read_layer(blob) == tar


def test_a_stream_cut_inside_any_frame_is_corrupt() -> None:
    tar = si.layer_tar([si.file(f"f{i}", random.Random(i).randbytes(400)) for i in range(4)])
    blob = multi_frame(tar, piece=300)
    ends = frame_ends(blob)
    for cut in range(1, len(blob)):
        frames = ZstdFrames()
        frames.feed(blob[:cut])
        assert frames.at_boundary == (cut in ends), cut
    # (under 4 bytes there is no magic to tell a zstd stream by: such a blob is read as uncompressed)
    for cut in sorted(set(range(4, len(blob), 37)) - ends):
        with pytest.raises(CorruptStream, match="truncated"):
            read_layer(blob[:cut], block=64 * 1024)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 700), st.lists(st.integers(1, 97), min_size=1, max_size=8))
def test_frame_tracking_does_not_depend_on_how_reads_split_the_stream(
    data: bytes, piece: int, splits: list[int]
) -> None:
    blob = multi_frame(data, piece=piece)
    whole, parts = ZstdFrames(), ZstdFrames()
    whole.feed(blob)
    pos, i = 0, 0
    while pos < len(blob):
        step = splits[i % len(splits)]
        parts.feed(blob[pos : pos + step])
        pos, i = pos + step, i + 1
    assert whole.at_boundary and parts.at_boundary and whole.frames == parts.frames


def test_garbage_after_the_frames_is_left_to_the_decompressor() -> None:
    blob = multi_frame(si.layer_tar([si.file("a", "b")])) + b"not a frame"
    with pytest.raises(CorruptStream, match="corrupt zstd stream"):
        read_layer(blob)
    assert read_layer(skippable(b"") + zstandard.ZstdCompressor().compress(b"")) == b""


def _image_with(blob: bytes, tar_out: bytes, env: list[str] | None = None) -> si.BuiltImage:
    im = si.build_image([[si.file("placeholder", "x")]], compression="zstd", env=env or [])
    im.blobs[0] = blob
    im.config["rootfs"]["diff_ids"] = [si.sha256(tar_out)]
    return im


def test_a_chunked_layer_scans_end_to_end(tmp_path: Path) -> None:
    rng = random.Random(31)
    first, last = fakecreds.fake_github_token(rng), fakecreds.fake_github_token(rng)
    files = [si.file("app/first.env", f"GH={first}\n")]
    files += [si.file(f"usr/share/doc/{i}.txt", f"{i} filler text\n" * 200) for i in range(20)]
    files += [si.file("app/last.env", f"GH={last}\n")]
    tar = si.layer_tar(files)
    layout = si.write_oci_layout(tmp_path / "oci", [_image_with(multi_frame(tar, piece=2048), tar)])
    report = scan(f"oci:{layout}")
    assert report.warnings == ()
    assert report.complete
    assert {f.path for f in report.findings} == {"app/first.env", "app/last.env"}
    assert report.exit_code == EXIT_FINDINGS


def test_a_truncated_chunked_layer_is_never_clean(tmp_path: Path) -> None:
    """The blob is cut inside its last data frame, and the image's digests were made from the cut blob (as a
    builder that ignored the error would make them): only the frame check can tell."""
    tar = si.layer_tar([si.file(f"srv/{i}.txt", f"{i} plain text\n" * 100) for i in range(10)])
    blob = multi_frame(tar, piece=2048, toc=b"")
    ends = sorted(frame_ends(blob))
    cut = ends[-4] + 20  # inside a data frame near the end (the last ends are skippable frames)
    assert cut not in ends
    truncated = blob[:cut]
    layout = si.write_oci_layout(tmp_path / "oci", [_image_with(truncated, lenient_decompress(truncated))])
    report = scan(f"oci:{layout}")
    assert [w.code for w in report.warnings] == ["layer.corrupt"]
    assert "truncated" in report.warnings[0].message
    assert not report.complete
    assert report.exit_code == EXIT_INCOMPLETE
