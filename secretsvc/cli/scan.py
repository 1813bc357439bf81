"""`secretsvc scan`: its command line. The scan itself is imported only when the command runs, so the rest
of the CLI starts without loading the detector."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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
                               directory or file is scanned as plain files (a path called "rules": ./rules,
                               as `scan rules` is the rule subcommand)

detection rules (docs/scan-rules.md):
  secretsvc scan rules [--format text|json|markdown] [--rules FILE]
                               list every rule: id, family, severity, description, keywords, file
  secretsvc scan rules check FILE...
                               check your own rule files: format, ids, and each rule's examples
  --rules FILE                 add your rule files to a scan ([rules] files in --config does the same);
                               [rules] disabled in --config turns rules off by id

exit status:
  0  no finding at or above --fail-on (default: low, so any finding fails), and the whole image was read
  1  findings at or above --fail-on (even if part of the image could not be read: findings come first)
  2  usage or input error (bad reference, unreadable image, bad baseline or config)
  3  the scan could not read part of the image (a missing or corrupt layer, a limit hit, ...) and
     found nothing at or above --fail-on; the report says what was not read. --allow-incomplete,
     or [scan] allow_incomplete / accept_warnings in --config, accepts it (exit 0)

examples:
  secretsvc scan docker-archive:app.tar
  secretsvc scan oci:build/layout:latest --platform linux/arm64 --format json --output report.json
  secretsvc scan docker://registry.internal:5000/team/app:1.4 --format sarif --output scan.sarif
  secretsvc scan docker-archive:app.tar --write-baseline .secretsvc-baseline.json
  secretsvc scan docker-archive:app.tar --baseline .secretsvc-baseline.json --fail-on high
  secretsvc scan ./src --config .secretsvc-scan.toml
  secretsvc scan docker-archive:app.tar --rules acme-rules.toml
  SECRETSVC_ADDR=vault.internal:7443 secretsvc scan docker-archive:app.tar --match-stored --ca-file ca.pem
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
    parser.add_argument(
        "--min-confidence",
        metavar="LEVEL",
        help="hide (and count) findings below LEVEL: low, medium or high (default: [scan] min_confidence, else"
        " medium: package docs, tests and examples are hidden); --fail-on sees only shown findings",
    )
    parser.add_argument("--baseline", type=Path, metavar="FILE", help="suppress findings recorded in FILE")
    parser.add_argument(
        "--write-baseline", type=Path, metavar="FILE", help="record this scan's findings in FILE as baseline"
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML file: path and rule ignores, accepted incomplete scans"
    )
    parser.add_argument(
        "--rules",
        type=Path,
        action="append",
        metavar="FILE",
        help="also run the rules in this rule file (repeatable; check it first with `secretsvc scan rules check`)",
    )
    parser.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="exit 0, not 3, when part of the image could not be read (the report still says what)",
    )
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
    _add_match_stored_options(parser)
    parser.set_defaults(run=run)


RULES_DESCRIPTION = """\
List the detection rules of `secretsvc scan`, or check your own rule files. Rule files are TOML; the format,
and how to add them to a scan (--rules FILE, [rules] files and disabled in --config), are in
docs/scan-rules.md."""

RULES_EPILOG = """\
exit status of `check`:
  0  every file is valid and every example of its rules behaves
  1  an example failed: a positive the rule does not find, or a negative it does (each is printed)
  2  a file is unreadable or invalid (unknown key, bad regex, unbounded pattern, unknown validator,
     duplicate id, an id a built-in rule already uses, ...): the message names the file and the rule

an image or directory called "rules" is scanned as `secretsvc scan ./rules` (or docker-archive:rules, oci:rules).

examples:
  secretsvc scan rules
  secretsvc scan rules --format json | jq -r '.rules[] | select(.severity == "critical") | .id'
  secretsvc scan rules check acme-rules.toml
  secretsvc scan docker-archive:app.tar --rules acme-rules.toml
"""


def rules_parser() -> argparse.ArgumentParser:
    """The parser of `secretsvc scan rules ...`. `scan` takes REF as a positional, which argparse cannot mix
    with subcommands, so the entry point hands `scan rules` to this parser (an image or directory called
    "rules" is written ./rules or with its transport)."""
    parser = argparse.ArgumentParser(
        prog="secretsvc scan rules",
        description=RULES_DESCRIPTION,
        epilog=RULES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--format", choices=("text", "json", "markdown"), default="text", help="listing format (default: text)"
    )
    parser.add_argument(
        "--rules", type=Path, action="append", metavar="FILE", help="list the rules of this file too (repeatable)"
    )
    parser.set_defaults(run=_run_list)
    sub = parser.add_subparsers(dest="rules_command", metavar="COMMAND")
    check = sub.add_parser(
        "check",
        help="check rule files: format, ids and examples",
        description="Load each rule file as a scan would, refuse ids the built-in rules (or another file) use, "
        "and run every example of its rules against the built-in rules plus these.",
        epilog=RULES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a rule file (TOML)")
    check.set_defaults(run=_run_check)
    return parser


def _add_match_stored_options(parser: argparse.ArgumentParser) -> None:
    # The connection flags of the client commands (cli/connection.py), minus their --format, which scan has.
    group = parser.add_argument_group(
        "known-secret matching",
        "with --match-stored, also report any value in the image that equals a secret version the service stores "
        "(rule stored-secret; needs `match` on those secrets). The service is reached as the client commands "
        "reach it: these flags, else $SECRETSVC_ADDR, $SECRETSVC_TOKEN, $SECRETSVC_CA_FILE, ...",
    )
    group.add_argument("--match-stored", action="store_true", help="compare candidate values with stored secrets")
    group.add_argument("--addr", metavar="HOST:PORT", help="secret service address ($SECRETSVC_ADDR)")
    group.add_argument("--token-file", type=Path, metavar="PATH", help="bearer token file ($SECRETSVC_TOKEN)")
    group.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="deadline of each lookup call (default: 30)"
    )
    group.add_argument("--ca-file", type=Path, metavar="PEM", help="CA of the service ($SECRETSVC_CA_FILE)")
    group.add_argument("--cert", type=Path, metavar="PEM", help="client certificate ($SECRETSVC_CLIENT_CERT)")
    group.add_argument("--key", type=Path, metavar="PEM", help="its private key ($SECRETSVC_CLIENT_KEY)")
    group.add_argument(
        "--insecure-plaintext",
        action="store_const",
        const=True,
        default=None,
        help="INSECURE: plaintext to a non-loopback address ($SECRETSVC_INSECURE_PLAINTEXT)",
    )


def run(args: argparse.Namespace) -> int:
    from secretsvc.cli.scan_run import run_scan

    return run_scan(args)


def _run_list(args: argparse.Namespace) -> int:
    from secretsvc.cli.scan_rules import run_list

    return run_list(args)


def _run_check(args: argparse.Namespace) -> int:
    from secretsvc.cli.scan_rules import run_check

    return run_check(args)
