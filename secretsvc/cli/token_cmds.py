"""Client commands for static tokens: `token create`, `token list`, `token revoke`.

Scripts rely on `secretsvc token create NAME [--policy P]... [--ttl D]` printing the token alone on stdout,
and on `secretsvc token revoke NAME`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.json_format import MessageToDict

from secretsvc.cli.connection import Client, add_client_options, connect, run_command
from secretsvc.v1 import tokens_pb2, tokens_pb2_grpc

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d{1,9})([smhdw])")


def parse_duration(text: str) -> int:
    """"90d", "12h", "1h30m", "3600s" (or a bare number of seconds) -> seconds."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    pos, total = 0, 0
    for match in _DURATION.finditer(value):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(value) or not value:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30m, 12h, 90d or 1h30m")
    return total


def _stub(client: Client) -> tokens_pb2_grpc.TokensStub:
    return tokens_pb2_grpc.TokensStub(client.channel)


def _info_text(info: tokens_pb2.TokenInfo) -> str:
    expires = info.expire_time.ToJsonString() if info.HasField("expire_time") else "never"
    policies = ", ".join(info.policies) or "(none: may do nothing)"
    return (f"{info.name:<24} id {info.token_id}  created {info.create_time.ToJsonString()}  "
            f"expires {expires}  policies {policies}")


def cmd_create(args: argparse.Namespace) -> int:
    request = tokens_pb2.CreateTokenRequest(name=args.name, policies=args.policy or [])
    if args.ttl:
        request.ttl.CopyFrom(Duration(seconds=args.ttl))
    with connect(args) as c:
        response = c.call(_stub(c).CreateToken, request)
    if args.format == "json":
        print(json.dumps({"token": response.token, "info": MessageToDict(response.info)}, sort_keys=True))
    else:
        print(response.token)  # alone on stdout, for scripts
        if not args.policy:
            print(f"secretsvc: token {args.name!r} has no policy: it may do nothing until one is granted",
                  file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with connect(args) as c:
        response = c.call(_stub(c).ListTokens, tokens_pb2.ListTokensRequest())
    if args.format == "json":
        print(json.dumps(MessageToDict(response), indent=2, sort_keys=True))
    else:
        for info in response.tokens:
            print(_info_text(info))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with connect(args) as c:
        response = c.call(_stub(c).RevokeToken, tokens_pb2.RevokeTokenRequest(name=args.name))
    if args.format == "json":
        print(json.dumps({"name": args.name, "revoked": response.existed}))
    if not response.existed:
        print(f"secretsvc: not_found: no token named {args.name!r}", file=sys.stderr)
        return 1
    return 0


def add_parsers(subparsers: Any) -> None:
    token = subparsers.add_parser(
        "token", help="static tokens for operators and automation",
        description="Create, list and revoke static bearer tokens (needs a token with the admin policy). "
                    "The server keeps only a hash of each token: it is shown once, when created.",
    )
    sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)

    create = sub.add_parser(
        "create", help="create a token and print it alone on stdout",
        description="Create a token named NAME and print it alone on stdout. Without --policy it may do "
                    "nothing (deny by default).",
    )
    create.add_argument("name", help="unique token name (letters, digits, '.', '_', '-')")
    create.add_argument("--policy", action="append", metavar="P",
                        help="a policy the token holds (repeat for several)")
    create.add_argument("--ttl", type=parse_duration, metavar="D",
                        help="lifetime such as 30m, 12h, 90d (default: no expiry)")
    add_client_options(create)
    create.set_defaults(run=lambda args: run_command(cmd_create, args))

    listing = sub.add_parser("list", help="list tokens (names, policies, times; never the tokens)")
    add_client_options(listing)
    listing.set_defaults(run=lambda args: run_command(cmd_list, args))

    revoke = sub.add_parser("revoke", help="revoke a token by name; it stops working on the next call")
    revoke.add_argument("name")
    add_client_options(revoke)
    revoke.set_defaults(run=lambda args: run_command(cmd_revoke, args))
