"""`injector agent`: placeholder until the agent lands."""

from __future__ import annotations

import argparse

DESCRIPTION = "not yet available"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print("injector agent: not yet available")
    return 2
