"""The `injector` command: `injector webhook` (the mutating admission webhook) and `injector agent` (the init or
sidecar container that writes a pod's secrets into its tmpfs). docs/injector.md describes both."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each command's module is imported only when that command runs (or help lists them all): the agent starts in
# every pod, and the webhook's imports (the gRPC client, certificate parsing, annotation tables) would double
# its start-up time and memory for nothing.
COMMANDS = {
    "webhook": ("injector.webhook.command", "serve the mutating admission webhook over HTTPS"),
    "agent": ("injector.agent.command",
              "write a pod's secrets into its memory-backed volume (init container or sidecar)"),
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="injector",
        description="Deliver secretsvc secrets into Kubernetes pods as files on a memory-backed volume "
                    "(docs/injector.md).",
    )
    chosen = next((a for a in argv if not a.startswith("-")), None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, summary) in COMMANDS.items():
        if chosen in COMMANDS and name != chosen:
            commands.add_parser(name, help=summary)
            continue
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=summary, description=module.DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(given).parse_args(given)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
