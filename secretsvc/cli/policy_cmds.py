"""`secretsvc policy check` and `secretsvc policy explain`: policy documents, offline, without a server.

Scripts rely on the exit status: `check` 0 valid, 2 invalid or unusable; `explain` 0 allowed, 1 denied,
2 a usage error or invalid documents. `--format json` prints one JSON object on stdout for either.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

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


def _rule_json(ref: RuleRef) -> dict[str, Any]:
    return {"file": ref.rule.location.source, "line": ref.pattern.line, "rule_line": ref.rule.location.line,
            "policy": ref.policy, "rule_index": ref.rule.index, "pattern": ref.pattern.value,
            "effect": ref.rule.effect.value, "capabilities": sorted(c.value for c in ref.rule.capabilities)}


def _binding_json(binding: Binding) -> dict[str, Any]:
    return {"file": binding.location.source, "line": binding.location.line, "binding_index": binding.index,
            "kind": binding.kind.value, "pattern": binding.pattern.value}


def _grant_json(grant: Grant) -> dict[str, Any]:
    return {"policy": grant.policy, "defined": grant.defined,
            "via": "binding" if grant.binding else "carried",
            "binding": None if grant.binding is None else _binding_json(grant.binding)}


def _rule_text(ref: RuleRef) -> str:
    return (f"{ref.location}  policy {ref.policy!r}, rules[{ref.rule.index}], pattern {ref.pattern.value!r} "
            f"({ref.rule.effect.value})")


def _grant_text(grant: Grant) -> str:
    if grant.binding is not None:
        b = grant.binding
        why = f"{b.location}  bindings[{b.index}], {b.kind.value} {b.pattern.value!r} -> policy {grant.policy!r}"
    else:
        why = f"none: the identity carries policy {grant.policy!r} itself (a token made with --policy)"
    return why + ("" if grant.defined else "; no document defines it, so it grants nothing")


def _held_text(grant: Grant) -> str:
    b = grant.binding
    how = (f"by binding {b.location}  bindings[{b.index}], {b.kind.value} {b.pattern.value!r}" if b is not None
           else "carried by the identity itself (a token made with --policy)")
    return f"policy {grant.policy!r} {how}" + ("" if grant.defined else "; no document defines it: grants nothing")


def _explain_text(who: str, decision: Decision, grants: tuple[Grant, ...], matched: tuple[RuleRef, ...]) -> None:
    verb = "may" if decision.allowed else "may not"
    print(f"{'allow' if decision.allowed else 'deny'}: {who} {verb} {decision.capability.value} "
          f"{decision.resource_kind.value} {decision.resource_name}")
    print(f"  reason:  {decision.reason}")
    if decision.rule is not None and decision.grant is not None:
        print(f"  rule:    {_rule_text(decision.rule)}")
        print(f"  binding: {_grant_text(decision.grant)}")
    others = [m for m in matched if m != decision.rule]
    for ref in others:
        print(f"  also matched: {_rule_text(ref)}")
    if decision.rule is None:
        if grants:
            for grant in grants:
                print(f"  holds:   {_held_text(grant)}")
        else:
            print("  holds:   no policies (no binding matches this identity, and it carries none)")


def cmd_explain(args: argparse.Namespace) -> int:
    try:
        principal = identity.parse_identity(args.identity)
        resource = identity.parse_resource(args.resource)
    except InvalidArgument as exc:
        print(f"secretsvc policy explain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = check_paths([Path(p) for p in args.policies])
    if result.policy_set is None:
        _print_problems(result, args.format)
        return EXIT_USAGE
    policy_set = result.policy_set
    capability = Capability(args.capability)
    decision = policy_set.decide(principal, resource, capability)
    grants = policy_set.grants(principal)
    matched = policy_set.matching_rules(principal, resource, capability)
    if args.format == "json":
        print(json.dumps({
            "allowed": decision.allowed, "decision": "allow" if decision.allowed else "deny",
            "identity": {"kind": principal.kind, "name": principal.name, "policies": list(principal.policies)},
            "resource": {"kind": decision.resource_kind.value, "name": decision.resource_name},
            "capability": capability.value, "reason": decision.reason,
            "rule": None if decision.rule is None else _rule_json(decision.rule),
            "binding": None if decision.binding is None else _binding_json(decision.binding),
            "policies": [_grant_json(g) for g in grants],
            "matched": [_rule_json(m) for m in matched],
        }, sort_keys=True))
    else:
        _explain_text(args.identity, decision, grants, matched)
    return EXIT_ALLOWED if decision.allowed else EXIT_DENIED


def add_parsers(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "policy", help="check policy documents and explain decisions, offline",
        description="Policy documents (YAML or JSON; docs/policy.md), read from files, without a server.",
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
    explain.add_argument("--policies", action="append", required=True, metavar="FILE_OR_DIR",
                         help="policy documents (repeatable)")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.set_defaults(run=cmd_explain)
