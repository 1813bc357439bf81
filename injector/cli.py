"""The `injector` command: `injector webhook` (the mutating admission webhook) and `injector agent` (the init or
sidecar container that writes a pod's secrets into its tmpfs). docs/injector.md describes both."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from injector.agent import command as agent_command
    from injector.webhook import command as webhook_command

    parser = argparse.ArgumentParser(
        prog="injector",
        description="Deliver secretsvc secrets into Kubernetes pods as files on a memory-backed volume "
                    "(docs/injector.md).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    webhook = commands.add_parser(
        "webhook", help="serve the mutating admission webhook over HTTPS",
        description=webhook_command.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    webhook_command.add_arguments(webhook)
    webhook.set_defaults(run=webhook_command.run)
    agent = commands.add_parser(
        "agent", help="write a pod's secrets into its memory-backed volume (init container or sidecar)",
        description=agent_command.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    agent_command.add_arguments(agent)
    agent.set_defaults(run=agent_command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
