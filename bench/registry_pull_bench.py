"""Pulling a multi-layer image from a real local registry: TCP connections opened, requests and wall time.

Starts `docker-registry` on loopback, pushes an image of `--layers` gzip layers (`--layer-kb` of random
bytes each, so gzip cannot shrink them) with skopeo, and reads it back through `tests.registryproxy`, which
counts the TCP connections the client opens. Every layer is read to its end and verified, as a scan does.

    .venv/bin/python bench/registry_pull_bench.py --layers 20 --layer-kb 2048 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.sources import open_source
from secretsvc.scan.walk import LayerIndex, walk_image
from tests.registrykit import push, start_registry
from tests.registryproxy import ProxyServer, serving
from tests.scanimages import build_image, file, write_oci_layout


def pull(ref: str) -> tuple[int, int]:
    layers = warnings = 0
    with open_source(ref) as src:
        for image in src.images():
            layers += len(image.layers)
            for _ in walk_image(image, limits=ScanLimits(), index=LayerIndex(), on_warning=lambda w: None):
                pass
    return layers, warnings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--layer-kb", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--direct", action="store_true", help="pull from the registry itself (connections not counted)")
    args = ap.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        reg = start_registry(base / "reg")
        try:
            layers = [[file(f"data/{i}.bin", rng.randbytes(args.layer_kb * 1024))] for i in range(args.layers)]
            layout = write_oci_layout(base / "oci", [build_image(layers)], tag="bench")
            push(layout, "bench", reg.host, "bench/app")
            with serving(ProxyServer(reg.host)) as proxy:
                ref = f"docker://{reg.host if args.direct else proxy.host}/bench/app:bench"
                runs = []
                for _ in range(args.repeat):
                    proxy.reset_counts()
                    started = time.perf_counter()
                    n, _ = pull(ref)
                    elapsed = time.perf_counter() - started
                    runs.append(
                        {
                            "seconds": round(elapsed, 3),
                            "connections": proxy.connections,
                            "requests": len(proxy.requests),
                            "layers": n,
                        }
                    )
        finally:
            reg.stop()
    best = min(runs, key=lambda r: r["seconds"])
    print(json.dumps({"layers": args.layers, "layer_kb": args.layer_kb, "runs": runs, "best": best}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
