"""Property tests: random noise never satisfies a checksum-bearing rule; a planted token is always found."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsvc.scan.rules import RuleSet
from tests import fakecreds
from tests.unit.scan.rules.support import found

CHECKSUM_RULES = {
    "github-classic-token",
    "github-app-token",
    "npm-token",
    "pypi-token",
    "private-key",
    "kubeconfig-client-key",
    "jwt",
    "azure-storage-connection-string",
}
TOKEN_ALPHABET = fakecreds.URLSAFE + "+/=.:\n "
# Noise biased towards the shapes the checksum rules look for, so the checks are actually exercised.
PREFIXES = ["ghp_", "gho_", "ghs_", "npm_", "pypi-AgE", "eyJ", "AccountKey=", "-----BEGIN " + "RSA PRIVATE KEY-----\n"]


@pytest.fixture(scope="module")
def checksum_rules(rules: RuleSet) -> RuleSet:
    return rules.without({r.rule_id for r in rules.rules} - CHECKSUM_RULES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    noise=st.lists(
        st.one_of(st.sampled_from(PREFIXES), st.text(alphabet=TOKEN_ALPHABET, min_size=1, max_size=120)),
        max_size=12,
    )
)
def test_random_printable_noise_has_no_checksum_findings(checksum_rules: RuleSet, noise: list[str]) -> None:
    assert found(checksum_rules, "".join(noise)) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32),
    before=st.text(alphabet=TOKEN_ALPHABET, max_size=200),
    after=st.text(alphabet=TOKEN_ALPHABET, max_size=200),
)
def test_planted_token_is_found_in_noise(rules: RuleSet, seed: int, before: str, after: str) -> None:
    rng = random.Random(seed)
    token = rng.choice([fakecreds.fake_github_token, fakecreds.fake_npm_token, fakecreds.fake_stripe_secret_key])(rng)
    hits = found(rules, before + "\n" + token + "\n" + after)
    assert token in [secret for _, secret in hits]
