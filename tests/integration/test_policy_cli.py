"""`secretsvc policy check` and `policy explain` as scripts run them: exit status, file:line, JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.serverproc import cli_command

POLICIES = """\
version: 1
policies:
  - name: payments-read
    rules:
      - paths: ["payments/**"]
        capabilities: [read, list]
        effect: allow
      - paths: ["payments/root/*"]
        capabilities: [read]
        effect: deny
      - keys: ["payments-*"]
        capabilities: [encrypt]
        effect: allow
"""
BINDINGS = """\
{
  "version": 1,
  "bindings": [
    {"identity": {"kind": "mtls-uri", "pattern": "spiffe://cluster.local/ns/payments/sa/*"},
     "policies": ["payments-read"]},
    {"identity": {"kind": "serviceaccount", "pattern": "payments/web"},
     "policies": ["payments-read"]}
  ]
}
"""


def _policy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_command("policy", *args), capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "payments.yaml").write_text(POLICIES)
    (directory / "bindings.json").write_text(BINDINGS)
    return directory


def test_check_accepts_valid_documents(policy_dir: Path) -> None:
    result = _policy("check", str(policy_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "valid: 2 file(s), 1 policies, 3 rules, 2 bindings\n"
    as_json = _policy("check", str(policy_dir), "--format", "json")
    assert as_json.returncode == 0
    report = json.loads(as_json.stdout)
    assert report["valid"] is True and (report["policies"], report["rules"], report["bindings"]) == (1, 3, 2)
    assert [Path(f).name for f in report["files"]] == ["bindings.json", "payments.yaml"]


def test_check_names_every_problem_by_file_and_line(policy_dir: Path) -> None:
    (policy_dir / "payments.yaml").write_text(POLICIES.replace("[read, list]", "[read, lsit]")
                                              .replace("effect: deny", "effect: refuse"))
    result = _policy("check", str(policy_dir))
    assert result.returncode == 2 and result.stdout == ""
    bad = policy_dir / "payments.yaml"
    assert result.stderr.splitlines() == [
        f"{bad}:6: policies[0] (payments-read).rules[0].capabilities[1]: unknown capability 'lsit'; known: read, "
        "list, create, update, delete, destroy, encrypt, decrypt, rewrap, rotate, admin, match",
        f"{bad}:10: policies[0] (payments-read).rules[1].effect: must be allow or deny, not 'refuse'",
        "2 problem(s); no policy was loaded",
    ]
    as_json = _policy("check", str(policy_dir), "--format", "json")
    assert as_json.returncode == 2
    problems = json.loads(as_json.stdout)["problems"]
    assert [(p["file"], p["line"], p["where"]) for p in problems] == [
        (str(bad), 6, "policies[0] (payments-read).rules[0].capabilities[1]"),
        (str(bad), 10, "policies[0] (payments-read).rules[1].effect")]


def test_check_refuses_a_binding_to_an_undefined_policy(policy_dir: Path) -> None:
    (policy_dir / "bindings.json").write_text(BINDINGS.replace('"payments-read"]}\n  ]', '"payments-write"]}\n  ]'))
    result = _policy("check", str(policy_dir))
    assert result.returncode == 2
    assert f"{policy_dir / 'bindings.json'}:7: bindings[1].policies[0]: no document defines policy " \
           "'payments-write'" in result.stderr


def test_explain_allow_names_the_rule_and_the_binding(policy_dir: Path) -> None:
    result = _policy("explain", "mtls:spiffe://cluster.local/ns/payments/sa/api", "payments/db/password", "read",
                     "--policies", str(policy_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "allow: mtls:spiffe://cluster.local/ns/payments/sa/api may read secret payments/db/password",
        "  reason:  allowed by rule",
        f"  rule:    {policy_dir / 'payments.yaml'}:5  policy 'payments-read', rules[0], pattern 'payments/**' (allow)",
        f"  binding: {policy_dir / 'bindings.json'}:4  bindings[0], mtls-uri "
        "'spiffe://cluster.local/ns/payments/sa/*' -> policy 'payments-read'",
    ]


def test_explain_deny_by_rule_and_by_default(policy_dir: Path) -> None:
    denied = _policy("explain", "sa:payments/web", "payments/root/ca", "read", "--policies", str(policy_dir))
    assert denied.returncode == 1
    lines = denied.stdout.splitlines()
    assert lines[0] == "deny: sa:payments/web may not read secret payments/root/ca"
    assert lines[1] == "  reason:  denied by rule (an explicit deny wins)"
    assert f"{policy_dir / 'payments.yaml'}:8  policy 'payments-read', rules[1]" in lines[2]
    assert f"binding: {policy_dir / 'bindings.json'}:6  bindings[1], serviceaccount 'payments/web'" in lines[3]
    assert lines[4].startswith(f"  also matched: {policy_dir / 'payments.yaml'}:5")

    nothing = _policy("explain", "sa:billing/web", "transit:payments-key", "encrypt", "--policies", str(policy_dir))
    assert nothing.returncode == 1
    assert nothing.stdout.splitlines()[1:] == [
        "  reason:  no rule grants it (deny by default)",
        "  holds:   no policies (no binding matches this identity, and it carries none)"]

    carried = _policy("explain", "token:ci:payments-read,gone", "payments/a", "destroy", "--policies",
                      str(policy_dir / "payments.yaml"))
    assert carried.returncode == 1
    assert "policy 'gone' carried by the identity itself (a token made with --policy); no document defines it" \
        in carried.stdout


def test_explain_json(policy_dir: Path) -> None:
    result = _policy("explain", "token:ci:payments-read", "transit:payments-key", "encrypt", "--policies",
                     str(policy_dir), "--format", "json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["allowed"] is True and report["decision"] == "allow"
    assert report["resource"] == {"kind": "transit_key", "name": "payments-key"}
    assert report["rule"] == {"file": str(policy_dir / "payments.yaml"), "line": 11, "rule_line": 11,
                              "policy": "payments-read", "rule_index": 2, "pattern": "payments-*",
                              "effect": "allow", "capabilities": ["encrypt"]}
    assert report["binding"] is None
    assert report["policies"] == [{"policy": "payments-read", "defined": True, "via": "carried", "binding": None}]


@pytest.mark.parametrize("args", [
    ["explain", "alice", "payments/db", "read"],
    ["explain", "token:ci", "payments", "read"],
    ["explain", "token:ci", "payments/db", "shred"],
    ["explain", "token:ci", "payments/db"],
])
def test_explain_usage_errors_exit_2(policy_dir: Path, args: list[str]) -> None:
    result = _policy(*args, "--policies", str(policy_dir))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr


def test_explain_with_invalid_documents_exits_2(policy_dir: Path) -> None:
    (policy_dir / "broken.yaml").write_text("version: 1\npolicies: [\n")
    result = _policy("explain", "token:ci", "payments/db", "read", "--policies", str(policy_dir))
    assert result.returncode == 2
    assert f"{policy_dir / 'broken.yaml'}:3:" in result.stderr


def test_the_builtin_admin_policy_is_explained_too(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("version: 1\nbindings:\n  - identity: {kind: mtls-dns, pattern: "
                                         "ops.example.com}\n    policies: [admin]\n")
    result = _policy("explain", "mtls:dns:ops.example.com", "system:root-key", "admin", "--policies",
                     str(tmp_path / "empty.yaml"))
    assert result.returncode == 0
    assert "  rule:    <builtin>:12  policy 'admin', rules[2], pattern '*' (allow)" in result.stdout
