"""Client commands for secrets: put, get, list, versions, update, delete, undelete, destroy."""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict

from secretsvc.cli.connection import Client, UsageError, add_client_options, connect, run_command
from secretsvc.errors import InvalidArgument
from secretsvc.service import limits
from secretsvc.service.naming import split_ref
from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc

REF_HELP = "NAMESPACE/PATH, e.g. payments/db/password"


def _ref(text: str) -> secrets_pb2.SecretRef:
    try:
        namespace, path = split_ref(text)
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None
    return secrets_pb2.SecretRef(namespace=namespace, path=path)


def _stub(client: Client) -> secrets_pb2_grpc.SecretsStub:
    return secrets_pb2_grpc.SecretsStub(client.channel)


def _read_value(args: argparse.Namespace) -> bytes:
    if args.file is not None:
        try:
            with Path(args.file).open("rb") as f:
                value = f.read(limits.MAX_SECRET_VALUE_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    elif sys.stdin.isatty():
        value = getpass.getpass(f"Value for {args.ref} (input hidden): ").encode()
    else:
        value = sys.stdin.buffer.read(limits.MAX_SECRET_VALUE_BYTES + 1)
    if len(value) > limits.MAX_SECRET_VALUE_BYTES:
        raise UsageError(f"value is larger than the {limits.MAX_SECRET_VALUE_BYTES}-byte limit")
    return value


def _metadata_pairs(pairs: list[str] | None) -> secrets_pb2.CustomMetadata | None:
    if pairs is None:
        return None
    entries = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--metadata takes KEY=VALUE, got {pair!r}")
        entries[key] = value
    return secrets_pb2.CustomMetadata(entries=entries)


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=2, sort_keys=True) if args.format == "json" else text)


def _versions_list(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--versions takes numbers separated by commas, got {text!r}") from None


def cmd_put(args: argparse.Namespace) -> int:
    request = secrets_pb2.PutSecretRequest(ref=_ref(args.ref), value=_read_value(args),
                                           max_versions=args.max_versions,
                                           custom_metadata=_metadata_pairs(args.metadata))
    if args.cas is not None:
        request.cas = args.cas
    with connect(args) as client:
        response = client.call(_stub(client).PutSecret, request)
    _print(args, {"ref": args.ref, "version": response.version, "pruned_versions": list(response.pruned_versions)},
           f"{args.ref}: stored version {response.version}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    with connect(args) as client:
        response = client.call(_stub(client).GetSecret,
                               secrets_pb2.GetSecretRequest(ref=_ref(args.ref), version=args.version))
    if args.format == "json":
        _print(args, {"ref": args.ref, "version": response.version,
                      "value_base64": base64.b64encode(response.value).decode(),
                      "create_time": response.create_time.ToJsonString()}, "")
    else:
        # Exactly the value: no newline added, so `$(secretsvc get ...)` and pipes see the bytes stored.
        sys.stdout.buffer.write(response.value)
        sys.stdout.buffer.flush()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    namespace, _, prefix = args.prefix.partition("/")
    paths: list[str] = []
    with connect(args) as client:
        token = ""
        while True:
            page = client.call(_stub(client).ListSecrets, secrets_pb2.ListSecretsRequest(
                namespace=namespace, prefix=prefix, page_size=args.page_size, page_token=token))
            paths.extend(page.paths)
            token = page.next_page_token
            if not token or (args.limit and len(paths) >= args.limit):
                break
    if args.limit:
        paths = paths[: args.limit]
    _print(args, {"namespace": namespace, "paths": paths}, "\n".join(paths))
    return 0


def _metadata_text(meta: secrets_pb2.SecretMetadata) -> str:
    states = {1: "active", 2: "deleted", 3: "destroyed"}
    lines = [f"{meta.ref.namespace}/{meta.ref.path}: current version {meta.current_version}, "
             f"keeps {meta.max_versions}"]
    lines += [f"  {k} = {v}" for k, v in sorted(meta.custom_metadata.items())]
    lines += [f"  v{v.version:<6} {states.get(v.state, '?'):9} created {v.create_time.ToJsonString()}"
              for v in meta.versions]
    return "\n".join(lines)


def cmd_versions(args: argparse.Namespace) -> int:
    with connect(args) as client:
        meta = client.call(_stub(client).GetSecretMetadata, secrets_pb2.GetSecretMetadataRequest(ref=_ref(args.ref)))
    _print(args, MessageToDict(meta), _metadata_text(meta))
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    with connect(args) as client:
        meta = client.call(_stub(client).UpdateSecretMetadata, secrets_pb2.UpdateSecretMetadataRequest(
            ref=_ref(args.ref), max_versions=args.max_versions, custom_metadata=_metadata_pairs(args.metadata)))
    _print(args, MessageToDict(meta), _metadata_text(meta))
    return 0


def _versions_command(method: str, verb: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        with connect(args) as client:
            response = client.call(getattr(_stub(client), method), secrets_pb2.VersionsRequest(
                ref=_ref(args.ref), versions=_versions_list(args.versions)))
        changed = list(response.changed_versions)
        _print(args, {"ref": args.ref, "changed_versions": changed},
               f"{args.ref}: {verb} version(s) {', '.join(map(str, changed))}" if changed
               else f"{args.ref}: nothing to change")
        return 0

    return run


def cmd_delete(args: argparse.Namespace) -> int:
    if not args.all:
        return int(_versions_command("DeleteVersions", "deleted")(args))
    if args.versions:
        raise UsageError("--all removes every version; do not combine it with --versions")
    with connect(args) as client:
        response = client.call(_stub(client).DeleteSecret, secrets_pb2.DeleteSecretRequest(ref=_ref(args.ref)))
    _print(args, {"ref": args.ref, "existed": response.existed},
           f"{args.ref}: removed with all its versions" if response.existed else f"{args.ref}: did not exist")
    return 0


def add_parsers(subparsers: Any) -> None:
    def command(name: str, func: Any, help_text: str, description: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text, description=description)
        add_client_options(p)
        p.set_defaults(run=lambda args: run_command(func, args))
        return p

    p = command("put", cmd_put, "store a new version of a secret",
                "Store a new version of a secret. The value is read from stdin (or --file), never from the "
                "command line, so it stays out of shell history and process listings.")
    p.add_argument("ref", help=REF_HELP)
    p.add_argument("--file", help="read the value from this file instead of stdin")
    p.add_argument("--cas", type=int, metavar="VERSION",
                   help="only write if the current version is VERSION (0: only if the secret does not exist)")
    p.add_argument("--metadata", action="append", metavar="KEY=VALUE",
                   help="custom metadata; replaces the stored set (repeatable)")
    p.add_argument("--max-versions", type=int, default=0, help="versions to keep (default: server default)")

    p = command("get", cmd_get, "print a secret's value",
                "Write exactly the stored value to stdout (no trailing newline). --format json prints "
                "version, time and the value in base64.")
    p.add_argument("ref", help=REF_HELP)
    p.add_argument("--version", type=int, default=0, help="version to read (default: current)")

    p = command("list", cmd_list, "list secret paths under a prefix", "List paths in NAMESPACE[/PREFIX].")
    p.add_argument("prefix", metavar="NAMESPACE[/PREFIX]")
    p.add_argument("--page-size", type=int, default=limits.DEFAULT_PAGE_SIZE)
    p.add_argument("--limit", type=int, default=0, help="stop after this many paths (default: all)")

    p = command("versions", cmd_versions, "show a secret's versions and metadata",
                "Show the current version, kept versions and their states, and custom metadata.")
    p.add_argument("ref", help=REF_HELP)

    p = command("update", cmd_update, "change a secret's settings",
                "Change max-versions or replace custom metadata of an existing secret.")
    p.add_argument("ref", help=REF_HELP)
    p.add_argument("--max-versions", type=int, default=0)
    p.add_argument("--metadata", action="append", metavar="KEY=VALUE")

    p = command("delete", cmd_delete, "soft-delete versions, or remove a secret with --all",
                "Soft-delete versions (default: the current one); they can be undeleted. With --all, "
                "remove the secret and every version for good.")
    p.add_argument("ref", help=REF_HELP)
    p.add_argument("--versions", metavar="N,M,...")
    p.add_argument("--all", action="store_true", help="remove the whole secret, irreversibly")

    p = command("undelete", _versions_command("UndeleteVersions", "undeleted"), "restore soft-deleted versions",
                "Restore soft-deleted versions (default: the current one).")
    p.add_argument("ref", help=REF_HELP)
    p.add_argument("--versions", metavar="N,M,...")

    p = command("destroy", _versions_command("DestroyVersions", "destroyed"), "erase versions for good",
                "Erase versions' ciphertext and data keys (crypto-shredding). Irreversible.")
    p.add_argument("ref", help=REF_HELP)
    p.add_argument("--versions", metavar="N,M,...", required=True)
