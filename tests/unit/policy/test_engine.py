"""Decisions: deny by default, explicit deny wins, every capability, bindings for every identity kind, listing."""

from __future__ import annotations

import pytest

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.errors import InvalidArgument, PermissionDenied
from secretsvc.policy import ADMIN_POLICY, Capability, PolicySet, ResourceKind, limits
from secretsvc.policy.model import APPLICABLE, SYSTEM_RESOURCES
from secretsvc.service import access
from tests.unit.policy.support import cert, key, policy_set, sa, secret, system, token

PAYMENTS = """\
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
      - name: payments-write
        rules:
          - paths: ["payments/app/*"]
            capabilities: [create, update]
            effect: allow
      - name: no-root
        rules:
          - paths: ["payments/root/**"]
            capabilities: [read, update, list]
            effect: deny
      - name: root-reader
        rules:
          - paths: ["payments/root/ca"]
            capabilities: [read]
            effect: allow
    bindings:
      - identity: {kind: mtls-uri, pattern: "spiffe://cluster.local/ns/payments/sa/*"}
        policies: [payments-read]
      - identity: {kind: serviceaccount, pattern: "payments/deployer"}
        policies: [payments-read, payments-write]
      - identity: {kind: mtls-dns, pattern: "*.payments.svc.cluster.local"}
        policies: [payments-read]
      - identity: {kind: mtls-subject, pattern: "payments batch *"}
        policies: [payments-write]
      - identity: {kind: token, pattern: "ci-*"}
        policies: [no-root]
    """

WEB = cert("uri", "spiffe://cluster.local/ns/payments/sa/web")


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    return policy_set(PAYMENTS)


# -- deny by default ------------------------------------------------------------------------------------------


def test_nothing_is_allowed_without_a_rule(policies: PolicySet) -> None:
    nobody = token("nobody")
    for capability in Capability:
        for target in (secret("payments/db"), key("payments"), system("tokens")):
            decision = policies.decide(nobody, target, capability)
            assert not decision.allowed and decision.rule is None and decision.grant is None
            assert decision.reason == "no rule grants it (deny by default)"
    assert not policies.allows(WEB, secret("billing/db"), "read")  # holds a policy, but not for this
    assert not policies.allows(WEB, secret("payments/db"), "delete")


def test_an_empty_set_allows_only_the_builtin_admin() -> None:
    empty = PolicySet()
    assert not empty.allows(token("x", "payments-read"), secret("payments/db"), "read")
    assert empty.allows(token("admin", ADMIN_POLICY), secret("payments/db"), "read")


def test_undefined_policies_a_token_carries_grant_nothing(policies: PolicySet) -> None:
    caller = token("old", "retired-policy")
    assert not policies.allows(caller, secret("payments/db"), "read")
    [grant] = policies.grants(caller)
    assert grant.policy == "retired-policy" and not grant.defined and grant.binding is None


# -- precedence -----------------------------------------------------------------------------------------------


def test_deny_in_the_same_policy_wins(policies: PolicySet) -> None:
    decision = policies.decide(WEB, secret("payments/root/ca"), "read")
    assert not decision.allowed
    assert decision.rule is not None and decision.rule.pattern.value == "payments/root/*"
    assert decision.rule.policy == "payments-read" and decision.rule.rule.index == 1
    assert decision.reason == "denied by rule (an explicit deny wins)"
    # the deny names `read` only: listing the same path is still allowed
    assert policies.allows(WEB, secret("payments/root/ca"), "list")


def test_deny_from_another_binding_wins_over_a_more_specific_allow() -> None:
    both = policy_set(PAYMENTS.replace("policies: [no-root]", "policies: [no-root, root-reader, payments-read]"))
    caller = token("ci-release")
    decision = both.decide(caller, secret("payments/root/ca"), "read")
    assert not decision.allowed
    assert decision.rule is not None and decision.rule.policy in {"no-root", "payments-read"}
    # the allow for exactly this path matched too, and lost
    matched = {(m.policy, m.pattern.value) for m in both.matching_rules(caller, secret("payments/root/ca"), "read")}
    assert ("root-reader", "payments/root/ca") in matched and ("no-root", "payments/root/**") in matched


def test_deny_wins_across_carried_and_bound_policies(policies: PolicySet) -> None:
    # a token carries root-reader itself; a binding on its name adds no-root
    caller = token("ci-nightly", "root-reader")
    decision = policies.decide(caller, secret("payments/root/ca"), "read")
    assert not decision.allowed and decision.rule is not None and decision.rule.policy == "no-root"
    assert decision.binding is not None and decision.binding.pattern.value == "ci-*"
    assert policies.allows(token("nightly", "root-reader"), secret("payments/root/ca"), "read")


def test_deny_wins_even_over_the_builtin_admin(policies: PolicySet) -> None:
    admin_ci = token("ci-admin", ADMIN_POLICY)
    assert not policies.allows(admin_ci, secret("payments/root/key"), "read")
    assert policies.allows(admin_ci, secret("payments/root/key"), "destroy")  # no-root does not deny destroy
    assert policies.allows(token("admin", ADMIN_POLICY), secret("payments/root/key"), "read")


def test_the_deciding_allow_is_the_most_specific(policies: PolicySet) -> None:
    caller = token("t", "payments-read", "root-reader")
    decision = policies.decide(caller, secret("payments/app/x"), "read")
    assert decision.allowed and decision.rule is not None and decision.rule.pattern.value == "payments/**"
    assert decision.grant is not None and decision.grant.binding is None  # carried by the token


# -- every capability -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("capability", list(Capability))
def test_each_capability_is_granted_only_where_named(capability: Capability) -> None:
    kind = next(k for k in (ResourceKind.SECRET, ResourceKind.TRANSIT_KEY, ResourceKind.SYSTEM)
                if capability in APPLICABLE[k])
    selector, target, other = {
        ResourceKind.SECRET: ("paths: [team/a]", secret("team/a"), secret("team/b")),
        ResourceKind.TRANSIT_KEY: ("keys: [team-key]", key("team-key"), key("other-key")),
        ResourceKind.SYSTEM: ("system: [tokens]", system("tokens"), system("root-key")),
    }[kind]
    policies = policy_set(f"""\
        version: 1
        policies:
          - name: one
            rules:
              - {{{selector}, capabilities: [{capability.value}], effect: allow}}
        """)
    caller = token("t", "one")
    assert policies.allows(caller, target, capability)
    assert not policies.allows(caller, other, capability)
    for different in Capability:
        if different is not capability:
            assert not policies.allows(caller, target, different), different


def test_the_builtin_admin_policy_grants_everything_that_applies() -> None:
    admin = token("admin", ADMIN_POLICY)
    policies = PolicySet()
    for kind, capabilities in APPLICABLE.items():
        targets = {ResourceKind.SECRET: [secret("a/b"), secret("ns/deep/er/path")],
                   ResourceKind.TRANSIT_KEY: [key("k"), key("payments-2024.v1")],
                   ResourceKind.SYSTEM: [system(n) for n in SYSTEM_RESOURCES]}[kind]
        for target in targets:
            for capability in capabilities:
                decision = policies.decide(admin, target, capability)
                assert decision.allowed, (target, capability)
                assert decision.rule is not None and decision.rule.location.source == "<builtin>"
    assert set(Capability) == set().union(*APPLICABLE.values())


def test_system_resources_need_admin_on_them() -> None:
    policies = policy_set("""\
        version: 1
        policies:
          - name: token-admin
            rules:
              - {system: [tokens], capabilities: [admin], effect: allow}
        """)
    caller = token("ops", "token-admin")
    assert policies.allows(caller, access.Resource.system("tokens"), access.Capability.ADMIN)
    assert not policies.allows(caller, access.ROOT_KEY, access.Capability.ADMIN)
    assert not policies.allows(caller, secret("tokens/x"), "read")  # a namespace named like it is unrelated


# -- bindings for each identity kind --------------------------------------------------------------------------


@pytest.mark.parametrize(("caller", "expected"), [
    (cert("uri", "spiffe://cluster.local/ns/payments/sa/web"), True),
    (cert("uri", "spiffe://cluster.local/ns/payments/sa/web/extra"), False),
    (cert("uri", "spiffe://cluster.local/ns/billing/sa/web"), False),
    (cert("uri", "spiffe://evil.local/ns/payments/sa/web"), False),
    # a subject common name spelling the URI is not the URI
    (cert("subject", "spiffe://cluster.local/ns/payments/sa/web"), False),
    (cert("dns", "api.payments.svc.cluster.local"), True),
    (cert("dns", "a.api.payments.svc.cluster.local"), False),
    (cert("subject", "api.payments.svc.cluster.local"), False),
    (sa("payments", "deployer"), True),
    (sa("payments", "web"), False),
    (sa("billing", "deployer"), False),
    (token("payments/deployer"), False),  # a token's name is not a service account
    # an id that is not what the certificate authenticator makes matches nothing
    (Principal(PrincipalId("mtls:spiffe://cluster.local/ns/payments/sa/web"),
               "spiffe://cluster.local/ns/payments/sa/web", "mtls"), False),
    (Principal(PrincipalId("other:uri:x"), "x", "mtls"), False),
    (Principal(PrincipalId("x"), "payments/deployer", "oidc"), False),
])
def test_read_binding_for_each_identity_kind(policies: PolicySet, caller: Principal, expected: bool) -> None:
    assert policies.allows(caller, secret("payments/db"), "read") is expected


def test_subject_and_token_bindings(policies: PolicySet) -> None:
    batch = cert("subject", "payments batch 7")
    assert policies.allows(batch, secret("payments/app/x"), "create")
    assert not policies.allows(batch, secret("payments/app/x"), "read")
    decision = policies.decide(token("ci-7"), secret("payments/root/x"), "update")
    assert not decision.allowed and decision.binding is not None
    assert decision.binding.kind.value == "token" and decision.binding.location.line == 35


def test_grants_list_carried_policies_then_bindings_in_order(policies: PolicySet) -> None:
    grants = policies.grants(sa("payments", "deployer"))
    assert [(g.policy, g.binding.location.line if g.binding else None) for g in grants] == [
        ("payments-read", 29), ("payments-write", 29)]
    more = policy_set(PAYMENTS.rstrip(" ") + '      - identity: {kind: token, pattern: "ci-x"}\n'
                                 "        policies: [payments-read, root-reader]\n")
    grants = more.grants(token("ci-x", "payments-read"))
    assert [(g.policy, g.binding.index if g.binding else None) for g in grants] == [
        ("payments-read", None), ("no-root", 4), ("root-reader", 5)]


def test_decision_names_file_line_policy_rule_and_pattern(policies: PolicySet) -> None:
    decision = policies.decide(WEB, secret("payments/app/api"), "list")
    assert decision.allowed
    rule = decision.rule
    assert rule is not None
    assert (str(rule.location), rule.policy, rule.rule.index, rule.pattern.value) == (
        "p.yaml:5", "payments-read", 0, "payments/**")
    binding = decision.binding
    assert binding is not None
    assert (str(binding.location), binding.index, binding.pattern.value) == (
        "p.yaml:27", 0, "spiffe://cluster.local/ns/payments/sa/*")
    assert decision.capability is Capability.LIST and decision.resource_kind is ResourceKind.SECRET


# -- listing --------------------------------------------------------------------------------------------------


def test_listing_shows_only_what_the_caller_may_list() -> None:
    policies = policy_set("""\
        version: 1
        policies:
          - name: lister
            rules:
              - {paths: ["team/app/**", "team/shared"], capabilities: [list], effect: allow}
              - {paths: ["team/app/secret-*"], capabilities: [list], effect: deny}
              - {paths: ["team/readable"], capabilities: [read], effect: allow}
              - {keys: ["team-*"], capabilities: [list], effect: allow}
        """)
    caller = token("t", "lister")
    paths = ["app/a", "app/b/c", "app/secret-x", "shared", "readable", "other", "shared/child"]
    assert policies.filter_visible(caller, "team", paths) == ["app/a", "app/b/c", "shared"]
    assert policies.filter_visible(caller, "other", paths) == []
    assert policies.visible_keys(caller, ["team-a", "teamb", "team-", "other"]) == ["team-a", "team-"]
    # the same answer as asking `list` one path at a time, the way service.access.visible does
    resources = [access.Resource.secret("team", p) for p in paths]
    assert [r.name for r in access.visible(policies, caller, resources)] == [
        f"team/{p}" for p in policies.filter_visible(caller, "team", paths)]


# -- the service layer's Authorizer ---------------------------------------------------------------------------


def test_a_policy_set_is_the_service_layers_authorizer(policies: PolicySet) -> None:
    authorizer: access.Authorizer = policies  # checked by mypy where the service layer builds it
    access.require(authorizer, WEB, access.Resource.secret("payments", "db"), access.Capability.READ)
    with pytest.raises(PermissionDenied, match=r"mtls:spiffe://cluster\.local/ns/payments/sa/web may not read"):
        access.require(authorizer, WEB, access.Resource.secret("payments", "root/ca"), access.Capability.READ)
    assert authorizer.allows(token("admin", access.ADMIN_POLICY), access.ROOT_KEY, access.Capability.ADMIN)


def test_the_vocabulary_is_the_service_layers() -> None:
    from secretsvc.service import tokens

    assert [c.value for c in access.Capability] == [c.value for c in Capability]
    assert [k.value for k in access.ResourceKind] == [k.value for k in ResourceKind]
    assert {access.ROOT_KEY.name, tokens.TOKENS.name} <= set(SYSTEM_RESOURCES)
    assert access.ADMIN_POLICY == ADMIN_POLICY


def test_unknown_kinds_and_capabilities_are_errors_not_denials(policies: PolicySet) -> None:
    with pytest.raises(InvalidArgument, match="unknown capability 'reed'"):
        policies.allows(WEB, secret("payments/db"), "reed")
    with pytest.raises(InvalidArgument, match="unknown resource kind 'file'"):
        policies.allows(WEB, access.Resource("file", "x"), "read")  # type: ignore[arg-type]


def test_memos_stay_bounded_and_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_CACHED_PRINCIPALS", 4)
    monkeypatch.setattr(limits, "MAX_CACHED_VIEWS", 2)
    policies = policy_set(PAYMENTS)
    for round_ in range(3):
        for n in range(10):
            caller = cert("uri", f"spiffe://cluster.local/ns/payments/sa/w{n}")
            assert policies.allows(caller, secret("payments/db"), "read"), round_
            assert not policies.allows(token(f"t{n}", "payments-write"), secret("payments/db"), "read")
            assert policies.allows(token(f"t{n}", "payments-write"), secret("payments/app/x"), "update")
        assert len(policies._callers) <= 4 and len(policies._views) <= 2
