"""Floods of trigger material: each block costs bounded time and never raises."""

from __future__ import annotations

import itertools

import pytest

from secretsvc.scan.rules import RuleSet
from secretsvc.scan.rules.engine import MAX_HITS_PER_SCAN
from tests.unit.scan.rules.support import content

FLOODS = {
    "assignments": b"password=x1234567Ab\n" * 250_000,
    "assignments-one-line": b"api_key: Zq9xY7wv3T " * 250_000,
    "pem-headers": (b"-----BEGIN " + b"RSA PRIVATE KEY-----\n") * 100_000,
    "netrc-chain": b"machine x login y password " * 100_000,
    "jwt-prefixes": b"eyJhbGciOiJIUzI1NiJ9.eyJ" * 100_000,
    "key-id-prefixes": b"AK" + b"IA" * 2_000_000,
    "url-userinfo": b"https://a:bcdefgh@" * 200_000,
    "long-run": b'"auth": "' + b"A" * 3_000_000,
    "nul-bytes": b"\x00" * 4_000_000,
    "kubeconfig-tokens": b"kind: Config\nclusters:\nusers:\n" + b"  token: Zq9xY7wv3T41Zq9xY7wv3T41aa\n" * 150_000,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(FLOODS))
def test_flood_is_scanned_in_bounded_time(rules: RuleSet, name: str) -> None:
    matches = rules.scan(content(FLOODS[name]))
    assert len(matches) <= MAX_HITS_PER_SCAN
    for a, b in itertools.pairwise(matches):
        assert a.end <= b.start


def test_hits_beyond_the_cap_are_dropped_not_fatal(rules: RuleSet) -> None:
    line = b"token = 'Zq9xY7wv3T41'\n"
    data = line * (MAX_HITS_PER_SCAN + 10)
    matches = rules.scan(content(data))
    # Every examined assignment is reported; the ones past the cap are not examined at all.
    assert 0 < len(matches) <= MAX_HITS_PER_SCAN
    assert {m.rule_id for m in matches} == {"generic-secret-assignment"}


@pytest.mark.parametrize("engine", ["hyperscan", "re"])
def test_a_block_with_more_hits_than_the_cap_says_it_was_cut_short(engine: str) -> None:
    small = RuleSet.default(engine=engine, max_hits=50)
    assert small.max_hits == 50
    assert small.without(["jwt"]).max_hits == 50
    line = b"password=changeme\n"
    over = small.match(content(line * 60))
    assert over.truncated
    # Exactly at the cap nothing was dropped: every hit was examined.
    at_cap = small.match(content(line * 10))
    assert not at_cap.truncated
    assert small.scan(content(line * 60)) == over.matches


def test_max_hits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_hits"):
        RuleSet.default(max_hits=0)
