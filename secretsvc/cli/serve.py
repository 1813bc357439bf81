"""`secretsvc serve`: run the server on the embedded default (SQLite + local keyring) unless told otherwise."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from secretsvc.config import (
    CLIENT_AUTH_MODES,
    CLIENT_IDENTITY_SOURCES,
    DEFAULT_LISTEN,
    DEFAULT_METRICS_LISTEN,
    ServerConfig,
    load_config,
)
from secretsvc.errors import AuditUnavailable, ConfigError, DataDirLocked, StorageError


def run(args: argparse.Namespace) -> int:
    from secretsvc import logs

    # Everything the server creates (database, WAL, keyring, token file) is for its own user only.
    os.umask(0o077)
    from secretsvc.rpc.workers import WorkerRole

    flags = {k: v for k, v in vars(args).items() if k not in {"run", "command", "config"}}
    config_file = args.config or (Path(os.environ["SECRETSVC_CONFIG"]) if os.environ.get("SECRETSVC_CONFIG") else None)
    try:
        config = load_config(flags, os.environ, config_file)
        processes = worker_count(config)
        logs.configure(config.log_level, config.log_format)
        role = WorkerRole.from_env(os.environ)
        if role is None and processes > 1:
            from secretsvc.rpc.workers import Supervisor

            return Supervisor(config, processes, sys.argv[1:]).run()
        # Imported here, not above: a supervisor never serves, and without the server's imports (gRPC, the
        # crypto and store stacks) it holds a fraction of a worker's memory.
        from secretsvc.rpc.server import serve

        return serve(config, role)
    except ConfigError as exc:
        print(f"secretsvc: configuration error: {exc}", file=sys.stderr)
        return 2
    except DataDirLocked as exc:
        print(f"secretsvc: {exc}", file=sys.stderr)
        return 1
    except AuditUnavailable as exc:
        print(f"secretsvc: audit log error: {exc} (docs/audit.md)", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"secretsvc: storage error: {exc}", file=sys.stderr)
        return 1


def worker_count(config: ServerConfig) -> int:
    """The worker processes `config` asks for: `auto` is one per usable core, within the cgroup's CPU and
    memory limits (`rpc/workers.py`, `auto_processes`)."""
    from secretsvc.rpc.workers import auto_processes

    return auto_processes() if config.processes == "auto" else int(config.processes)


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
    p.add_argument("--workers", type=int, metavar="N", help="RPC worker threads per process (default 16)")
    p.add_argument("--processes", metavar="N|auto",
                   help="worker processes sharing the port, each with --workers threads (default auto: one per "
                        "usable core, within the container's CPU limit and 256 MiB of its memory limit each; 1 runs "
                        "no supervisor; $SECRETSVC_PROCESSES, config key processes; "
                        "docs/server.md, \"Worker processes\")")
    p.add_argument("--shutdown-grace-seconds", type=float, metavar="S",
                   help="how long in-flight RPCs may finish on SIGTERM (default 10)")
    p.add_argument("--allow-non-loopback", "--insecure-behind-tls-proxy", dest="allow_non_loopback",
                   action="store_const", const=True, default=None,
                   help="INSECURE: serve PLAINTEXT gRPC on a non-loopback --listen without --tls-cert. Only for a "
                        "TLS-terminating proxy in front; otherwise tokens and secrets cross the network in the clear")
    p.add_argument("--max-streams", type=int, metavar="N",
                   help="streaming calls open at once, below --workers (default: half the workers)")
    p.add_argument("--max-streams-per-peer", type=int, metavar="N",
                   help="streaming calls one client address may hold open (default 4)")
    p.add_argument("--max-watches", type=int, metavar="N",
                   help="WatchSecrets streams open at once, each on a thread of its own beyond the workers; 0 turns "
                        "watching off (default 1000; $SECRETSVC_MAX_WATCHES)")
    p.add_argument("--max-watches-per-caller", type=int, metavar="N",
                   help="watches one identity (one pod, for service accounts) may hold open (default 8; "
                        "$SECRETSVC_MAX_WATCHES_PER_CALLER)")
    p.add_argument("--reflection", action="store_const", const=True, default=None,
                   help="serve gRPC reflection (for grpcurl); it needs a token like every other method")
    tls = p.add_argument_group("TLS (docs/tls.md; certificate, key and CA files reload when they change)")
    tls.add_argument("--tls-cert", type=Path, metavar="PEM",
                     help="server certificate chain, leaf first ($SECRETSVC_TLS_CERT); needs --tls-key")
    tls.add_argument("--tls-key", type=Path, metavar="PEM", help="its private key ($SECRETSVC_TLS_KEY)")
    tls.add_argument("--client-ca", type=Path, metavar="PEM",
                     help="CA bundle for client certificates ($SECRETSVC_CLIENT_CA); given, client certificates "
                          "are required")
    tls.add_argument("--client-auth", choices=CLIENT_AUTH_MODES,
                     help="client certificates: off (default without --client-ca) or required (default with it); "
                          "optional is refused: gRPC Python cannot ask for a certificate without requiring one")
    tls.add_argument("--client-identity", choices=CLIENT_IDENTITY_SOURCES,
                     help="which certificate name identifies a client: uri (SPIFFE ID), dns, subject (CN), or "
                          "auto: the first of those present (default)")
    store = p.add_argument_group("store (docs/storage.md)")
    store.add_argument("--store", metavar="URL",
                       help="where secrets are kept: SQLite in the data directory (default), sqlite:PATH, or "
                            "postgresql://user@host[:port]/database ($SECRETSVC_STORE)")
    store.add_argument("--store-password-file", type=Path, metavar="PATH",
                       help="the PostgreSQL password, first line of this file (else $SECRETSVC_STORE_PASSWORD, "
                            "else PGPASSFILE / ~/.pgpass)")
    store.add_argument("--store-pool-size", type=int, metavar="N",
                       help="PostgreSQL connections per worker process, at most (default 16); the database sees "
                            "up to replicas x processes x (N + 1 listener) ($SECRETSVC_STORE_POOL_SIZE)")
    store.add_argument("--store-password", action=_RefusePassword, help=argparse.SUPPRESS)
    p.add_argument("--policy-path", dest="policy_paths", action="append", type=Path, metavar="PATH",
                   help="a policy document, or a directory of them (repeat for several; docs/policy.md); without "
                        "any, only the built-in admin policy grants anything ($SECRETSVC_POLICY_PATHS, ':'-separated)")
    p.add_argument("--policy-reload-seconds", type=float, metavar="S",
                   help="how often to look for changed policy files and documents stored over the API; 0 for "
                        "only on SIGHUP (default 5; $SECRETSVC_POLICY_RELOAD_SECONDS)")
    audit = p.add_argument_group("audit log (docs/audit.md)")
    audit.add_argument("--audit-enabled", type=_yes_no, metavar="yes|no",
                       help="write the audit log (default yes); 'no' leaves no record of who did what, and the "
                            "server says so at start ($SECRETSVC_AUDIT_ENABLED)")
    audit.add_argument("--audit-file", type=Path, metavar="PATH",
                       help="the audit log's active file; rotated files go beside it "
                            "(default DATA_DIR/audit/audit.log; $SECRETSVC_AUDIT_FILE)")
    audit.add_argument("--audit-fail-closed", type=_yes_no, metavar="yes|no",
                       help="refuse a call whose audit record cannot be written (default yes)")
    audit.add_argument("--audit-hmac-paths", type=_yes_no, metavar="yes|no",
                       help="write secret paths and transit key names as HMACs under the audit key (default no)")
    audit.add_argument("--audit-checkpoint-every", type=int, metavar="N",
                       help="records between signed checkpoints (default 1000)")
    audit.add_argument("--audit-checkpoint-seconds", type=float, metavar="S",
                       help="seconds between signed checkpoints, 0 for none (default 10)")
    audit.add_argument("--audit-rotate-bytes", type=int, metavar="BYTES",
                       help="start a new file past this size, 0 for never (default 64 MiB)")
    audit.add_argument("--audit-durability", choices=("record", "changes", "checkpoint"),
                       help="when records reach the disk: changes (default): a call that changed something waits "
                            "for its record's fsync, a read's record is synced within 0.2 s; record: every call "
                            "waits; checkpoint: only at checkpoints (docs/audit.md, \"Durability\")")
    _add_service_account_flags(p)
    from secretsvc.kek.settings import add_flags as add_kek_flags

    add_kek_flags(p)
    p.set_defaults(run=run)


class _RefusePassword(argparse.Action):
    """A password on the command line is visible to every user of the machine: refuse it, without echoing it
    (and without argparse reading --store-password as an abbreviation of --store-password-file)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parser.error("--store-password is refused: a password on the command line is visible to other users; put "
                     "it in a file named by --store-password-file, or in $SECRETSVC_STORE_PASSWORD")


def _yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in {"yes", "true", "on", "1"}:
        return True
    if value in {"no", "false", "off", "0"}:
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: expected yes or no")


def _add_service_account_flags(p: argparse.ArgumentParser) -> None:
    from secretsvc.auth.serviceaccount_config import SETTINGS as K8S_SETTINGS

    group = p.add_argument_group(
        "Kubernetes service-account tokens (docs/kubernetes-auth.md; off unless --k8s-issuer or --k8s-tokenreview)"
    )
    for s in K8S_SETTINGS:
        flag = "--" + s.name.replace("_", "-")
        text = f"{s.meaning} (${s.env})"
        if s.default is False:
            group.add_argument(flag, action="store_const", const=True, default=None, help=text)
        else:
            group.add_argument(flag, metavar=s.name.removeprefix("k8s_").upper(), help=text)
