"""Reading images back from a real `docker-registry` on loopback, pushed there with skopeo.

Two registries start once per session: one anonymous, one behind htpasswd basic auth (the bcrypt line is
made with the `bcrypt` package when installed, else with Python's `crypt`, which libxcrypt backs on Debian).
Images are built by hand (gzip and zstd layers: skopeo would reuse a gzip blob when asked for zstd) and
pushed with `skopeo copy --dest-tls-verify=false`.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import Location
from secretsvc.scan.sources import open_source
from secretsvc.scan.walk import LayerIndex, walk_image
from tests import fakecreds
from tests.scanimages import build_image, file, whiteout, write_oci_layout

REGISTRY = shutil.which("docker-registry")
SKOPEO = shutil.which("skopeo")
pytestmark = [
    pytest.mark.skipif(REGISTRY is None, reason="docker-registry is not installed (Debian package docker-registry)"),
    pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (Debian package skopeo)"),
    pytest.mark.timeout(120),
]


def bcrypt_line(user: str, password: str) -> str | None:
    try:
        import bcrypt  # type: ignore[import-not-found]

        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            return None
    salt = "$2b$05$" + "".join(
        random.Random(9).choice("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") for _ in range(22)
    )
    hashed = crypt.crypt(password, salt)
    return f"{user}:{hashed}" if hashed and hashed.startswith("$2b$") else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str
    creds: str | None
    proc: subprocess.Popen[bytes]


def start_registry(root: Path, htpasswd: str | None) -> Registry:
    root.mkdir(parents=True)
    port = free_port()
    auth = ""
    if htpasswd is not None:
        (root / "htpasswd").write_text(htpasswd + "\n")
        auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {root / 'htpasswd'}\n"
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth
    )
    log = open(root / "registry.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([str(REGISTRY), "serve", str(root / "config.yml")], stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # 401: up, and asking for credentials
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((root / "registry.log").read_text()) from None
            time.sleep(0.1)
    return Registry(f"127.0.0.1:{port}", None, proc)


@pytest.fixture(scope="session")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Registry]]:
    base = tmp_path_factory.mktemp("registries")
    out = {"anon": start_registry(base / "anon", None)}
    password = "pw" + str(random.Random(4).getrandbits(48))
    line = bcrypt_line("ci", password)
    if line is not None:
        out["basic"] = start_registry(base / "basic", line)
        out["basic"].creds = f"ci:{password}"
    yield out
    for r in out.values():
        r.proc.terminate()
        r.proc.wait(timeout=10)


@pytest.fixture(params=["anon", "basic"])
def registry(request: pytest.FixtureRequest, registries: dict[str, Registry]) -> Registry:
    if request.param not in registries:
        pytest.skip("cannot make a bcrypt htpasswd line: install python3-bcrypt or apache2-utils")
    return registries[request.param]


def push(layout: Path, tag: str, reg: Registry, repo: str) -> str:
    ref = f"docker://{reg.host}/{repo}:{tag}"
    cmd = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]
    if reg.creds:
        cmd += ["--dest-creds", reg.creds]
    subprocess.run([*cmd, f"oci:{layout}:{tag}", ref], check=True)
    return ref


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_pull_and_walk_from_registry(registry: Registry, tmp_path: Path, compression: str) -> None:
    rng = random.Random(11)
    token = fakecreds.fake_github_token(rng)
    im = build_image(
        [
            [file("app/.env", f"GH_TOKEN={token}\n")],
            [whiteout("app/.env"), file("app/main.py", "print(1)\n")],
        ],
        compression=compression,
        env=[f"GH_TOKEN={token}"],
    )
    layout = write_oci_layout(tmp_path / "oci", [im], tag="v1")
    ref = push(layout, "v1", registry, f"team/{compression}")
    with open_source(ref, creds=registry.creds) as src:
        (image,) = list(src.images())
        assert [ly.diff_id for ly in image.layers] == im.diff_ids
        index, warns = LayerIndex(), []
        contents = list(walk_image(image, limits=ScanLimits(), index=index, on_warning=warns.append))
    assert warns == []
    hits = {
        (c.path, index.location_of(c.layer_index, c.path) if c.layer_index is not None else c.location)
        for c in contents
        if token.encode() in c.data
    }
    assert hits == {("app/.env", Location.DELETED_FILE), ("config.Env[0]", Location.CONFIG_ENV)}


def test_basic_auth_is_required_and_checked(registries: dict[str, Registry], tmp_path: Path) -> None:
    if "basic" not in registries:
        pytest.skip("no htpasswd registry")
    reg = registries["basic"]
    layout = write_oci_layout(tmp_path / "oci", [build_image([[file("a", "b")]])], tag="x")
    ref = push(layout, "x", reg, "team/auth")
    with pytest.raises(errors.Unauthenticated), open_source(ref) as src:
        list(src.images())
    with pytest.raises(errors.Unauthenticated), open_source(ref, creds="ci:wrong") as src:
        list(src.images())
    with open_source(ref, creds=reg.creds) as src:
        assert len(list(src.images())) == 1


def test_missing_image_is_not_found(registries: dict[str, Registry]) -> None:
    with (
        pytest.raises(errors.NotFound),
        open_source(f"docker://{registries['anon'].host}/no/such:tag") as src,
    ):
        list(src.images())
