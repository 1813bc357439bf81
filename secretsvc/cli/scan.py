"""`secretsvc scan`: find leaked credentials in a container image, an image archive, or a directory."""

from __future__ import annotations

import argparse
import io
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    FileSizeColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from secretsvc.errors import InvalidArgument, SecretsvcError
from secretsvc.scan.baseline import write_atomically
from secretsvc.scan.model import Severity
from secretsvc.scan.pipeline import MAX_FINGERPRINT_KEY_BYTES, MIN_FINGERPRINT_KEY_BYTES, ScanOptions, scan
from secretsvc.scan.reporters import write_report
from secretsvc.scan.reporters.text import safe, summary

FINGERPRINT_KEY_ENV = "SECRETSVC_FINGERPRINT_KEY"
CREDS_ENV = "SECRETSVC_REGISTRY_CREDS"
MAX_KEY_FILE_BYTES = 4096

DESCRIPTION = """\
Scan a container image for leaked credentials: every layer (including files that a later layer deletes or
overwrites), the image config (Env, Labels, history, Cmd/Entrypoint) and archives nested in files.
Findings never contain the secret: only a redacted form and a keyed fingerprint."""

EPILOG = """\
image references (as skopeo writes them):
  docker-archive:PATH          a `docker save` tarball
  oci:DIR[:TAG]                an OCI layout directory
  oci-archive:PATH[:TAG]       a tarball of an OCI layout
  docker://HOST[:PORT]/REPO[:TAG|@DIGEST]
                               a registry (credentials: --creds, $SECRETSVC_REGISTRY_CREDS, or
                               ~/.docker/config.json)
  PATH                         an existing image archive or layout, detected by its contents; any other
                               directory or file is scanned as plain files

exit status:
  0  no finding at or above --fail-on (default: low, so any finding fails)
  1  findings at or above --fail-on
  2  usage or input error (bad reference, unreadable image, bad baseline or config)

examples:
  secretsvc scan docker-archive:app.tar
  secretsvc scan oci:build/layout:latest --platform linux/arm64 --format json --output report.json
  secretsvc scan docker://registry.internal:5000/team/app:1.4 --format sarif --output scan.sarif
  secretsvc scan docker-archive:app.tar --write-baseline .secretsvc-baseline.json
  secretsvc scan docker-archive:app.tar --baseline .secretsvc-baseline.json --fail-on high
  secretsvc scan ./src --config .secretsvc-scan.toml
"""


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "scan",
        help="scan an image for leaked credentials",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("ref", metavar="REF", help="image reference or path (see below)")
    parser.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        help="report format (default: text on a terminal; otherwise sarif for an --output ending in .sarif, else json)",
    )
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="write the report to FILE")
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="scan one platform of an index")
    parser.add_argument(
        "--creds",
        metavar="USER:PASS",
        help=f"registry credentials (prefer ${CREDS_ENV}: arguments are visible to other local users)",
    )
    parser.add_argument("--docker-config", type=Path, metavar="FILE", help="docker config.json for auths")
    parser.add_argument(
        "--fail-on",
        default="low",
        metavar="SEVERITY",
        help="lowest severity that makes the exit status 1: low, medium, high or critical (default: low)",
    )
    parser.add_argument("--baseline", type=Path, metavar="FILE", help="suppress findings recorded in FILE")
    parser.add_argument(
        "--write-baseline", type=Path, metavar="FILE", help="record this scan's findings in FILE as baseline"
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML file of path and rule ignores")
    key = parser.add_mutually_exclusive_group()
    key.add_argument(
        "--fingerprint-key",
        metavar="HEX",
        help=f"key for finding fingerprints, in hex (or set ${FINGERPRINT_KEY_ENV}); default: random per run",
    )
    key.add_argument(
        "--fingerprint-key-file", type=Path, metavar="FILE", help="read the fingerprint key (hex) from FILE"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")
    parser.add_argument(
        "--insecure-registry", action="store_true", help="talk plain HTTP / unverified TLS to the registry"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
    except ValueError as exc:
        return _fail(str(exc))
    key = _fingerprint_key(args)
    creds = args.creds if args.creds is not None else os.environ.get(CREDS_ENV) or None
    fmt = args.format or _default_format(args.output)
    with ExitStack() as stack:
        progress = None
        if not args.no_progress and sys.stderr.isatty():
            progress = stack.enter_context(_ProgressBar(args.ref))
        options = ScanOptions(
            platform=args.platform,
            creds=creds,
            docker_config=args.docker_config,
            insecure_registry=args.insecure_registry,
            fingerprint_key=key,
            fail_on=fail_on,
            baseline=args.baseline,
            write_baseline=args.write_baseline,
            config=args.config,
            progress=progress,
        )
        report = scan(args.ref, options)
    if args.output is not None:
        buffer = io.StringIO()
        write_report(report, fmt, buffer, terminal=False)
        write_atomically(args.output, buffer.getvalue().encode("utf-8"))
        print(summary(report), file=sys.stderr)
    else:
        try:
            write_report(report, fmt, sys.stdout, terminal=_is_terminal(sys.stdout))
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader (`| head`) went away; the exit status still tells the result.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return report.exit_code


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
        try:
            with args.fingerprint_key_file.open("rb") as handle:
                raw = handle.read(MAX_KEY_FILE_BYTES + 1)
        except OSError as exc:
            raise InvalidArgument(
                f"cannot read fingerprint key file {args.fingerprint_key_file}: {exc.strerror or exc}"
            ) from None
        if len(raw) > MAX_KEY_FILE_BYTES:
            raise InvalidArgument(f"fingerprint key file is larger than {MAX_KEY_FILE_BYTES} bytes")
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
    return 2
