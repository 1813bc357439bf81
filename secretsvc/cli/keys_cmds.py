"""Client commands for encryption as a service (`keys ...`) and the root key (`root-key ...`)."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from typing import Any

from google.protobuf.json_format import MessageToDict

from secretsvc.cli.connection import Client, UsageError, add_client_options, connect, run_command
from secretsvc.service import limits
from secretsvc.v1 import admin_pb2, admin_pb2_grpc, transit_pb2, transit_pb2_grpc


def _stub(client: Client) -> transit_pb2_grpc.TransitStub:
    return transit_pb2_grpc.TransitStub(client.channel)


def _stdin(limit: int) -> bytes:
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise UsageError(f"input is larger than the {limit}-byte limit")
    return data


def _context(args: argparse.Namespace) -> bytes:
    if args.context is None:
        return b""
    return str(args.context).encode()


def _ciphertext_from_stdin() -> bytes:
    text = _stdin(2 * limits.MAX_TRANSIT_PLAINTEXT_BYTES).strip()
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise UsageError("expected a base64 ciphertext on stdin (as printed by `secretsvc keys encrypt`)") from None


def _key_text(info: transit_pb2.KeyInfo) -> str:
    lines = [f"{info.name}: latest version {info.latest_version}, "
             f"min decryption version {info.min_decryption_version}"]
    lines += [f"  v{v.version:<6} created {v.create_time.ToJsonString()}" for v in info.versions]
    return "\n".join(lines)


def _emit(args: argparse.Namespace, message: Any, text: str) -> None:
    print(json.dumps(MessageToDict(message), indent=2, sort_keys=True) if args.format == "json" else text)


def cmd_create(args: argparse.Namespace) -> int:
    with connect(args) as c:
        info = c.call(_stub(c).CreateKey, transit_pb2.CreateKeyRequest(name=args.name))
    _emit(args, info, _key_text(info))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with connect(args) as c:
        info = c.call(_stub(c).GetKey, transit_pb2.GetKeyRequest(name=args.name))
    _emit(args, info, _key_text(info))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with connect(args) as c:
        names = c.call(_stub(c).ListKeys, transit_pb2.ListKeysRequest())
    _emit(args, names, "\n".join(names.names))
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    with connect(args) as c:
        info = c.call(_stub(c).RotateKey, transit_pb2.RotateKeyRequest(name=args.name))
    _emit(args, info, _key_text(info))
    return 0


def cmd_min_version(args: argparse.Namespace) -> int:
    with connect(args) as c:
        info = c.call(_stub(c).SetMinDecryptionVersion, transit_pb2.SetMinDecryptionVersionRequest(
            name=args.name, min_decryption_version=args.version))
    _emit(args, info, _key_text(info))
    return 0


def cmd_encrypt(args: argparse.Namespace) -> int:
    plaintext = _stdin(limits.MAX_TRANSIT_PLAINTEXT_BYTES)
    with connect(args) as c:
        r = c.call(_stub(c).Encrypt, transit_pb2.EncryptRequest(key_name=args.name, plaintext=plaintext,
                                                                associated_data=_context(args)))
    encoded = base64.b64encode(r.ciphertext).decode()
    if args.format == "json":
        print(json.dumps({"ciphertext": encoded, "key_version": r.key_version}))
    else:
        print(encoded)
    return 0


def cmd_decrypt(args: argparse.Namespace) -> int:
    ciphertext = _ciphertext_from_stdin()
    with connect(args) as c:
        r = c.call(_stub(c).Decrypt, transit_pb2.DecryptRequest(key_name=args.name, ciphertext=ciphertext,
                                                                associated_data=_context(args)))
    sys.stdout.buffer.write(r.plaintext)
    sys.stdout.buffer.flush()
    return 0


def cmd_rewrap(args: argparse.Namespace) -> int:
    ciphertext = _ciphertext_from_stdin()
    with connect(args) as c:
        r = c.call(_stub(c).Rewrap, transit_pb2.RewrapRequest(key_name=args.name, ciphertext=ciphertext,
                                                              associated_data=_context(args)))
    print(base64.b64encode(r.ciphertext).decode())
    return 0


def cmd_datakey(args: argparse.Namespace) -> int:
    with connect(args) as c:
        r = c.call(_stub(c).GenerateDataKey, transit_pb2.GenerateDataKeyRequest(
            key_name=args.name, associated_data=_context(args), include_plaintext=not args.no_plaintext))
    out = {"ciphertext": base64.b64encode(r.ciphertext).decode(), "key_version": r.key_version}
    if not args.no_plaintext:
        out["plaintext"] = base64.b64encode(r.plaintext).decode()
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def _root_stub(client: Client) -> admin_pb2_grpc.AdminStub:
    return admin_pb2_grpc.AdminStub(client.channel)


def _root_text(info: admin_pb2.RootKeyInfo) -> str:
    lines = [f"root key {info.key_id}: primary version {info.primary_version}"]
    lines += [f"  v{v.version:<6} created {v.create_time.ToJsonString()}" for v in info.versions]
    return "\n".join(lines)


def cmd_root_info(args: argparse.Namespace) -> int:
    with connect(args) as c:
        info = c.call(_root_stub(c).GetRootKey, admin_pb2.GetRootKeyRequest())
    _emit(args, info, _root_text(info))
    return 0


def cmd_root_rotate(args: argparse.Namespace) -> int:
    with connect(args) as c:
        info = c.call(_root_stub(c).RotateRootKey, admin_pb2.RotateRootKeyRequest())
    _emit(args, info, _root_text(info))
    return 0


def cmd_root_rewrap(args: argparse.Namespace) -> int:
    with connect(args) as c:
        stream = _root_stub(c).RewrapStored(admin_pb2.RewrapStoredRequest(batch_size=args.batch_size),
                                            metadata=c._metadata)
        last = None
        for progress in stream:
            last = progress
            if args.format == "text":
                print(f"scanned {progress.scanned}, rewrapped {progress.rewrapped}, "
                      f"already current {progress.current}, skipped {progress.skipped}", file=sys.stderr)
    if last is not None and args.format == "json":
        print(json.dumps(MessageToDict(last, always_print_fields_with_no_presence=True), sort_keys=True))
    return 0


def add_parsers(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="encryption as a service on named keys",
                                 description="Named keys for encrypt/decrypt/data-key/rewrap. Plaintext is read "
                                 "from stdin; ciphertexts are printed and read as base64.")
    key_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    def action(parent: Any, name: str, func: Any, help_text: str, with_name: bool = True,
               with_context: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text)
        add_client_options(p)
        if with_name:
            p.add_argument("name", help="key name")
        if with_context:
            p.add_argument("--context", metavar="TEXT",
                           help="associated data bound to the ciphertext; the same text is needed to decrypt")
        p.set_defaults(run=lambda args: run_command(func, args))
        return p

    action(key_sub, "create", cmd_create, "create a named key")
    action(key_sub, "info", cmd_info, "show a key's versions")
    action(key_sub, "list", cmd_list, "list key names", with_name=False)
    action(key_sub, "rotate", cmd_rotate, "add a key version used for new encryptions")
    p = action(key_sub, "set-min-decryption-version", cmd_min_version,
               "refuse to decrypt ciphertexts older than VERSION")
    p.add_argument("version", type=int)
    action(key_sub, "encrypt", cmd_encrypt, "encrypt stdin; print base64 ciphertext", with_context=True)
    action(key_sub, "decrypt", cmd_decrypt, "decrypt a base64 ciphertext from stdin; write the plaintext",
           with_context=True)
    action(key_sub, "rewrap", cmd_rewrap, "move a base64 ciphertext from stdin to the newest key version",
           with_context=True)
    p = action(key_sub, "datakey", cmd_datakey, "generate a data key (JSON: plaintext and ciphertext, base64)",
               with_context=True)
    p.add_argument("--no-plaintext", action="store_true", help="return only the wrapped data key")

    root = subparsers.add_parser("root-key", help="the root key-encryption key",
                                 description="Inspect and rotate the root key, and rewrap stored data keys.")
    root_sub = root.add_subparsers(dest="root_command", metavar="ACTION", required=True)
    action(root_sub, "info", cmd_root_info, "show the root key's versions", with_name=False)
    action(root_sub, "rotate", cmd_root_rotate, "add a root key version", with_name=False)
    p = action(root_sub, "rewrap", cmd_root_rewrap,
               "rewrap every stored data key under the newest root key version (online, resumable)",
               with_name=False)
    p.add_argument("--batch-size", type=int, default=0)
