"""`secretsvc serve`: run the server on the embedded default (SQLite + local keyring) unless told otherwise."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from secretsvc.config import DEFAULT_LISTEN, DEFAULT_METRICS_LISTEN, load_config
from secretsvc.errors import ConfigError, DataDirLocked, StorageError


def run(args: argparse.Namespace) -> int:
    from secretsvc import logs
    from secretsvc.rpc.server import serve

    # Everything the server creates (database, WAL, keyring, token file) is for its own user only.
    os.umask(0o077)
    flags = {k: v for k, v in vars(args).items() if k not in {"run", "command", "config"}}
    config_file = args.config or (Path(os.environ["SECRETSVC_CONFIG"]) if os.environ.get("SECRETSVC_CONFIG") else None)
    try:
        config = load_config(flags, os.environ, config_file)
        logs.configure(config.log_level, config.log_format)
        return serve(config)
    except ConfigError as exc:
        print(f"secretsvc: configuration error: {exc}", file=sys.stderr)
        return 2
    except DataDirLocked as exc:
        print(f"secretsvc: {exc}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"secretsvc: storage error: {exc}", file=sys.stderr)
        return 1


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="run the secrets server",
        description=(
            "Run the gRPC server. With no options it keeps its data (SQLite database and keyring) in "
            "$XDG_DATA_HOME/secretsvc or ~/.local/share/secretsvc, listens on "
            f"{DEFAULT_LISTEN} only, and on first start prints an admin token once. Settings come from "
            "flags, then SECRETSVC_* environment variables, then a TOML file (--config)."
        ),
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML config file ($SECRETSVC_CONFIG)")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="data directory ($SECRETSVC_DATA_DIR)")
    p.add_argument("--listen", metavar="HOST:PORT", help=f"gRPC address (default {DEFAULT_LISTEN})")
    p.add_argument("--metrics-listen", metavar="HOST:PORT",
                   help=f"Prometheus /metrics address (default {DEFAULT_METRICS_LISTEN}; '' disables)")
    p.add_argument("--admin-token-file", type=Path, metavar="PATH",
                   help="on first start, write the admin token to this file (mode 0600) instead of the terminal")
    p.add_argument("--keyring-passphrase-file", type=Path, metavar="PATH",
                   help="seal the keyring with the passphrase in this file ($SECRETSVC_KEYRING_PASSPHRASE)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.add_argument("--log-format", choices=("json", "text"))
    p.add_argument("--default-max-versions", type=int, metavar="N")
    p.add_argument("--workers", type=int, metavar="N", help="RPC worker threads (default 16)")
    p.add_argument("--shutdown-grace-seconds", type=float, metavar="S",
                   help="how long in-flight RPCs may finish on SIGTERM (default 10)")
    p.add_argument("--allow-non-loopback", action="store_const", const=True, default=None,
                   help="allow a non-loopback --listen (only behind a TLS-terminating proxy)")
    p.add_argument("--max-streams", type=int, metavar="N",
                   help="streaming calls open at once, below --workers (default: half the workers)")
    p.add_argument("--max-streams-per-peer", type=int, metavar="N",
                   help="streaming calls one client address may hold open (default 4)")
    p.add_argument("--reflection", action="store_const", const=True, default=None,
                   help="serve gRPC reflection (for grpcurl); it needs a token like every other method")
    p.set_defaults(run=run)
