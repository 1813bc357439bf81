"""Credentials for hosts reserved for documentation (RFC 2606 / 6761) are kept but marked as documentation
examples: the pipeline lowers them in a man page and keeps them in /root/.netrc (tests/unit/scan for that)."""

from __future__ import annotations

import random

import pytest

from secretsvc.scan.model import Content, Location
from secretsvc.scan.rules import RuleSet


def found(rules: RuleSet, text: str) -> list[str]:
    """Rule ids of the matches not marked as documentation examples."""
    return [m.rule_id for m in rules.scan(Content(text.encode(), "f", 0, Location.FILE)) if not m.documentation_example]


def doubted(rules: RuleSet, text: str) -> list[str]:
    return [m.rule_id for m in rules.scan(Content(text.encode(), "f", 0, Location.FILE)) if m.documentation_example]


def password(seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(16))


@pytest.mark.parametrize("host", ["example.org", "apt.example.com", "db.example", "ci.test", "x.invalid",
                                  "example\\&.org"])
def test_netrc_for_a_documentation_host_is_marked_as_an_example(rules: RuleSet, host: str) -> None:
    text = f"machine {host} login apt password {password(1)}\n"
    assert found(rules, text) == []
    assert doubted(rules, text) == ["netrc-password"]


@pytest.mark.parametrize("host", ["example.org", "db.example.com", "repo.test"])
def test_url_credentials_for_a_documentation_host_are_marked_as_examples(rules: RuleSet, host: str) -> None:
    assert doubted(rules, f"deb https://apt:{password(2)}@{host}/debian stable main\n") == ["git-credentials"]
    assert doubted(rules, f"DATABASE_URL=postgres://app:{password(3)}@{host}:5432/app\n") == ["database-uri-password"]


@pytest.mark.parametrize("host", ["examples.org", "example.organic.io", "git.internal.corp", "10.0.0.7"])
def test_the_same_credentials_for_real_hosts_are_flagged(rules: RuleSet, host: str) -> None:
    assert doubted(rules, f"machine {host} login apt password {password(4)}\n") == []
    assert found(rules, f"machine {host} login apt password {password(4)}\n") == ["netrc-password"]
    assert found(rules, f"https://apt:{password(5)}@{host}/repo.git\n") == ["git-credentials"]
    assert found(rules, f"postgres://app:{password(6)}@{host}:5432/app\n") == ["database-uri-password"]


@pytest.mark.parametrize("word", ["Passwort", "Kennwort", "motdepasse"])
def test_translated_password_stand_ins_are_not_flagged(rules: RuleSet, word: str) -> None:
    assert found(rules, f"http://Benutzer:{word}@server.corp:8080\n") == []
