"""`Image` (config + layers of one platform) and the manifest logic every source shares.

Sources differ only in where blobs live (a directory, a tar read in place, a registry); each exposes them
through `BlobStore`, and `resolve_images` walks index -> manifest -> config the same way for all: documents
are size-bounded and digest-verified before they are parsed (by `jsondoc.load_json`, which bounds their
nesting), platforms are selected from the index (or the config when the index does not say), and each layer
is paired with its diff_id and history entry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import IO, Any, Protocol

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import LayerInfo
from secretsvc.scan.sources.jsondoc import load_json
from secretsvc.scan.sources.stream import (
    ImageExpansion,
    LayerStream,
    check_digest_syntax,
    check_size,
    descriptor_size,
    read_bounded,
    verify_bytes,
)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


class BlobStore(Protocol):
    """Content-addressed blobs of one image source."""

    def open_blob(self, digest: str) -> ContextManager[IO[bytes]]:
        """The blob's bytes as stored, unverified (callers verify). NotFound if absent."""
        ...


class LayerOpener(Protocol):
    def __call__(self, layer: LayerInfo) -> ContextManager[IO[bytes]]: ...


@dataclass(frozen=True, slots=True)
class Image:
    """One platform's image: its parsed config and its layers, base first."""

    ref: str
    platform: str | None  # "os/arch[/variant]"
    config: Mapping[str, Any] | None
    layers: Sequence[LayerInfo]
    opener: LayerOpener
    limits: ScanLimits = ScanLimits()  # noqa: RUF009 - frozen value, safe to share
    blob_digest_known: bool = True  # False for old docker-archive layers named by path, not digest

    def open_layer(self, index: int, expansion: ImageExpansion | None = None) -> ContextManager[LayerStream]:
        """The layer's UNCOMPRESSED tar stream, verified as read (see `sources.stream`).

        Once read to its end, `stream.verify()` (and leaving this context) raises `BlobSizeMismatch` if the
        blob ended short of its descriptor's size, or `DigestMismatch` if the blob digest or the diff_id is
        wrong (both `errors.InvalidArgument`); `walk_image` reports them as warnings and keeps the findings.
        Reads raise `ExpansionLimit` past the layer limits of `self.limits`, or past `expansion` (the count
        shared by the layers of this image), and `ReadStopped` once the blob runs past its descriptor's size
        (or `max_blob_bytes` when the descriptor gives none).
        """
        if not 0 <= index < len(self.layers):
            raise errors.InvalidArgument(f"layer index {index} out of range (image has {len(self.layers)})")
        return self._open(self.layers[index], expansion)

    def expansion(self) -> ImageExpansion:
        """A fresh count of uncompressed bytes for one walk over this image's layers."""
        return ImageExpansion(self.limits.max_image_expanded_bytes)

    @contextlib.contextmanager
    def _open(self, layer: LayerInfo, expansion: ImageExpansion | None) -> Iterator[LayerStream]:
        with self.opener(layer) as raw:
            stream = LayerStream(
                raw,
                blob_digest=layer.digest if self.blob_digest_known else None,
                diff_id=layer.diff_id or None,
                block=self.limits.read_block_bytes,
                limits=self.limits,
                image=expansion,
                blob_size=layer.size,
            )
            yield stream
            if stream.finished:
                stream.verify()

    def __repr__(self) -> str:
        return f"Image(ref={self.ref!r}, platform={self.platform!r}, {len(self.layers)} layers)"


def read_verified_blob(store: BlobStore, digest: str, max_bytes: int, what: str, size: int | None = None) -> bytes:
    """A small blob (manifest, config), at most `max_bytes` and, when its descriptor says, `size` bytes."""
    check_digest_syntax(digest)
    if size is not None and size > max_bytes:
        raise errors.LimitExceeded(f"{what} is {size} bytes by its descriptor, over the limit of {max_bytes} bytes")
    with store.open_blob(digest) as f:
        # One byte past the descriptor's size tells a longer blob from one of the right size.
        data = read_bounded(f, max_bytes, what) if size is None else f.read(size + 1)
    check_size(what, data, size)
    verify_bytes(what, data, digest)
    return data


def platform_string(p: Mapping[str, Any] | None) -> str | None:
    if not isinstance(p, Mapping):
        return None
    os_, arch = p.get("os"), p.get("architecture")
    if not isinstance(os_, str) or not isinstance(arch, str):
        return None
    variant = p.get("variant")
    return f"{os_}/{arch}/{variant}" if isinstance(variant, str) and variant else f"{os_}/{arch}"


def platform_matches(wanted: str | None, have: str | None) -> bool:
    """`wanted` "os/arch" matches any variant of it; "os/arch/variant" only that variant."""
    if wanted is None:
        return True
    if have is None:
        return False
    w, h = wanted.split("/"), have.split("/")
    return h[: len(w)] == w


def validate_platform(platform: str | None) -> None:
    if platform is None:
        return
    parts = platform.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise errors.InvalidArgument(f"bad platform {platform!r} (expected os/arch[/variant])")


def _is_attestation(desc: Mapping[str, Any]) -> bool:
    ann = desc.get("annotations")
    if isinstance(ann, Mapping) and ann.get("vnd.docker.reference.type") == "attestation-manifest":
        return True
    return platform_string(desc.get("platform")) == "unknown/unknown"


def _descriptor(d: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping) or not isinstance(d.get("digest"), str):
        raise errors.InvalidArgument(f"{what} is not a valid descriptor")
    check_digest_syntax(d["digest"])
    return d


def media_type_of(doc: Mapping[str, Any], fallback: str | None = None) -> str:
    mt = doc.get("mediaType")
    if isinstance(mt, str):
        return mt
    if "manifests" in doc:
        return OCI_INDEX
    if "layers" in doc and "config" in doc:
        return OCI_MANIFEST
    return fallback or ""


def history_for_layers(config: Mapping[str, Any] | None, n_layers: int) -> list[str | None]:
    """created_by of each layer: history entries with empty_layer are not layers."""
    out: list[str | None] = []
    history = config.get("history") if isinstance(config, Mapping) else None
    if isinstance(history, list):
        for h in history:
            if not isinstance(h, Mapping) or h.get("empty_layer") is True:
                continue
            cb = h.get("created_by")
            out.append(cb if isinstance(cb, str) else None)
    out = out[:n_layers]
    out.extend([None] * (n_layers - len(out)))
    return out


def diff_ids_of(config: Mapping[str, Any] | None) -> list[str] | None:
    rootfs = config.get("rootfs") if isinstance(config, Mapping) else None
    ids = rootfs.get("diff_ids") if isinstance(rootfs, Mapping) else None
    if not isinstance(ids, list):
        return None
    for d in ids:
        check_digest_syntax(d)
    return list(ids)


def build_layers(
    config: Mapping[str, Any] | None,
    blob_digests: Sequence[str],
    sizes: Sequence[int | None],
    limits: ScanLimits,
) -> list[LayerInfo]:
    if len(blob_digests) > limits.max_layers:
        raise errors.LimitExceeded(f"image has {len(blob_digests)} layers, over the limit of {limits.max_layers}")
    diff_ids = diff_ids_of(config)
    if diff_ids is not None and len(diff_ids) != len(blob_digests):
        raise errors.InvalidArgument(
            f"config lists {len(diff_ids)} diff_ids but the manifest has {len(blob_digests)} layers"
        )
    created = history_for_layers(config, len(blob_digests))
    return [
        LayerInfo(
            index=i,
            diff_id=diff_ids[i] if diff_ids is not None else "",
            digest=d,
            created_by=created[i],
            size=sizes[i],
        )
        for i, d in enumerate(blob_digests)
    ]


def image_from_manifest(
    store: BlobStore,
    manifest: Mapping[str, Any],
    *,
    ref: str,
    platform: str | None,
    opener: LayerOpener,
    limits: ScanLimits,
) -> Image:
    cfg_desc = _descriptor(manifest.get("config"), "manifest config")
    raw_layers = manifest.get("layers")
    if not isinstance(raw_layers, list):
        raise errors.InvalidArgument("manifest has no layers list")
    if len(raw_layers) > limits.max_layers:
        raise errors.LimitExceeded(f"image has {len(raw_layers)} layers, over the limit of {limits.max_layers}")
    descs = [_descriptor(d, f"layer {i}") for i, d in enumerate(raw_layers)]
    cfg_bytes = read_verified_blob(
        store, cfg_desc["digest"], limits.max_config_bytes, "image config", descriptor_size(cfg_desc.get("size"))
    )
    config = load_json(cfg_bytes, "image config", limits.max_json_depth)
    if not isinstance(config, Mapping):
        raise errors.InvalidArgument("image config is not a JSON object")
    sizes = [descriptor_size(d.get("size")) for d in descs]
    layers = build_layers(config, [d["digest"] for d in descs], sizes, limits)
    return Image(
        ref=ref,
        platform=platform or platform_string(config),
        config=config,
        layers=layers,
        opener=opener,
        limits=limits,
    )


def resolve_images(
    store: BlobStore,
    doc: Mapping[str, Any],
    *,
    ref: str,
    platform: str | None,
    limits: ScanLimits,
    opener: LayerOpener,
    descriptor_platform: str | None = None,
    depth: int = 0,
    load_manifest: Any = None,
) -> Iterator[Image]:
    """Images reachable from an index or manifest document, filtered by `platform`.

    `load_manifest(descriptor) -> bytes` fetches a child manifest (verified); by default from `store`.
    """
    mt = media_type_of(doc)
    if mt in INDEX_TYPES or "manifests" in doc:
        if depth >= limits.max_index_depth:
            raise errors.LimitExceeded(f"image indexes nested deeper than {limits.max_index_depth}")
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise errors.InvalidArgument("index has no manifests list")
        if len(children) > limits.max_layers:
            raise errors.LimitExceeded(f"index lists {len(children)} manifests, over {limits.max_layers}")
        for i, child in enumerate(children):
            desc = _descriptor(child, f"index entry {i}")
            if _is_attestation(desc):
                continue
            child_platform = platform_string(desc.get("platform"))
            if child_platform is not None and not platform_matches(platform, child_platform):
                continue
            if load_manifest is not None:
                data = load_manifest(desc)
            else:
                data = read_verified_blob(
                    store, desc["digest"], limits.max_manifest_bytes, "manifest", descriptor_size(desc.get("size"))
                )
            child_doc = load_json(data, "manifest", limits.max_json_depth)
            if not isinstance(child_doc, Mapping):
                raise errors.InvalidArgument("manifest is not a JSON object")
            yield from resolve_images(
                store,
                child_doc,
                ref=ref,
                platform=platform,
                limits=limits,
                opener=opener,
                descriptor_platform=child_platform or descriptor_platform,
                depth=depth + 1,
                load_manifest=load_manifest,
            )
        return
    if mt in MANIFEST_TYPES or "layers" in doc:
        image = image_from_manifest(store, doc, ref=ref, platform=descriptor_platform, opener=opener, limits=limits)
        if platform_matches(platform, image.platform):
            yield image
        return
    raise errors.InvalidArgument(f"unsupported manifest media type {mt[:100]!r}")
