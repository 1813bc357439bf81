"""Credentials for hosts reserved for documentation (RFC 2606 / 6761) are examples, not leaks."""

from __future__ import annotations

import random

import pytest

from secretsvc.scan.model import Content, Location
from secretsvc.scan.rules import RuleSet


def found(rules: RuleSet, text: str) -> list[str]:
    return [m.rule_id for m in rules.scan(Content(text.encode(), "f", 0, Location.FILE))]


def password(seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(16))


@pytest.mark.parametrize("host", ["example.org", "apt.example.com", "db.example", "ci.test", "x.invalid",
                                  "example\\&.org"])
def test_netrc_for_a_documentation_host_is_not_flagged(rules: RuleSet, host: str) -> None:
    assert found(rules, f"machine {host} login apt password {password(1)}\n") == []


@pytest.mark.parametrize("host", ["example.org", "db.example.com", "repo.test"])
def test_url_credentials_for_a_documentation_host_are_not_flagged(rules: RuleSet, host: str) -> None:
    assert found(rules, f"deb https://apt:{password(2)}@{host}/debian stable main\n") == []
    assert found(rules, f"DATABASE_URL=postgres://app:{password(3)}@{host}:5432/app\n") == []


@pytest.mark.parametrize("host", ["examples.org", "example.organic.io", "git.internal.corp", "10.0.0.7"])
def test_the_same_credentials_for_real_hosts_are_flagged(rules: RuleSet, host: str) -> None:
    assert found(rules, f"machine {host} login apt password {password(4)}\n") == ["netrc-password"]
    assert found(rules, f"https://apt:{password(5)}@{host}/repo.git\n") == ["git-credentials"]
    assert found(rules, f"postgres://app:{password(6)}@{host}:5432/app\n") == ["database-uri-password"]


@pytest.mark.parametrize("word", ["Passwort", "Kennwort", "motdepasse"])
def test_translated_password_stand_ins_are_not_flagged(rules: RuleSet, word: str) -> None:
    assert found(rules, f"http://Benutzer:{word}@server.corp:8080\n") == []
