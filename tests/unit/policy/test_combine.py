"""AllOf and AnyOf combine authorizers; an empty combination is refused as a mistake."""

from __future__ import annotations

import pytest

from secretsvc.auth.principal import Principal
from secretsvc.errors import InvalidArgument
from secretsvc.policy import AllOf, AnyOf
from secretsvc.policy.model import Resource
from tests.unit.policy.support import policy_set, secret, token


class Fixed:
    def __init__(self, answer: bool) -> None:
        self.answer = answer

    def allows(self, caller: Principal, resource: Resource, capability: str) -> bool:
        return self.answer


def test_all_of_and_any_of() -> None:
    yes, no = Fixed(True), Fixed(False)
    caller, target = token("t"), secret("a/b")
    assert AllOf([yes, yes]).allows(caller, target, "read")
    assert not AllOf([yes, no]).allows(caller, target, "read")
    assert AnyOf([no, yes]).allows(caller, target, "read")
    assert not AnyOf([no, no]).allows(caller, target, "read")


def test_empty_combinations_are_misuse() -> None:
    with pytest.raises(InvalidArgument, match="would allow everything"):
        AllOf([])
    with pytest.raises(InvalidArgument, match="allows nothing"):
        AnyOf([])


def test_a_policy_set_combines() -> None:
    policies = policy_set("version: 1\npolicies:\n  - {name: r, rules: [{paths: ['a/**'], capabilities: [read], "
                          "effect: allow}]}\n")
    read_only = AllOf([policies, Fixed(True)])
    assert read_only.allows(token("t", "r"), secret("a/b"), "read")
    assert not AllOf([policies, Fixed(False)]).allows(token("t", "r"), secret("a/b"), "read")
