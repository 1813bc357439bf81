"""Layer blobs are read no further than their descriptor's size (or `max_blob_bytes` when it gives none).

Anything after the end of a gzip or zstd stream is still read, to check the blob's digest; without a bound a
layout file (or a registry) that goes on past the blob's end was read to its end, however far that was.
"""

from __future__ import annotations

import gzip
import os
import random
import struct
import time
import zlib
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.scan.limits import GIB, MIB, ScanLimits
from secretsvc.scan.model import Content, ScanWarning
from secretsvc.scan.pipeline import EXIT_INCOMPLETE, scan
from secretsvc.scan.sources import open_source
from secretsvc.scan.walk import LayerIndex, walk_image
from tests import fakecreds
from tests.scanimages import BuiltImage, build_image, file, layer_tar, sha256, write_oci_layout

pytestmark = pytest.mark.timeout(60)

GOOD = [file("good/after.txt", "still scanned")]


def blob_file(root: Path, data: bytes) -> Path:
    return root / "blobs" / "sha256" / sha256(data).split(":", 1)[1]


def walk(root: Path, limits: ScanLimits = ScanLimits()) -> tuple[list[Content], list[ScanWarning]]:  # noqa: B008
    warnings: list[ScanWarning] = []
    out: list[Content] = []
    with open_source(f"oci:{root}", limits=limits) as src:
        for image in src.images():
            out.extend(walk_image(image, limits=limits, index=LayerIndex(), on_warning=warnings.append))
    return out, warnings


def layer_files(contents: list[Content]) -> set[tuple[int | None, str]]:
    return {(c.layer_index, c.path) for c in contents if c.layer_index is not None}


@pytest.fixture(scope="module")
def token() -> str:
    return fakecreds.fake_github_token(random.Random(417))


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_a_blob_longer_than_its_descriptor_is_cut_off_there(tmp_path: Path, compression: str, token: str) -> None:
    """A valid layer followed by 1 GiB of zeros (sparse) in the blob file: read to the size, not beyond."""
    im = build_image([[file("app/.env", f"T={token}\n")], GOOD], compression=compression)
    root = write_oci_layout(tmp_path / "oci", [im])
    with blob_file(root, im.blobs[0]).open("r+b") as f:
        f.truncate(len(im.blobs[0]) + 1 * GIB)
    started = time.monotonic()
    contents, warnings = walk(root)
    assert [(w.code, w.layer_index) for w in warnings] == [("layer.size_mismatch", 0)]
    assert f"larger than the {len(im.blobs[0])} bytes its descriptor says" in warnings[0].message
    assert "digest could not be verified" in warnings[0].message
    # What came before the bound was scanned, and the next layer too.
    assert {(0, "app/.env"), (1, "good/after.txt")} <= layer_files(contents)
    assert time.monotonic() - started < 10  # reading and hashing 1 GiB of zeros took longer


def test_a_blob_shorter_than_its_descriptor_is_reported(tmp_path: Path) -> None:
    im = build_image([GOOD], compression="gzip")
    im.declared_sizes[sha256(im.blobs[0])] = len(im.blobs[0]) + 100
    contents, warnings = walk(write_oci_layout(tmp_path / "oci", [im]))
    assert [(w.code, w.layer_index) for w in warnings] == [("layer.size_mismatch", 0)]
    assert f"is {len(im.blobs[0])} bytes, but its descriptor says {len(im.blobs[0]) + 100}" in warnings[0].message
    assert layer_files(contents) == {(0, "good/after.txt")}  # the findings of what was read still count


def test_a_size_mismatch_makes_the_scan_incomplete(tmp_path: Path) -> None:
    im = build_image([GOOD], compression="zstd")
    root = write_oci_layout(tmp_path / "oci", [im])
    with blob_file(root, im.blobs[0]).open("ab") as f:
        f.write(bytes(4096))
    report = scan(f"oci:{root}")
    assert dict(report.stats.not_read) == {"layer.size_mismatch": 1}
    assert report.exit_code == EXIT_INCOMPLETE


def test_with_no_size_in_the_descriptor_max_blob_bytes_bounds_the_blob(tmp_path: Path) -> None:
    im = build_image([[file("first.txt", "first layer")], GOOD], compression="gzip")
    for blob in im.blobs:
        im.declared_sizes[sha256(blob)] = None
    root = write_oci_layout(tmp_path / "oci", [im])
    with blob_file(root, im.blobs[0]).open("r+b") as f:
        f.truncate(4 * MIB)  # gzip, then zeros
    contents, warnings = walk(root, ScanLimits(max_blob_bytes=1 * MIB))
    assert [(w.code, w.layer_index) for w in warnings] == [("limit.blob_size", 0)]
    assert "max_blob_bytes=1048576" in warnings[0].message
    assert (1, "good/after.txt") in layer_files(contents)
    # Within the limit, trailing zeros are read (and the digest, which they change, is checked).
    _, warnings = walk(root, ScanLimits(max_blob_bytes=8 * MIB))
    assert [(w.code, w.layer_index) for w in warnings] == [("digest.mismatch", 0)]


def test_a_blob_of_exactly_its_size_passes(tmp_path: Path) -> None:
    im = build_image([GOOD, GOOD], compression="gzip")
    assert walk(write_oci_layout(tmp_path / "oci", [im]))[1] == []


@pytest.mark.parametrize("delta", [-1, 1])
def test_a_config_whose_size_is_wrong_is_an_input_error(tmp_path: Path, delta: int) -> None:
    im = build_image([GOOD])
    im.declared_sizes[sha256(im.config_bytes)] = len(im.config_bytes) + delta
    root = write_oci_layout(tmp_path / "oci", [im])
    with pytest.raises(errors.InvalidArgument, match=r"image config is \d+ bytes, but its descriptor says"):
        walk(root)


def test_a_config_descriptor_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    im = build_image([GOOD])
    im.declared_sizes[sha256(im.config_bytes)] = 1 << 40
    root = write_oci_layout(tmp_path / "oci", [im])
    os.unlink(blob_file(root, im.config_bytes))  # never opened
    with pytest.raises(errors.LimitExceeded, match="over the limit"):
        walk(root)


def test_declared_sizes_that_are_not_sizes_are_ignored(tmp_path: Path) -> None:
    im = build_image([GOOD])
    root = write_oci_layout(tmp_path / "oci", [im])
    # A hand-edited manifest: a boolean or negative "size" says nothing, so max_blob_bytes bounds the read.
    for bad in (True, -5, "12"):
        im2 = BuiltImage(im.config, im.tars, im.blobs, im.compressions, declared_sizes={sha256(im.blobs[0]): bad})  # type: ignore[dict-item]
        assert walk(write_oci_layout(tmp_path / f"oci-{bad}", [im2]))[1] == []
    assert walk(root)[1] == []


def gzip_member(data: bytes, size: int) -> bytes:
    """One gzip member of `data`, exactly `size` bytes long (padded with a header comment)."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = co.compress(data) + co.flush()
    header = b"\x1f\x8b\x08\x10" + bytes(4) + b"\x00\xff"  # FCOMMENT, no mtime, unknown OS
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    comment = size - len(header) - len(deflated) - len(trailer) - 1
    assert comment >= 0
    return header + b"c" * comment + b"\0" + deflated + trailer


def test_a_gzip_member_that_begins_at_a_read_boundary_is_read(tmp_path: Path, token: str) -> None:
    """Members after the first are layer data, wherever the reads fall; only zeros may follow the last."""
    first = layer_tar([file("a.txt", "first member")])
    first = first[: -(-len(first.rstrip(b"\0")) // 512) * 512]  # its member only: no end-of-archive blocks
    second = layer_tar([file("app/.env", f"T={token}\n")])
    block = 64 * 1024
    blob = gzip_member(first, block) + gzip.compress(second, mtime=0)
    im = build_image([first + second], compression="none")
    im.blobs[0] = blob
    im.compressions[0] = "gzip"
    contents, warnings = walk(write_oci_layout(tmp_path / "oci", [im]), ScanLimits(read_block_bytes=block))
    assert warnings == []
    assert layer_files(contents) == {(0, "a.txt"), (0, "app/.env")}
