"""`secretsvc scan` with its default limits on a real decompression bomb: a 64 KB zstd layer of 2 GiB of zeros.

Before layers were bounded as a whole, the scan decompressed all 2 GiB (to check the layer's digest) and
exited 0. With the defaults it stops once the layer passes `max_layer_compression_ratio` (checked after
`layer_ratio_check_min_bytes`), says so, and exits 3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import scanimages as si

ROOT = Path(__file__).parents[2]
BOMB_BYTES = 2 << 30  # 2 GiB
#: The scan takes about half a second. Decompressing and hashing all 2 GiB took a few seconds more, so the
#: deadline is a backstop against a hang; the exit status and the warning are what tell the two apart.
SCAN_DEADLINE_S = 20.0

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def bomb_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    blob, diff_id = si.zeros_layer("var/lib/db/prealloc.img", BOMB_BYTES)
    assert len(blob) < 1 << 20  # the whole point: a small download
    image = si.image_of_blobs([blob], [diff_id])
    return si.write_oci_layout(tmp_path_factory.mktemp("bomb") / "oci", [image])


def test_a_2_gib_zstd_bomb_stops_at_the_ratio_limit_and_exits_3(bomb_layout: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "secretsvc.cli", "scan", f"oci:{bomb_layout}", "--format", "json", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=ROOT,
        env=dict(os.environ),
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr
    document = json.loads(proc.stdout)
    codes = [w["code"] for w in document["warnings"]]
    assert "limit.layer_ratio" in codes
    assert set(codes) <= {"limit.layer_ratio", "limit.file_size"}  # the 2 GiB file is also over max_file_bytes
    assert document["warnings"][0]["incomplete"] is True
    assert document["stats"]["not_read"]["limit.layer_ratio"] == 1
    assert document["stats"]["bytes_scanned"] < BOMB_BYTES // 8
    assert elapsed < SCAN_DEADLINE_S, f"the scan took {elapsed:.1f} s"
