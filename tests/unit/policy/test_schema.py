"""Every way a document can be wrong is refused, naming the file, the line and the element."""

from __future__ import annotations

import textwrap

import pytest

from secretsvc.errors import LimitExceeded
from secretsvc.policy import Source, check_sources, limits, load_sources
from tests.unit.policy.support import problems

RULE = "{paths: [a/b], capabilities: [read], effect: allow}"


def one(text: str, source: str = "team.yaml") -> str:
    """The single problem in `text`, as printed."""
    found = problems(text, source)
    assert len(found) == 1, [str(p) for p in found]
    return str(found[0])


@pytest.mark.parametrize(("text", "expected"), [
    # the document
    ("policies: [{name: a, rules: [RULE]}]\n", "team.yaml:1: version: is missing"),
    ("version: 2\npolicies: [{name: a, rules: [RULE]}]\n", "team.yaml:1: version: must be 1"),
    ("version: '1'\npolicies: [{name: a, rules: [RULE]}]\n", "team.yaml:1: version: must be 1"),
    ("version: true\npolicies: [{name: a, rules: [RULE]}]\n", "team.yaml:1: version: must be 1"),
    ("version: 1\n", "team.yaml:1: document: defines no policies and no bindings"),
    ("version: 1\npolicies: []\n", "team.yaml:2: policies: is an empty list"),
    ("version: 1\nbindings: []\n", "team.yaml:2: bindings: is an empty list"),
    ("version: 1\npolicies: {name: a}\n", "team.yaml:2: policies: must be a list, not a mapping"),
    ("- version: 1\n", "team.yaml:1: document: must be a mapping, not a list"),
    ("version: 1\npolicies: [{name: a, rules: [RULE]}]\npolicy: []\n", "team.yaml:3: document: unknown key 'policy'"),
    # a policy
    ("version: 1\npolicies:\n  - rules: [RULE]\n", "team.yaml:3: policies[0]: has no name"),
    ("version: 1\npolicies:\n  - name: a b\n    rules: [RULE]\n", "team.yaml:3: policies[0].name: policy name 'a b'"),
    ("version: 1\npolicies:\n  - name: 12\n    rules: [RULE]\n", "policies[0].name: must be a string, not a number"),
    ("version: 1\npolicies:\n  - name: a\n", "team.yaml:3: policies[0] (a): has no rules"),
    ("version: 1\npolicies:\n  - name: a\n    rules: []\n", "team.yaml:4: policies[0] (a).rules: is an empty list"),
    ("version: 1\npolicies:\n  - name: a\n    rules: [RULE]\n    owner: me\n",
     "team.yaml:5: policies[0] (a): unknown key 'owner'"),
    # a rule
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - capabilities: [read]\n        effect: allow\n",
     "team.yaml:5: policies[0] (a).rules[0]: needs exactly one of paths, keys, system (found: none)"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - {paths: [a/b], keys: [k], capabilities: [read], "
     "effect: allow}\n", "found: paths, keys"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: []\n        capabilities: [read]\n"
     "        effect: allow\n", "team.yaml:5: policies[0] (a).rules[0].paths: is an empty list"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [a/b]\n        capabilities: []\n"
     "        effect: allow\n", "team.yaml:6: policies[0] (a).rules[0].capabilities: is an empty list"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [a/b]\n        capabilities: [read, raed]\n"
     "        effect: allow\n", "team.yaml:6: policies[0] (a).rules[0].capabilities[1]: unknown capability 'raed'"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [a/b]\n        capabilities: [encrypt]\n"
     "        effect: allow\n", "capabilities[0]: capability 'encrypt' means nothing for paths"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - keys: [k]\n        capabilities: [admin]\n"
     "        effect: allow\n", "capability 'admin' means nothing for keys"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - system: [tokens]\n        capabilities: [read]\n"
     "        effect: allow\n", "capability 'read' means nothing for system"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - system: [token]\n        capabilities: [admin]\n"
     "        effect: allow\n", "team.yaml:5: policies[0] (a).rules[0].system[0]: unknown system resource 'token'"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [a/b, a/b]\n        capabilities: [read]\n"
     "        effect: allow\n", "paths[1]: 'a/b' is listed twice (first at line 5)"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [a/b]\n        capabilities: [read, read]\n"
     "        effect: allow\n", "capabilities[1]: 'read' is listed twice"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [a/b]\n        capabilities: [read]\n",
     "team.yaml:5: policies[0] (a).rules[0]: has no effect"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [a/b]\n        capabilities: [read]\n"
     "        effect: permit\n", "team.yaml:7: policies[0] (a).rules[0].effect: must be allow or deny, not 'permit'"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [a/b]\n        capabilities: [read]\n"
     "        effect: allow\n        when: always\n", "team.yaml:8: policies[0] (a).rules[0]: unknown key 'when'"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: a/b\n        capabilities: [read]\n"
     "        effect: allow\n", "rules[0].paths: must be a list, not a string"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [yes]\n        capabilities: [read]\n"
     "        effect: allow\n", "paths[0]: must be a string, not a boolean; quote it"),
    # bad patterns
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [payments]\n        capabilities: [read]\n"
     "        effect: allow\n", "team.yaml:5: policies[0] (a).rules[0].paths[0]: 'payments': secret pattern cannot"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: ['a/b?']\n        capabilities: [read]\n"
     "        effect: allow\n", "paths[0]: 'a/b?': secret pattern has a character outside"),
    ("version: 1\npolicies:\n  - name: a\n    rules:\n      - keys: ['a/b']\n        capabilities: [encrypt]\n"
     "        effect: allow\n", "team.yaml:5: policies[0] (a).rules[0].keys[0]: 'a/b': transit key pattern"),
    # a binding
    ("version: 1\nbindings:\n  - policies: [admin]\n", "team.yaml:3: bindings[0]: has no identity"),
    ("version: 1\nbindings:\n  - identity: {kind: token, pattern: ci}\n",
     "team.yaml:3: bindings[0]: has no policies"),
    ("version: 1\nbindings:\n  - identity: {kind: token, pattern: ci}\n    policies: []\n",
     "team.yaml:4: bindings[0].policies: is an empty list"),
    ("version: 1\nbindings:\n  - identity: {kind: user, pattern: ci}\n    policies: [admin]\n",
     "team.yaml:3: bindings[0].identity.kind: unknown identity kind 'user'"),
    ("version: 1\nbindings:\n  - identity: {kind: token}\n    policies: [admin]\n",
     "team.yaml:3: bindings[0].identity: has no pattern"),
    ("version: 1\nbindings:\n  - identity: {kind: token, pattern: ci, san: x}\n    policies: [admin]\n",
     "bindings[0].identity: unknown key 'san'"),
    ("version: 1\nbindings:\n  - identity: {kind: serviceaccount, pattern: 'a/b/c'}\n    policies: [admin]\n",
     "team.yaml:3: bindings[0].identity.pattern: 'a/b/c': service account pattern has more than 2 segments"),
    ("version: 1\nbindings:\n  - identity: {kind: token, pattern: '*'}\n    policies: [admin]\n",
     "team.yaml:3: bindings[0].identity.pattern: '*' matches every token identity; if that is meant, add "
     "`unsafe_match_all: true`"),
    ("version: 1\nbindings:\n  - identity: {kind: serviceaccount, pattern: '*/*'}\n    policies: [admin]\n",
     "matches every serviceaccount identity"),
    ("version: 1\nbindings:\n  - identity: {kind: token, pattern: 'ci-*'}\n    policies: [admin]\n"
     "    unsafe_match_all: true\n", "team.yaml:5: bindings[0].unsafe_match_all: is only for a pattern of wildcards"),
    ("version: 1\nbindings:\n  - identity: {kind: token, pattern: 'ci-*'}\n    policies: [admin]\n"
     "    unsafe_match_all: 'yes'\n", "team.yaml:5: bindings[0].unsafe_match_all: must be true or false"),
    ("version: 1\nbindings:\n  - identity: {kind: token, pattern: ci}\n    policies: [admin, admin]\n",
     "team.yaml:4: bindings[0].policies[1]: 'admin' is listed twice"),
    ("version: 1\nbindings:\n  - identity: {kind: token, pattern: ci}\n    policies: ['no such']\n",
     "team.yaml:4: bindings[0].policies[0]: policy name 'no such'"),
    # across documents (here within one, with the built-in document)
    ("version: 1\npolicies:\n  - {name: a, rules: [RULE]}\n  - {name: a, rules: [RULE]}\n",
     "team.yaml:4: policies[1] (a): policy 'a' is already defined at team.yaml:3"),
    ("version: 1\npolicies:\n  - {name: admin, rules: [RULE]}\n",
     "team.yaml:3: policies[0] (admin): policy 'admin' is already defined at <builtin>:3"),
    ("version: 1\nbindings:\n  - identity: {kind: token, pattern: ci}\n    policies: [admin, deployer]\n",
     "team.yaml:4: bindings[0].policies[1]: no document defines policy 'deployer'"),
])
def test_each_problem_names_file_line_and_element(text: str, expected: str) -> None:
    assert expected in one(text.replace("RULE", RULE))


def test_json_problems_name_their_lines_too() -> None:
    text = textwrap.dedent("""\
        {
          "version": 1,
          "policies": [
            {"name": "a",
             "rules": [
               {"paths": ["a/b"],
                "capabilities": ["read", "shred"],
                "effect": "allow"}
             ]}
          ]
        }
        """)
    assert "team.json:7: policies[0] (a).rules[0].capabilities[1]: unknown capability 'shred'" in one(text,
                                                                                                     "team.json")


def test_all_problems_are_reported_in_line_order() -> None:
    text = """\
        version: 1
        policies:
          - name: a
            rules:
              - paths: [a/b]
                capabilities: [raed]
                effect: allow
              - paths: [x]
                capabilities: [read]
                effect: maybe
        bindings:
          - identity: {kind: tokn, pattern: ci}
            policies: [a]
        """
    found = problems(text)
    assert [p.location.line for p in found] == [6, 8, 10, 12]


def test_problems_across_files_name_each_file() -> None:
    first = Source("one.yaml", b"version: 1\npolicies:\n  - {name: a, rules: [" + RULE.encode() + b"]}\n")
    second = Source("two.json", b'{"version": 1,\n "policies": [{"name": "a", "rules": [\n'
                                b'{"paths": ["a/b"], "capabilities": ["read"], "effect": "allow"}]}]}')
    result = check_sources([first, second])
    assert [str(p) for p in result.problems] == [
        "two.json:2: policies[0] (a): policy 'a' is already defined at one.yaml:3"]


SMALL = 3  # limits are patched down to this, so the tests need not write ten thousand policies


@pytest.mark.parametrize(("build", "limit"), [
    (lambda: "version: 1\npolicies:\n" + "".join(f"  - {{name: p{i}, rules: [{RULE}]}}\n"
                                                 for i in range(SMALL + 1)), "MAX_POLICIES"),
    (lambda: "version: 1\npolicies:\n  - name: a\n    rules:\n" + f"      - {RULE}\n" * (SMALL + 1),
     "MAX_RULES_PER_POLICY"),
    (lambda: "version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [" +
     ", ".join(f"a/b{i}" for i in range(SMALL + 1)) + "]\n        capabilities: [read]\n"
     "        effect: allow\n", "MAX_PATTERNS_PER_RULE"),
    (lambda: "version: 1\nbindings:\n" + "".join(f"  - {{identity: {{kind: token, pattern: t{i}}}, "
                                                 "policies: [admin]}\n" for i in range(SMALL + 1)),
     "MAX_BINDINGS"),
    (lambda: "version: 1\nbindings:\n  - identity: {kind: token, pattern: t}\n    policies: [" +
     ", ".join(f"p{i}" for i in range(SMALL + 1)) + "]\n", "MAX_POLICIES_PER_BINDING"),
    (lambda: "version: 1\npolicies:\n  - name: a\n    description: " + "x" * (SMALL + 1) +
     f"\n    rules: [{RULE}]\n", "MAX_DESCRIPTION_CHARS"),
    (lambda: "version: 1\npolicies:\n  - name: " + "a" * (SMALL + 1) + f"\n    rules: [{RULE}]\n",
     "MAX_POLICY_NAME_CHARS"),
    (lambda: "version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: [ns/" + "a" * SMALL +
     "]\n        capabilities: [read]\n        effect: allow\n", "MAX_PATTERN_CHARS"),
    (lambda: "version: 1\npolicies:\n  - name: a\n    rules:\n      - paths: ['ns/*/*/*/*']\n"
     "        capabilities: [read]\n        effect: allow\n", "MAX_WILDCARDS_PER_PATTERN"),
    (lambda: "version: 1\npolicies: [[[[]]]]\n", "MAX_NESTING_DEPTH"),
])
def test_limits_are_named_and_refused(build: object, limit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, limit, SMALL)
    text = build()  # type: ignore[operator]
    found = problems(text.encode())
    assert any(f"{limit}={SMALL}" in p.message and p.limit and p.location.line > 0 for p in found), \
        [str(p) for p in found[:3]]
    with pytest.raises(LimitExceeded, match=f"{limit}={SMALL}"):
        load_sources([Source("big.yaml", text.encode())])


def test_limit_values() -> None:
    """The real limits leave room for a large organisation's policies and refuse the absurd."""
    assert limits.MAX_RULES >= 10 * 1000 and limits.MAX_BINDINGS >= 1000
    assert limits.MAX_POLICY_NAME_CHARS == 128  # service.limits.MAX_POLICY_NAME_BYTES: the same names


def test_a_file_over_the_size_limit_is_refused_unread() -> None:
    data = b"version: 1\n" + b"#" * limits.MAX_POLICY_FILE_BYTES
    with pytest.raises(LimitExceeded, match=r"big\.yaml: is larger than MAX_POLICY_FILE_BYTES"):
        load_sources([Source("big.yaml", data)])


def test_total_rules_across_documents_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_RULES", 8)  # the built-in document has 3
    doc = "version: 1\npolicies:\n  - name: NAME\n    rules: [" + ", ".join([RULE] * 3) + "]\n"
    sources = [Source(f"{n}.yaml", doc.replace("NAME", n).encode()) for n in ("a", "b")]
    result = check_sources(sources)
    assert [str(p) for p in result.problems] == [
        "b.yaml:3: policies[0] (b): brings the rules across all documents past MAX_RULES=8"]
    assert result.problems[0].limit
    with pytest.raises(LimitExceeded, match="MAX_RULES=8"):
        load_sources(sources)


def test_a_valid_document_loads() -> None:
    text = """\
        version: 1
        policies:
          - name: payments
            description: what the payments services may do
            rules:
              - paths: ["payments/**"]
                capabilities: [read, list]
                effect: allow
                description: everything in the namespace
              - keys: ["payments-*"]
                capabilities: [encrypt, decrypt, rewrap]
                effect: allow
              - system: [tokens]
                capabilities: [admin]
                effect: deny
        bindings:
          - identity: {kind: mtls-uri, pattern: "spiffe://cluster.local/ns/payments/sa/*"}
            policies: [payments]
            description: the payments namespace's workloads
          - identity: {kind: token, pattern: "*"}
            policies: [payments]
            unsafe_match_all: true
        """
    result = check_sources([Source("p.yaml", textwrap.dedent(text).encode())])
    assert result.ok and result.policy_set is not None
    policy = result.policy_set.policies["payments"]
    assert [r.location.line for r in policy.rules] == [6, 10, 13]
    assert policy.rules[0].patterns[0].line == 6
    assert result.policy_set.warnings == (
        "p.yaml:20: bindings[1] grants payments to every token identity (unsafe_match_all)",)


def test_problems_per_document_are_capped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_PROBLEMS_PER_DOCUMENT", 2)
    text = "version: 1\npolicies:\n  - name: a\n    rules:\n" + "      - {paths: [x], capabilities: [read], " \
           "effect: allow}\n" * 5
    found = problems(text)
    assert [p.location.line for p in found] == [5, 6, 0]
    assert str(found[-1]) == "p.yaml: and 3 more problems (MAX_PROBLEMS_PER_DOCUMENT=2 are shown)"
