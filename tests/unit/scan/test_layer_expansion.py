"""Decompression bombs as whole layers: bounded per layer, per image and by ratio, then reported, never run on.

The real bombs are a 71 KB zstd layer that expands to 2 GiB and a 33 MB one that expands to 1 TiB; here
the same shapes are built small and met with small `ScanLimits`.
"""

from __future__ import annotations

import io
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from secretsvc.scan.limits import MIB, ScanLimits
from secretsvc.scan.model import Content, ScanWarning
from secretsvc.scan.sources import open_source
from secretsvc.scan.sources.stream import ExpansionLimit, LayerStream
from secretsvc.scan.walk import LayerIndex, walk_image
from tests.scanimages import BuiltImage, build_image, file, layer_tar, write_oci_layout

pytestmark = pytest.mark.timeout(60)

ZEROS = layer_tar([file("zeros.bin", bytes(4 * MIB))])  # about 1000:1 under gzip, far more under zstd
GOOD = [file("good/after.txt", "still scanned")]
NO_RATIO = 1 << 40  # as layer_ratio_check_min_bytes: the size limits are what stops the layer


def walk(tmp_path: Path, im: BuiltImage, limits: ScanLimits) -> tuple[list[Content], list[ScanWarning]]:
    root = write_oci_layout(tmp_path / "oci", [im])
    warnings: list[ScanWarning] = []
    out: list[Content] = []
    with open_source(f"oci:{root}", limits=limits) as src:
        for image in src.images():
            out.extend(walk_image(image, limits=limits, index=LayerIndex(), on_warning=warnings.append))
    return out, warnings


def layer_files(contents: list[Content]) -> set[tuple[int | None, str]]:
    return {(c.layer_index, c.path) for c in contents if c.layer_index is not None}


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_layer_size_limit_stops_the_layer_and_says_digest_unverified(tmp_path: Path, compression: str) -> None:
    limits = ScanLimits(max_layer_expanded_bytes=1 * MIB, layer_ratio_check_min_bytes=NO_RATIO)
    im = build_image([ZEROS, layer_tar(GOOD)], compression=compression)
    contents, warnings = walk(tmp_path, im, limits)
    assert [(w.code, w.layer_index) for w in warnings] == [("limit.layer_size", 0)]
    assert "max_layer_expanded_bytes=1048576" in warnings[0].message
    assert "digest could not be verified" in warnings[0].message
    assert (1, "good/after.txt") in layer_files(contents)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_layer_ratio_limit_stops_a_small_bomb(tmp_path: Path, compression: str) -> None:
    limits = ScanLimits(max_layer_compression_ratio=200, layer_ratio_check_min_bytes=1 * MIB)
    im = build_image([ZEROS, layer_tar(GOOD)], compression=compression)
    assert len(im.blobs[0]) * 200 < len(ZEROS)
    contents, warnings = walk(tmp_path, im, limits)
    assert [(w.code, w.layer_index) for w in warnings] == [("limit.layer_ratio", 0)]
    assert "max_layer_compression_ratio=200" in warnings[0].message
    assert "digest could not be verified" in warnings[0].message
    assert (1, "good/after.txt") in layer_files(contents)


def test_ratio_is_not_checked_below_its_minimum_size(tmp_path: Path) -> None:
    limits = ScanLimits(max_layer_compression_ratio=200, layer_ratio_check_min_bytes=8 * MIB)
    contents, warnings = walk(tmp_path, build_image([ZEROS], compression="gzip"), limits)
    assert warnings == []
    assert layer_files(contents) == {(0, "zeros.bin")}


def test_uncompressed_layers_never_trip_the_ratio(tmp_path: Path) -> None:
    limits = ScanLimits(max_layer_compression_ratio=1, layer_ratio_check_min_bytes=0)
    _, warnings = walk(tmp_path, build_image([ZEROS], compression="none"), limits)
    assert warnings == []


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_image_size_limit_counts_every_layer_and_skips_the_rest(tmp_path: Path, compression: str) -> None:
    # Each layer is ~1 MiB expanded: the first fits, the second crosses 1.5 MiB, the third is never opened.
    layer = layer_tar([file("zeros.bin", bytes(1 * MIB))])
    limits = ScanLimits(max_image_expanded_bytes=3 * MIB // 2, layer_ratio_check_min_bytes=NO_RATIO)
    im = build_image([layer, layer, layer_tar(GOOD)], compression=compression)
    contents, warnings = walk(tmp_path, im, limits)
    assert [(w.code, w.layer_index) for w in warnings] == [("limit.image_size", 1), ("limit.image_size", 2)]
    assert all("max_image_expanded_bytes=1572864" in w.message for w in warnings)
    assert "digest could not be verified" in warnings[0].message
    assert "layers 2 to 2 not read" in warnings[1].message
    assert (0, "zeros.bin") in layer_files(contents)
    assert (2, "good/after.txt") not in layer_files(contents)


def _workers() -> int:
    return sum(t.name == "layer-reader" for t in threading.enumerate())


@pytest.mark.parametrize(
    "compress",
    [lambda d: zlib.compress(d, 9, wbits=31), lambda d: zstandard.ZstdCompressor(level=19).compress(d)],
    ids=["gzip", "zstd"],
)
def test_decompression_stops_at_the_limit_and_the_worker_ends(compress: Callable[[bytes], bytes]) -> None:
    """No byte past the limit (plus the block that crossed it) is pulled out, and the thread is gone."""
    blob = compress(bytes(64 * MIB))
    limits = ScanLimits(
        max_layer_expanded_bytes=1 * MIB, read_block_bytes=64 * 1024, layer_ratio_check_min_bytes=NO_RATIO
    )
    before = _workers()
    stream = LayerStream(io.BytesIO(blob), blob_digest=None, diff_id=None, block=64 * 1024, limits=limits)
    started = time.monotonic()
    with pytest.raises(ExpansionLimit) as info:
        stream.drain(64 * 1024)
    assert info.value.code == "limit.layer_size"
    assert stream.bytes_out <= 1 * MIB
    assert stream.tar.bytes_read <= 1 * MIB
    assert not stream.finished
    deadline = time.monotonic() + 5
    while _workers() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _workers() == before, "the worker thread kept running after the limit"
    assert time.monotonic() - started < 5
    stream.close()
