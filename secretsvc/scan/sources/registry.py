"""`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: images read from a registry over the OCI distribution API.

Authentication follows the registry's challenge: anonymous first; on 401 with `Basic`, the credentials from
`creds` ("user:pass") or the docker config file's `auths`; on 401 with `Bearer realm=...,service=...,
scope=...`, a token fetched from the realm (with those credentials when present). Plain http is used only
for loopback hosts or when `insecure_registry` is set, and credentials are never sent to a realm over plain
http elsewhere, nor across a redirect to another host. Every manifest, config and token response is read
with a size limit and verified against its digest before it is parsed; blobs are streamed and verified as
the walker reads them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPResponse
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
from secretsvc.scan.sources.safeopen import open_file
from secretsvc.scan.sources.stream import (
    check_digest_syntax,
    check_size,
    descriptor_size,
    read_bounded,
    verify_bytes,
)

DOCKER_HUB = "registry-1.docker.io"
HTTP_TIMEOUT_S = 60.0
MAX_CHALLENGE_BYTES = 4096  # a WWW-Authenticate header longer than this is not parsed
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
_REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST_RE = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$")
_DEFAULT_LIMITS = ScanLimits()
_PARAM_RE = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True, slots=True)
class RegistryRef:
    host: str  # "host[:port]" as given
    repo: str
    reference: str  # tag or "sha256:..." digest

    @property
    def is_digest(self) -> bool:
        return self.reference.startswith("sha256:")


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: Mapping[str, str]


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


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse one WWW-Authenticate challenge (`Bearer realm="...",service="...",scope="..."`)."""
    if not header or len(header) > MAX_CHALLENGE_BYTES:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM_RE.finditer(rest)
    }
    params = {k: re.sub(r"\\(.)", r"\1", v) for k, v in params.items()}
    return Challenge(scheme=scheme.lower(), params=params)


def credentials_from_docker_config(
    host: str, docker_config: Path | None, max_bytes: int, max_depth: int = _DEFAULT_LIMITS.max_json_depth
) -> tuple[str, str] | None:
    """user, password from the config's `auths` entry for `host` (base64 "user:pass" `auth` field)."""
    explicit = docker_config is not None
    if docker_config is None:
        base = os.environ.get("DOCKER_CONFIG")
        docker_config = Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"
    try:
        with open_file(docker_config) as f:
            raw = read_bounded(f, max_bytes, "docker config")
    except errors.NotFound:
        if explicit:
            raise errors.InvalidArgument(f"docker config {docker_config} does not exist") from None
        return None
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


class _SameHostAuthRedirect(urllib.request.HTTPRedirectHandler):
    """Drop Authorization when a redirect leaves the host (blob storage rejects or would steal it)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
            new.unredirected_hdrs.pop("Authorization", None)
        return new


class RegistryClient:
    """A minimal pull-only client for one repository."""

    def __init__(
        self,
        ref: RegistryRef,
        *,
        creds: tuple[str, str] | None,
        insecure: bool,
        limits: ScanLimits,
        timeout: float = HTTP_TIMEOUT_S,
    ) -> None:
        self.ref = ref
        self._plain_ok = insecure or is_loopback(ref.host)
        self._base = f"{'http' if self._plain_ok else 'https'}://{ref.host}"
        self._creds = creds
        self._limits = limits
        self._timeout = timeout
        self._auth: str | None = None  # Authorization header value, once a challenge was answered
        handlers: list[urllib.request.BaseHandler] = [_SameHostAuthRedirect()]
        if is_loopback(ref.host):
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def _open(self, url: str, accept: str | None) -> HTTPResponse:
        req = urllib.request.Request(url, method="GET")  # noqa: S310 - scheme fixed to http(s) above
        if accept:
            req.add_header("Accept", accept)
        if self._auth:
            req.add_header("Authorization", self._auth)
        resp: HTTPResponse = self._opener.open(req, timeout=self._timeout)
        return resp

    def get(self, path: str, accept: str | None = None) -> HTTPResponse:
        url = self._base + path
        try:
            try:
                return self._open(url, accept)
            except urllib.error.HTTPError as exc:
                if exc.code != 401:
                    raise
                challenge = parse_challenge(exc.headers.get("WWW-Authenticate"))
                exc.close()
                self._answer(challenge)
                return self._open(url, accept)
        except urllib.error.HTTPError as exc:
            code = exc.code
            exc.close()
            if code == 401:
                raise errors.Unauthenticated(f"registry {self.ref.host} refused the credentials") from None
            if code == 403:
                raise errors.PermissionDenied(f"registry {self.ref.host} denied access to {self.ref.repo}") from None
            if code == 404:
                raise errors.NotFound(
                    f"{self.ref.host}/{self.ref.repo}: not found ({path.rsplit('/', 1)[-1]})"
                ) from None
            raise errors.InvalidArgument(f"registry {self.ref.host} answered HTTP {code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise errors.InvalidArgument(f"cannot reach registry {self.ref.host}: {reason}") from None

    def _basic(self) -> str:
        assert self._creds is not None
        raw = f"{self._creds[0]}:{self._creds[1]}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _answer(self, challenge: Challenge | None) -> None:
        if challenge is None:
            raise errors.Unauthenticated(f"registry {self.ref.host} requires authentication (no usable challenge)")
        if challenge.scheme == "basic":
            if self._creds is None:
                raise errors.Unauthenticated(f"registry {self.ref.host} requires credentials")
            self._auth = self._basic()
            return
        if challenge.scheme != "bearer":
            raise errors.Unauthenticated(f"registry {self.ref.host}: unsupported auth scheme {challenge.scheme!r}")
        realm = challenge.params.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise errors.Unauthenticated(f"registry {self.ref.host}: bad token realm")
        if parts.scheme == "http" and not (self._plain_ok or is_loopback(parts.netloc)):
            raise errors.Unauthenticated(f"registry {self.ref.host}: refusing a token realm over plain http")
        query = {"scope": challenge.params.get("scope") or f"repository:{self.ref.repo}:pull"}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        sep = "&" if parts.query else "?"
        req = urllib.request.Request(  # noqa: S310 - realm scheme checked above
            realm + sep + urllib.parse.urlencode(query), method="GET"
        )
        if self._creds is not None:
            req.add_header("Authorization", self._basic())
        try:
            with self._opener.open(req, timeout=self._timeout) as resp:
                body = read_bounded(resp, self._limits.max_manifest_bytes, "token response")
        except urllib.error.HTTPError as exc:
            exc.close()
            raise errors.Unauthenticated(
                f"token server for {self.ref.host} refused the request (HTTP {exc.code})"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise errors.Unauthenticated(
                f"cannot reach the token server for {self.ref.host}: {getattr(exc, 'reason', exc)}"
            ) from None
        doc = load_json(body, "token response", self._limits.max_json_depth)
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, Mapping) else None
        if not isinstance(token, str) or not token:
            raise errors.Unauthenticated(f"token server for {self.ref.host} returned no token")
        self._auth = "Bearer " + token

    def manifest(self, reference: str) -> bytes:
        with self.get(f"/v2/{self.ref.repo}/manifests/{reference}", ACCEPT) as resp:
            header_digest = resp.headers.get("Docker-Content-Digest")
            body = read_bounded(resp, self._limits.max_manifest_bytes, "manifest")
        if reference.startswith("sha256:"):
            verify_bytes("manifest", body, reference)
        elif header_digest and header_digest.startswith("sha256:"):
            verify_bytes("manifest", body, header_digest)
        return body

    @contextlib.contextmanager
    def open_blob(self, digest: str) -> Iterator[IO[bytes]]:
        check_digest_syntax(digest)
        resp = self.get(f"/v2/{self.ref.repo}/blobs/{digest}")
        try:
            yield resp
        finally:
            resp.close()


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
        return None
