"""The `secretsvc` command: one entry point for serve, the client commands and scan."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from secretsvc import __version__

EPILOG = """\
client commands read the server address from --addr or $SECRETSVC_ADDR and the token from
$SECRETSVC_TOKEN or --token-file; TLS from --ca-file, --cert and --key ($SECRETSVC_CA_FILE,
$SECRETSVC_CLIENT_CERT, $SECRETSVC_CLIENT_KEY; docs/tls.md). Values are read from stdin or files, never from
the command line.

examples:
  secretsvc serve
  secretsvc pki init --dir ./pki     # a development CA and server certificate for TLS
  printf %s "$VALUE" | secretsvc put payments/db/password
  secretsvc get payments/db/password
  secretsvc audit verify --public-key DATA_DIR/audit-signing.pub DATA_DIR/audit
  secretsvc policy explain sa:payments/web payments/db/password read --policies ./policies
  secretsvc scan docker-archive:image.tar --format sarif --output scan.sarif
"""


def build_parser(*, only_scan: bool = False) -> argparse.ArgumentParser:
    from secretsvc.cli import scan

    parser = argparse.ArgumentParser(
        prog="secretsvc",
        description="Secrets service with envelope encryption, and an image-layer leak detector.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"secretsvc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    if not only_scan:
        from secretsvc.cli import (
            audit_cmds,
            keys_cmds,
            pki_cmds,
            policy_cmds,
            secrets_cmds,
            serve,
            store_cmds,
            token_cmds,
        )

        serve.add_parser(subparsers)
        secrets_cmds.add_parsers(subparsers)
        keys_cmds.add_parsers(subparsers)
        token_cmds.add_parsers(subparsers)
        pki_cmds.add_parsers(subparsers)
        audit_cmds.add_parsers(subparsers)
        policy_cmds.add_parsers(subparsers)
        store_cmds.add_parsers(subparsers)
    scan.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:2] == ["scan", "rules"]:
        from secretsvc.cli import scan

        rules_args = scan.rules_parser().parse_args(arguments[2:])
        return int(rules_args.run(rules_args))
    # CI runs `secretsvc scan` on every image: spare it the gRPC and protobuf imports of the client commands.
    parser = build_parser(only_scan=arguments[:1] == ["scan"])
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args.run(args))
