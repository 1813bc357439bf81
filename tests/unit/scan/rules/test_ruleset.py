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
from secretsvc.scan.rules import RuleSet, listing, registry
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


def test_docs_table_is_generated_from_the_rule_data(rules: RuleSet) -> None:
    text = DOCS.read_text(encoding="utf-8")
    wanted = listing.regenerate(text, rules.rules)
    assert text == wanted, "docs/scan-rules.md: run python -m secretsvc.scan.rules.listing docs/scan-rules.md"
    for info in rules.rules:
        row = re.search(rf"^\| `{re.escape(info.rule_id)}` \| [^\n]*? \| (\w+) \| ", text, re.M)
        assert row is not None, info.rule_id
        assert row.group(1) == info.severity.label, info.rule_id


def test_docs_table_check_notices_a_stale_table(tmp_path: Path) -> None:
    doc = tmp_path / "rules.md"
    blocks = f"{listing.TABLE_BEGIN}\n| stale |\n{listing.TABLE_END}\n{listing.NAMES_BEGIN}\n{listing.NAMES_END}\n"
    doc.write_text(f"# Rules\n\n{blocks}", encoding="utf-8")
    assert listing.main(["--check", str(doc)]) == 1
    assert listing.main([str(doc)]) == 0
    assert listing.main(["--check", str(doc)]) == 0
    assert "| `aws-access-key-id` | AWS | high |" in doc.read_text(encoding="utf-8")
    assert "`crc32-base62`" in doc.read_text(encoding="utf-8")
    assert doc.read_text(encoding="utf-8").startswith("# Rules\n")


def test_docs_name_every_registered_validator_detector_and_generator() -> None:
    registry.load_builtins()
    text = DOCS.read_text(encoding="utf-8")
    names = text[text.index(listing.NAMES_BEGIN) : text.index(listing.NAMES_END)]
    for name in [*registry.VALIDATORS, *registry.DETECTORS, *registry.GENERATORS]:
        assert f"`{name}`" in names, name


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
