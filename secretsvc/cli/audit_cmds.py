"""`secretsvc audit verify` and `secretsvc audit hash`: checking an audit log, and finding a path in one.

Both work on files alone, with no server: `verify` needs only the public key (copy `audit-signing.pub` off
the server), `hash` only the HMAC key. Exit status of `verify` is a contract for scripts: 0 intact, 1 tampered
(or, with --require-closed, not closed cleanly), 2 usage (bad arguments, unreadable file, wrong key).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from secretsvc.audit.files import DEFAULT_NAME, expand
from secretsvc.audit.keys import load_hmac_key, load_public_key
from secretsvc.audit.record import resource_hmac
from secretsvc.audit.verify import VerifyReport, verify_files
from secretsvc.errors import InvalidArgument

EXIT_INTACT = 0
EXIT_TAMPERED = 1
EXIT_USAGE = 2
# A secret's NAMESPACE/PATH is at most 641 bytes; a transit key name 128. Room to spare, and still bounded.
MAX_HASH_INPUT_BYTES = 64 * 1024

_VERIFY_EPILOG = """\
files are checked as one log in the order given; a directory stands for its rotated files, oldest first,
then the active file (audit.log.000001 ... audit.log). Verification stops at the first bad record and names it.

exit status: 0 intact, 1 tampered (or not closed cleanly, with --require-closed), 2 usage error, unreadable
file or wrong key.

Records after the last checkpoint are protected by the hash chain only: until a checkpoint signs them, whole
records cut from the end of the log cannot be detected from the files alone (see docs/audit.md).
"""


class _Usage(Exception):
    """A command-line or input problem: exit status 2."""


def _summary(report: VerifyReport) -> dict[str, Any]:
    problem = report.problem
    return {
        "intact": report.intact,
        "key_id": report.key_id,
        "files": [str(f) for f in report.files],
        "events": report.events,
        "checkpoints": report.checkpoints,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "starts_at_genesis": report.starts_at_genesis,
        "unsigned": report.unsigned,
        "closed_cleanly": report.closed_cleanly,
        "last_checkpoint": None if report.last_checkpoint is None else str(report.last_checkpoint),
        "dropped": report.dropped,
        "discarded_bytes": report.discarded_bytes,
        "unclean_stops": [{"restart": str(u.restart), "signed_late": u.signed_late} for u in report.unclean_stops],
        "problem": None if problem is None else {
            "kind": problem.kind.value, "file": str(problem.at.file), "line": problem.at.line,
            "seq": problem.at.seq, "message": problem.message,
        },
    }


def _text(report: VerifyReport) -> str:
    span = "no records" if report.first_seq is None else f"seq {report.first_seq}..{report.last_seq}"
    counts = (f"{report.events} events and {report.checkpoints} checkpoints in {len(report.files)} file(s) "
              f"({span}), key {report.key_id}")
    lines: list[str] = []
    if report.problem is not None:
        lines.append(f"TAMPERED: {report.problem}")
        lines.append(f"verified before it: {counts}")
        return "\n".join(lines)
    lines.append(f"intact: {counts}")
    if report.first_seq is not None and report.first_seq > 0:
        lines.append(f"starts at seq {report.first_seq}, not at the beginning of the log: earlier files were not "
                     "given (pruned, or missing); what came before cannot be checked")
    if report.closed_cleanly:
        lines.append("closed cleanly: the last record is the shutdown checkpoint; every record is signed")
    elif report.unsigned == 0:
        lines.append(f"every record is covered by a signature (last checkpoint {report.last_checkpoint}), but the "
                     "log does not end with a shutdown checkpoint: the server is running, stopped without "
                     "closing the log, or records after the last checkpoint were cut")
    else:
        where = "no checkpoint" if report.last_checkpoint is None else f"the last checkpoint ({report.last_checkpoint})"
        lines.append(f"unsigned: {report.unsigned} record(s) after {where} are protected by the hash chain only; "
                     "records cut from the end of them cannot be detected (the server is running, or stopped "
                     "without closing the log)")
    for stop in report.unclean_stops:
        lines.append(f"unclean stop: the writer restarted at {stop.restart} without a shutdown checkpoint before "
                     f"it; {stop.signed_late} record(s) were signed only at that restart")
    if report.discarded_bytes:
        lines.append(f"the writer removed {report.discarded_bytes} byte(s) of incomplete final records after "
                     "crashes (recorded in its start checkpoints)")
    if report.dropped:
        lines.append(f"dropped: {report.dropped} call(s) went ahead without an audit record (fail_closed off), "
                     "as the writer's checkpoints counted them")
    return "\n".join(lines)


def cmd_verify(args: argparse.Namespace) -> int:
    key = load_public_key(args.public_key)
    files = expand(args.paths, name=args.name)
    for path in files:
        if not path.is_file():
            raise _Usage(f"{path} is not a file")
    report = verify_files(files, key)
    if report.wrong_key:
        assert report.problem is not None
        raise _Usage(f"wrong key: {report.problem}. Pass the audit-signing.pub of the server that wrote this log "
                     "(if it is the right key, the checkpoints' key ids were altered)")
    if args.format == "json":
        print(json.dumps(_summary(report), indent=2, sort_keys=True))
    else:
        print(_text(report))
    if not report.intact:
        return EXIT_TAMPERED
    if args.require_closed and not report.closed_cleanly:
        print("secretsvc: --require-closed: the log does not end with a shutdown checkpoint", file=sys.stderr)
        return EXIT_TAMPERED
    return EXIT_INTACT


def cmd_hash(args: argparse.Namespace) -> int:
    key = load_hmac_key(args.key_file)
    raw = sys.stdin.buffer.read(MAX_HASH_INPUT_BYTES + 1)
    if len(raw) > MAX_HASH_INPUT_BYTES:
        raise _Usage(f"input is larger than MAX_HASH_INPUT_BYTES={MAX_HASH_INPUT_BYTES}")
    # `echo NAME |` adds a newline that is not part of the name; take one off, no more.
    raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    if not raw:
        raise _Usage("no value on stdin: printf %s NAMESPACE/PATH | secretsvc audit hash --key-file FILE")
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Usage("the value on stdin is not UTF-8") from None
    print(resource_hmac(key, value))
    return 0


def _run(func: Any, args: argparse.Namespace) -> int:
    try:
        return int(func(args))
    except (_Usage, InvalidArgument) as exc:
        print(f"secretsvc: {exc}", file=sys.stderr)
        return EXIT_USAGE


def add_parsers(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "audit", help="verify the audit log, or find a path in it",
        description="Check the tamper-evident audit log the server writes (docs/audit.md), and compute the HMAC "
                    "under which a path appears in it when hmac_paths is on.",
    )
    commands = group.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)

    verify = commands.add_parser(
        "verify", help="check the hash chain and the signed checkpoints",
        description="Check that no record was modified, inserted, removed or reordered, that no file was cut "
                    "mid-record, and that every checkpoint is signed by the given key. Says how many records "
                    "after the last checkpoint are protected by the hash chain only.",
        epilog=_VERIFY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="audit files in chain order, or a directory of them")
    verify.add_argument("--public-key", type=Path, required=True, metavar="FILE",
                        help="the server's audit-signing.pub (written beside audit-signing.key in the data directory)")
    verify.add_argument("--name", default=DEFAULT_NAME, metavar="NAME",
                        help=f"active file name when PATH is a directory (default {DEFAULT_NAME})")
    verify.add_argument("--format", choices=("text", "json"), default="text")
    verify.add_argument("--require-closed", action="store_true",
                        help="exit 1 unless the log ends with the checkpoint a clean shutdown writes "
                             "(for logs of a stopped server, e.g. archives)")
    verify.set_defaults(run=lambda a: _run(cmd_verify, a))

    hashing = commands.add_parser(
        "hash", help="the HMAC a path has in the log under hmac_paths",
        description="Read a secret's NAMESPACE/PATH (or a transit key name) from stdin and print the value the "
                    "audit log's `resource` field holds for it when hmac_paths is on, to search the log with. "
                    "The value is read from stdin so it stays out of the process list.",
        epilog="example: printf %s payments/db/password | secretsvc audit hash --key-file DATA_DIR/audit-hmac.key",
    )
    hashing.add_argument("--key-file", type=Path, required=True, metavar="FILE",
                         help="the server's audit-hmac.key (in the data directory)")
    hashing.set_defaults(run=lambda a: _run(cmd_hash, a))
