"""Checks that need every document at once: unique policy names, bindings to defined policies, total sizes."""

from __future__ import annotations

from collections.abc import Sequence

from secretsvc.policy import limits
from secretsvc.policy.model import Document, Location, Problem


def link(documents: Sequence[Document]) -> list[Problem]:
    """Every problem among `documents` taken together (each document is already valid on its own)."""
    problems: list[Problem] = []
    defined: dict[str, Location] = {}
    policy_count = rule_count = binding_count = 0
    for document in documents:
        for index, policy in enumerate(document.policies):
            where = f"policies[{index}] ({policy.name})"
            policy_count += 1
            rule_count += len(policy.rules)
            if policy_count == limits.MAX_POLICIES + 1:
                problems.append(Problem(policy.location, where, "is one policy more than "
                                        f"MAX_POLICIES={limits.MAX_POLICIES} across all documents", limit=True))
            if rule_count > limits.MAX_RULES and rule_count - len(policy.rules) <= limits.MAX_RULES:
                problems.append(Problem(policy.location, where, "brings the rules across all documents past "
                                        f"MAX_RULES={limits.MAX_RULES}", limit=True))
            first = defined.get(policy.name)
            if first is not None:
                problems.append(Problem(policy.location, where,
                                        f"policy {policy.name!r} is already defined at {first}"))
            else:
                defined[policy.name] = policy.location
    for document in documents:
        for binding in document.bindings:
            binding_count += 1
            where = f"bindings[{binding.index}]"
            if binding_count == limits.MAX_BINDINGS + 1:
                problems.append(Problem(binding.location, where, "is one binding more than "
                                        f"MAX_BINDINGS={limits.MAX_BINDINGS} across all documents", limit=True))
            for index, name in enumerate(binding.policies):
                if name.value not in defined:
                    problems.append(Problem(Location(document.source, name.line), f"{where}.policies[{index}]",
                                            f"no document defines policy {name.value!r}"))
    return problems
