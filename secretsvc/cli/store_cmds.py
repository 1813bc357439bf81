"""`secretsvc store copy`: move a store's contents to another store (docs/storage.md, "Copying a store").

Run it while no server writes to the source. Passwords for PostgreSQL come from --from-password-file /
--to-password-file, else $SECRETSVC_STORE_PASSWORD, else libpq's PGPASSFILE / ~/.pgpass; never from the URL.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from secretsvc.errors import ConfigError, SecretsvcError, StorageError

_EPILOG = """\
examples:
  secretsvc store copy --from sqlite:$HOME/.local/share/secretsvc/secretsvc.db \\
      --to postgresql://secretsvc@db.internal/secretsvc --to-password-file /run/secrets/pg

exit status: 0 copied and verified; 1 the destination holds other data, or a store failed; 2 usage.
Re-running a copy that stopped skips what is already there and identical.
"""


def add_parsers(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "store",
        help="store maintenance: copy a store to another",
        description="Work on a store directly (not through a server).",
    )
    commands = group.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    copy = commands.add_parser(
        "copy",
        help="copy every secret, key, token and policy document to another store",
        description="Copy a store row for row, ciphertext as it is (no key-encryption key is used), reading "
        "each batch back from the destination to verify it. Resumable; refuses a destination "
        "holding other data. Stop servers writing to the source first.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    copy.add_argument(
        "--from", dest="source", required=True, metavar="STORE", help="sqlite:PATH or postgresql://user@host/database"
    )
    copy.add_argument(
        "--to", dest="dest", required=True, metavar="STORE", help="sqlite:PATH or postgresql://user@host/database"
    )
    copy.add_argument("--from-password-file", type=Path, metavar="PATH", help="the source's PostgreSQL password")
    copy.add_argument("--to-password-file", type=Path, metavar="PATH", help="the destination's PostgreSQL password")
    copy.add_argument("--quiet", action="store_true", help="no progress on stderr")
    copy.set_defaults(run=run_copy)


def run_copy(args: argparse.Namespace) -> int:
    from secretsvc.store import copy as store_copy
    from secretsvc.store import target
    from secretsvc.store._sqlstore import SqlStore
    from secretsvc.store.base import SecretStore

    opened: list[SecretStore] = []
    try:
        source_cfg = target.load(args.source, "--from", args.from_password_file, os.environ)
        dest_cfg = target.load(args.dest, "--to", args.to_password_file, os.environ)
        for cfg, flag in ((source_cfg, "--from"), (dest_cfg, "--to")):
            if cfg.kind == "sqlite" and not cfg.location:
                raise ConfigError(f"{flag}: name the store: sqlite:PATH or postgresql://user@host/database")
        if source_cfg.kind == "sqlite" and not Path(source_cfg.location).is_file():
            raise ConfigError(f"--from: {source_cfg.location} is not a file")
        if (source_cfg.kind, source_cfg.location) == (dest_cfg.kind, dest_cfg.location):
            raise ConfigError("--from and --to name the same store")
        source = target.open_store(source_cfg, Path(source_cfg.location))
        opened.append(source)
        dest = target.open_store(dest_cfg, Path(dest_cfg.location))
        opened.append(dest)
        if not isinstance(source, SqlStore) or not isinstance(dest, SqlStore):
            raise StorageError("store copy works between SQL stores only")
        started = time.monotonic()

        def progress(report: store_copy.TableReport) -> None:
            if not args.quiet:
                done = report.copied + report.already_there
                print(
                    f"{report.table}: {done}/{report.source_rows} rows ({report.copied} copied, "
                    f"{report.already_there} already there)",
                    file=sys.stderr,
                )

        reports = store_copy.copy_store(source, dest, progress)
        copied = sum(r.copied for r in reports)
        there = sum(r.already_there for r in reports)
        print(
            f"secretsvc: copied {copied} rows, {there} already there, all {copied + there} verified in "
            f"{dest_cfg.describe()} ({time.monotonic() - started:.1f}s)",
            file=sys.stderr,
        )
        return 0
    except ConfigError as exc:
        print(f"secretsvc: {exc}", file=sys.stderr)
        return 2
    except SecretsvcError as exc:  # the destination differs, a store failed: messages carry no secret material
        print(f"secretsvc: store copy: {exc}", file=sys.stderr)
        return 1
    finally:
        for store in opened:
            store.close()
