"""Generate the gRPC Python code in secretsvc/v1/ from protos/ (or, with --check, verify it is current).

The generated files are committed so that installing secretsvc needs no protoc; the test command runs
--check so they can never drift from protos/.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE = "secretsvc/v1"


def generate(out_dir: Path) -> list[Path]:
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p) for p in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    target = out_dir / PACKAGE
    (target / "__init__.py").write_text('"""Generated gRPC code for the secretsvc.v1 API (see protos/)."""\n')
    return sorted(p for p in target.iterdir() if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed code is out of date")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate(Path(tmp))
        committed_dir = ROOT / PACKAGE
        if args.check:
            stale = [
                p.name
                for p in generated
                if not (committed_dir / p.name).exists() or not filecmp.cmp(p, committed_dir / p.name, False)
            ]
            extra = {p.name for p in committed_dir.glob("*_pb2*.py*")} - {p.name for p in generated}
            if stale or extra:
                print(f"generated gRPC code is stale: {sorted(stale) + sorted(extra)}; "
                      "run: python scripts/gen_protos.py", file=sys.stderr)
                return 1
            print(f"generated gRPC code matches protos/ ({len(generated)} files)")
            return 0
        committed_dir.mkdir(parents=True, exist_ok=True)
        for p in generated:
            (committed_dir / p.name).write_bytes(p.read_bytes())
        print(f"wrote {len(generated)} files to {committed_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
