"""Local image sources: docker-archive (old and new), oci layouts and archives, detection, platforms."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.sources import PathSource, open_source
from secretsvc.scan.sources.image import Image
from secretsvc.scan.walk import LayerIndex, walk_image
from tests.scanimages import (
    BuiltImage,
    build_image,
    file,
    sha256,
    whiteout,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)


def sample(platform: tuple[str, str, str | None] = ("linux", "amd64", None), marker: str = "x") -> BuiltImage:
    return build_image(
        [[file("etc/app.conf", f"marker={marker}\n")], [whiteout("etc/app.conf"), file("srv/a", "b")]],
        compression=["gzip", "zstd"],
        env=["A=1"],
        platform=platform,
    )


def images_of(ref: str, **kw: object) -> list[Image]:
    with open_source(ref, **kw) as src:  # type: ignore[arg-type]
        return list(src.images())


def files_of(image: Image) -> list[tuple[int | None, str, bytes]]:
    out = walk_image(image, limits=ScanLimits(), index=LayerIndex(), on_warning=pytest.fail)
    return [(c.layer_index, c.path, c.data) for c in out if c.layer_index is not None]


EXPECTED = [(0, "etc/app.conf", b"marker=x\n"), (1, "srv/a", b"b")]


@pytest.mark.parametrize("style", ["old", "new"])
def test_docker_archive(tmp_path: Path, style: str) -> None:
    im = sample()
    path = write_docker_archive(tmp_path / "img.tar", im, style=style, tag="acme/app:1.0")
    for ref in (f"docker-archive:{path}", f"docker-archive:{path}:acme/app:1.0", str(path)):
        (image,) = images_of(ref)
        assert image.platform == "linux/amd64"
        assert [ly.diff_id for ly in image.layers] == im.diff_ids
        assert files_of(image) == EXPECTED
    with pytest.raises(errors.NotFound):
        images_of(f"docker-archive:{path}:acme/app:2.0")


def test_oci_layout_archive_and_detection(tmp_path: Path) -> None:
    im = sample()
    layout = write_oci_layout(tmp_path / "oci", [im], tag="v1")
    archive = write_oci_archive(tmp_path / "oci.tar", [im], tag="v1")
    for ref in (
        f"oci:{layout}",
        f"oci:{layout}:v1",
        str(layout),
        f"oci-archive:{archive}",
        f"oci-archive:{archive}:v1",
        str(archive),
    ):
        (image,) = images_of(ref)
        assert [ly.digest for ly in image.layers] == [sha256(b) for b in im.blobs]
        assert [ly.size for ly in image.layers] == [len(b) for b in im.blobs]
        assert files_of(image) == EXPECTED
    with pytest.raises(errors.NotFound):
        images_of(f"oci:{layout}:v2")


@pytest.mark.parametrize("nested", [False, True])
def test_multi_platform_index(tmp_path: Path, nested: bool) -> None:
    amd = sample(("linux", "amd64", None), "amd")
    arm = sample(("linux", "arm64", "v8"), "arm")
    arm7 = sample(("linux", "arm", "v7"), "arm7")
    layout = write_oci_layout(tmp_path / "oci", [amd, arm, arm7], multi_platform=True, nested_index=nested)
    assert [i.platform for i in images_of(f"oci:{layout}")] == [
        "linux/amd64",
        "linux/arm64/v8",
        "linux/arm/v7",
    ]
    (image,) = images_of(f"oci:{layout}", platform="linux/arm64")
    assert files_of(image)[0][2] == b"marker=arm\n"
    (image,) = images_of(f"oci:{layout}", platform="linux/arm/v7")
    assert files_of(image)[0][2] == b"marker=arm7\n"
    with pytest.raises(errors.NotFound):
        images_of(f"oci:{layout}", platform="windows/amd64")
    with pytest.raises(errors.InvalidArgument):
        images_of(f"oci:{layout}", platform="linux")


def test_plain_paths_are_source_trees(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    for p in (tmp_path / "src", tmp_path / "src" / "a.py"):
        with open_source(str(p)) as src:
            assert isinstance(src, PathSource)
            assert src.tree == p
            assert list(src.images()) == []


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("nosuch:thing", errors.InvalidArgument),
        ("/no/such/path", errors.NotFound),
        ("oci:/no/such/dir", errors.NotFound),
        ("docker-archive:/no/such.tar", errors.NotFound),
        ("docker://bad host/x", errors.InvalidArgument),
        ("docker://localhost:5000/UPPER/case", errors.InvalidArgument),
        ("docker://localhost:5000/a/b@sha256:1234", errors.InvalidArgument),
        ("docker://localhost:5000/a/b:bad!tag", errors.InvalidArgument),
    ],
)
def test_bad_references(ref: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        images_of(ref)


def test_tampered_config_is_refused(tmp_path: Path) -> None:
    im = sample()
    layout = write_oci_layout(tmp_path / "oci", [im])
    cfg = layout / "blobs" / "sha256" / sha256(im.config_bytes).split(":")[1]
    cfg.write_bytes(im.config_bytes.replace(b"A=1", b"A=2"))
    with pytest.raises(errors.InvalidArgument, match="image config digest mismatch"):
        images_of(f"oci:{layout}")


def test_oversized_documents_are_refused(tmp_path: Path) -> None:
    im = build_image([[file("a", "b")]], env=[f"E{i}=" + "v" * 100 for i in range(100)])
    layout = write_oci_layout(tmp_path / "oci", [im])
    with pytest.raises(errors.LimitExceeded, match="image config"):
        images_of(f"oci:{layout}", limits=ScanLimits(max_config_bytes=5000))
    with pytest.raises(errors.LimitExceeded, match=r"index\.json"):
        images_of(f"oci:{layout}", limits=ScanLimits(max_manifest_bytes=100))
    with pytest.raises(errors.LimitExceeded, match="over 0"):
        images_of(f"oci:{layout}", limits=ScanLimits(max_layers=0))


def test_diff_id_count_mismatch_is_refused(tmp_path: Path) -> None:
    im = sample()
    im.config["rootfs"]["diff_ids"].pop()
    layout = write_oci_layout(tmp_path / "oci", [im])
    with pytest.raises(errors.InvalidArgument, match="diff_ids"):
        images_of(f"oci:{layout}")


def test_malformed_json_is_refused(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "oci", [sample()])
    (layout / "index.json").write_text("{not json")
    with pytest.raises(errors.InvalidArgument, match="not valid JSON"):
        images_of(f"oci:{layout}")
    (layout / "index.json").write_text(json.dumps({"manifests": [{"digest": "sha256:../../etc/passwd"}]}))
    with pytest.raises(errors.InvalidArgument, match="digest"):
        images_of(f"oci:{layout}")


def test_archive_member_names_never_touch_the_filesystem(tmp_path: Path) -> None:
    im = sample()
    path = write_docker_archive(tmp_path / "img.tar", im)
    import tarfile

    with tarfile.open(path) as tf:
        members = {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}  # type: ignore[union-attr]
    doc = json.loads(members["manifest.json"])
    doc[0]["Layers"][0] = "../../../../etc/hostname"
    members["manifest.json"] = json.dumps(doc).encode()
    bad = tmp_path / "bad.tar"
    import io

    with tarfile.open(bad, "w") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    (image,) = images_of(f"docker-archive:{bad}")
    warnings = []
    list(walk_image(image, limits=ScanLimits(), index=LayerIndex(), on_warning=warnings.append))
    assert warnings[0].code == "layer.unreadable"


UMOCI = shutil.which("umoci")
SKOPEO = shutil.which("skopeo")


@pytest.mark.skipif(UMOCI is None or SKOPEO is None, reason="umoci and skopeo are needed (Debian packages)")
def test_umoci_built_image_through_skopeo_formats(tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:base"], check=True)
    content = tmp_path / "content"
    (content / "etc").mkdir(parents=True)
    (content / "etc" / "app.conf").write_text("password=from-umoci\n")
    subprocess.run(["umoci", "insert", "--image", f"{layout}:base", str(content / "etc"), "/etc"], check=True)
    (content / "gone").mkdir()
    subprocess.run(["umoci", "insert", "--image", f"{layout}:base", "--whiteout", "/etc/app.conf"], check=True)
    refs = [f"oci:{layout}:base"]
    subprocess.run(["skopeo", "copy", "-q", f"oci:{layout}:base", f"oci-archive:{tmp_path / 'o.tar'}:base"], check=True)
    subprocess.run(
        ["skopeo", "copy", "-q", f"oci:{layout}:base", f"docker-archive:{tmp_path / 'd.tar'}:acme/app:1"],
        check=True,
    )
    refs += [
        f"oci-archive:{tmp_path / 'o.tar'}:base",
        f"docker-archive:{tmp_path / 'd.tar'}",
        str(tmp_path / "d.tar"),
    ]
    for ref in refs:
        (image,) = images_of(ref)
        index = LayerIndex()
        contents = list(walk_image(image, limits=ScanLimits(), index=index, on_warning=pytest.fail))
        hits = [c for c in contents if b"from-umoci" in c.data]
        assert [(c.path, index.location_of(c.layer_index, c.path).value) for c in hits] == [  # type: ignore[arg-type]
            ("etc/app.conf", "deleted_file")
        ], ref
