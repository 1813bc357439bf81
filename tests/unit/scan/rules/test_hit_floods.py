"""Text that repeats a shape must not flood the trigger engine up to its per-block hit limit, which would leave
the block half read: colon-separated hex (certificate fingerprints in CA bundles), and long runs of one
character (base64 of zero bytes is thousands of `A`)."""

from __future__ import annotations

import random
import string

import pytest

from secretsvc.scan.model import Content, Location
from secretsvc.scan.rules import RuleSet


def _fingerprint_lines(rng: random.Random, count: int) -> bytes:
    lines = []
    for _ in range(count):
        pairs = ":".join(f"{rng.randrange(256):02X}" for _ in range(32))
        lines.append(f"# SHA256 Fingerprint: {pairs}")
    return ("\n".join(lines) + "\n").encode()


def test_a_ca_bundle_of_fingerprints_stays_well_under_the_hit_limit() -> None:
    data = _fingerprint_lines(random.Random(7), 3000)  # ~90,000 colon-separated fields
    rules = RuleSet.default(max_hits=3000)
    result = rules.match(Content(data, "etc/ssl/certs/ca-certificates.crt", 0, Location.FILE))
    assert not result.truncated
    assert result.matches == []


def test_the_same_text_as_a_pgpass_file_is_still_read() -> None:
    rng = random.Random(8)
    data = _fingerprint_lines(rng, 50) + b"db.internal:5432:app:svc:" + "".join(
        rng.choice("abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(18)
    ).encode() + b"\n"
    matches = RuleSet.default().scan(Content(data, "root/.pgpass", 0, Location.FILE))
    assert [m.rule_id for m in matches] == ["pgpass-password"]


@pytest.fixture(scope="module")
def strict_rules() -> RuleSet:
    return RuleSet.default(max_hits=200)


@pytest.mark.parametrize("char", list(string.printable), ids=lambda c: f"{ord(c):02x}")
def test_a_long_run_of_one_character_gives_few_trigger_hits(strict_rules: RuleSet, char: str) -> None:
    result = strict_rules.match(Content(char.encode() * 100_000, "app/blob.txt", 0, Location.FILE))
    assert not result.truncated
