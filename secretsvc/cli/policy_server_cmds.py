"""Policy commands that talk to the server: `policy put`, `get`, `list`, `delete`, `reload`, and `explain`
without `--policies`. Every one needs `admin` on the system resource "policies" (the admin token has it).

`put` sends a document the server checks together with its policy files and every other stored document;
a refusal prints each problem as DOCUMENT:LINE: WHERE: WHAT and exits 2, and nothing changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from secretsvc.cli.connection import Client, UsageError, add_client_options, connect, rpc_error_line, run_command
from secretsvc.policy import limits as policy_limits
from secretsvc.v1 import policies_pb2 as pb
from secretsvc.v1 import policies_pb2_grpc

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_ORIGINS = {pb.POLICY_DOCUMENT_ORIGIN_BUILTIN: "builtin", pb.POLICY_DOCUMENT_ORIGIN_FILE: "file",
            pb.POLICY_DOCUMENT_ORIGIN_STORED: "stored"}


def _stub(client: Client) -> policies_pb2_grpc.PoliciesStub:
    return policies_pb2_grpc.PoliciesStub(client.channel)


def _read_document(path: str) -> tuple[bytes, pb.PolicyDocumentFormat]:
    """The document's bytes (`-`: stdin) and its format: JSON for a .json file, else YAML."""
    limit = policy_limits.MAX_POLICY_FILE_BYTES
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(path).open("rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UsageError(f"{path} is larger than MAX_POLICY_FILE_BYTES={limit} bytes")
    json_file = path.lower().endswith(".json")
    return data, pb.POLICY_DOCUMENT_FORMAT_JSON if json_file else pb.POLICY_DOCUMENT_FORMAT_YAML


def _document_line(doc: pb.PolicyDocument) -> str:
    return f"{doc.name}: revision {doc.revision}, {len(doc.content)} bytes, updated {doc.update_time.ToJsonString()}"


def cmd_put(args: argparse.Namespace) -> int:
    data, fmt = _read_document(args.file)
    if args.json:
        fmt = pb.POLICY_DOCUMENT_FORMAT_JSON
    request = pb.PutPolicyDocumentRequest(name=args.name, content=data, format=fmt)
    if args.expected_revision is not None:
        request.expected_revision = args.expected_revision
    with connect(args) as c:
        try:
            response = c.call(_stub(c).PutPolicyDocument, request)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            # The server's message lists each problem on a line of its own: print them as they are.
            print(f"secretsvc: policy document {args.name!r} refused:\n{exc.details()}", file=sys.stderr)
            return EXIT_USAGE
    if args.format == "json":
        print(json.dumps(_document_json(response.document), sort_keys=True))
    else:
        print(f"stored {_document_line(response.document)}")
    return EXIT_OK


def _document_json(doc: pb.PolicyDocument) -> dict[str, Any]:
    info = MessageToDict(doc, preserving_proto_field_name=True)
    info.pop("content", None)
    return info


def cmd_get(args: argparse.Namespace) -> int:
    with connect(args) as c:
        doc = c.call(_stub(c).GetPolicyDocument, pb.GetPolicyDocumentRequest(name=args.name)).document
    if args.format == "json":
        info = _document_json(doc)
        info["content"] = doc.content.decode("utf-8", "replace")
        print(json.dumps(info, sort_keys=True))
    else:
        sys.stdout.buffer.write(doc.content)  # as stored, so `get NAME > file; put NAME file` round-trips
        sys.stdout.flush()
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    with connect(args) as c:
        response = c.call(_stub(c).ListPolicyDocuments, pb.ListPolicyDocumentsRequest())
    if args.format == "json":
        print(json.dumps(MessageToDict(response, preserving_proto_field_name=True), indent=2, sort_keys=True))
        return EXIT_OK
    for info in response.documents:
        origin = _ORIGINS.get(info.origin, "?")
        revision = f"  revision {info.revision}" if info.origin == pb.POLICY_DOCUMENT_ORIGIN_STORED else ""
        state = "" if info.in_force else "  NOT IN FORCE on this server (see its log)"
        policies = ", ".join(info.policies) or "-"
        print(f"{origin:<8} {info.name}{revision}  policies: {policies}  bindings: {info.bindings}{state}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    request = pb.DeletePolicyDocumentRequest(name=args.name)
    if args.expected_revision is not None:
        request.expected_revision = args.expected_revision
    with connect(args) as c:
        response = c.call(_stub(c).DeletePolicyDocument, request)
    if args.format == "json":
        print(json.dumps({"name": args.name, "deleted": response.existed}))
    if not response.existed:
        print(f"secretsvc: not_found: no policy document named {args.name!r} is stored", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_reload(args: argparse.Namespace) -> int:
    with connect(args) as c:
        response = c.call(_stub(c).ReloadPolicies, pb.ReloadPoliciesRequest())
    if args.format == "json":
        print(json.dumps(MessageToDict(response, preserving_proto_field_name=True,
                                       always_print_fields_with_no_presence=True), sort_keys=True))
    elif response.problems:
        for problem in response.problems:
            where = f"{problem.source}:{problem.line}" if problem.line else problem.source
            print(f"{where}: {problem.where}: {problem.message}" if problem.where else f"{where}: {problem.message}",
                  file=sys.stderr)
        print(f"{len(response.problems)} problem(s); the policies in force stay", file=sys.stderr)
    else:
        print(f"reloaded: {response.files} file(s), {response.stored} stored document(s)")
    return EXIT_USAGE if response.problems else EXIT_OK


def _rule(ref: pb.PolicyRuleRef) -> dict[str, Any]:
    return {"file": ref.source, "line": ref.line, "rule_line": ref.rule_line, "policy": ref.policy,
            "rule_index": ref.rule_index, "pattern": ref.pattern, "effect": ref.effect,
            "capabilities": list(ref.capabilities)}


def _binding(ref: pb.PolicyBindingRef) -> dict[str, Any]:
    return {"file": ref.source, "line": ref.line, "binding_index": ref.binding_index, "kind": ref.kind,
            "pattern": ref.pattern}


def _grant(grant: pb.PolicyGrant) -> dict[str, Any]:
    bound = grant.HasField("binding")
    return {"policy": grant.policy, "defined": grant.defined, "via": "binding" if bound else "carried",
            "binding": _binding(grant.binding) if bound else None}


def explain_on_server(args: argparse.Namespace) -> int:
    """`policy explain` without --policies: the server decides with the policies in force there."""
    from secretsvc.cli.policy_cmds import print_report

    request = pb.ExplainPolicyRequest(identity=args.identity, resource=args.resource, capability=args.capability)
    with connect(args) as c:
        try:
            got = c.call(_stub(c).ExplainPolicy, request)
        except grpc.RpcError as exc:
            print(rpc_error_line(exc), file=sys.stderr)
            return EXIT_USAGE  # exit 1 means "denied"; a call that failed must not look like an answer
    grant = _grant(got.grant) if got.HasField("grant") else None
    report = {
        "allowed": got.allowed, "decision": "allow" if got.allowed else "deny",
        "identity": {"kind": got.identity_kind, "name": got.identity_name, "policies": list(got.identity_policies)},
        "identity_known": got.identity_known,
        "resource": {"kind": got.resource_kind, "name": got.resource_name},
        "capability": got.capability, "reason": got.reason,
        "rule": _rule(got.rule) if got.HasField("rule") else None,
        "grant": grant, "binding": None if grant is None else grant["binding"],
        "policies": [_grant(g) for g in got.policies],
        "matched": [_rule(m) for m in got.matched],
    }
    return print_report(args.identity, report, args.format)


def _revision_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--expected-revision", type=int, metavar="N",
                        help=f"{what} only if the stored revision is N (0: only if no document has this name); "
                             "guards against overwriting someone else's change")


def add_parsers(commands: Any) -> None:
    """The server commands, under `secretsvc policy` (which also holds the offline `check` and `explain`)."""
    put = commands.add_parser(
        "put", help="store a policy document on the server; it takes effect at once",
        description="Store (or replace) the policy document NAME on the server from FILE (YAML, or JSON for a "
                    ".json file; - for stdin). The server checks it with its policy files and every other stored "
                    "document first: a refusal prints each problem as DOCUMENT:LINE and exits 2, and nothing "
                    "changes. Servers sharing the store pick it up within their reload interval.",
    )
    put.add_argument("name", help="the document's name (letters, digits, '.', '_', '-')")
    put.add_argument("file", metavar="FILE", help="the document; - reads stdin")
    put.add_argument("--json", action="store_true", help="read FILE as JSON whatever its name")
    _revision_argument(put, "replace it")
    add_client_options(put)
    put.set_defaults(run=lambda args: run_command(cmd_put, args))

    get = commands.add_parser("get", help="print a stored policy document as it was stored")
    get.add_argument("name")
    add_client_options(get)
    get.set_defaults(run=lambda args: run_command(cmd_get, args))

    listing = commands.add_parser(
        "list", help="list the documents in force on the server (built-in, files, stored)",
        description="The documents the server decides with, and any stored document it has not loaded (its log "
                    "says why).",
    )
    add_client_options(listing)
    listing.set_defaults(run=lambda args: run_command(cmd_list, args))

    delete = commands.add_parser(
        "delete", help="remove a stored policy document",
        description="Remove the stored document NAME. Refused while a binding in another document names a "
                    "policy only it defines. Exit 1 if there was none.",
    )
    delete.add_argument("name")
    _revision_argument(delete, "delete it")
    add_client_options(delete)
    delete.set_defaults(run=lambda args: run_command(cmd_delete, args))

    reload = commands.add_parser(
        "reload", help="make the server read its policy files and stored documents again now",
        description="The server also does this by itself every --policy-reload-seconds and on SIGHUP. If the "
                    "documents do not load together, the policies in force stay, the problems are printed, and "
                    "the exit status is 2.",
    )
    add_client_options(reload)
    reload.set_defaults(run=lambda args: run_command(cmd_reload, args))
