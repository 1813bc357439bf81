"""`secretsvc scan` on images whose JSON documents nest without end: exit status 2 and one line, no traceback.

`"[" * 200000` used to end in a RecursionError traceback and exit status 1 (the "findings" status).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests import scanimages as si

ROOT = Path(__file__).parents[2]
DEEP = b"[" * 200_000 + b"]" * 200_000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

pytestmark = pytest.mark.timeout(120)


def scan(ref: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secretsvc.cli", "scan", ref, "--format", "json", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=ROOT,
        env=dict(os.environ),
        check=False,
    )


def assert_input_error(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "max_json_depth=" in lines[0] and what in lines[0]
    assert proc.stdout == ""


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


def hexdigest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_deep_manifest_json(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "img.tar", {"manifest.json": DEEP})
    assert_input_error(scan(f"docker-archive:{archive}"), "manifest.json")


def test_deep_index_json(tmp_path: Path) -> None:
    root = si.write_oci_layout(tmp_path / "oci", [si.build_image([[si.file("a", "b")]])])
    (root / "index.json").write_bytes(DEEP)
    assert_input_error(scan(f"oci:{root}"), "index.json")


def test_deep_config_in_docker_archive(tmp_path: Path) -> None:
    cfg_name = f"{hexdigest(DEEP)}.json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["a/b:c"], "Layers": []}]).encode()
    archive = write_tar(tmp_path / "img.tar", {"manifest.json": manifest, cfg_name: DEEP})
    assert_input_error(scan(f"docker-archive:{archive}"), "image config")


def test_deep_config_and_manifest_in_oci_layout(tmp_path: Path) -> None:
    """A config blob (digest correct, so it reaches the parser), then a manifest blob, each nested deeply."""
    config = json.dumps({"mediaType": "application/vnd.oci.image.config.v1+json"}).encode()
    for bad in ("config", "manifest"):
        root = tmp_path / bad
        cfg_bytes = DEEP if bad == "config" else config
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"digest": "sha256:" + hexdigest(cfg_bytes), "size": len(cfg_bytes)},
                "layers": [],
            }
        ).encode()
        if bad == "manifest":
            manifest = DEEP
        blobs = root / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        for data in (cfg_bytes, manifest):
            (blobs / hexdigest(data)).write_bytes(data)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        desc = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + hexdigest(manifest), "size": len(manifest)}
        (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
        assert_input_error(scan(f"oci:{root}"), "image config" if bad == "config" else "manifest")
