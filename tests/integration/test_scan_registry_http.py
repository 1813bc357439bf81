"""The registry client's HTTP behaviour against a real `docker-registry`: token auth, retries, connection
reuse and redirects, with a real proxy (`tests.registryproxy`) in front where the registry must misbehave.

The token registry is distribution with `auth: token`: it verifies ES256 JWTs whose `x5c` chain leads to a
CA made here with the project's pki code, and a small token server in this file issues them (checking the
pull user's basic credentials), as a real token service would.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import random
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.sources import open_source
from secretsvc.scan.sources.registry_http import RegistryUnavailable
from secretsvc.scan.walk import LayerIndex, walk_image
from tests import fakecreds
from tests.registrykit import REGISTRY, SKOPEO, Registry, TokenAuthConfig, push, start_registry
from tests.registryproxy import ProxyServer, serving
from tests.scanimages import build_image, file, layer_tar, sha256, write_oci_layout
from tests.tlskit import make_pki
from tests.zstdchunked import lenient_decompress, multi_frame

ROOT = Path(__file__).resolve().parents[2]
LAYERS = 6
SERVICE = "test-registry"
ISSUER = "test-token-issuer"
pytestmark = [
    pytest.mark.skipif(REGISTRY is None, reason="docker-registry is not installed (Debian package docker-registry)"),
    pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (Debian package skopeo)"),
    pytest.mark.timeout(120),
]


@dataclass
class TokenServer:
    """Issues registry tokens to one user; refuses anyone else, anonymous callers included."""

    user: str
    password: str
    key_pem: bytes
    chain_der: list[bytes]
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def issue(self, scopes: list[str]) -> str:
        now = int(time.time())
        access = []
        for scope in scopes:
            kind, name, _actions = scope.split(":", 2)
            access.append({"type": kind, "name": name, "actions": ["pull", "push"]})
        claims = {
            "iss": ISSUER,
            "sub": self.user,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": str(random.Random(now).getrandbits(64)),
            "access": access,
        }
        x5c = [base64.b64encode(der).decode() for der in self.chain_der]
        return jwt.encode(claims, self.key_pem, algorithm="ES256", headers={"x5c": x5c})

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                auth = self.headers.get("Authorization") or ""
                want = "Basic " + base64.b64encode(f"{outer.user}:{outer.password}".encode()).decode()
                outer.requests.append({"scopes": query.get("scope", []), "basic": auth.startswith("Basic ")})
                if auth != want:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": outer.issue(query.get("scope", [])), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@dataclass
class Setup:
    anon: Registry
    token: Registry
    tokens: TokenServer
    creds: str
    repo: str
    secrets: list[str]


def _image(secrets: list[str]) -> Any:
    rng = random.Random(77)
    layers = [[file(f"app/layer{i}.bin", rng.randbytes(64 * 1024))] for i in range(LAYERS - 1)]
    layers.append([file("app/.env", "".join(f"TOKEN_{i}={s}\n" for i, s in enumerate(secrets)))])
    return build_image(layers, compression=["gzip", "zstd"] * (LAYERS // 2))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("reg-http")
    rng = random.Random(2026)
    password = "pw" + str(rng.getrandbits(64))
    dev = make_pki(base / "pki")
    signer = dev.issue("server", name="token-signer", dns=("token-signer.test",))
    chain = [ssl.PEM_cert_to_DER_cert(signer.cert_pem.decode()), ssl.PEM_cert_to_DER_cert(dev.ca.read_text())]
    tokens = TokenServer("puller", password, signer.key_pem.reveal(), chain)
    tokens.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), tokens.handler())
    threading.Thread(target=tokens.server.serve_forever, daemon=True).start()
    anon = start_registry(base / "anon")
    token = start_registry(base / "token", token=TokenAuthConfig(tokens.realm, SERVICE, ISSUER, dev.ca))
    token.creds = f"puller:{password}"
    secrets = [fakecreds.fake_github_token(rng), fakecreds.fake_github_token(rng)]
    layout = write_oci_layout(base / "oci", [_image(secrets)], tag="v1")
    try:
        push(layout, "v1", anon.host, "team/app")
        push(layout, "v1", token.host, "team/app", token.creds)
        yield Setup(anon, token, tokens, token.creds, "team/app", secrets)
    finally:
        anon.stop()
        token.stop()
        tokens.server.shutdown()
        tokens.server.server_close()


def pull(ref: str, **kw: Any) -> tuple[int, list[str], bytes]:
    """Layers read, warning codes, and every layer file's bytes joined."""
    layers, warnings, data = 0, [], []
    with open_source(ref, **kw) as src:
        for image in src.images():
            layers += len(image.layers)
            for c in walk_image(image, limits=ScanLimits(), index=LayerIndex(), on_warning=warnings.append):
                if c.layer_index is not None:
                    data.append(c.data)
    return layers, [w.code for w in warnings], b"".join(data)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secretsvc.cli", "scan", "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_token_auth_flow_against_a_real_registry(setup: Setup) -> None:
    ref = f"docker://{setup.token.host}/{setup.repo}:v1"
    setup.tokens.requests.clear()
    layers, codes, data = pull(ref, creds=setup.creds)
    assert (layers, codes) == (LAYERS, [])
    assert all(s.encode() in data for s in setup.secrets)
    # One token for the repository's pull scope, fetched with the user's basic credentials, reused for the
    # manifest, the config and every layer.
    assert setup.tokens.requests == [{"scopes": [f"repository:{setup.repo}:pull"], "basic": True}]


def test_token_auth_refusals_name_the_registry_not_the_credentials(setup: Setup) -> None:
    ref = f"docker://{setup.token.host}/{setup.repo}:v1"
    wrong = "puller:" + "x" + setup.creds.split(":", 1)[1]
    with pytest.raises(errors.Unauthenticated) as info:
        pull(ref, creds=wrong)
    message = str(info.value)
    assert setup.token.host in message and wrong.split(":", 1)[1] not in message
    with pytest.raises(errors.Unauthenticated, match="token server"):
        pull(ref)  # anonymous: the token server refuses it


def test_the_cli_pulls_through_token_auth_with_creds_from_the_environment(setup: Setup) -> None:
    proc = run_cli(f"docker://{setup.token.host}/{setup.repo}:v1", env={"SECRETSVC_REGISTRY_CREDS": setup.creds})
    assert proc.returncode == 1, proc.stderr  # findings
    report = json.loads(proc.stdout)
    assert {f["path"] for f in report["findings"]} == {"app/.env"}
    assert setup.creds.split(":", 1)[1] not in proc.stdout + proc.stderr


def test_a_multi_layer_pull_reuses_one_connection(setup: Setup) -> None:
    with serving(ProxyServer(setup.anon.host)) as proxy:
        layers, codes, _ = pull(f"docker://{proxy.host}/{setup.repo}:v1")
    assert (layers, codes) == (LAYERS, [])
    assert len(proxy.requests) == LAYERS + 2  # manifest, config, layers
    assert proxy.connections == 1


def test_throttling_is_retried_after_the_servers_retry_after(setup: Setup) -> None:
    with serving(ProxyServer(setup.anon.host)) as proxy:
        proxy.faults.throttle = 2
        proxy.faults.retry_after = "1"
        started = time.monotonic()
        layers, codes, _ = pull(f"docker://{proxy.host}/{setup.repo}:v1")
        elapsed = time.monotonic() - started
    assert (layers, codes) == (LAYERS, [])
    first_throttle, second_throttle = proxy.faults.throttled_at
    assert second_throttle - first_throttle >= 0.95  # Retry-After: 1 was honoured, not a quick backoff
    assert elapsed >= 1.9
    assert proxy.connections == 1  # the 429s were read to their end and the connection kept


def test_a_registry_unavailable_for_good_fails_as_unavailable(setup: Setup) -> None:
    with serving(ProxyServer(setup.anon.host)) as proxy:
        proxy.faults.unavailable = True
        started = time.monotonic()
        with pytest.raises(RegistryUnavailable, match=r"HTTP 503.*try again later"):
            pull(f"docker://{proxy.host}/{setup.repo}:v1")
        assert time.monotonic() - started < 15
        tries = len(proxy.requests)
        assert 2 <= tries <= 10
        started = time.monotonic()
        proc = run_cli(f"docker://{proxy.host}/{setup.repo}:v1")
        assert time.monotonic() - started < 30
    assert proc.returncode == 2
    assert "unavailable" in proc.stderr and "try again later" in proc.stderr
    assert "invalid" not in proc.stderr.lower()


def test_a_redirect_to_another_host_drops_authorization(setup: Setup) -> None:
    """Blob reads are redirected to storage on another host (here 127.0.0.2, serving the same content from the
    anonymous registry); the registry's bearer token must not follow them there."""
    with (
        serving(ProxyServer(setup.anon.host, bind="127.0.0.2", prefix="/store")) as storage,
        serving(ProxyServer(setup.token.host)) as front,
    ):
        front.faults.redirect_blobs_to = f"http://{storage.host}"
        layers, codes, data = pull(f"docker://{front.host}/{setup.repo}:v1", creds=setup.creds)
    assert (layers, codes) == (LAYERS, [])
    assert all(s.encode() in data for s in setup.secrets)
    # the registry got the token with every blob read it redirected (so there was a header to drop)
    assert {auth for _, path, auth in front.requests if "/blobs/" in path} == {"Bearer"}
    blob_reads = [r for r in storage.requests if "/blobs/" in r[1]]
    assert len(blob_reads) == LAYERS + 1  # config and layers
    assert storage.authorization_seen == []


def test_chunked_zstd_layers_from_the_registry(setup: Setup, tmp_path: Path) -> None:
    """A zstd:chunked-like layer (a frame per part, skippable frames) pulled and scanned whole; the same
    layer cut inside a frame (its digests made from the cut bytes) is reported, never clean."""
    rng = random.Random(404)
    secret = fakecreds.fake_github_token(rng)
    tar = layer_tar(
        [file(f"srv/{i}.txt", f"{i} text\n" * 300) for i in range(15)] + [file("srv/.env", f"T={secret}\n")]
    )
    whole = build_image([tar], compression="zstd")
    whole.blobs[0] = multi_frame(tar, piece=4096, lead=False)
    cut_blob = whole.blobs[0][: len(whole.blobs[0]) - 60]  # inside the last data frame (the TOC is shorter)
    cut = build_image([[file("placeholder", "x")]], compression="zstd")
    cut.blobs[0] = cut_blob
    cut.config["rootfs"]["diff_ids"] = [sha256(lenient_decompress(cut_blob))]
    push(write_oci_layout(tmp_path / "whole", [whole], tag="whole"), "whole", setup.anon.host, "team/chunked")
    push(write_oci_layout(tmp_path / "cut", [cut], tag="cut"), "cut", setup.anon.host, "team/chunked")
    proc = run_cli(f"docker://{setup.anon.host}/team/chunked:whole")
    report = json.loads(proc.stdout)
    assert (proc.returncode, report["warnings"]) == (1, []), report["warnings"]
    assert [f["path"] for f in report["findings"]] == ["srv/.env"]
    proc = run_cli(f"docker://{setup.anon.host}/team/chunked:cut")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1, proc.stderr  # the secret was in a frame before the cut: findings come first
    assert [(w["code"], w["incomplete"]) for w in report["warnings"]] == [("layer.corrupt", True)]
