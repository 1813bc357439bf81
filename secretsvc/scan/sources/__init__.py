"""Image sources: turn an image reference into `Image`s (config + layers, digests verified).

References are written as skopeo writes them:

    docker-archive:PATH[:NAME:TAG|:@INDEX]   `docker save` output, old (<id>/layer.tar) or new (blobs/sha256)
    oci:DIR[:TAG]                           an OCI image layout directory (indexes, multi-platform)
    oci-archive:PATH[:TAG]                  the same layout as a tar, read in place
    docker://HOST[:PORT]/REPO[:TAG|@DIGEST] a registry, over the OCI distribution API

The path of an archive or layout may be a symbolic link, but must lead to a regular file or a directory;
nothing inside a layout is followed out of it (see `sources.safeopen`).

A bare existing path is recognised by its contents: a directory with `oci-layout` is `oci:`, one with
`manifest.json` is a `docker save` directory; a tar holding `oci-layout` is `oci-archive:`, one holding
`manifest.json` is `docker-archive:`; anything else is a source tree (`Source.tree` is set, `images()`
yields nothing, and the caller walks it with `walk.walk_path`).

Digest mismatches of manifests and configs raise `errors.InvalidArgument` (`DigestMismatch`); a layer's
mismatch is raised at the end of its stream and reported by the walker as a "digest.mismatch" warning.
A registry that stays throttled, overloaded or unreachable through the retries raises `RegistryUnavailable`;
one whose TLS handshake fails, `RegistryTLSError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.sources.image import Image, validate_platform
from secretsvc.scan.sources.local import (
    DirStore,
    DockerArchiveSource,
    OciSource,
    TarStore,
    looks_like_tar,
    open_store,
)
from secretsvc.scan.sources.registry import RegistrySource, parse_registry_ref
from secretsvc.scan.sources.registry_http import RegistryTLSError, RegistryUnavailable
from secretsvc.scan.sources.safeopen import open_in
from secretsvc.scan.sources.stream import CorruptStream, DigestMismatch

__all__ = [
    "CorruptStream",
    "DigestMismatch",
    "Image",
    "PathSource",
    "RegistryTLSError",
    "RegistryUnavailable",
    "Source",
    "open_source",
]

_TRANSPORTS = ("docker-archive:", "oci-archive:", "oci:", "docker://")


class Source(Protocol):
    """An opened image reference. Use as a context manager."""

    ref: str
    tree: Path | None  # set for a plain directory or file: walk it with walk_path instead of images()

    def images(self) -> Iterator[Image]:
        """One `Image` per selected platform (or per image in a multi-image archive)."""
        ...

    def __enter__(self) -> Source: ...

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None: ...


class PathSource:
    """A plain directory or file, scanned as a source tree."""

    def __init__(self, ref: str, path: Path) -> None:
        self.ref = ref
        self.tree: Path | None = path

    def images(self) -> Iterator[Image]:
        return iter(())

    def __enter__(self) -> PathSource:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        return None


def _split_path(rest: str) -> tuple[Path, str | None]:
    """PATH[:SUFFIX]; a path that itself contains ':' is accepted when it exists as written."""
    if not rest:
        raise errors.InvalidArgument("image reference has an empty path")
    if Path(rest).exists():
        return Path(rest), None
    path, sep, suffix = rest.partition(":")
    return Path(path), (suffix if sep and suffix else None)


def open_source(
    ref: str,
    *,
    platform: str | None = None,
    creds: str | None = None,
    docker_config: Path | None = None,
    limits: ScanLimits = ScanLimits(),  # noqa: B008 - frozen value, safe to share
    insecure_registry: bool = False,
) -> Source:
    """Open `ref`. InvalidArgument for a malformed or unreadable reference, NotFound if it is absent."""
    validate_platform(platform)
    if ref.startswith("docker://"):
        return RegistrySource(
            ref,
            parse_registry_ref(ref[len("docker://") :]),
            platform=platform,
            creds=creds,
            docker_config=docker_config,
            insecure=insecure_registry,
            limits=limits,
        )
    if ref.startswith("docker-archive:"):
        path, select = _split_path(ref[len("docker-archive:") :])
        return DockerArchiveSource(ref, open_store(path, limits), select, platform, limits)
    if ref.startswith("oci-archive:"):
        path, tag = _split_path(ref[len("oci-archive:") :])
        if path.is_dir():
            raise errors.InvalidArgument(f"{ref}: oci-archive: wants a tar file, not a directory (use oci:)")
        return OciSource(ref, open_store(path, limits), tag, platform, limits)
    if ref.startswith("oci:"):
        path, tag = _split_path(ref[len("oci:") :])
        if path.exists() and not path.is_dir():
            raise errors.InvalidArgument(f"{ref}: oci: wants a layout directory (use oci-archive: for a tar)")
        return OciSource(ref, open_store(path, limits), tag, platform, limits)
    head = ref.split(":", 1)[0]
    path = Path(ref)
    if not path.exists():
        if ":" in ref and "/" not in head and not head.startswith("."):
            raise errors.InvalidArgument(
                f"unknown image reference transport {head!r} (expected one of: {', '.join(_TRANSPORTS)})"
            )
        raise errors.NotFound(f"{ref} does not exist")
    return _detect(ref, path, platform, limits)


def _detect(ref: str, path: Path, platform: str | None, limits: ScanLimits) -> Source:
    if not path.is_dir() and not path.is_file():
        raise errors.InvalidArgument(f"{ref} is neither a regular file nor a directory")
    if path.is_dir():
        if (path / "oci-layout").is_file():
            return OciSource(ref, DirStore(path), None, platform, limits)
        if _is_docker_dir(path):
            return DockerArchiveSource(ref, DirStore(path), None, platform, limits)
        return PathSource(ref, path)
    if path.is_file() and looks_like_tar(path):
        try:
            store = TarStore(path, limits)
        except errors.InvalidArgument:
            return PathSource(ref, path)
        names = store.names()
        if "oci-layout" in names and "index.json" in names:
            return OciSource(ref, store, None, platform, limits)
        if "manifest.json" in names:
            try:
                return DockerArchiveSource(ref, store, None, platform, limits)
            except errors.InvalidArgument:
                return PathSource(ref, path)
    return PathSource(ref, path)


def _is_docker_dir(path: Path) -> bool:
    try:
        with open_in(path, "manifest.json") as f:
            head = f.read(64).lstrip()
    except (errors.SecretsvcError, OSError):
        return False
    return head.startswith(b"[")
