"""Hostile and broken layers: every one ends in a warning with a stable code, never a crash or a hang."""

from __future__ import annotations

import random
import tarfile
from pathlib import Path

import pytest

from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import Content, ScanWarning
from secretsvc.scan.sources import open_source
from secretsvc.scan.walk import LayerIndex, walk_image
from tests import fakecreds
from tests.scanimages import (
    BuiltImage,
    build_image,
    file,
    huge_pax_header_tar,
    layer_tar,
    raw_tar,
    sha256,
    truncated,
    write_oci_layout,
)

pytestmark = pytest.mark.timeout(60)


def walk(tmp_path: Path, im: BuiltImage) -> tuple[list[Content], list[ScanWarning]]:
    root = write_oci_layout(tmp_path / "oci", [im])
    return walk_layout(root)


def walk_layout(root: Path) -> tuple[list[Content], list[ScanWarning]]:
    warnings: list[ScanWarning] = []
    out: list[Content] = []
    with open_source(f"oci:{root}") as src:
        for image in src.images():
            out.extend(walk_image(image, limits=ScanLimits(), index=LayerIndex(), on_warning=warnings.append))
    return out, warnings


def layer_paths(contents: list[Content]) -> list[tuple[int | None, str]]:
    return [(c.layer_index, c.path) for c in contents if c.layer_index is not None]


GOOD = [file("good/after.txt", "still scanned")]


def test_absolute_and_dotdot_paths_are_normalised_and_warned(tmp_path: Path) -> None:
    bad = raw_tar([("/etc/shadow", b"root:x"), ("../../escape.txt", b"up"), ("ok/../fine.txt", b"y")])
    contents, warnings = walk(tmp_path, build_image([bad]))
    assert layer_paths(contents) == [(0, "etc/shadow"), (0, "escape.txt"), (0, "fine.txt")]
    assert [w.code for w in warnings] == ["path.unsafe"] * 3
    assert [w.path for w in warnings] == ["etc/shadow", "escape.txt", "fine.txt"]


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_huge_pax_header_is_refused_and_next_layer_scanned(tmp_path: Path, compression: str) -> None:
    im = build_image([huge_pax_header_tar(), layer_tar(GOOD)], compression=compression)
    contents, warnings = walk(tmp_path, im)
    assert "limit.tar_header" in [w.code for w in warnings]
    assert (1, "good/after.txt") in layer_paths(contents)


def test_long_gnu_name_within_limit_is_fine(tmp_path: Path) -> None:
    name = "d/" + "n" * 3000
    contents, warnings = walk(tmp_path, build_image([raw_tar([(name, b"x")])]))
    assert layer_paths(contents) == [(0, name)]
    assert warnings == []


def test_path_over_limit_is_skipped(tmp_path: Path) -> None:
    name = "d/" + "n" * 5000
    contents, warnings = walk(tmp_path, build_image([raw_tar([(name, b"x"), ("ok", b"y")])]))
    assert layer_paths(contents) == [(0, "ok")]
    assert [w.code for w in warnings] == ["limit.path"]


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_truncated_layer_is_warned_contents_before_the_cut_kept(tmp_path: Path, compression: str) -> None:
    rng = random.Random(5)
    token = fakecreds.fake_github_token(rng)
    tar = layer_tar([file("first.txt", f"t={token}"), file("big.bin", rng.randbytes(200_000))])
    im = build_image([tar, layer_tar(GOOD)], compression=compression)
    im.blobs[0] = truncated(im.blobs[0], 0.5)
    contents, warnings = walk(tmp_path, im)
    codes = {w.code for w in warnings if w.layer_index == 0}
    assert codes & {"tar.truncated", "layer.corrupt"}
    assert any(token.encode() in c.data for c in contents if c.path == "first.txt")
    assert (1, "good/after.txt") in layer_paths(contents)


def test_corrupted_gzip_is_warned(tmp_path: Path) -> None:
    rng = random.Random(6)
    im = build_image([layer_tar([file("a.bin", rng.randbytes(100_000))]), layer_tar(GOOD)])
    blob = bytearray(im.blobs[0])
    for i in range(200, 400):
        blob[i] ^= 0x5A
    im.blobs[0] = bytes(blob)
    contents, warnings = walk(tmp_path, im)
    assert [w.code for w in warnings if w.layer_index == 0] == ["layer.corrupt"]
    assert (1, "good/after.txt") in layer_paths(contents)


def test_garbage_layer_is_warned(tmp_path: Path) -> None:
    im = build_image([b"this is not a tar at all" * 100, layer_tar(GOOD)], compression="none")
    contents, warnings = walk(tmp_path, im)
    assert [w.code for w in warnings] == ["tar.corrupt"]
    assert (1, "good/after.txt") in layer_paths(contents)


def test_tampered_blob_gives_digest_warning_and_keeps_findings(tmp_path: Path) -> None:
    rng = random.Random(7)
    token = fakecreds.fake_github_token(rng)
    im = build_image([[file("app/.env", f"GH={token}\n")]], compression="none")
    root = write_oci_layout(tmp_path / "oci", [im])
    blob_path = root / "blobs" / "sha256" / sha256(im.blobs[0]).split(":")[1]
    data = blob_path.read_bytes()
    blob_path.write_bytes(data.replace(b"GH=", b"GX="))
    contents, warnings = walk_layout(root)
    assert [w.code for w in warnings] == ["digest.mismatch"]
    assert "layer blob" in warnings[0].message
    assert any(token.encode() in c.data for c in contents)


def test_wrong_diff_id_gives_digest_warning(tmp_path: Path) -> None:
    im = build_image([[file("a", "1")]], compression="gzip")
    im.config["rootfs"]["diff_ids"][0] = sha256(b"something else")
    contents, warnings = walk(tmp_path, im)
    assert [w.code for w in warnings] == ["digest.mismatch"]
    assert "diff_id" in warnings[0].message
    assert layer_paths(contents) == [(0, "a")]


def test_missing_blob_is_warned_and_walk_goes_on(tmp_path: Path) -> None:
    im = build_image([[file("a", "1")], GOOD])
    root = write_oci_layout(tmp_path / "oci", [im])
    (root / "blobs" / "sha256" / sha256(im.blobs[0]).split(":")[1]).unlink()
    contents, warnings = walk_layout(root)
    assert [w.code for w in warnings] == ["layer.unreadable"]
    assert layer_paths(contents) == [(1, "good/after.txt")]


def test_multi_member_gzip_layer(tmp_path: Path) -> None:
    import gzip

    tar = layer_tar([file("a.txt", "x" * 5000), file("b.txt", "y")])
    im = build_image([tar])
    im.blobs[0] = gzip.compress(tar[:3000], mtime=0) + gzip.compress(tar[3000:], mtime=0)
    contents, warnings = walk(tmp_path, im)
    assert warnings == []
    assert layer_paths(contents) == [(0, "a.txt"), (0, "b.txt")]


def test_many_members_do_not_accumulate_headers(tmp_path: Path) -> None:
    tar = layer_tar([file(f"d/f{i}", b"") for i in range(3000)] + [file("last", "z")])
    contents, warnings = walk(tmp_path, build_image([tar]))
    assert layer_paths(contents) == [(0, "last")]
    assert warnings == []


def test_pax_bomb_declared_in_tarinfo_is_bounded(tmp_path: Path) -> None:
    # a real pax header just over the limit, built by tarfile itself
    lim = ScanLimits(max_tar_header_bytes=4096)
    ti = tarfile.TarInfo("x")
    ti.pax_headers = {"comment": "c" * 10_000}
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(ti, io.BytesIO(b""))
    im = build_image([buf.getvalue(), layer_tar(GOOD)])
    root = write_oci_layout(tmp_path / "oci", [im])
    warnings: list[ScanWarning] = []
    with open_source(str(root), limits=lim) as src:
        (image,) = list(src.images())
        contents = list(walk_image(image, limits=lim, index=LayerIndex(), on_warning=warnings.append))
    assert [w.code for w in warnings] == ["limit.tar_header"]
    assert (1, "good/after.txt") in layer_paths(contents)
