"""Links and special files in an image layout or archive path: refused, never followed, never waited on.

A layer blob that cannot be opened safely is a "layer.unreadable" warning; a refused oci-layout, index.json,
manifest.json, manifest or config is an error (`errors.InvalidArgument`, exit status 2).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import Content, ScanWarning
from secretsvc.scan.sources import open_source
from secretsvc.scan.sources.safeopen import open_file, open_in
from secretsvc.scan.walk import LayerIndex, walk_image
from tests import fakecreds
from tests.scanimages import (
    BuiltImage,
    build_image,
    file,
    sha256,
    write_docker_archive,
    write_oci_layout,
)

pytestmark = pytest.mark.timeout(20)  # a followed FIFO or /dev/zero would hang: fail instead

GOOD = [file("good/after.txt", "still scanned")]


def two_layers() -> BuiltImage:
    return build_image([[file("a.txt", "first layer")], GOOD], compression="none")


def blob_path(root: Path, data: bytes) -> Path:
    return root / "blobs" / "sha256" / sha256(data).split(":", 1)[1]


def walk_ref(ref: str) -> tuple[list[Content], list[ScanWarning]]:
    warnings: list[ScanWarning] = []
    out: list[Content] = []
    with open_source(ref) as src:
        for image in src.images():
            out.extend(walk_image(image, limits=ScanLimits(), index=LayerIndex(), on_warning=warnings.append))
    return out, warnings


def layer_paths(contents: list[Content]) -> list[tuple[int | None, str]]:
    return [(c.layer_index, c.path) for c in contents if c.layer_index is not None]


def replace_with_link(path: Path, target: str | Path) -> None:
    path.unlink()
    path.symlink_to(target)


def replace_with_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def test_layer_blob_linked_to_dev_zero_is_unreadable_not_a_hang(tmp_path: Path) -> None:
    im = two_layers()
    root = write_oci_layout(tmp_path / "oci", [im])
    replace_with_link(blob_path(root, im.blobs[0]), "/dev/zero")
    contents, warnings = walk_ref(f"oci:{root}")
    assert [(w.code, w.layer_index) for w in warnings] == [("layer.unreadable", 0)]
    assert "symbolic link" in warnings[0].message
    assert layer_paths(contents) == [(1, "good/after.txt")]


def test_layer_blob_linked_to_a_tarball_outside_is_not_scanned(tmp_path: Path) -> None:
    """A link to another image's layer must not report that layer's secrets as this image's."""
    import random

    token = fakecreds.fake_github_token(random.Random(11))
    other = build_image([[file("elsewhere/.env", f"GH={token}\n")]], compression="none")
    outside = tmp_path / "outside.tar"
    outside.write_bytes(other.blobs[0])
    im = two_layers()
    root = write_oci_layout(tmp_path / "oci", [im])
    replace_with_link(blob_path(root, im.blobs[0]), outside)
    contents, warnings = walk_ref(f"oci:{root}")
    assert [(w.code, w.layer_index) for w in warnings] == [("layer.unreadable", 0)]
    assert not any(token.encode() in c.data for c in contents)


def test_layer_blob_linked_out_by_a_relative_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("outside the layout\n")
    im = two_layers()
    root = write_oci_layout(tmp_path / "oci", [im])
    replace_with_link(blob_path(root, im.blobs[0]), "../../../secret.txt")
    contents, warnings = walk_ref(f"oci:{root}")
    assert [(w.code, w.layer_index) for w in warnings] == [("layer.unreadable", 0)]
    assert "out of the layout" in warnings[0].message
    assert not any(b"outside the layout" in c.data for c in contents)


def test_layer_blob_that_is_a_fifo_is_unreadable_not_a_hang(tmp_path: Path) -> None:
    im = two_layers()
    root = write_oci_layout(tmp_path / "oci", [im])
    replace_with_fifo(blob_path(root, im.blobs[0]))
    contents, warnings = walk_ref(f"oci:{root}")
    assert [(w.code, w.layer_index) for w in warnings] == [("layer.unreadable", 0)]
    assert "FIFO" in warnings[0].message
    assert layer_paths(contents) == [(1, "good/after.txt")]


def test_blobs_directory_linked_elsewhere_is_refused(tmp_path: Path) -> None:
    """`blobs` -> another layout's blobs: the manifest named by index.json is not read from there."""
    im = two_layers()
    root = write_oci_layout(tmp_path / "oci", [im])
    elsewhere = tmp_path / "elsewhere"
    (root / "blobs").rename(elsewhere)
    (root / "blobs").symlink_to(elsewhere)
    with pytest.raises(errors.InvalidArgument, match="symbolic link"):
        walk_ref(f"oci:{root}")


def test_sha256_directory_linked_elsewhere_is_refused(tmp_path: Path) -> None:
    im = two_layers()
    root = write_oci_layout(tmp_path / "oci", [im])
    elsewhere = tmp_path / "elsewhere"
    (root / "blobs" / "sha256").rename(elsewhere)
    (root / "blobs" / "sha256").symlink_to(elsewhere)
    with pytest.raises(errors.InvalidArgument, match="symbolic link"):
        walk_ref(f"oci:{root}")


@pytest.mark.parametrize("name", ["index.json", "oci-layout"])
@pytest.mark.parametrize("hostile", ["dev-zero", "outside", "fifo"])
def test_layout_documents_that_are_links_or_fifos_are_errors(tmp_path: Path, name: str, hostile: str) -> None:
    root = write_oci_layout(tmp_path / "oci", [two_layers()])
    target = root / name
    if hostile == "fifo":
        replace_with_fifo(target)
    else:
        outside = tmp_path / name
        outside.write_bytes(target.read_bytes())
        replace_with_link(target, "/dev/zero" if hostile == "dev-zero" else outside)
    with pytest.raises(errors.InvalidArgument, match="FIFO" if hostile == "fifo" else "symbolic link"):
        walk_ref(f"oci:{root}")


def test_config_blob_linked_to_dev_zero_is_an_error(tmp_path: Path) -> None:
    im = two_layers()
    root = write_oci_layout(tmp_path / "oci", [im])
    replace_with_link(blob_path(root, im.config_bytes), "/dev/zero")
    with pytest.raises(errors.InvalidArgument, match="symbolic link"):
        walk_ref(f"oci:{root}")


def test_links_inside_the_layout_are_resolved_within_it(tmp_path: Path) -> None:
    """`docker save` links a repeated layer as ../<id>/layer.tar: such a link stays in the layout."""
    im = two_layers()
    root = write_oci_layout(tmp_path / "oci", [im])
    blob = blob_path(root, im.blobs[0])
    (root / "store").mkdir()
    blob.rename(root / "store" / "blob")
    blob.symlink_to("../../store/blob")
    contents, warnings = walk_ref(f"oci:{root}")
    assert warnings == []
    assert layer_paths(contents) == [(0, "a.txt"), (1, "good/after.txt")]


def test_link_loop_inside_the_layout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(errors.InvalidArgument, match="symbolic links"):
        open_in(tmp_path, "a")


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive", ""])
def test_archive_path_that_is_a_fifo_or_device_is_an_error(tmp_path: Path, transport: str) -> None:
    fifo = tmp_path / "image.tar"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        ref = f"{transport}:{path}" if transport else str(path)
        with pytest.raises(errors.InvalidArgument, match="regular file"):
            walk_ref(ref)


def test_archive_path_given_by_the_user_may_be_a_link(tmp_path: Path) -> None:
    archive = write_docker_archive(tmp_path / "real.tar", two_layers())
    (tmp_path / "link.tar").symlink_to(archive)
    contents, warnings = walk_ref(f"docker-archive:{tmp_path / 'link.tar'}")
    assert warnings == []
    assert layer_paths(contents) == [(0, "a.txt"), (1, "good/after.txt")]


def test_open_file_refuses_directories_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="a directory"):
        open_file(tmp_path)
    with pytest.raises(errors.NotFound):
        open_file(tmp_path / "absent")
