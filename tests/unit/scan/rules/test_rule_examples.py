"""Every built-in rule against its own examples, with several seeds: positives match, negatives do not."""

from __future__ import annotations

from collections import Counter

from secretsvc.scan.rules import RuleSet
from secretsvc.scan.rules.loader import builtin_rules
from secretsvc.scan.rules.selfcheck import check_examples


def test_every_builtin_rule_matches_its_positive_examples_and_not_its_negatives(rules: RuleSet) -> None:
    failures = check_examples(rules, builtin_rules())
    assert not failures, f"{len(failures)} example(s) failed:\n" + "\n".join(map(str, failures))


def test_the_builtin_rules_cover_at_least_250_families() -> None:
    families = Counter(loaded.rule.info.family for loaded in builtin_rules())
    assert len(families) >= 250, len(families)


def test_the_pure_python_engine_agrees_on_every_example() -> None:
    assert not check_examples(RuleSet.default(engine="re"), builtin_rules(), seeds=(4,))
