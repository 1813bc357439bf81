"""Reading images back from a real `docker-registry` on loopback, pushed there with skopeo.

Two registries (`tests.registrykit`) start once per session: one anonymous, one behind htpasswd basic auth.
Images are built by hand (gzip and zstd layers: skopeo would reuse a gzip blob when asked for zstd) and
pushed with `skopeo copy --dest-tls-verify=false`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import Location
from secretsvc.scan.sources import open_source
from secretsvc.scan.walk import LayerIndex, walk_image
from tests import fakecreds, registrykit
from tests.registrykit import REGISTRY, SKOPEO, Registry, bcrypt_line, start_registry
from tests.scanimages import build_image, file, whiteout, write_oci_layout

pytestmark = [
    pytest.mark.skipif(REGISTRY is None, reason="docker-registry is not installed (Debian package docker-registry)"),
    pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (Debian package skopeo)"),
    pytest.mark.timeout(120),
]


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
        r.stop()


@pytest.fixture(params=["anon", "basic"])
def registry(request: pytest.FixtureRequest, registries: dict[str, Registry]) -> Registry:
    if request.param not in registries:
        pytest.skip("cannot make a bcrypt htpasswd line: install python3-bcrypt or apache2-utils")
    return registries[request.param]


def push(layout: Path, tag: str, reg: Registry, repo: str) -> str:
    return registrykit.push(layout, tag, reg.host, repo, reg.creds)


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
