"""The allowlist pragma, binary-ish data, and secrets at the edges of a block."""

from __future__ import annotations

import random

import pytest

from secretsvc.scan.rules import RuleSet
from tests import fakecreds
from tests.unit.scan.rules.support import content, found
from tests.unit.scan.rules.test_positives import TOKENS


def test_pragma_on_the_matched_line_suppresses(rules: RuleSet) -> None:
    token = fakecreds.fake_github_token(random.Random(1))
    assert found(rules, f"GH={token}  # pragma: allowlist secret\n") == []
    assert found(rules, f"// pragma: allowlist nextline secret\nconst gh = '{token}';\n") == []


def test_pragma_elsewhere_does_not_suppress(rules: RuleSet) -> None:
    rng = random.Random(2)
    a, b = fakecreds.fake_npm_token(rng), fakecreds.fake_npm_token(rng)
    text = f"x = '{a}'  # pragma: allowlist secret\ny = '{b}'\n\n# pragma: allowlist nextline secret\n\nz = 1\n"
    assert found(rules, text) == [("npm-token", b)]


def test_pragma_covers_a_multiline_private_key(rules: RuleSet) -> None:
    pem = fakecreds.fake_private_key_pem(random.Random(3), "ec")
    assert [rid for rid, _ in found(rules, pem)] == ["private-key"]
    lines = pem.strip().splitlines()
    lines[0] += "  # pragma: allowlist secret"
    assert found(rules, "\n".join(lines)) == []
    assert found(rules, "key: |  # pragma: allowlist nextline secret\n" + pem) == []


@pytest.mark.parametrize("rule_id", sorted(TOKENS))
def test_secret_at_start_and_end_of_data(rules: RuleSet, rule_id: str) -> None:
    token = TOKENS[rule_id](random.Random(rule_id))
    assert found(rules, token) == [(rule_id, token)]
    assert found(rules, "prefix line\n" + token) == [(rule_id, token)]
    assert found(rules, token + "\nsuffix line\n") == [(rule_id, token)]


@pytest.mark.parametrize("rule_id", sorted(TOKENS))
def test_secret_between_binary_bytes(rules: RuleSet, rule_id: str) -> None:
    rng = random.Random(rule_id)
    token = TOKENS[rule_id](rng)
    blob = b"\x7fELF\x02\x01\x01\x00" + rng.randbytes(3000).replace(b"\x00", b"\x01")
    data = blob + b"\x00" + token.encode() + b"\x00" + blob
    c = content(data, binary=True)
    hits = [(m.rule_id, m.secret.decode(), m.start) for m in rules.scan(c)]
    assert (rule_id, token, len(blob) + 1) in hits


def test_deep_offset_in_a_large_block(rules: RuleSet) -> None:
    rng = random.Random(5)
    token = fakecreds.fake_stripe_secret_key(rng)
    filler = ("lorem ipsum dolor sit amet " * 40 + "\n").encode()
    data = filler * 5000 + b"stripe: " + token.encode() + b"\n" + filler * 100
    matches = rules.scan(content(data))
    assert [(m.rule_id, m.start) for m in matches] == [("stripe-secret-key", len(filler) * 5000 + 8)]


def test_window_edge_does_not_truncate_a_long_secret(rules: RuleSet) -> None:
    # A key id just before a long base64 run: the near-key-id window ends mid-run, which must not produce
    # a 40-character "secret" cut out of the longer string.
    rng = random.Random(6)
    key_id = fakecreds.fake_aws_access_key_id(rng)
    long_run = "".join(rng.choice(fakecreds.B64) for _ in range(600))
    assert found(rules, f"{key_id} {long_run}\n") == [("aws-access-key-id", key_id)]


def test_empty_and_tiny_data(rules: RuleSet) -> None:
    assert rules.scan(content(b"")) == []
    assert rules.scan(content(b"\x00")) == []
    assert rules.scan(content(b"password=")) == []
