"""The RuleSet API: metadata, without(), engines, thread safety, documentation."""

from __future__ import annotations

import itertools
import random
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from secretsvc.errors import InvalidArgument
from secretsvc.scan.model import Severity
from secretsvc.scan.rules import RuleSet
from tests import fakecreds
from tests.unit.scan.rules.support import content, found

DOCS = Path(__file__).resolve().parents[4] / "docs" / "scan-rules.md"
STABLE_IDS = {
    "aws-access-key-id", "aws-secret-access-key", "gcp-service-account-key", "gcp-api-key",
    "azure-storage-connection-string", "github-classic-token", "github-fine-grained-token", "github-app-token",
    "gitlab-token", "slack-token", "slack-webhook", "stripe-secret-key", "twilio-api-key", "sendgrid-api-key",
    "openai-api-key", "anthropic-api-key", "npm-token", "pypi-token", "docker-config-auth",
    "kubeconfig-client-key", "kubeconfig-token", "vault-token", "private-key", "jwt", "database-uri-password",
    "netrc-password", "git-credentials", "generic-secret-assignment",
}  # fmt: skip


def test_rule_ids_are_the_published_ones(rules: RuleSet) -> None:
    assert {r.rule_id for r in rules.rules if r.source == "core.toml"} == STABLE_IDS
    for info in rules.rules:
        assert isinstance(info.severity, Severity)
        assert info.description and info.keywords, info.rule_id
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", info.rule_id)


def test_docs_table_lists_every_rule_with_its_severity(rules: RuleSet) -> None:
    text = DOCS.read_text()
    for info in rules.rules:
        row = re.search(rf"^\| `{re.escape(info.rule_id)}` \| (\w+) \|", text, re.M)
        assert row is not None, info.rule_id
        assert row.group(1) == info.severity.label, info.rule_id


def test_without_drops_rules(rules: RuleSet) -> None:
    token = fakecreds.fake_github_token(random.Random(1))
    text = f"GITHUB_TOKEN={token}\n"
    assert found(rules, text) == [("github-classic-token", token)]
    fewer = rules.without(["github-classic-token"])
    assert "github-classic-token" not in {r.rule_id for r in fewer.rules}
    # With the specific rule gone, the generic heuristic still sees a secret-named assignment.
    assert found(fewer, text) == [("generic-secret-assignment", token)]
    assert found(fewer.without(["generic-secret-assignment"]), text) == []
    assert len(fewer.rules) == len(rules.rules) - 1  # the original is unchanged


def test_without_unknown_id_is_an_error(rules: RuleSet) -> None:
    with pytest.raises(InvalidArgument, match="no-such-rule"):
        rules.without(["no-such-rule"])
    with pytest.raises(InvalidArgument):
        rules.without(r.rule_id for r in rules.rules)  # nothing left


def test_python_re_engine_agrees_with_hyperscan(rules: RuleSet) -> None:
    fallback = RuleSet.default(engine="re")
    assert rules.engine == "hyperscan"
    assert fallback.engine == "re"
    for seed in range(4):
        rng = random.Random(seed)
        texts = [s.text for s in fakecreds.samples(rng)] + fakecreds.decoys(rng)
        for text in texts:
            assert found(fallback, text) == found(rules, text)


def test_concurrent_scans_share_one_rule_set(rules: RuleSet) -> None:
    samples = [s for seed in range(6) for s in fakecreds.samples(random.Random(seed))]
    expected = [found(rules, s.text) for s in samples]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda s: found(rules, s.text), samples * 3))
    assert results == expected * 3


def test_matches_are_sorted_and_never_overlap(rules: RuleSet) -> None:
    text = "\n".join(s.text for s in fakecreds.samples(random.Random(5)))
    matches = rules.scan(content(text))
    assert len(matches) >= len(STABLE_IDS)
    for a, b in itertools.pairwise(matches):
        assert a.end <= b.start


def test_match_repr_hides_the_secret(rules: RuleSet) -> None:
    token = fakecreds.fake_npm_token(random.Random(6))
    (match,) = rules.scan(content(f"t={token}"))
    assert token not in repr(match)
