"""Running `secretsvc scan`: options from arguments, progress, the report, and the exit status."""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import (
    FileSizeColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from secretsvc.atomicfile import write_atomically
from secretsvc.boundedio import read_bounded
from secretsvc.cli.scan import CREDS_ENV, FINGERPRINT_KEY_ENV, MAX_KEY_FILE_BYTES
from secretsvc.cli.scan_rules import load_user_rules
from secretsvc.errors import InvalidArgument, SecretsvcError
from secretsvc.scan.config import ScanConfig, load_config
from secretsvc.scan.model import EXIT_USAGE, Severity
from secretsvc.scan.origin import Confidence
from secretsvc.scan.pipeline import MAX_FINGERPRINT_KEY_BYTES, MIN_FINGERPRINT_KEY_BYTES, ScanOptions, scan
from secretsvc.scan.reporters import write_report
from secretsvc.scan.reporters.text import safe, summary
from secretsvc.scan.rules import RuleSet
from secretsvc.scan.rules.cache import DatabaseCache
from secretsvc.scan.rules.loader import builtin_rules


def run_scan(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except SecretsvcError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("secretsvc scan: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    try:
        fail_on = Severity.parse(args.fail_on)
        min_confidence = None if args.min_confidence is None else Confidence.parse(args.min_confidence)
    except ValueError as exc:
        return _fail(str(exc))
    key = _fingerprint_key(args)
    creds = args.creds if args.creds is not None else os.environ.get(CREDS_ENV) or None
    fmt = args.format or _default_format(args.output)
    config = load_config(args.config) if args.config is not None else None
    with ExitStack() as stack:
        progress = None
        if not args.no_progress and sys.stderr.isatty():
            progress = stack.enter_context(_ProgressBar(args.ref))
        options = ScanOptions(
            platform=args.platform,
            creds=creds,
            docker_config=docker_config_path(args.docker_config, os.environ, _home()),
            insecure_registry=args.insecure_registry,
            fingerprint_key=key,
            fail_on=fail_on,
            min_confidence=min_confidence,
            baseline=args.baseline,
            write_baseline=args.write_baseline,
            config=config,
            rules=_ruleset(args.rules or [], config),
            progress=progress,
            allow_incomplete=args.allow_incomplete,
        )
        if args.match_stored:
            from secretsvc.cli.scan_stored import stored_lookup  # grpcio only when matching is asked for

            options = replace(options, match_stored=stack.enter_context(stored_lookup(args)))
        report = scan(args.ref, options)
    if args.output is not None:
        buffer = io.StringIO()
        write_report(report, fmt, buffer, terminal=False)
        try:
            write_atomically(args.output, buffer.getvalue().encode("utf-8"), mode=0o644)
        except OSError as exc:
            raise InvalidArgument(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(summary(report), file=sys.stderr)
    else:
        try:
            write_report(report, fmt, sys.stdout, terminal=_is_terminal(sys.stdout))
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader (`| head`) went away; the exit status still tells the result.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return report.exit_code


def _ruleset(given: list[Path], config: ScanConfig | None) -> RuleSet:
    """The built-in rules plus the user's (--rules, then the config's [rules] files), with the compiled
    database cached where the environment says. A user's file is loaded, validated and checked for id clashes
    before any image is read."""
    files = [*given, *(config.rule_files if config is not None else ())]
    user = load_user_rules(files) if files else []
    return RuleSet([r.rule for r in (*builtin_rules(), *user)], cache=DatabaseCache.from_environment(os.environ))


def docker_config_path(given: Path | None, environ: Mapping[str, str], home: Path | None) -> Path | None:
    """The docker config file to take registry credentials from: `--docker-config` as given (the scan fails
    if it is missing), else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, whichever exists."""
    if given is not None:
        return given
    base = environ.get("DOCKER_CONFIG")
    if base:
        found = Path(base) / "config.json"
    elif home is not None:
        found = home / ".docker" / "config.json"
    else:
        return None
    return found if found.is_file() else None


def _home() -> Path | None:
    try:
        return Path.home()
    except RuntimeError:  # no $HOME and no password entry: there is no ~/.docker to look in
        return None


def _default_format(output: Path | None) -> str:
    if output is None:
        return "text" if _is_terminal(sys.stdout) else "json"
    name = output.name.lower()
    if name.endswith((".sarif", ".sarif.json")):
        return "sarif"
    if name.endswith(".json"):
        return "json"
    return "text"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _fingerprint_key(args: argparse.Namespace) -> bytes | None:
    if args.fingerprint_key_file is not None:
        raw = read_bounded(args.fingerprint_key_file, MAX_KEY_FILE_BYTES, what="fingerprint key file",
                           limit_name="MAX_KEY_FILE_BYTES", error=InvalidArgument)
        return _hex_key(raw.decode("ascii", errors="replace"), "fingerprint key file")
    if args.fingerprint_key is not None:
        return _hex_key(args.fingerprint_key, "--fingerprint-key")
    from_env = os.environ.get(FINGERPRINT_KEY_ENV)
    if from_env:
        return _hex_key(from_env, f"${FINGERPRINT_KEY_ENV}")
    return None


def _hex_key(text: str, what: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise InvalidArgument(f"{what} is not hex") from None
    if not MIN_FINGERPRINT_KEY_BYTES <= len(key) <= MAX_FINGERPRINT_KEY_BYTES:
        raise InvalidArgument(
            f"{what} must be {MIN_FINGERPRINT_KEY_BYTES} to {MAX_FINGERPRINT_KEY_BYTES} bytes "
            f"({2 * MIN_FINGERPRINT_KEY_BYTES}+ hex digits)"
        )
    return key


class _ProgressBar:
    """A rich progress bar on stderr counting uncompressed layer bytes; the instance is the callback."""

    def __init__(self, ref: str) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("scanning {task.description}", markup=False),
            FileSizeColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self._task = self._progress.add_task(safe(ref)[:60], total=None)

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, consumed: int) -> None:
        self._progress.advance(self._task, consumed)


def _fail(message: str) -> int:
    print(f"secretsvc scan: error: {message}", file=sys.stderr)
    return EXIT_USAGE
