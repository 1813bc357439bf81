"""Image sources on local disk: OCI layouts and `docker save` archives, as directories or tars.

A tar is read in place: its headers are indexed once (by `tarstream`, the project's one tar reader, not
`tarfile`, whose pax parsing is quadratic on hostile input), and each blob is then read through its own file
handle seeking to the member's data, so nothing is ever extracted to disk and layers can be read
concurrently. Names inside the archive are only ever looked up in that index, never joined to a real path.
In a directory, every file is opened with `safeopen.open_in`: no symbolic link is followed out of the
layout and only regular files are read (a FIFO or /dev/zero as a blob cannot hang the scan). The archive
or directory the user names may itself be a symbolic link, but must be a regular file or a directory.

A refused or missing layer blob becomes a "layer.unreadable" warning (the walker opens layers); a refused
oci-layout, index.json, manifest.json, manifest or config is an `errors.InvalidArgument` (exit status 2).
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import LayerInfo
from secretsvc.scan.sources.image import (
    REF_NAME_ANNOTATION,
    Image,
    build_layers,
    platform_matches,
    platform_string,
    resolve_images,
)
from secretsvc.scan.sources.jsondoc import load_json
from secretsvc.scan.sources.safeopen import open_file, open_in
from secretsvc.scan.sources.stream import check_digest_syntax, read_bounded, verify_bytes
from secretsvc.scan.tarstream import TarError, TarMember, index_tar

_HEX = frozenset("0123456789abcdef")
_LINK_HOPS = 8  # symlink chains inside an image archive are short; a loop stops here


def _norm(name: str) -> str:
    n = posixpath.normpath("/" + name).lstrip("/")
    return n


class _Window:
    """Reads `size` bytes from `offset` of a file it owns."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._f = open_file(path)
        self._f.seek(offset)
        self._left = size

    def read(self, n: int = -1, /) -> bytes:
        if self._left <= 0:
            return b""
        if n < 0 or n > self._left:
            n = self._left
        data = self._f.read(n)
        if len(data) < n and not data:
            raise errors.InvalidArgument("image archive ends inside a member (truncated)")
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._f.close()


class TarStore:
    """Members of an uncompressed tar, by normalised name; blob bytes read in place.

    The headers are indexed once by the project's tar reader (`tarstream.index_tar`), bounded by
    `max_archive_entries` and `max_tar_header_bytes`; links between members are resolved in that index.
    """

    def __init__(self, path: Path, limits: ScanLimits) -> None:
        self.path = path
        self._members: dict[str, tuple[TarMember, int]] = {}  # name -> (member, offset of its data)
        with open_file(path) as f:
            try:
                for member, offset in index_tar(
                    f, max_entries=limits.max_archive_entries, max_header=limits.max_tar_header_bytes
                ):
                    self._members[_norm(member.name)] = (member, offset)
            except TarError as exc:
                if exc.code.startswith("limit."):
                    raise errors.LimitExceeded(f"image archive {path}: {exc}") from None
                raise errors.InvalidArgument(
                    f"{path} is not a readable uncompressed tar archive ({exc}); a compressed one must be"
                    " decompressed first"
                ) from None
        if not self._members:
            raise errors.InvalidArgument(f"{path} is an empty tar archive")

    def names(self) -> set[str]:
        return set(self._members)

    def _resolve(self, name: str) -> tuple[TarMember, int]:
        key = _norm(name)
        for _ in range(_LINK_HOPS):
            entry = self._members.get(key)
            if entry is None:
                raise errors.NotFound(f"{name!r} not found in image archive {self.path}")
            member = entry[0]
            if member.issym:
                key = _norm(posixpath.join(posixpath.dirname(key), member.linkname))
            elif member.islnk:
                key = _norm(member.linkname)
            elif member.isreg:
                return entry
            else:
                raise errors.InvalidArgument(f"{name!r} in image archive is not a regular file")
        raise errors.InvalidArgument(f"{name!r} in image archive is a link loop")

    def size(self, name: str) -> int:
        return self._resolve(name)[0].size

    @contextlib.contextmanager
    def open_path(self, name: str) -> Iterator[IO[bytes]]:
        member, offset = self._resolve(name)
        w = _Window(self.path, offset, member.size)
        try:
            yield w  # type: ignore[misc]  # duck-typed reader
        finally:
            w.close()

    def open_blob(self, digest: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self.open_path("blobs/sha256/" + check_digest_syntax(digest))


class DirStore:
    """Files of a layout directory, each opened without following links out of it (`safeopen.open_in`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> set[str]:
        return {p.name for p in self.root.iterdir()}

    @contextlib.contextmanager
    def open_path(self, name: str) -> Iterator[IO[bytes]]:
        f = open_in(self.root, name)
        try:
            yield f
        finally:
            f.close()

    def open_blob(self, digest: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self.open_path("blobs/sha256/" + check_digest_syntax(digest))


Store = TarStore | DirStore


def _read_json(store: Store, name: str, limits: ScanLimits) -> Any:
    with store.open_path(name) as f:
        return load_json(read_bounded(f, limits.max_manifest_bytes, name), name, limits.max_json_depth)


class OciSource:
    """`oci:DIR[:TAG]` and `oci-archive:PATH[:TAG]`."""

    tree: Path | None = None

    def __init__(self, ref: str, store: Store, tag: str | None, platform: str | None, limits: ScanLimits):
        self.ref = ref
        self._store = store
        self._tag = tag
        self._platform = platform
        self._limits = limits
        layout = _read_json(store, "oci-layout", self._limits)
        if not isinstance(layout, Mapping) or "imageLayoutVersion" not in layout:
            raise errors.InvalidArgument(f"{ref}: oci-layout file is not valid")

    def images(self) -> Iterator[Image]:
        index = _read_json(self._store, "index.json", self._limits)
        if not isinstance(index, Mapping) or not isinstance(index.get("manifests"), list):
            raise errors.InvalidArgument(f"{self.ref}: index.json has no manifests list")
        manifests = index["manifests"]
        if self._tag is not None:
            manifests = [
                m
                for m in manifests
                if isinstance(m, Mapping)
                and isinstance(m.get("annotations"), Mapping)
                and m["annotations"].get(REF_NAME_ANNOTATION) == self._tag
            ]
            if not manifests:
                raise errors.NotFound(f"{self.ref}: no image tagged {self._tag!r}")
        store = self._store

        @contextlib.contextmanager
        def opener(layer: LayerInfo) -> Iterator[IO[bytes]]:
            with store.open_blob(layer.digest) as f:
                yield f

        found = False
        for image in resolve_images(
            store,
            {"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests},
            ref=self.ref,
            platform=self._platform,
            limits=self._limits,
            opener=opener,
        ):
            found = True
            yield image
        if not found and self._platform is not None:
            raise errors.NotFound(f"{self.ref}: no image for platform {self._platform}")

    def __enter__(self) -> OciSource:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        return None


def _digest_from_name(name: str) -> str | None:
    """ "blobs/sha256/<hex>" or "<hex>.json" -> "sha256:<hex>"; anything else has no digest."""
    base = posixpath.basename(name)
    if base.endswith(".json"):
        base = base[:-5]
    if len(base) == 64 and set(base) <= _HEX:
        return "sha256:" + base
    return None


class DockerArchiveSource:
    """`docker-archive:PATH[:NAME:TAG | :@INDEX]`: the `docker save` format, old and new layouts."""

    tree: Path | None = None

    def __init__(self, ref: str, store: Store, select: str | None, platform: str | None, limits: ScanLimits) -> None:
        self.ref = ref
        self._store = store
        self._select = select
        self._platform = platform
        self._limits = limits
        doc = _read_json(store, "manifest.json", limits)
        if not isinstance(doc, list) or not all(isinstance(e, Mapping) for e in doc):
            raise errors.InvalidArgument(f"{ref}: manifest.json is not a list of images")
        if len(doc) > limits.max_layers:
            raise errors.LimitExceeded(f"{ref}: manifest.json lists more than {limits.max_layers} images")
        self._entries: list[Mapping[str, Any]] = doc

    def _selected(self) -> list[Mapping[str, Any]]:
        if self._select is None:
            return self._entries
        if self._select.startswith("@"):
            try:
                i = int(self._select[1:])
                return [self._entries[i]]
            except (ValueError, IndexError):
                raise errors.NotFound(f"{self.ref}: no image at index {self._select}") from None
        wanted = self._select if ":" in self._select.rsplit("/", 1)[-1] else self._select + ":latest"
        out = [e for e in self._entries if wanted in (e.get("RepoTags") or [])]
        if not out:
            raise errors.NotFound(f"{self.ref}: no image tagged {wanted!r}")
        return out

    def images(self) -> Iterator[Image]:
        store = self._store
        limits = self._limits
        for entry in self._selected():
            cfg_name, layer_names = entry.get("Config"), entry.get("Layers")
            if not isinstance(cfg_name, str) or not isinstance(layer_names, list):
                raise errors.InvalidArgument(f"{self.ref}: manifest.json entry lacks Config or Layers")
            if not all(isinstance(n, str) for n in layer_names):
                raise errors.InvalidArgument(f"{self.ref}: manifest.json Layers must be strings")
            with store.open_path(cfg_name) as f:
                cfg_bytes = read_bounded(f, limits.max_config_bytes, "image config")
            cfg_digest = _digest_from_name(cfg_name)
            if cfg_digest is not None:
                verify_bytes("image config", cfg_bytes, cfg_digest)
            config = load_json(cfg_bytes, "image config", limits.max_json_depth)
            if not isinstance(config, Mapping):
                raise errors.InvalidArgument(f"{self.ref}: image config is not a JSON object")
            named = [_digest_from_name(n) if n.startswith("blobs/") else None for n in layer_names]
            known = all(d is not None for d in named)
            layers = build_layers(
                config,
                [d or "" for d in named],
                [None] * len(layer_names),
                limits,
            )
            if not known:
                # Old layout: layers are named "<id>/layer.tar", not by digest; the diff_id is their name.
                layers = [LayerInfo(i.index, i.diff_id, i.diff_id, i.created_by, i.size) for i in layers]
            paths = {li.index: layer_names[li.index] for li in layers}

            def opener(layer: LayerInfo, _paths: dict[int, str] = paths) -> Any:
                return store.open_path(_paths[layer.index])

            plat = platform_string(config)
            if not platform_matches(self._platform, plat):
                continue
            yield Image(
                ref=self.ref,
                platform=plat,
                config=config,
                layers=layers,
                opener=opener,
                limits=limits,
                blob_digest_known=known,
            )

    def __enter__(self) -> DockerArchiveSource:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        return None


def looks_like_tar(path: Path) -> bool:
    try:
        with open_file(path) as f:
            head = f.read(512)
    except (errors.SecretsvcError, OSError):
        return False
    return len(head) == 512 and head[257:262] == b"ustar"


def open_store(path: Path, limits: ScanLimits) -> Store:
    """A layout directory or an archive (a regular file; NotFound if absent, InvalidArgument if special)."""
    if path.is_dir():
        return DirStore(path)
    return TarStore(path, limits)
