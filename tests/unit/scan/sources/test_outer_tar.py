"""Image archives on disk (`docker save`, OCI archives) read by the project's own tar reader, in linear time.

The stdlib reader's pax parsing backtracks quadratically on a long run of digits (the CVE-2024-6232
pattern): on Python 3.11.7 a pax body of 64k digits took 4.8 s. The archive is now indexed by
`tarstream.index_tar`, which reads a record's length from at most 20 digits.
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.sources import open_source
from secretsvc.scan.sources.image import Image
from secretsvc.scan.tarstream import index_tar
from secretsvc.scan.walk import LayerIndex, walk_image
from tests.scanimages import build_image, file, sha256, write_docker_archive

GOOD = [file("etc/app.conf", "marker=x\n")]


def images_of(ref: str, limits: ScanLimits | None = None) -> list[Image]:
    with open_source(ref, limits=limits or ScanLimits()) as src:
        return list(src.images())


def files_of(image: Image) -> list[tuple[int | None, str]]:
    out = walk_image(image, limits=ScanLimits(), index=LayerIndex(), on_warning=pytest.fail)
    return [(c.layer_index, c.path) for c in out if c.layer_index is not None]


def write_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> Path:
    with tarfile.open(path, "w", format=fmt) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                ti = tarfile.TarInfo(m[0])
                ti.size = len(m[1])
                tf.addfile(ti, io.BytesIO(m[1]))
    return path


def archive_members(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers() if m.isfile()]  # type: ignore[union-attr]


def digits_pax_archive(tmp_path: Path, digits: int, tail: bytes) -> Path:
    """A docker-archive whose first member is a pax header holding one long run of digits."""
    good = write_docker_archive(tmp_path / f"good{digits}.tar", build_image([GOOD]))
    body = b"9" * digits + tail
    hdr = tarfile.TarInfo("././@PaxHeader")
    hdr.type = tarfile.XHDTYPE
    hdr.size = len(body)
    pax = hdr.tobuf(format=tarfile.USTAR_FORMAT) + body + bytes(-len(body) % 512)
    path = tmp_path / f"pax{digits}.tar"
    path.write_bytes(pax + good.read_bytes())
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize("tail", [b"", b" x="], ids=["digits", "record"])
def test_pax_run_of_digits_is_refused_in_linear_time(tmp_path: Path, tail: bytes) -> None:
    """Only digits: the stdlib took 0.8 s for 16k and 6.9 s for 64k. As a record's length ("9...9 x="), it
    also crashed converting 16k digits to an int (ValueError: a traceback, exit status 1)."""

    def cost(digits: int) -> float:
        path = digits_pax_archive(tmp_path, digits, tail)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            with pytest.raises(errors.InvalidArgument, match="not a readable uncompressed tar"):
                images_of(f"docker-archive:{path}")
            best = min(best, time.perf_counter() - started)
        return best

    small, large = cost(16 * 1024), cost(64 * 1024)
    assert large < 1.0, f"64k digits took {large:.2f} s"
    # 4x the digits: linear work is ~4x, the quadratic stdlib parse ~16x. The floor keeps timer noise out.
    assert large < 8 * max(small, 0.005), (small, large)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu", "pax"])
def test_long_names_and_links_between_members(tmp_path: Path, fmt: int) -> None:
    """Names past 100 bytes (GNU long names or pax paths), and `docker save`'s link for a repeated layer."""
    im = build_image([GOOD, GOOD], compression="none")  # two identical layers, as docker save repeats them
    old = archive_members(write_docker_archive(tmp_path / "plain.tar", im, style="old"))
    layer_names = [n for n, _ in old if n.endswith("/layer.tar")]
    long_dir = "d" * 120
    members: list[tarfile.TarInfo | tuple[str, bytes]] = []
    for name, data in old:
        if name == layer_names[1]:
            link = tarfile.TarInfo(name)
            link.type = tarfile.SYMTYPE
            link.linkname = "../" + long_dir + "/layer.tar"
            members.append(link)
        elif name == layer_names[0]:
            members.append((long_dir + "/layer.tar", data))
        elif name == "manifest.json":
            members.append((name, data.replace(layer_names[0].encode(), (long_dir + "/layer.tar").encode())))
        else:
            members.append((name, data))
    hard = tarfile.TarInfo("hard/" + "h" * 110 + ".json")
    hard.type = tarfile.LNKTYPE
    hard.linkname = next(n for n, _ in old if n.endswith(".json") and n != "manifest.json")
    members.append(hard)
    path = write_tar(tmp_path / "links.tar", members, fmt)
    (image,) = images_of(f"docker-archive:{path}")
    assert [ly.diff_id for ly in image.layers] == [sha256(t) for t in im.tars]
    assert files_of(image) == [(0, "etc/app.conf"), (1, "etc/app.conf")]
    with path.open("rb") as f:
        names = {m.name: m for m, _ in index_tar(f, max_entries=100, max_header=1 << 20)}
    assert names[hard.name].islnk and names[hard.name].linkname == hard.linkname
    assert names[layer_names[1]].issym and names[layer_names[1]].linkname.endswith(long_dir + "/layer.tar")


def test_member_data_is_seeked_over_not_read(tmp_path: Path) -> None:
    big = bytes(8 << 20)
    path = write_tar(tmp_path / "big.tar", [("a", big), ("b", b"after")])

    class Counting(io.FileIO):
        read_bytes = 0

        def read(self, n: int = -1, /) -> bytes:
            data = super().read(n)
            Counting.read_bytes += len(data)
            return data

    with Counting(str(path)) as f:
        index = [(m.name, m.size, off) for m, off in index_tar(f, max_entries=10, max_header=1 << 20)]  # type: ignore[arg-type]
    assert index == [("a", len(big), 512), ("b", 5, 512 + len(big) + 512)]
    assert Counting.read_bytes < 1 << 20
    assert path.read_bytes()[index[1][2] : index[1][2] + 5] == b"after"


def test_too_many_members_is_a_limit(tmp_path: Path) -> None:
    path = write_docker_archive(tmp_path / "img.tar", build_image([GOOD]))
    with pytest.raises(errors.LimitExceeded, match="max_archive_entries=2"):
        images_of(f"docker-archive:{path}", ScanLimits(max_archive_entries=2))


def test_huge_extended_header_in_an_archive_is_a_limit(tmp_path: Path) -> None:
    ti = tarfile.TarInfo("manifest.json")
    ti.pax_headers = {"comment": "c" * 10_000}
    path = write_tar(tmp_path / "img.tar", [ti])
    with pytest.raises(errors.LimitExceeded, match="extended header"):
        images_of(f"docker-archive:{path}", ScanLimits(max_tar_header_bytes=4096))


@pytest.mark.parametrize("keep", [700, 3000])
def test_truncated_archive_is_refused(tmp_path: Path, keep: int) -> None:
    good = write_docker_archive(tmp_path / "img.tar", build_image([GOOD]))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(good.read_bytes()[:keep])
    with pytest.raises(errors.InvalidArgument, match="not a readable uncompressed tar"):
        images_of(f"docker-archive:{cut}")
