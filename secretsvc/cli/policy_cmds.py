"""`secretsvc policy check` and `secretsvc policy explain`: policy documents read from files, offline.

`explain` without `--policies` asks the server instead (`policy_server_cmds.py`, with `put`, `get`, `list`,
`delete` and `reload`); both print the same report. Scripts rely on the exit status: `check` 0 valid, 2
invalid or unusable; `explain` 0 allowed, 1 denied, 2 a usage error, invalid documents, or a server that
could not answer. `--format json` prints one JSON object on stdout for either.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from secretsvc.auth.principal import Principal
from secretsvc.cli.connection import add_client_options, run_command
from secretsvc.errors import InvalidArgument
from secretsvc.policy import identity
from secretsvc.policy.loader import CheckResult, check_paths
from secretsvc.policy.model import Binding, Capability, Decision, Grant, Problem, RuleRef

EXIT_ALLOWED, EXIT_DENIED, EXIT_USAGE = 0, 1, 2

_EXPLAIN_EPILOG = f"""\
IDENTITY:  {' | '.join(identity.IDENTITY_FORMS)}
RESOURCE:  {' | '.join(identity.RESOURCE_FORMS)}
CAPABILITY: {', '.join(Capability)}

examples:
  secretsvc policy explain mtls:spiffe://cluster.local/ns/payments/sa/web payments/db/password read \\
      --policies /etc/secretsvc/policies
  secretsvc policy explain token:ci:deployer transit:payments encrypt --policies policies.yaml
  secretsvc policy explain sa:payments/web system:tokens admin --policies policies/ --format json
  secretsvc policy explain token:ci payments/db/password read        # the server's policies in force
"""


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {"file": problem.location.source, "line": problem.location.line or None, "where": problem.where,
            "message": problem.message, "limit": problem.limit}


def _print_problems(result: CheckResult, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps({"valid": False, "files": list(result.files),
                          "problems": [_problem_json(p) for p in result.problems]}, sort_keys=True))
    else:
        for problem in result.problems:
            print(problem, file=sys.stderr)
        print(f"{len(result.problems)} problem(s); no policy was loaded", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    result = check_paths([Path(p) for p in args.paths])
    if result.policy_set is None:
        _print_problems(result, args.format)
        return EXIT_USAGE
    policy_set = result.policy_set
    policies = sum(len(d.policies) for d in policy_set.documents[1:])
    rules = sum(len(p.rules) for d in policy_set.documents[1:] for p in d.policies)
    bindings = len(policy_set.bindings)
    if args.format == "json":
        print(json.dumps({"valid": True, "files": list(result.files), "policies": policies, "rules": rules,
                          "bindings": bindings, "warnings": list(policy_set.warnings)}, sort_keys=True))
    else:
        for warning in policy_set.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"valid: {len(result.files)} file(s), {policies} policies, {rules} rules, {bindings} bindings")
    return EXIT_ALLOWED


# An explanation as one report (the JSON `--format json` prints), whether it was decided here or by the server.
Report = dict[str, Any]


def _rule_json(ref: RuleRef) -> Report:
    return {"file": ref.rule.location.source, "line": ref.pattern.line, "rule_line": ref.rule.location.line,
            "policy": ref.policy, "rule_index": ref.rule.index, "pattern": ref.pattern.value,
            "effect": ref.rule.effect.value, "capabilities": sorted(c.value for c in ref.rule.capabilities)}


def _binding_json(binding: Binding) -> Report:
    return {"file": binding.location.source, "line": binding.location.line, "binding_index": binding.index,
            "kind": binding.kind.value, "pattern": binding.pattern.value}


def _grant_json(grant: Grant) -> Report:
    return {"policy": grant.policy, "defined": grant.defined,
            "via": "binding" if grant.binding else "carried",
            "binding": None if grant.binding is None else _binding_json(grant.binding)}


def local_report(principal: Principal, decision: Decision, grants: tuple[Grant, ...],
                 matched: tuple[RuleRef, ...]) -> Report:
    return {
        "allowed": decision.allowed, "decision": "allow" if decision.allowed else "deny",
        "identity": {"kind": principal.kind, "name": principal.name, "policies": list(principal.policies)},
        "resource": {"kind": decision.resource_kind.value, "name": decision.resource_name},
        "capability": decision.capability.value, "reason": decision.reason,
        "rule": None if decision.rule is None else _rule_json(decision.rule),
        "grant": None if decision.grant is None else _grant_json(decision.grant),
        "binding": None if decision.binding is None else _binding_json(decision.binding),
        "policies": [_grant_json(g) for g in grants],
        "matched": [_rule_json(m) for m in matched],
    }


def _at(item: Report) -> str:
    return f"{item['file']}:{item['line']}" if item["line"] else str(item["file"])


def _rule_text(rule: Report) -> str:
    return (f"{_at(rule)}  policy {rule['policy']!r}, rules[{rule['rule_index']}], pattern {rule['pattern']!r} "
            f"({rule['effect']})")


def _grant_text(grant: Report) -> str:
    b = grant["binding"]
    if b is not None:
        why = f"{_at(b)}  bindings[{b['binding_index']}], {b['kind']} {b['pattern']!r} -> policy {grant['policy']!r}"
    else:
        why = f"none: the identity carries policy {grant['policy']!r} itself (a token made with --policy)"
    return why + ("" if grant["defined"] else "; no document defines it, so it grants nothing")


def _held_text(grant: Report) -> str:
    b = grant["binding"]
    how = (f"by binding {_at(b)}  bindings[{b['binding_index']}], {b['kind']} {b['pattern']!r}" if b is not None
           else "carried by the identity itself (a token made with --policy)")
    unused = "" if grant["defined"] else "; no document defines it: grants nothing"
    return f"policy {grant['policy']!r} {how}{unused}"


def print_report(who: str, report: Report, fmt: str) -> int:
    """Print an explanation; the exit status: 0 allowed, 1 denied."""
    if fmt == "json":
        print(json.dumps(report, sort_keys=True))
        return EXIT_ALLOWED if report["allowed"] else EXIT_DENIED
    allowed, rule, grant = report["allowed"], report["rule"], report["grant"]
    resource = report["resource"]
    print(f"{'allow' if allowed else 'deny'}: {who} {'may' if allowed else 'may not'} {report['capability']} "
          f"{resource['kind']} {resource['name']}")
    print(f"  reason:  {report['reason']}")
    if report.get("identity_known") is False:
        print("  note:    no stored token has this name; explained as a token that carries no policies")
    if rule is not None and grant is not None:
        print(f"  rule:    {_rule_text(rule)}")
        print(f"  binding: {_grant_text(grant)}")
    for other in report["matched"]:
        if other != rule:
            print(f"  also matched: {_rule_text(other)}")
    if rule is None:
        for held in report["policies"]:
            print(f"  holds:   {_held_text(held)}")
        if not report["policies"]:
            print("  holds:   no policies (no binding matches this identity, and it carries none)")
    return EXIT_ALLOWED if allowed else EXIT_DENIED


def cmd_explain(args: argparse.Namespace) -> int:
    try:
        principal = identity.parse_identity(args.identity)
        resource = identity.parse_resource(args.resource)
    except InvalidArgument as exc:
        print(f"secretsvc policy explain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.policies:
        from secretsvc.cli.policy_server_cmds import explain_on_server

        return run_command(explain_on_server, args)
    result = check_paths([Path(p) for p in args.policies])
    if result.policy_set is None:
        _print_problems(result, args.format)
        return EXIT_USAGE
    policy_set = result.policy_set
    capability = Capability(args.capability)
    report = local_report(principal, policy_set.decide(principal, resource, capability),
                          policy_set.grants(principal), policy_set.matching_rules(principal, resource, capability))
    return print_report(args.identity, report, args.format)


def add_parsers(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "policy", help="check, store and explain policy documents",
        description="Policy documents (YAML or JSON; docs/policy.md): check files and explain decisions "
                    "offline, or store, list and explain them on the server.",
    )
    commands = group.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)

    check = commands.add_parser(
        "check", help="validate policy files; exit 0 valid, 2 invalid",
        description="Validate policy documents: every problem is printed as FILE:LINE: WHERE: WHAT.",
    )
    check.add_argument("paths", nargs="+", metavar="FILE_OR_DIR",
                       help="a policy file, or a directory of *.yaml, *.yml and *.json files")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(run=cmd_check)

    explain = commands.add_parser(
        "explain", help="say whether IDENTITY may use CAPABILITY on RESOURCE, and which rule decided",
        description="Decide as the server would, and print the rule and binding that decided (FILE:LINE). "
                    "Exit 0 allowed, 1 denied, 2 usage error or invalid documents.",
        epilog=_EXPLAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("identity", metavar="IDENTITY")
    explain.add_argument("resource", metavar="RESOURCE")
    explain.add_argument("capability", metavar="CAPABILITY", choices=[c.value for c in Capability])
    explain.add_argument("--policies", action="append", metavar="FILE_OR_DIR",
                         help="decide with these policy documents, offline (repeatable); without it, ask the "
                              "server, which decides with the policies in force there")
    add_client_options(explain)  # also --format
    explain.set_defaults(run=cmd_explain)

    from secretsvc.cli import policy_server_cmds

    policy_server_cmds.add_parsers(commands)
