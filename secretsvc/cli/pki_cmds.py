"""`secretsvc pki`: a development CA, a server certificate and client certificates, made on this machine.

Scripts rely on the file names: `pki init --dir DIR` writes ca.pem, ca-key.pem, server.pem and server-key.pem;
`pki issue --dir DIR NAME` writes NAME.pem and NAME-key.pem. Private keys are written 0600; nothing is
overwritten without --force, and every file appears whole or not at all (temp file, then link or rename).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from secretsvc.atomicfile import write_atomically
from secretsvc.crypto import pki
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import InvalidArgument

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
CA_COMMON_NAME = "secretsvc development CA"
SERVER_DNS_NAMES = ("localhost",)
SERVER_IP_ADDRESSES = ("127.0.0.1", "::1")
CERT_MODE = 0o644
KEY_MODE = 0o600
MAX_NAME_CHARS = 64
# A client name becomes a file name and the certificate's common name: one safe token, and never one whose
# files would collide with the CA's or the server's, or with another client's key file.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_RESERVED_NAMES = frozenset({"ca", "server"})

_VALIDITY_HELP = (
    "Keys are ECDSA P-256. The CA is valid for 10 years, server and client certificates for 1 year (never past "
    "the CA). Private keys are written with mode 0600; existing files are kept unless --force."
)


class PkiUsageError(Exception):
    """A problem with the command line or the directory (exit status 2)."""


def check_name(name: str) -> str:
    if (len(name) > MAX_NAME_CHARS or not _NAME.fullmatch(name) or name.endswith("-key")
            or name.lower() in _RESERVED_NAMES):
        raise PkiUsageError(
            f"NAME {name!r} must be 1 to {MAX_NAME_CHARS} letters, digits, '.', '_' or '-', start with a letter or "
            f"digit, not end in '-key', and not be {' or '.join(sorted(_RESERVED_NAMES))}"
        )
    return name


def _prepare(directory: Path, names: Sequence[str], *, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise PkiUsageError(f"{directory} is not a directory")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    existing = [str(directory / n) for n in names if os.path.lexists(directory / n)]
    if existing and not force:
        raise PkiUsageError(f"{', '.join(existing)} already exist(s); pass --force to replace")


def init_pki(directory: Path, *, now: datetime, dns_names: Sequence[str] = (), ip_addresses: Sequence[str] = (),
             force: bool = False) -> list[Path]:
    """A new CA and a server certificate for localhost, 127.0.0.1, ::1 and any extra names; the files written."""
    _prepare(directory, (CA_FILE, CA_KEY_FILE, SERVER_FILE, SERVER_KEY_FILE), force=force)
    ca = pki.new_ca(CA_COMMON_NAME, now=now)
    server = pki.issue(ca, common_name="secretsvc server", usage="server", now=now,
                       dns_names=(*SERVER_DNS_NAMES, *dns_names),
                       ip_addresses=(*SERVER_IP_ADDRESSES, *ip_addresses))
    written = []
    # Keys first: a crash part-way leaves files that make the next run refuse, never a certificate whose key
    # was lost.
    for name, data, mode in ((CA_KEY_FILE, ca.key_pem.reveal(), KEY_MODE), (CA_FILE, ca.cert_pem, CERT_MODE),
                             (SERVER_KEY_FILE, server.key_pem.reveal(), KEY_MODE),
                             (SERVER_FILE, server.cert_pem, CERT_MODE)):
        write_atomically(directory / name, data, mode=mode, overwrite=force)
        written.append(directory / name)
    return written


def _load_ca(directory: Path) -> pki.Issued:
    try:
        cert = (directory / CA_FILE).read_bytes()
        key = SecretBytes((directory / CA_KEY_FILE).read_bytes())
    except OSError as exc:
        raise PkiUsageError(f"cannot read the CA in {directory} ({exc.strerror}: {exc.filename}); "
                            "run `secretsvc pki init --dir DIR` first") from None
    return pki.Issued(cert_pem=cert, key_pem=key)


def issue_client(directory: Path, name: str, *, now: datetime, uris: Sequence[str] = (),
                 dns_names: Sequence[str] = (), force: bool = False) -> tuple[Path, Path]:
    """A client certificate NAME.pem (common name NAME) and its key NAME-key.pem, signed by the CA in DIR."""
    check_name(name)
    cert_name, key_name = f"{name}.pem", f"{name}-key.pem"
    ca = _load_ca(directory)
    issued = pki.issue(ca, common_name=name, usage="client", now=now, uris=uris, dns_names=dns_names)
    _prepare(directory, (cert_name, key_name), force=force)
    write_atomically(directory / key_name, issued.key_pem.reveal(), mode=KEY_MODE, overwrite=force)
    write_atomically(directory / cert_name, issued.cert_pem, mode=CERT_MODE, overwrite=force)
    return directory / cert_name, directory / key_name


def _run(func: Any, args: argparse.Namespace) -> int:
    try:
        return int(func(args))
    except (PkiUsageError, InvalidArgument) as exc:
        print(f"secretsvc: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            print(f"secretsvc: {exc.filename} appeared meanwhile; pass --force to replace", file=sys.stderr)
            return 2
        print(f"secretsvc: cannot write in {args.dir}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def cmd_init(args: argparse.Namespace) -> int:
    written = init_pki(args.dir, now=pki.utc_now(), dns_names=args.dns or (), ip_addresses=args.ip or (),
                       force=args.force)
    for path in written:
        print(f"wrote {path}")
    d = args.dir
    print(f"\nserver: secretsvc serve --tls-cert {d / SERVER_FILE} --tls-key {d / SERVER_KEY_FILE} "
          f"--client-ca {d / CA_FILE}\nclients: --ca-file {d / CA_FILE} (or SECRETSVC_CA_FILE); "
          f"client certificates: secretsvc pki issue --dir {d} NAME", file=sys.stderr)
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    cert, key = issue_client(args.dir, args.name, now=pki.utc_now(), uris=args.uri or (),
                             dns_names=args.dns or (), force=args.force)
    print(f"wrote {key}\nwrote {cert}")
    print(f"\nuse: --cert {cert} --key {key} (or SECRETSVC_CLIENT_CERT, SECRETSVC_CLIENT_KEY)", file=sys.stderr)
    return 0


def add_parsers(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "pki", help="make a development CA and TLS certificates",
        description="A small private CA for development and tests, and the certificates TLS and mutual TLS "
                    "need. In production bring certificates from your own CA (cert-manager, SPIRE, Vault PKI). "
                    + _VALIDITY_HELP,
    )
    commands = group.add_subparsers(dest="pki_command", metavar="COMMAND", required=True)

    init = commands.add_parser(
        "init", help="create a CA and a server certificate",
        description=f"Create {CA_FILE} and {CA_KEY_FILE} (the CA), and {SERVER_FILE} and {SERVER_KEY_FILE}: a "
                    "server certificate for localhost, 127.0.0.1 and ::1 (plus --dns and --ip names). "
                    + _VALIDITY_HELP,
    )
    init.add_argument("--dir", type=Path, required=True, metavar="DIR", help="where to write (created 0700)")
    init.add_argument("--dns", action="append", metavar="NAME", help="another DNS name for the server (repeat)")
    init.add_argument("--ip", action="append", metavar="ADDR", help="another IP address for the server (repeat)")
    init.add_argument("--force", action="store_true", help="replace existing files")
    init.set_defaults(run=lambda a: _run(cmd_init, a))

    issue = commands.add_parser(
        "issue", help="issue a client certificate",
        description="Create NAME.pem and NAME-key.pem, a client certificate (common name NAME, extended key "
                    "usage clientAuth) signed by the CA in DIR. The server takes the caller's identity from "
                    "the URI name (e.g. a SPIFFE ID), else the DNS name, else NAME. " + _VALIDITY_HELP,
    )
    issue.add_argument("--dir", type=Path, required=True, metavar="DIR", help="the directory of `pki init`")
    issue.add_argument("name", metavar="NAME", help="file-name-safe client name: letters, digits, '.', '_', '-'")
    issue.add_argument("--uri", action="append", metavar="URI",
                       help="a URI name, e.g. spiffe://cluster.local/ns/app/sa/web (repeat)")
    issue.add_argument("--dns", action="append", metavar="NAME", help="a DNS name (repeat)")
    issue.add_argument("--force", action="store_true", help="replace existing files")
    issue.set_defaults(run=lambda a: _run(cmd_issue, a))
