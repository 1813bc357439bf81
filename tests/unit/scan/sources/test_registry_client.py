"""The registry client against a small local HTTP server: anonymous, basic, and bearer-token challenges."""

from __future__ import annotations

import base64
import http.server
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import ScanWarning
from secretsvc.scan.sources import open_source
from secretsvc.scan.sources.registry import (
    DOCKER_HUB,
    credentials_from_docker_config,
    is_loopback,
    parse_registry_ref,
)
from secretsvc.scan.sources.registry_auth import parse_challenge
from secretsvc.scan.sources.registry_http import RegistryUnavailable
from secretsvc.scan.walk import LayerIndex, walk_image
from tests.scanimages import OCI_INDEX, BuiltImage, build_image, file, sha256


class FakeRegistry(http.server.ThreadingHTTPServer):
    def __init__(self, mode: str, blobs: dict[str, bytes], tags: dict[str, bytes], password: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.mode = mode  # "anon", "basic" or "bearer"
        self.blobs = blobs
        self.tags = tags
        self.password = password
        self.token = "tok-" + str(random.Random(1).getrandbits(64))
        self.token_requests: list[str] = []
        self.tamper = False
        self.endless: set[str] = set()  # blobs sent without a length, followed by zeros until the client hangs up
        self.endless_for_s = 15.0  # ...or until this much time has passed, so a client that never stops fails

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    server: FakeRegistry

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _basic_ok(self) -> bool:
        want = "Basic " + base64.b64encode(f"user:{self.server.password}".encode()).decode()
        return self.headers.get("Authorization") == want

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        srv = self.server
        if self.path.startswith("/token"):
            srv.token_requests.append(self.path)
            if not self._basic_ok():
                self._send(401)
                return
            self._send(200, json.dumps({"token": srv.token}).encode())
            return
        if srv.mode == "basic" and not self._basic_ok():
            self._send(401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
            return
        if srv.mode == "bearer" and self.headers.get("Authorization") != f"Bearer {srv.token}":
            challenge = f'Bearer realm="http://{srv.host}/token",service="fake",scope="repository:team/app:pull"'
            self._send(401, headers={"WWW-Authenticate": challenge})
            return
        parts = self.path.split("/")  # /v2/team/app/manifests/ref
        kind, ref = parts[-2], parts[-1]
        if kind == "manifests":
            body = srv.tags.get(ref) or srv.blobs.get(ref)
            if body is None:
                self._send(404)
                return
            if srv.tamper:
                body = body.replace(b"schemaVersion", b"schemaversion")
            self._send(
                200,
                body,
                {
                    "Content-Type": json.loads(body).get("mediaType", ""),
                    "Docker-Content-Digest": sha256(srv.tags.get(ref) or body),
                },
            )
        elif kind == "blobs" and ref in srv.endless:
            self._stream_endlessly(srv.blobs[ref])
        elif kind == "blobs" and ref in srv.blobs:
            self._send(200, srv.blobs[ref])
        else:
            self._send(404)

    def _stream_endlessly(self, blob: bytes) -> None:
        self.send_response(200)  # HTTP/1.0 without a Content-Length: the body ends when the connection does
        self.end_headers()
        zeros = bytes(64 * 1024)
        deadline = time.monotonic() + self.server.endless_for_s
        try:
            self.wfile.write(blob)
            while time.monotonic() < deadline:
                self.wfile.write(zeros)
        except OSError:
            return  # the client stopped reading and closed the connection


def two_platforms() -> tuple[dict[str, bytes], dict[str, bytes], list[BuiltImage]]:
    ims = [
        build_image([[file("etc/p", "amd")]], platform=("linux", "amd64", None)),
        build_image([[file("etc/p", "arm")]], compression="zstd", platform=("linux", "arm64", None)),
    ]
    blobs: dict[str, bytes] = {}
    for im in ims:
        blobs.update(im.all_blobs())
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [i.descriptor() for i in ims]})
    blobs[sha256(index.encode())] = index.encode()
    return blobs, {"v1": index.encode(), "amd": ims[0].manifest_bytes}, ims


@pytest.fixture(params=["anon", "basic", "bearer"])
def registry(request: pytest.FixtureRequest) -> Iterator[FakeRegistry]:
    blobs, tags, _ = two_platforms()
    srv = FakeRegistry(request.param, blobs, tags, password="pw-" + str(random.Random(2).getrandbits(32)))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def read_all(ref: str, **kw: Any) -> dict[str, bytes]:
    out = {}
    with open_source(ref, **kw) as src:
        for image in src.images():
            for c in walk_image(image, limits=ScanLimits(), index=LayerIndex(), on_warning=pytest.fail):
                if c.layer_index is not None:
                    out[image.platform or ""] = c.data
    return out


def test_pull_with_each_auth_scheme(registry: FakeRegistry, tmp_path: Path) -> None:
    creds = f"user:{registry.password}" if registry.mode != "anon" else None
    got = read_all(f"docker://{registry.host}/team/app:v1", creds=creds)
    assert got == {"linux/amd64": b"amd", "linux/arm64": b"arm"}
    assert read_all(f"docker://{registry.host}/team/app:v1", creds=creds, platform="linux/arm64") == {
        "linux/arm64": b"arm"
    }
    assert list(read_all(f"docker://{registry.host}/team/app:amd", creds=creds)) == ["linux/amd64"]
    digest = sha256(registry.tags["v1"])
    assert len(read_all(f"docker://{registry.host}/team/app@{digest}", creds=creds)) == 2
    if registry.mode == "bearer":
        assert registry.token_requests
        assert "scope=repository%3Ateam%2Fapp%3Apull" in registry.token_requests[0]
        assert "service=fake" in registry.token_requests[0]
    # credentials from a docker config file
    if registry.mode != "anon":
        cfg = tmp_path / "config.json"
        auth = base64.b64encode(f"user:{registry.password}".encode()).decode()
        cfg.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
        assert len(read_all(f"docker://{registry.host}/team/app:v1", docker_config=cfg)) == 2


@pytest.mark.parametrize("registry", ["basic", "bearer"], indirect=True)  # anonymous has no auth to fail
def test_auth_failures(registry: FakeRegistry, tmp_path: Path) -> None:
    with pytest.raises(errors.Unauthenticated) as info:
        read_all(f"docker://{registry.host}/team/app:v1", creds="user:wrong-password")
    assert "wrong-password" not in str(info.value)
    empty = tmp_path / "config.json"
    empty.write_text("{}")
    with pytest.raises(errors.Unauthenticated):
        read_all(f"docker://{registry.host}/team/app:v1", docker_config=empty)


def test_missing_and_tampered(registry: FakeRegistry) -> None:
    creds = f"user:{registry.password}"
    with pytest.raises(errors.NotFound):
        read_all(f"docker://{registry.host}/team/app:nosuchtag", creds=creds)
    registry.tamper = True
    with pytest.raises(errors.InvalidArgument, match="digest mismatch"):
        read_all(f"docker://{registry.host}/team/app:v1", creds=creds)


def test_unreachable_registry_is_a_clear_error() -> None:
    """Refused connections are retried (a few seconds in all), then reported as unavailable, not as bad input."""
    with pytest.raises(RegistryUnavailable, match=r"cannot reach registry 127\.0\.0\.1:9.*try again later"):
        read_all("docker://127.0.0.1:9/team/app:v1")


@pytest.mark.parametrize(
    ("text", "host", "repo", "reference"),
    [
        ("localhost:5000/team/app:v1", "localhost:5000", "team/app", "v1"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest"),
        (
            "registry.example.org/a/b/c@sha256:" + "a" * 64,
            "registry.example.org",
            "a/b/c",
            "sha256:" + "a" * 64,
        ),
        ("ubuntu", DOCKER_HUB, "library/ubuntu", "latest"),
        ("ubuntu:22.04", DOCKER_HUB, "library/ubuntu", "22.04"),
        ("bitnami/redis:7", DOCKER_HUB, "bitnami/redis", "7"),
        ("[::1]:5000/x:y", "[::1]:5000", "x", "y"),
    ],
)
def test_parse_registry_ref(text: str, host: str, repo: str, reference: str) -> None:
    r = parse_registry_ref(text)
    assert (r.host, r.repo, r.reference) == (host, repo, reference)


def test_parse_challenge() -> None:
    c = parse_challenge('Bearer realm="https://auth.example.org/token",service="reg",scope="repository:a/b:pull,push"')
    assert c is not None and c.scheme == "bearer"
    assert dict(c.params) == {
        "realm": "https://auth.example.org/token",
        "service": "reg",
        "scope": "repository:a/b:pull,push",
    }
    c = parse_challenge('Basic realm="x"')
    assert c is not None and c.scheme == "basic"
    assert parse_challenge(None) is None
    assert parse_challenge("") is None
    assert parse_challenge("Bearer " + "a" * 10_000) is None


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1:5000")
    assert is_loopback("localhost")
    assert is_loopback("[::1]:5000")
    assert not is_loopback("registry.example.org:5000")
    assert not is_loopback("10.0.0.1")


def test_docker_config_parsing(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": base64.b64encode(b"u:p:q").decode()}}})
    )
    assert credentials_from_docker_config(DOCKER_HUB, cfg, 4096) == ("u", "p:q")
    assert credentials_from_docker_config("other.example.org", cfg, 4096) is None
    cfg.write_text(json.dumps({"auths": {"other.example.org": {"auth": "!!notbase64"}}}))
    with pytest.raises(errors.InvalidArgument) as info:
        credentials_from_docker_config("other.example.org", cfg, 4096)
    assert "notbase64" not in str(info.value)
    cfg.write_text("x" * 5000)
    with pytest.raises(errors.InvalidArgument):
        credentials_from_docker_config("other.example.org", cfg, 4096)
    with pytest.raises(errors.InvalidArgument):
        credentials_from_docker_config("h", tmp_path / "missing.json", 4096)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("registry", ["anon"], indirect=True)
def test_a_blob_streamed_without_end_is_cut_off_at_its_descriptor_size(registry: FakeRegistry) -> None:
    """The layer blob, then zeros for as long as the client reads (up to `endless_for_s`)."""
    _, _, ims = two_platforms()
    registry.endless.add(sha256(ims[0].blobs[0]))
    started = time.monotonic()
    codes: dict[str, list[str]] = {}
    with open_source(f"docker://{registry.host}/team/app:v1") as src:
        for image in src.images():
            warnings: list[ScanWarning] = []
            for _ in walk_image(image, limits=ScanLimits(), index=LayerIndex(), on_warning=warnings.append):
                pass
            codes[image.platform or ""] = [w.code for w in warnings]
    assert codes == {"linux/amd64": ["layer.size_mismatch"], "linux/arm64": []}
    assert time.monotonic() - started < registry.endless_for_s / 2
