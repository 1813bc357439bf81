"""Builders of container images for the leak detector's tests, made by hand with tarfile.

Layers are lists of `Entry` values (files, dirs, links, whiteouts, opaque markers) or raw tar bytes (for
hostile tars). `build_image` turns them into blobs with correct digests and a config; `write_oci_layout`,
`write_oci_archive` and `write_docker_archive` lay them out as skopeo would. Helpers make nested archives,
zip bombs and malformed tars. Nothing here holds a credential: tests plant values from tests/fakecreds.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Entry:
    kind: str  # file, dir, symlink, hardlink, whiteout, opaque
    path: str
    data: bytes = b""
    target: str = ""


def file(path: str, data: bytes | str) -> Entry:
    return Entry("file", path, data.encode() if isinstance(data, str) else data)


def directory(path: str) -> Entry:
    return Entry("dir", path)


def symlink(path: str, target: str) -> Entry:
    return Entry("symlink", path, target=target)


def hardlink(path: str, target: str) -> Entry:
    return Entry("hardlink", path, target=target)


def whiteout(path: str) -> Entry:
    """Deletes `path` from lower layers."""
    head, _, base = path.rpartition("/")
    return Entry("file", f"{head}/.wh.{base}" if head else f".wh.{base}")


def opaque(directory_path: str) -> Entry:
    """Hides everything lower layers put in `directory_path`."""
    return Entry("file", f"{directory_path}/.wh..wh..opq")


def layer_tar(entries: Sequence[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.path)
            ti.mtime = 1_700_000_000
            if e.kind == "file":
                ti.size = len(e.data)
                ti.mode = 0o644
                tf.addfile(ti, io.BytesIO(e.data))
            elif e.kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                tf.addfile(ti)
            elif e.kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e.target
                tf.addfile(ti)
            elif e.kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e.target
                tf.addfile(ti)
            else:
                raise ValueError(e.kind)
    return buf.getvalue()


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if kind == "none":
        return data
    raise ValueError(kind)


@dataclass
class BuiltImage:
    config: dict[str, Any]
    tars: list[bytes]  # uncompressed layers
    blobs: list[bytes]  # as stored
    compressions: list[str]
    platform: tuple[str, str, str | None] = ("linux", "amd64", None)
    extra_blobs: dict[str, bytes] = field(default_factory=dict)
    #: digest -> the size the manifest's descriptor gives instead of the real one (None: no size at all)
    declared_sizes: dict[str, int | None] = field(default_factory=dict)

    @property
    def config_bytes(self) -> bytes:
        return json.dumps(self.config, sort_keys=True).encode()

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config["rootfs"]["diff_ids"])

    def manifest(self) -> dict[str, Any]:
        return {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self._descriptor(OCI_CONFIG, self.config_bytes),
            "layers": [
                self._descriptor(LAYER_TYPES[c], b) for b, c in zip(self.blobs, self.compressions, strict=True)
            ],
        }

    def _descriptor(self, media_type: str, data: bytes) -> dict[str, Any]:
        digest = sha256(data)
        size = self.declared_sizes.get(digest, len(data))
        return {"mediaType": media_type, "digest": digest} | ({} if size is None else {"size": size})

    @property
    def manifest_bytes(self) -> bytes:
        return json.dumps(self.manifest(), sort_keys=True).encode()

    def all_blobs(self) -> dict[str, bytes]:
        out = {sha256(b): b for b in self.blobs}
        out[sha256(self.config_bytes)] = self.config_bytes
        out[sha256(self.manifest_bytes)] = self.manifest_bytes
        return out

    def descriptor(self) -> dict[str, Any]:
        os_, arch, variant = self.platform
        plat: dict[str, str] = {"os": os_, "architecture": arch}
        if variant:
            plat["variant"] = variant
        return {
            "mediaType": OCI_MANIFEST,
            "digest": sha256(self.manifest_bytes),
            "size": len(self.manifest_bytes),
            "platform": plat,
        }


def build_image(
    layers: Sequence[Sequence[Entry] | bytes],
    *,
    compression: str | Sequence[str] = "gzip",
    env: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    cmd: Sequence[str] | None = None,
    entrypoint: Sequence[str] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    platform: tuple[str, str, str | None] = ("linux", "amd64", None),
    extra_config: Mapping[str, Any] | None = None,
) -> BuiltImage:
    tars = [ly if isinstance(ly, bytes) else layer_tar(ly) for ly in layers]
    comps = [compression] * len(tars) if isinstance(compression, str) else list(compression)
    blobs = [compress(t, c) for t, c in zip(tars, comps, strict=True)]
    if history is None:
        history = [{"created_by": f"/bin/sh -c #(nop) layer {i}"} for i in range(len(tars))]
    cfg: dict[str, Any] = {"Env": list(env), "Labels": dict(labels or {})}
    if cmd is not None:
        cfg["Cmd"] = list(cmd)
    if entrypoint is not None:
        cfg["Entrypoint"] = list(entrypoint)
    cfg.update(extra_config or {})
    config = {
        "architecture": platform[1],
        "os": platform[0],
        **({"variant": platform[2]} if platform[2] else {}),
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in tars]},
        "history": [dict(h) for h in history],
    }
    return BuiltImage(config=config, tars=tars, blobs=blobs, compressions=comps, platform=platform)


def zeros_layer(path: str, size: int, *, block: int = 4 << 20) -> tuple[bytes, str]:
    """A zstd layer of a tar holding one `size`-byte file of zeros: (blob, diff_id).

    Built streaming, block by block, so a 2 GiB file never sits in memory; the blob is tens of KB.
    """
    info = tarfile.TarInfo(path)
    info.size = size
    info.mtime = 1_700_000_000
    digest = hashlib.sha256()
    out = io.BytesIO()
    writer = zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False)

    def put(data: bytes) -> None:
        digest.update(data)
        writer.write(data)

    put(info.tobuf(format=tarfile.PAX_FORMAT))
    zeros = bytes(block)
    left = size
    while left:
        n = min(left, block)
        put(zeros if n == block else bytes(n))
        left -= n
    put(bytes(-size % 512 + 1024))  # the member's padding, then the two end-of-archive blocks
    writer.flush(zstandard.FLUSH_FRAME)
    return out.getvalue(), "sha256:" + digest.hexdigest()


def image_of_blobs(blobs: Sequence[bytes], diff_ids: Sequence[str], compression: str = "zstd") -> BuiltImage:
    """An image whose layer blobs were built elsewhere (too large to hold uncompressed: `tars` stays empty)."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [], "Labels": {}},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created_by": f"/bin/sh -c #(nop) layer {i}"} for i in range(len(blobs))],
    }
    return BuiltImage(config=config, tars=[], blobs=list(blobs), compressions=[compression] * len(blobs))


def _write_blobs(root: Path, blobs: Mapping[str, bytes]) -> None:
    d = root / "blobs" / "sha256"
    d.mkdir(parents=True, exist_ok=True)
    for digest, data in blobs.items():
        (d / digest.split(":", 1)[1]).write_bytes(data)


def write_oci_layout(
    root: Path,
    images: Sequence[BuiltImage],
    *,
    tag: str | None = "latest",
    multi_platform: bool = False,
    nested_index: bool = False,
) -> Path:
    """An OCI layout; several images go under one index (multi_platform) or one index entry each."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    blobs: dict[str, bytes] = {}
    for im in images:
        blobs.update(im.all_blobs())
    ann = {"org.opencontainers.image.ref.name": tag} if tag else None
    if multi_platform:
        inner = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [im.descriptor() for im in images]}
        if nested_index:
            inner = {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [_blob_desc(json.dumps(inner).encode(), OCI_INDEX, blobs)],
            }
        inner_bytes = json.dumps(inner).encode()
        top = [_blob_desc(inner_bytes, OCI_INDEX, blobs) | ({"annotations": ann} if ann else {})]
    else:
        top = []
        for im in images:
            d = im.descriptor()
            d.pop("platform")
            if ann:
                d["annotations"] = ann
            top.append(d)
    _write_blobs(root, blobs)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": top}))
    return root


def _blob_desc(data: bytes, media_type: str, blobs: dict[str, bytes]) -> dict[str, Any]:
    blobs[sha256(data)] = data
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}


def tar_directory(src: Path, dest: Path) -> Path:
    """Tar a directory's contents with relative names (as skopeo writes archives)."""
    with tarfile.open(dest, "w") as tf:
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                tf.add(full, arcname=full.relative_to(src).as_posix())
    return dest


def write_oci_archive(path: Path, images: Sequence[BuiltImage], **kw: Any) -> Path:
    layout = path.with_name(path.name + ".layout")
    write_oci_layout(layout, images, **kw)
    return tar_directory(layout, path)


def write_docker_archive(path: Path, image: BuiltImage, *, style: str = "old", tag: str = "test/app:latest") -> Path:
    """`docker save` output: style "old" (<id>/layer.tar, <hex>.json) or "new" (blobs/sha256/...)."""
    members: dict[str, bytes] = {}
    cfg = image.config_bytes
    cfg_hex = hashlib.sha256(cfg).hexdigest()
    layer_names = []
    if style == "old":
        members[f"{cfg_hex}.json"] = cfg
        for i, t in enumerate(image.tars):
            layer_id = hashlib.sha256(f"{i}:{sha256(t)}".encode()).hexdigest()
            members[f"{layer_id}/layer.tar"] = t
            members[f"{layer_id}/VERSION"] = b"1.0"
            layer_names.append(f"{layer_id}/layer.tar")
    else:
        members[f"blobs/sha256/{cfg_hex}"] = cfg
        for t in image.tars:
            members[f"blobs/sha256/{hashlib.sha256(t).hexdigest()}"] = t
            layer_names.append(f"blobs/sha256/{hashlib.sha256(t).hexdigest()}")
        members["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    cfg_name = f"{cfg_hex}.json" if style == "old" else f"blobs/sha256/{cfg_hex}"
    members["manifest.json"] = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": layer_names}]).encode()
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


# -- nested archives ------------------------------------------------------------------------------------


def make_zip(members: Mapping[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data.encode() if isinstance(data, str) else data)
    return buf.getvalue()


def make_tar(members: Mapping[str, bytes | str]) -> bytes:
    return layer_tar([file(n, d) for n, d in members.items()])


def make_tgz(members: Mapping[str, bytes | str]) -> bytes:
    return gzip.compress(make_tar(members), mtime=0)


def zip_bomb(n_entries: int = 4, entry_bytes: int = 50 * 1024 * 1024) -> bytes:
    """Entries of zeros that compress about 1000:1."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(n_entries):
            with zf.open(f"zero{i}.bin", "w", force_zip64=True) as f:
                block = b"\0" * (1 << 20)
                for _ in range(entry_bytes // len(block)):
                    f.write(block)
    return buf.getvalue()


def nest_zips(inner_name: str, inner: bytes, depth: int) -> bytes:
    """`inner` wrapped in `depth` zips: level1.zip!level2.zip!...!inner_name."""
    data, name = inner, inner_name
    for level in range(depth, 0, -1):
        data = make_zip({name: data})
        name = f"level{level}.zip"
    return data


# -- hostile tars ---------------------------------------------------------------------------------------


def raw_tar(members: Sequence[tuple[str, bytes]], *, fmt: int = tarfile.GNU_FORMAT) -> bytes:
    """A tar whose names are written exactly as given (absolute, with ..)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def huge_pax_header_tar(declared: int = 1 << 32, following: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """A pax extended header claiming `declared` bytes, followed by a few real members."""
    hdr = tarfile.TarInfo("././@PaxHeader")
    hdr.type = tarfile.XHDTYPE
    hdr.size = declared
    block = hdr.tobuf(format=tarfile.USTAR_FORMAT)
    return block + b"x" * 4096 + raw_tar(following)


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]
