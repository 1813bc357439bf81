"""The `secretsvc` command: one entry point for serve, the client commands and scan."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from secretsvc import __version__

EPILOG = """\
client commands read the server address from --addr or $SECRETSVC_ADDR and the token from
$SECRETSVC_TOKEN or --token-file. Values are read from stdin or files, never from the command line.

examples:
  secretsvc serve
  printf %s "$VALUE" | secretsvc put payments/db/password
  secretsvc get payments/db/password
  secretsvc scan docker-archive:image.tar --format sarif --output scan.sarif
"""


def build_parser() -> argparse.ArgumentParser:
    from secretsvc.cli import keys_cmds, scan, secrets_cmds, serve

    parser = argparse.ArgumentParser(
        prog="secretsvc",
        description="Secrets service with envelope encryption, and an image-layer leak detector.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"secretsvc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parser(subparsers)
    secrets_cmds.add_parsers(subparsers)
    keys_cmds.add_parsers(subparsers)
    scan.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args.run(args))
