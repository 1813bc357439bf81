"""Helpers for the rule tests."""

from __future__ import annotations

from secretsvc.scan.model import Content, Location, Match
from secretsvc.scan.rules import RuleSet


def content(text: str | bytes, *, binary: bool = False) -> Content:
    data = text.encode() if isinstance(text, str) else text
    return Content(data=data, path="app/settings", layer_index=0, location=Location.FILE, binary=binary)


def scan(rules: RuleSet, text: str | bytes) -> list[Match]:
    return rules.scan(content(text))


def found(rules: RuleSet, text: str | bytes) -> list[tuple[str, str]]:
    """(rule id, secret) of every match, checking each span points at its secret."""
    c = content(text)
    out = []
    for m in rules.scan(c):
        assert c.data[m.start : m.end] == m.secret
        out.append((m.rule_id, m.secret.decode("utf-8", "replace")))
    return out
