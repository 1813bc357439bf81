"""Property: the indexed evaluator decides exactly as a brute-force scan of every rule would."""

from __future__ import annotations

import itertools
import json
from fnmatch import fnmatchcase

from hypothesis import given, settings
from hypothesis import strategies as st

from secretsvc.policy import Capability, PolicySet, Source, load_sources
from tests.unit.policy.support import key, secret, token
from tests.unit.policy.test_glob import reference

NAMES = ["a", "b", "ab", "c.d", "a-b"]
SEGMENT_PATTERNS = [*NAMES, "*", "a*", "*b", "a*b", "*-*"]
NAMESPACES = ["ns1", "ns2"]
CAPS = ["read", "list", "update"]
KEY_CAPS = ["encrypt", "decrypt"]


@st.composite
def secret_patterns(draw: st.DrawFn) -> str:
    first = draw(st.sampled_from([*NAMESPACES, "*", "n*", "**"]))
    rest = draw(st.lists(st.sampled_from([*SEGMENT_PATTERNS, "**"]), min_size=0 if first == "**" else 1,
                         max_size=4))
    segments = [first, *rest]
    if any(x == y == "**" for x, y in itertools.pairwise(segments)) or (len(segments) < 2 and "**" not in segments):
        segments = [first if first != "**" else "*", "a"]
    return "/".join(segments)


key_patterns = st.sampled_from(["k", "k-*", "*", "*-x", "k*x", "k-a-x"])


@st.composite
def rules(draw: st.DrawFn) -> dict[str, object]:
    if draw(st.booleans()):
        return {"paths": draw(st.lists(secret_patterns(), min_size=1, max_size=3, unique=True)),
                "capabilities": draw(st.lists(st.sampled_from(CAPS), min_size=1, max_size=3, unique=True)),
                "effect": draw(st.sampled_from(["allow", "allow", "deny"]))}
    return {"keys": draw(st.lists(key_patterns, min_size=1, max_size=3, unique=True)),
            "capabilities": draw(st.lists(st.sampled_from(KEY_CAPS), min_size=1, max_size=2, unique=True)),
            "effect": draw(st.sampled_from(["allow", "allow", "deny"]))}


policy_lists = st.lists(st.lists(rules(), min_size=1, max_size=12), min_size=1, max_size=5)
secret_names = st.builds(lambda ns, rest: "/".join([ns, *rest]), st.sampled_from(NAMESPACES),
                         st.lists(st.sampled_from(NAMES), min_size=1, max_size=5))
key_names = st.sampled_from(["k", "k-x", "k-a-x", "kx", "x", "k-"])


def build(policies: list[list[dict[str, object]]]) -> PolicySet:
    document = {"version": 1, "policies": [{"name": f"p{i}", "rules": rs} for i, rs in enumerate(policies)]}
    return load_sources([Source("gen.json", json.dumps(document, indent=1).encode())])


def brute_force(policies: list[list[dict[str, object]]], held: set[int], selector: str, name: str,
                capability: str) -> tuple[bool, set[tuple[int, int, str, str]]]:
    """(allowed, every matching (policy, rule, pattern, effect)) by testing every rule of every held policy."""
    matched = set()
    for p, rs in enumerate(policies):
        if p not in held:
            continue
        for r, rule in enumerate(rs):
            if selector not in rule or capability not in rule["capabilities"]:  # type: ignore[operator]
                continue
            for pattern in rule[selector]:  # type: ignore[attr-defined]
                hit = (reference(pattern.split("/"), name.split("/")) if selector == "paths"
                       else fnmatchcase(name, pattern))
                if hit:
                    matched.add((p, r, pattern, str(rule["effect"])))
    effects = {m[3] for m in matched}
    return "allow" in effects and "deny" not in effects, matched


@settings(max_examples=300, deadline=None)
@given(policies=policy_lists, held=st.sets(st.integers(0, 4), min_size=1),
       queries=st.lists(st.one_of(
           st.tuples(st.just("paths"), secret_names, st.sampled_from(CAPS)),
           st.tuples(st.just("keys"), key_names, st.sampled_from(KEY_CAPS))), min_size=1, max_size=20))
def test_indexed_evaluation_equals_brute_force(policies: list[list[dict[str, object]]], held: set[int],
                                               queries: list[tuple[str, str, str]]) -> None:
    policy_set = build(policies)
    caller = token("t", *(f"p{i}" for i in sorted(held)))
    for selector, name, capability in queries:
        target = secret(name) if selector == "paths" else key(name)
        decision = policy_set.decide(caller, target, capability)
        expected, matched = brute_force(policies, held, selector, name, capability)
        assert decision.allowed is expected, (selector, name, capability, matched)
        assert policy_set.allows(caller, target, capability) is expected
        if decision.rule is None:  # denied by default: nothing matched at all
            assert not matched
        else:  # the deciding rule matches, with the effect of the decision
            ref = decision.rule
            found = (int(ref.policy[1:]), ref.rule.index, ref.pattern.value, ref.rule.effect.value)
            assert found in matched
            assert found[3] == ("allow" if expected else "deny")
        explained = {(int(r.policy[1:]), r.rule.index, r.pattern.value, r.rule.effect.value)
                     for r in policy_set.matching_rules(caller, target, capability)}
        assert explained == matched


@settings(max_examples=100, deadline=None)
@given(policies=policy_lists, names=st.lists(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4),
                                             max_size=10))
def test_listing_equals_asking_list_for_each_path(policies: list[list[dict[str, object]]],
                                                  names: list[list[str]]) -> None:
    listing = [[{**r, "capabilities": ["list"]} if "paths" in r else r for r in rs] for rs in policies]
    policy_set = build(listing)
    caller = token("t", *(f"p{i}" for i in range(len(policies))))
    paths = ["/".join(n) for n in names]
    everything = set(range(len(policies)))
    expected = [p for p in paths if brute_force(listing, everything, "paths", f"ns1/{p}", "list")[0]]
    assert policy_set.filter_visible(caller, "ns1", paths) == expected
    assert all(policy_set.allows(caller, secret(f"ns1/{p}"), Capability.LIST) for p in expected)
