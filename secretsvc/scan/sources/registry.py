"""`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: images read from a registry over the OCI distribution API.

`RegistrySource` resolves the reference to images; `RegistryClient` fetches manifests and blobs over one
`registry_http.RegistryHttp` (one kept-alive HTTP client per scan, retries, errors mapped) with
`registry_auth.RegistryAuth` answering the registry's challenges. Credentials are the `creds` given
("user:pass"), else the `auths` entry for the host in the docker config file given (the caller finds that
file: this module reads no environment), else none. Plain http is used only for loopback hosts; with
`insecure_registry`, TLS is not verified and plain http is tried when the registry does not speak TLS.
Every manifest is read with a size limit and verified against its digest before it is parsed; blobs are
streamed and verified as the walker reads them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from secretsvc import errors, netaddr
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import LayerInfo
from secretsvc.scan.sources.image import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    resolve_images,
)
from secretsvc.scan.sources.jsondoc import load_json
from secretsvc.scan.sources.registry_auth import RegistryAuth
from secretsvc.scan.sources.registry_http import BodyReader, RegistryHttp, RetryPolicy
from secretsvc.scan.sources.safeopen import open_file
from secretsvc.scan.sources.stream import (
    check_digest_syntax,
    check_size,
    descriptor_size,
    read_bounded,
    verify_bytes,
)

DOCKER_HUB = "registry-1.docker.io"
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
_REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST_RE = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$")
_DEFAULT_LIMITS = ScanLimits()


@dataclass(frozen=True, slots=True)
class RegistryRef:
    host: str  # "host[:port]" as given
    repo: str
    reference: str  # tag or "sha256:..." digest

    @property
    def is_digest(self) -> bool:
        return self.reference.startswith("sha256:")


def parse_registry_ref(text: str) -> RegistryRef:
    """Parse what follows "docker://"."""
    rest = text[2:] if text.startswith("//") else text
    if not rest:
        raise errors.InvalidArgument("empty docker:// reference")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        host, path = first, remainder
    else:
        host, path = DOCKER_HUB, rest
        if "/" not in path.split("@")[0].split(":")[0]:
            path = "library/" + path
    if not _HOST_RE.match(host):
        raise errors.InvalidArgument(f"bad registry host {host[:100]!r}")
    if "@" in path:
        repo, _, reference = path.partition("@")
        check_digest_syntax(reference)
    else:
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            repo, _, reference = path.rpartition(":")
        else:
            repo, reference = path, "latest"
        if not _TAG_RE.match(reference):
            raise errors.InvalidArgument(f"bad tag {reference[:140]!r}")
    if not _REPO_RE.match(repo) or len(repo) > 255:
        raise errors.InvalidArgument(f"bad repository name {repo[:100]!r}")
    return RegistryRef(host=host, repo=repo, reference=reference)


def is_loopback(host: str) -> bool:
    """Whether a registry's `HOST[:PORT]` is this machine's loopback."""
    return netaddr.is_loopback(netaddr.host_of(host))


def credentials_from_docker_config(
    host: str, docker_config: Path | None, max_bytes: int, max_depth: int = _DEFAULT_LIMITS.max_json_depth
) -> tuple[str, str] | None:
    """user, password from the config's `auths` entry for `host` (base64 "user:pass" `auth` field).

    None when no file is given or it has no entry for `host`; InvalidArgument if the file given is missing,
    unreadable or malformed. Only the file given is read (the CLI decides which: see `cli/scan_run.py`).
    """
    if docker_config is None:
        return None
    try:
        with open_file(docker_config) as f:
            raw = read_bounded(f, max_bytes, "docker config")
    except errors.NotFound:
        raise errors.InvalidArgument(f"docker config {docker_config} does not exist") from None
    except OSError:
        raise errors.InvalidArgument(f"docker config {docker_config} cannot be read") from None
    doc = load_json(raw, f"docker config {docker_config}", max_depth)
    auths = doc.get("auths") if isinstance(doc, Mapping) else None
    if not isinstance(auths, Mapping):
        return None
    keys = [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]
    if host == DOCKER_HUB:
        keys += ["docker.io", "https://index.docker.io/v1/", "index.docker.io"]
    for key in keys:
        entry = auths.get(key)
        if isinstance(entry, Mapping):
            if isinstance(entry.get("auth"), str):
                try:
                    decoded = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    raise errors.InvalidArgument(
                        f"docker config {docker_config}: auth entry for {key} is not base64 user:password"
                    ) from None
                user, sep, password = decoded.partition(":")
                if sep:
                    return user, password
            if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
                return entry["username"], entry["password"]
    return None


def parse_creds(creds: str) -> tuple[str, str]:
    user, sep, password = creds.partition(":")
    if not sep or not user:
        raise errors.InvalidArgument("credentials must be given as USER:PASSWORD")
    return user, password


class RegistryClient:
    """A pull-only client for one repository; close it (or leave its `RegistrySource`) when done."""

    def __init__(
        self,
        ref: RegistryRef,
        *,
        creds: tuple[str, str] | None,
        insecure: bool,
        limits: ScanLimits,
        policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen value
        tls: bool | None = None,
    ) -> None:
        self.ref = ref
        self._limits = limits
        loopback = is_loopback(ref.host)
        use_tls = (not loopback) if tls is None else tls
        self.auth = RegistryAuth(ref.host, ref.repo, creds=creds, plain_ok=insecure or loopback)
        self.http = RegistryHttp(
            ref.host,
            ref.repo,
            tls=use_tls,
            verify=not insecure,
            auth=self.auth,
            policy=policy,
            plain_fallback=insecure,
        )

    def manifest(self, reference: str) -> bytes:
        max_bytes = self._limits.max_manifest_bytes
        response = self.http.get(f"/v2/{self.ref.repo}/manifests/{reference}", accept=ACCEPT)
        with BodyReader(response, "manifest") as body_reader:
            header_digest = body_reader.headers.get("Docker-Content-Digest")
            body = read_bounded(body_reader, max_bytes, "manifest")
        if reference.startswith("sha256:"):
            verify_bytes("manifest", body, reference)
        elif header_digest and header_digest.startswith("sha256:"):
            verify_bytes("manifest", body, header_digest)
        return body

    @contextlib.contextmanager
    def open_blob(self, digest: str) -> Iterator[IO[bytes]]:
        check_digest_syntax(digest)
        response = self.http.get(f"/v2/{self.ref.repo}/blobs/{digest}")
        with BodyReader(response, f"blob {digest}") as body:
            yield body  # type: ignore[misc]  # a readable, closable file as far as the readers care

    def close(self) -> None:
        self.http.close()


class RegistrySource:
    tree: Path | None = None

    def __init__(
        self,
        ref: str,
        rref: RegistryRef,
        *,
        platform: str | None,
        creds: str | None,
        docker_config: Path | None,
        insecure: bool,
        limits: ScanLimits,
    ) -> None:
        self.ref = ref
        self._platform = platform
        self._limits = limits
        pair = (
            parse_creds(creds)
            if creds is not None
            else credentials_from_docker_config(
                rref.host, docker_config, limits.max_manifest_bytes, limits.max_json_depth
            )
        )
        self.client = RegistryClient(rref, creds=pair, insecure=insecure, limits=limits)

    def images(self) -> Iterator[Image]:
        client = self.client
        doc = load_json(client.manifest(client.ref.reference), "manifest", self._limits.max_json_depth)
        if not isinstance(doc, Mapping):
            raise errors.InvalidArgument(f"{self.ref}: manifest is not a JSON object")

        def load(desc: Mapping[str, Any]) -> bytes:
            body = client.manifest(desc["digest"])
            check_size("manifest", body, descriptor_size(desc.get("size")))
            return body

        def opener(layer: LayerInfo) -> Any:
            return client.open_blob(layer.digest)

        found = False
        for image in resolve_images(
            client,
            doc,
            ref=self.ref,
            platform=self._platform,
            limits=self._limits,
            opener=opener,
            load_manifest=load,
        ):
            found = True
            yield image
        if not found and self._platform is not None:
            raise errors.NotFound(f"{self.ref}: no image for platform {self._platform}")

    def __enter__(self) -> RegistrySource:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.client.close()
