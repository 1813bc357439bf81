"""The `secretsvc` command: one entry point for serve, the client commands and scan."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from secretsvc import __version__


def build_parser() -> argparse.ArgumentParser:
    from secretsvc.cli import scan

    parser = argparse.ArgumentParser(
        prog="secretsvc",
        description="Secrets service, Kubernetes injector and image-layer leak detector.",
    )
    parser.add_argument("--version", action="version", version=f"secretsvc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    scan.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args.run(args))
