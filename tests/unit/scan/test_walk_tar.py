"""The walker's own tar reader and the threaded layer stream: formats, hostile headers, printable runs."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import Content, ScanWarning
from secretsvc.scan.sources import open_source
from secretsvc.scan.sources.stream import CorruptStream, LayerStream
from secretsvc.scan.walk import LayerIndex, _Walker, walk_image
from tests import fakecreds
from tests.scanimages import BuiltImage, build_image, file, layer_tar, raw_tar, write_oci_layout

pytestmark = pytest.mark.timeout(60)

GOOD = [file("good/after.txt", "still scanned")]


@pytest.fixture
def rng() -> random.Random:
    return random.Random(4242)


def walk(
    tmp_path: Path, im: BuiltImage, limits: ScanLimits | None = None
) -> tuple[list[Content], list[ScanWarning], LayerIndex]:
    root = write_oci_layout(tmp_path / "oci", [im])
    lim = limits or ScanLimits()
    index, warnings, out = LayerIndex(), [], []
    with open_source(f"oci:{root}", limits=lim) as src:
        for image in src.images():
            out.extend(walk_image(image, limits=lim, index=index, on_warning=warnings.append))
    return out, warnings, index


def paths(contents: list[Content]) -> list[tuple[int | None, str]]:
    return [(c.layer_index, c.path) for c in contents if c.layer_index is not None]


def tar_of(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in members:
            ti.size = len(data) if ti.isreg() else 0
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return buf.getvalue()


def reg(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(b"%d" % n) + len(body) != n:
        n = len(b"%d" % n) + len(body)
    return b"%d" % n + body


def with_checksum(header: bytearray) -> bytes:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


# -- formats ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_and_non_ascii_names_in_every_format(tmp_path: Path, fmt: int, rng: random.Random) -> None:
    token = fakecreds.fake_github_token(rng).encode()
    deep = "/".join(["segment-of-a-long-path"] * 6) + "/settings.env"  # > 100 bytes: ustar prefix field
    names = [deep, "plain.txt"] + (["données/clé.txt"] if fmt != tarfile.USTAR_FORMAT else [])
    tar = tar_of([(reg(n), b"T=" + token + b"\n") for n in names], fmt)
    contents, warnings, _ = walk(tmp_path, build_image([tar], compression="none"))
    assert warnings == []
    assert paths(contents) == [(0, n) for n in names]
    assert all(token in c.data for c in contents if c.layer_index is not None)


def test_pax_size_and_path_override_the_header(tmp_path: Path) -> None:
    ti = reg("short")
    ti.pax_headers = {"path": "from/pax/" + "p" * 150}
    tar = tar_of([(ti, b"payload"), (reg("next.txt"), b"z")], tarfile.PAX_FORMAT)
    contents, warnings, _ = walk(tmp_path, build_image([tar], compression="none"))
    assert warnings == []
    assert paths(contents) == [(0, "from/pax/" + "p" * 150), (0, "next.txt")]


def test_base256_size_field_is_read(tmp_path: Path) -> None:
    tar = bytearray(raw_tar([("big.txt", b"x" * 700), ("after.txt", b"y")], fmt=tarfile.GNU_FORMAT))
    header = bytearray(tar[:512])
    header[124:136] = b"\x80" + (700).to_bytes(11, "big")  # GNU base-256, as for files over 8 GiB
    tar[:512] = with_checksum(header)
    contents, warnings, _ = walk(tmp_path, build_image([bytes(tar)], compression="none"))
    assert warnings == []
    assert paths(contents) == [(0, "big.txt"), (0, "after.txt")]
    assert contents[-2].data == b"x" * 700


def test_directories_links_and_devices_are_indexed_not_scanned(tmp_path: Path) -> None:
    d = tarfile.TarInfo("etc/conf.d")
    d.type = tarfile.DIRTYPE
    s = tarfile.TarInfo("etc/link")
    s.type, s.linkname = tarfile.SYMTYPE, "conf.d/x"
    c = tarfile.TarInfo("dev/null")
    c.type = tarfile.CHRTYPE
    old_dir = bytearray(raw_tar([("olddir/", b"")])[:512])
    old_dir[156] = 0  # a pre-POSIX regular type with a trailing slash means a directory
    tar = tar_of([(d, b""), (s, b""), (c, b""), (reg("etc/conf.d/x"), b"v=1")], tarfile.PAX_FORMAT)
    im = build_image([with_checksum(old_dir) + tar, [file("olddir/y", "1")]], compression="none")
    contents, warnings, index = walk(tmp_path, im)
    assert warnings == []
    assert paths(contents) == [(0, "etc/conf.d/x"), (1, "olddir/y")]
    assert index.location_of(0, "etc/conf.d/x").value == "file"


def test_missing_end_blocks_and_padding_are_accepted(tmp_path: Path) -> None:
    tar = raw_tar([("a.txt", b"hello"), ("b.txt", b"world")])
    cut = 512 + 512 + 512 + 5  # two headers, a's padded data, b's data without padding or end blocks
    contents, warnings, _ = walk(tmp_path, build_image([tar[:cut]], compression="none"))
    assert warnings == []
    assert paths(contents) == [(0, "a.txt"), (0, "b.txt")]


def test_empty_layer_is_no_warning(tmp_path: Path) -> None:
    contents, warnings, _ = walk(tmp_path, build_image([b"", GOOD], compression="none"))
    assert warnings == []
    assert paths(contents) == [(1, "good/after.txt")]


# -- hostile headers --------------------------------------------------------------------------------


def test_bad_checksum_after_good_members_warns_and_keeps_them(tmp_path: Path) -> None:
    tar = bytearray(raw_tar([("a.txt", b"first"), ("b.txt", b"second")]))
    tar[1024 + 10] ^= 0x01  # b.txt's header, after a's header and padded data
    contents, warnings, _ = walk(tmp_path, build_image([bytes(tar), GOOD], compression="none"))
    assert [(w.code, w.layer_index) for w in warnings] == [("tar.corrupt", 0)]
    assert "checksum" in warnings[0].message
    assert paths(contents) == [(0, "a.txt"), (1, "good/after.txt")]


def test_bad_number_in_header_is_corrupt(tmp_path: Path) -> None:
    header = bytearray(raw_tar([("a.txt", b"x")])[:512])
    header[124:136] = b"00000000z12\0"
    contents, warnings, _ = walk(tmp_path, build_image([with_checksum(header), GOOD], compression="none"))
    assert [w.code for w in warnings] == ["tar.corrupt"]
    assert paths(contents) == [(1, "good/after.txt")]


@pytest.mark.parametrize("keep", [100, 1024 + 100, 1024 + 511])
def test_cut_inside_a_header_is_warned(tmp_path: Path, keep: int) -> None:
    tar = raw_tar([("a.txt", b"x" * 10), ("b.txt", b"y")])
    contents, warnings, _ = walk(tmp_path, build_image([tar[:keep], GOOD], compression="none"))
    codes = [w.code for w in warnings if w.layer_index == 0]
    assert codes in (["tar.corrupt"], ["tar.truncated"])  # corrupt: not even one whole header
    assert (1, "good/after.txt") in paths(contents)


def test_cut_inside_member_data_is_warned_and_prefix_scanned(tmp_path: Path) -> None:
    tar = raw_tar([("a.txt", b"k=" + b"v" * 5000)])
    contents, warnings, _ = walk(tmp_path, build_image([tar[: 512 + 3000], GOOD], compression="none"))
    assert {w.code for w in warnings if w.layer_index == 0} == {"tar.truncated"}
    assert [len(c.data) for c in contents if c.path == "a.txt"] == [3000]


@pytest.mark.parametrize(
    "record",
    [b"abc path=x\n", b"99 path=x\n", b"5 path=x\n", b"12 pathx=yy\0", b"11 novalue\n"],
)
def test_malformed_pax_records_are_corrupt(tmp_path: Path, record: bytes) -> None:
    hdr = tarfile.TarInfo("././@PaxHeader")
    hdr.type = tarfile.XHDTYPE
    hdr.size = len(record)
    block = hdr.tobuf(format=tarfile.USTAR_FORMAT) + record + bytes(-len(record) % 512)
    contents, warnings, _ = walk(tmp_path, build_image([block + raw_tar([("a", b"1")]), GOOD], compression="none"))
    assert [w.code for w in warnings] == ["tar.corrupt"]
    assert paths(contents) == [(1, "good/after.txt")]


def test_long_chain_of_extended_headers_keeps_only_what_is_used(tmp_path: Path) -> None:
    chain = b""
    for i in range(200):
        rec = pax_record(b"comment.%d" % i, b"c" * 2000)
        hdr = tarfile.TarInfo(f"pax{i}")
        hdr.type = tarfile.XHDTYPE
        hdr.size = len(rec)
        chain += hdr.tobuf(format=tarfile.USTAR_FORMAT) + rec + bytes(-len(rec) % 512)
    contents, warnings, _ = walk(tmp_path, build_image([chain + raw_tar([("a", b"1")])], compression="none"))
    assert warnings == []
    assert paths(contents) == [(0, "a")]


def test_extended_header_at_the_limit_is_read_one_over_is_refused(tmp_path: Path) -> None:
    lim = ScanLimits(max_tar_header_bytes=3000)
    for name_len, expected in ((2900, []), (3100, ["limit.tar_header"])):
        tar = raw_tar([("d/" + "n" * name_len, b"x")])
        contents, warnings, _ = walk(tmp_path / str(name_len), build_image([tar], compression="none"), lim)
        assert [w.code for w in warnings] == expected
        assert len(paths(contents)) == (0 if expected else 1)


# -- binary files ------------------------------------------------------------------------------------

AS_TEXT = bytes(b if 0x20 <= b <= 0x7E or b == 0x09 else 0x0A for b in range(256))


def binary_contents(data: bytes, chunk: int) -> list[Content]:
    lim = ScanLimits(chunk_bytes=chunk, chunk_overlap_bytes=min(64, chunk - 1))
    walker = _Walker(lim, None, lambda w: None, None)
    return list(walker.binary_chunks(data[:chunk], io.BytesIO(data[chunk:]), len(data), "f", 0))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from([64, 256, 4096]))
def test_binary_chunks_are_the_file_read_as_text(data: bytes, chunk: int) -> None:
    contents = binary_contents(data, chunk)
    for c in contents:
        assert c.binary
        # Every byte keeps its offset; only non-printable bytes change, into newlines.
        assert c.data == data[c.offset : c.offset + len(c.data)].translate(AS_TEXT)
    if data:
        covered = max(c.offset + len(c.data) for c in contents)
        assert covered == len(data)
        assert contents[0].offset == 0


def test_binary_content_offsets_are_the_files(rng: random.Random) -> None:
    token = fakecreds.fake_slack_token(rng).encode()
    data = b"\x7fELF\0\0\x01" + b"\0" * 93 + token + b"\0abc\0"
    (c,) = binary_contents(data, 4096)
    assert c.binary and c.offset == 0
    assert c.data.index(token) == 100
    assert set(c.data) <= set(range(0x20, 0x7F)) | {0x09, 0x0A}


# -- the threaded layer stream ----------------------------------------------------------------------


def layer_stream(blob: bytes, block: int = 1 << 16) -> LayerStream:
    return LayerStream(io.BytesIO(blob), blob_digest=None, diff_id=None, block=block)


def test_stream_reads_everything_in_order_and_ends() -> None:
    data = random.Random(1).randbytes(3_000_000)
    for blob in (data, gzip.compress(data, compresslevel=1)):
        s = layer_stream(blob)
        parts = []
        while chunk := s.read(100_000):
            parts.append(chunk)
        assert b"".join(parts) == data
        assert s.finished and s.bytes_out == len(data)
        assert s.read(10) == b""
        s.verify()
        s.close()


def test_stream_read_never_returns_more_than_asked() -> None:
    s = layer_stream(bytes(500_000))
    sizes = {len(s.read(7)) for _ in range(1000)}
    assert sizes == {7}
    s.close()


def test_corrupt_gzip_is_raised_to_the_reader() -> None:
    blob = bytearray(gzip.compress(random.Random(2).randbytes(400_000)))
    blob[5000:5200] = bytes(200)
    s = layer_stream(bytes(blob))
    with pytest.raises(CorruptStream):
        while s.read(1 << 16):
            pass
    assert not s.finished
    s.close()


def test_abandoned_stream_stops_its_worker() -> None:
    before = threading.active_count()
    s = layer_stream(bytes(20_000_000), block=1 << 16)
    assert s.read(10) == bytes(10)
    assert threading.active_count() == before + 1
    s.stop()
    assert threading.active_count() == before
    s.stop()  # idempotent


def test_abandoned_walk_leaves_no_worker_behind(tmp_path: Path) -> None:
    im = build_image([[file(f"f{i}.txt", "x" * 100_000) for i in range(50)]])
    root = write_oci_layout(tmp_path / "oci", [im])
    before = threading.active_count()
    with open_source(f"oci:{root}") as src:
        (image,) = list(src.images())
        contents = walk_image(image, limits=ScanLimits(), index=LayerIndex(), on_warning=lambda w: None)
        next(contents)  # the config
        next(contents)  # the first file: the worker is running
        assert threading.active_count() == before + 1
        contents.close()
    assert threading.active_count() == before


def test_layer_tar_with_gzip_and_zstd_matches_uncompressed(tmp_path: Path) -> None:
    entries = [file(f"d/f{i}.txt", f"line {i}\n" * (i * 100)) for i in range(40)]
    expected = None
    for comp in ("none", "gzip", "zstd"):
        contents, warnings, _ = walk(tmp_path / comp, build_image([layer_tar(entries)], compression=comp))
        got = [(c.path, c.data) for c in contents if c.layer_index is not None]
        assert warnings == []
        expected = expected or got
        assert got == expected
