"""The layer walker on images built by hand: locations, chunking, links, nested archives, binaries."""

from __future__ import annotations

import gzip
import io
import itertools
import random
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import Content, Location, ScanWarning
from secretsvc.scan.sources import open_source
from secretsvc.scan.tarstream import clean_path
from secretsvc.scan.walk import LayerIndex, config_contents, walk_image, walk_path
from tests import fakecreds
from tests.scanimages import (
    BuiltImage,
    Entry,
    build_image,
    directory,
    file,
    hardlink,
    make_tar,
    make_tgz,
    make_zip,
    nest_zips,
    opaque,
    symlink,
    whiteout,
    write_oci_layout,
)


def walk(
    tmp_path: Path, im: BuiltImage, limits: ScanLimits | None = None
) -> tuple[list[Content], list[ScanWarning], LayerIndex]:
    write_oci_layout(tmp_path / "oci", [im])
    index, warnings, out = LayerIndex(), [], []
    lim = limits or ScanLimits()
    with open_source(f"oci:{tmp_path / 'oci'}", limits=lim) as src:
        for image in src.images():
            out.extend(walk_image(image, limits=lim, index=index, on_warning=warnings.append))
    return out, warnings, index


def by_path(contents: Sequence[Content]) -> dict[str, list[Content]]:
    out: dict[str, list[Content]] = {}
    for c in contents:
        out.setdefault(c.path, []).append(c)
    return out


def located(contents: Sequence[Content], index: LayerIndex) -> dict[tuple[int | None, str], Location]:
    return {
        (c.layer_index, c.path): index.location_of(c.layer_index, c.path) if c.layer_index is not None else c.location
        for c in contents
    }


@pytest.fixture
def rng() -> random.Random:
    return random.Random(3)


def test_secret_in_every_location_is_yielded_with_its_location(tmp_path: Path, rng: random.Random) -> None:
    key_id, secret = fakecreds.fake_aws_key_pair(rng)
    token = fakecreds.fake_github_token(rng)
    ini = f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    im = build_image(
        [
            [directory("root"), file("root/.aws/credentials", ini), file("app/.env", f"GH={token}\n")],
            [file("app/.env", "GH=\n"), whiteout("root/.aws/credentials")],
            [file("srv/keep.txt", f"token {token}\n")],
        ],
        env=[f"GITHUB_TOKEN={token}"],
        labels={"build.token": token},
        history=[
            {"created_by": f"/bin/sh -c echo {token} > /app/.env"},
            {"created_by": "ENV X=1", "empty_layer": True},
            {"created_by": "RUN rm"},
            {"created_by": "COPY keep"},
        ],
        entrypoint=["/bin/app", f"--token={token}"],
    )
    contents, warnings, index = walk(tmp_path, im)
    assert warnings == []
    loc = located(contents, index)
    assert loc[(0, "root/.aws/credentials")] is Location.DELETED_FILE
    assert loc[(0, "app/.env")] is Location.OVERWRITTEN_FILE
    assert loc[(1, "app/.env")] is Location.FILE
    assert loc[(2, "srv/keep.txt")] is Location.FILE
    assert loc[(None, "config.Env[0]")] is Location.CONFIG_ENV
    assert loc[(None, "config.Labels.build.token")] is Location.CONFIG_LABEL
    assert loc[(None, "history[0].created_by")] is Location.CONFIG_HISTORY
    assert loc[(None, "config.Entrypoint")] is Location.CONFIG_OTHER
    # config Contents come first, with no layer
    first_layer = next(i for i, c in enumerate(contents) if c.layer_index is not None)
    assert all(c.layer_index is None for c in contents[:first_layer])
    assert all(c.layer_index is not None for c in contents[first_layer:])
    assert secret.encode() in by_path(contents)["root/.aws/credentials"][0].data
    assert by_path(contents)["config.Labels.build.token"][0].data == f"build.token={token}".encode()


def test_created_by_skips_empty_layers(tmp_path: Path) -> None:
    im = build_image(
        [[file("a", "1")], [file("b", "2")]],
        history=[
            {"created_by": "FROM", "empty_layer": True},
            {"created_by": "ADD a"},
            {"created_by": "ADD b"},
        ],
    )
    write_oci_layout(tmp_path / "oci", [im])
    with open_source(str(tmp_path / "oci")) as src:
        (image,) = list(src.images())
    assert [ly.created_by for ly in image.layers] == ["ADD a", "ADD b"]
    assert [ly.diff_id for ly in image.layers] == im.diff_ids


@pytest.mark.parametrize(
    ("later", "expected"),
    [
        ([whiteout("etc/app")], Location.DELETED_FILE),
        ([opaque("etc")], Location.DELETED_FILE),
        ([opaque("etc"), file("etc/app/conf", "again")], Location.OVERWRITTEN_FILE),
        ([file("etc/app", "now a file")], Location.DELETED_FILE),
        ([file("etc/app/conf", "new")], Location.OVERWRITTEN_FILE),
        ([file("etc/other", "x")], Location.FILE),
        ([opaque("etc/app/conf.d")], Location.FILE),
    ],
)
def test_location_after_later_layers(tmp_path: Path, later: list[Entry], expected: Location) -> None:
    im = build_image([[directory("etc/app"), file("etc/app/conf", "pw")], later])
    _, _, index = walk(tmp_path, im)
    assert index.location_of(0, "etc/app/conf") is expected


def test_deleted_then_readded_is_overwritten_and_readded_then_deleted_is_deleted() -> None:
    index = LayerIndex()
    index.add(0, "a/b", is_dir=False)
    index.whiteout(1, "a/b")
    index.add(2, "a/b", is_dir=False)
    assert index.location_of(0, "a/b") is Location.OVERWRITTEN_FILE
    assert index.location_of(2, "a/b") is Location.FILE
    index.whiteout(3, "a")
    assert index.location_of(0, "a/b") is Location.DELETED_FILE
    assert index.location_of(0, "a/b!inner/x.txt") is Location.DELETED_FILE
    assert index.location_of(2, "a/b") is Location.DELETED_FILE


def test_links_are_recorded_not_followed_or_reread(tmp_path: Path) -> None:
    im = build_image(
        [
            [
                file("etc/secret", "pw=1"),
                hardlink("etc/hard", "etc/secret"),
                symlink("etc/soft", "../../../../etc/shadow"),
                symlink("etc/abs", "/etc/secret"),
            ],
            [whiteout("etc/hard")],
        ]
    )
    contents, warnings, index = walk(tmp_path, im)
    paths = [c.path for c in contents if c.layer_index is not None]
    assert paths == ["etc/secret"]  # the hard link's content is its target's: read once
    assert index.location_of(0, "etc/hard") is Location.DELETED_FILE
    assert index.location_of(0, "etc/secret") is Location.FILE
    assert warnings == []


def test_whiteout_files_are_not_scanned(tmp_path: Path) -> None:
    im = build_image([[file("a/x", "1")], [whiteout("a/x"), opaque("b")]])
    contents, _, _ = walk(tmp_path, im)
    assert not [c for c in contents if ".wh." in c.path]


def test_chunks_overlap_and_carry_offsets_and_line_numbers(tmp_path: Path, rng: random.Random) -> None:
    lines = [f"line {i} {'z' * rng.randrange(5, 60)}\n".encode() for i in range(3000)]
    token = fakecreds.fake_github_token(rng).encode()
    at = 1900
    lines[at] = b"GH_TOKEN=" + token + b"\n"
    data = b"".join(lines)
    lim = ScanLimits(chunk_bytes=16 * 1024, chunk_overlap_bytes=1024)
    contents, _, _ = walk(tmp_path, build_image([[file("big.txt", data)]]), lim)
    chunks = by_path(contents)["big.txt"]
    assert len(chunks) > 5
    for c in chunks:
        assert data[c.offset : c.offset + len(c.data)] == c.data
        assert c.first_line == data[: c.offset].count(b"\n") + 1
        assert len(c.data) <= lim.chunk_bytes + lim.chunk_overlap_bytes
    for a, b in itertools.pairwise(chunks):
        assert b.offset == a.offset + len(a.data) - lim.chunk_overlap_bytes
    hits = [c for c in chunks if token in c.data]
    assert hits
    c = hits[0]
    assert c.first_line + c.data[: c.data.index(token)].count(b"\n") == at + 1
    assert chunks[-1].offset + len(chunks[-1].data) == len(data)


def test_secret_straddling_a_chunk_boundary_is_whole_in_one_chunk(tmp_path: Path, rng: random.Random) -> None:
    token = fakecreds.fake_github_token(rng).encode()
    lim = ScanLimits(chunk_bytes=8192, chunk_overlap_bytes=512)
    data = b"a" * (8192 - 10) + b" " + token + b" " + b"b" * 9000
    contents, _, _ = walk(tmp_path, build_image([[file("f.txt", data)]]), lim)
    assert any(token in c.data for c in contents)


def test_binary_files_are_read_as_text(tmp_path: Path, rng: random.Random) -> None:
    token = fakecreds.fake_slack_token(rng).encode()
    blob = b"\x7fELF\x02\x01\x01\0" + rng.randbytes(5000).replace(b"x", b"\0") + b"\0" + token + b"\0short\0"
    contents, _, _ = walk(tmp_path, build_image([[file("usr/bin/tool", blob)]]))
    (c,) = by_path(contents)["usr/bin/tool"]
    assert c.binary is True
    assert token in c.data.split(b"\n")
    assert c.data == blob.translate(bytes(b if 0x20 <= b <= 0x7E or b == 0x09 else 0x0A for b in range(256)))


def test_binary_run_across_chunks_is_kept_whole(tmp_path: Path, rng: random.Random) -> None:
    token = fakecreds.fake_slack_token(rng).encode()
    lim = ScanLimits(chunk_bytes=4096, chunk_overlap_bytes=64)
    blob = b"\0" * (4096 - 20) + token + b"\0" * 5000
    contents, _, _ = walk(tmp_path, build_image([[file("lib.so", blob)]]), lim)
    runs = [run for c in contents for run in c.data.split(b"\n")]
    assert token in runs


def test_nested_archives_are_expanded_with_bang_paths(tmp_path: Path, rng: random.Random) -> None:
    token = fakecreds.fake_npm_token(rng)
    inner_zip = make_zip({"conf/app.properties": f"npm.token={token}\n"})
    layer = [
        file("opt/app.jar", make_zip({"BOOT-INF/lib/dep.jar": inner_zip, "META-INF/x.txt": "hello"})),
        file("opt/bundle.tgz", make_tgz({"etc/.npmrc": f"//r/:_authToken={token}\n"})),
        file("opt/plain.tar", make_tar({"a/b.txt": f"t={token}"})),
        file("opt/notes.txt.gz", gzip.compress(f"t={token}".encode())),
        file("opt/lib.whl", make_zip({"pkg/settings.py": f"TOKEN = '{token}'"})),
    ]
    contents, warnings, index = walk(tmp_path, build_image([layer]))
    paths = {c.path for c in contents if token.encode() in c.data}
    assert paths == {
        "opt/app.jar!BOOT-INF/lib/dep.jar!conf/app.properties",
        "opt/bundle.tgz!etc/.npmrc",
        "opt/plain.tar!a/b.txt",
        "opt/notes.txt.gz!notes.txt",
        "opt/lib.whl!pkg/settings.py",
    }
    assert warnings == []
    assert index.location_of(0, "opt/app.jar!BOOT-INF/lib/dep.jar!conf/app.properties") is Location.FILE


def test_nesting_deeper_than_the_limit_is_warned_and_scanned_as_binary(tmp_path: Path, rng: random.Random) -> None:
    token = fakecreds.fake_github_token(rng)
    deep = nest_zips("secret.txt", f"t={token}".encode(), 5)
    lim = ScanLimits(max_nested_depth=3)
    contents, warnings, _ = walk(tmp_path, build_image([[file("deep.zip", deep)]]), lim)
    assert [w.code for w in warnings] == ["limit.nested_depth"]
    assert warnings[0].path == "deep.zip!level2.zip!level3.zip!level4.zip"
    assert max(c.path.count("!") for c in contents) == 3


def test_zip_bomb_is_stopped_not_expanded(tmp_path: Path) -> None:
    from tests.scanimages import zip_bomb

    bomb = zip_bomb(n_entries=3, entry_bytes=20 * 1024 * 1024)
    contents, warnings, _ = walk(tmp_path, build_image([[file("bomb.zip", bomb)]]))
    assert {w.code for w in warnings} == {"limit.compression_ratio"}
    assert sum(len(c.data) for c in contents if c.layer_index is not None) < 4 * 1024 * 1024


def test_zip_expansion_budget_and_entry_count(tmp_path: Path, rng: random.Random) -> None:
    members = {f"f{i}.txt": rng.randbytes(3000).hex() for i in range(40)}
    lim = ScanLimits(max_archive_entries=10, max_expanded_bytes_per_archive=1_000_000)
    contents, warnings, _ = walk(tmp_path, build_image([[file("many.zip", make_zip(members))]]), lim)
    assert [w.code for w in warnings] == ["limit.archive_entries"]
    assert len({c.path for c in contents if c.layer_index is not None}) == 10
    lim = ScanLimits(max_expanded_bytes_per_archive=50_000)
    contents, warnings, _ = walk(tmp_path / "b", build_image([[file("many.zip", make_zip(members))]]), lim)
    assert [w.code for w in warnings] == ["limit.expanded_bytes"]
    assert sum(len(c.data) for c in contents if c.layer_index is not None) <= 50_000


def test_corrupt_nested_archive_is_warned(tmp_path: Path) -> None:
    broken = make_zip({"a.txt": "hello there"})[:-30]
    contents, warnings, _ = walk(tmp_path, build_image([[file("x.zip", broken), file("ok.txt", "fine")]]))
    assert [w.code for w in warnings] == ["archive.corrupt"]
    assert "ok.txt" in by_path(contents)


def test_file_over_max_size_is_read_in_part(tmp_path: Path) -> None:
    lim = ScanLimits(max_file_bytes=10_000, chunk_bytes=4096, chunk_overlap_bytes=100)
    contents, warnings, _ = walk(tmp_path, build_image([[file("big.log", b"y" * 50_000), file("after", "z")]]), lim)
    assert [w.code for w in warnings] == ["limit.file_size"]
    chunks = by_path(contents)["big.log"]
    assert chunks[-1].offset + len(chunks[-1].data) == 10_000
    assert "after" in by_path(contents)


@pytest.mark.parametrize(
    ("name", "expected", "unsafe"),
    [
        ("./etc/passwd", "etc/passwd", False),
        ("etc/passwd", "etc/passwd", False),
        ("/etc/passwd", "etc/passwd", True),
        ("../../etc/passwd", "etc/passwd", True),
        ("a/../../b", "b", True),
        ("a/./b//c", "a/b/c", False),
    ],
)
def test_clean_path(name: str, expected: str, unsafe: bool) -> None:
    assert clean_path(name) == (expected, unsafe)


def test_config_paths_for_other_fields() -> None:
    cfg = {
        "config": {
            "WorkingDir": "/srv",
            "OnBuild": ["RUN a", "RUN b"],
            "Healthcheck": {"Test": ["CMD", "x"]},
        },
        "author": "someone",
        "history": [{"created_by": "RUN x", "comment": "buildkit"}],
    }
    got = {c.path: (c.location, c.data) for c in config_contents(cfg)}
    assert got["config.WorkingDir"] == (Location.CONFIG_OTHER, b"/srv")
    assert got["config.OnBuild[1]"] == (Location.CONFIG_OTHER, b"RUN b")
    assert got["config.Healthcheck.Test[1]"] == (Location.CONFIG_OTHER, b"x")
    assert got["history[0].comment"][0] is Location.CONFIG_HISTORY
    assert got["author"][0] is Location.CONFIG_OTHER
    assert list(config_contents(None)) == []


def test_progress_adds_up_to_the_uncompressed_size(tmp_path: Path, rng: random.Random) -> None:
    im = build_image([[file(f"f{i}", rng.randbytes(2000).hex()) for i in range(50)], [file("g", "x")]])
    write_oci_layout(tmp_path / "oci", [im])
    seen: list[int] = []
    with open_source(str(tmp_path / "oci")) as src:
        (image,) = list(src.images())
        list(walk_image(image, limits=ScanLimits(), index=LayerIndex(), on_warning=print, on_progress=seen.append))
    assert all(n > 0 for n in seen)
    assert sum(seen) == sum(len(t) for t in im.tars)


def test_walk_path_directory_and_single_file(tmp_path: Path, rng: random.Random) -> None:
    token = fakecreds.fake_github_token(rng)
    root = tmp_path / "src"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "settings.py").write_text(f"TOKEN = '{token}'\n")
    (root / "vendor.zip").write_bytes(make_zip({"conf.ini": f"token={token}"}))
    (root / "link").symlink_to("/etc/passwd")
    warnings: list[ScanWarning] = []
    contents = list(walk_path(root, limits=ScanLimits(), on_warning=warnings.append))
    assert {c.path for c in contents} == {"pkg/settings.py", "vendor.zip!conf.ini"}
    assert all(c.layer_index == 0 and c.location is Location.FILE for c in contents)
    single = list(walk_path(root / "pkg" / "settings.py", limits=ScanLimits(), on_warning=warnings.append))
    assert [c.path for c in single] == ["settings.py"]
    assert warnings == []


def test_hash_of_tar_from_tarfile_is_stable() -> None:
    # the builders must produce identical bytes for identical input, or digests in fixtures drift
    assert make_tar({"a": "b"}) == make_tar({"a": "b"})
    with tarfile.open(fileobj=io.BytesIO(make_tar({"a": "b"}))) as tf:
        assert tf.getnames() == ["a"]
