"""Checking rules against their own examples: each positive must produce a match of its rule, each negative
none, in the rule set the rule is scanned with (so a rule that another claims first is found out too).

Failures name the rule, the template and what happened, never the filled-in value (fake as it is, it has a
credential's shape and would teach log scanners bad habits).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from secretsvc.scan.model import Content, Location
from secretsvc.scan.rules import RuleSet
from secretsvc.scan.rules.context import ALL_SCOPES
from secretsvc.scan.rules.examples import fill
from secretsvc.scan.rules.loader import LoadedRule

DEFAULT_SEEDS = (1, 2, 3)


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    rule_id: str
    source: str
    kind: str  # "positive" or "negative"
    template: str
    seed: int
    problem: str

    def __str__(self) -> str:
        example = f"{self.kind} example {self.template!r} (seed {self.seed})"
        return f"{self.source}: rule {self.rule_id}: {example}: {self.problem}"


def check_examples(
    ruleset: RuleSet, rules: Iterable[LoadedRule], seeds: Sequence[int] = DEFAULT_SEEDS
) -> list[ExampleFailure]:
    failures = []
    for loaded in rules:
        info = loaded.rule.info
        for kind, templates in (("positive", loaded.examples.positive), ("negative", loaded.examples.negative)):
            for template in templates:
                for seed in seeds:
                    rng = random.Random(f"{info.rule_id}/{seed}")  # noqa: S311 - fake example values, reproducible
                    problem = _problem(ruleset, info.rule_id, kind, fill(template, rng))
                    if problem:
                        failures.append(ExampleFailure(info.rule_id, info.source, kind, template, seed, problem))
                        break  # one seed is enough to show a template is wrong
    return failures


def _problem(ruleset: RuleSet, rule_id: str, kind: str, text: str) -> str | None:
    data = text.encode()
    # Every scope: an example shows what its rule finds where it applies, whatever the file is called.
    matches = ruleset.scan(Content(data=data, path="example", layer_index=0, location=Location.FILE), scopes=ALL_SCOPES)
    mine = [m for m in matches if m.rule_id == rule_id]
    if kind == "negative":
        return "matched, but a negative example must not" if mine else None
    if mine:
        return None
    others = sorted({m.rule_id for m in matches})
    if others:
        return f"no match of this rule; the text went to {', '.join(others)}"
    return "no match"
