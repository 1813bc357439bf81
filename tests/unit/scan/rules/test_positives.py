"""Every rule finds its credential, exactly, in the contexts where images carry it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from secretsvc.scan.rules import RuleSet
from tests import fakecreds
from tests.unit.scan.rules.support import found

SEEDS = range(12)
# Rules that legitimately fire together on one sample: an AWS credentials file holds both halves.
TOGETHER = {"aws-access-key-id": {"aws-secret-access-key"}, "aws-secret-access-key": {"aws-access-key-id"}}

TOKENS: dict[str, Callable[[random.Random], str]] = {
    "aws-access-key-id": fakecreds.fake_aws_access_key_id,
    "gcp-api-key": fakecreds.fake_gcp_api_key,
    "github-classic-token": fakecreds.fake_github_token,
    "github-app-token": fakecreds.fake_github_app_token,
    "github-fine-grained-token": fakecreds.fake_github_fine_grained_token,
    "gitlab-token": fakecreds.fake_gitlab_token,
    "slack-token": lambda rng: fakecreds.fake_slack_token(rng, rng.choice("bp")),
    "slack-webhook": fakecreds.fake_slack_webhook,
    "stripe-secret-key": fakecreds.fake_stripe_secret_key,
    "twilio-api-key": fakecreds.fake_twilio_api_key,
    "sendgrid-api-key": fakecreds.fake_sendgrid_api_key,
    "openai-api-key": fakecreds.fake_openai_api_key,
    "anthropic-api-key": fakecreds.fake_anthropic_api_key,
    "npm-token": fakecreds.fake_npm_token,
    "pypi-token": fakecreds.fake_pypi_token,
    "vault-token": fakecreds.fake_vault_token,
    "jwt": fakecreds.fake_jwt,
}


def expected_secret(sample: fakecreds.Sample) -> str:
    if sample.rule_id == "private-key":
        return fakecreds.pem_secret_span(sample)
    if sample.rule_id == "gcp-service-account-key":
        body = "\n".join(sample.secret.strip().splitlines()[1:-1])
        return json.dumps(body)[1:-1]  # the key body as it sits in the JSON, newlines escaped
    return sample.secret


def test_every_core_rule_has_a_sample(rules: RuleSet) -> None:
    sampled = {s.rule_id for s in fakecreds.samples(random.Random(0))}
    assert sampled == {r.rule_id for r in rules.rules if r.source == "core.toml"}


@pytest.mark.parametrize("seed", SEEDS)
def test_samples_found_exactly_and_alone(rules: RuleSet, seed: int) -> None:
    for sample in fakecreds.samples(random.Random(seed)):
        hits = found(rules, sample.text)
        assert (sample.rule_id, expected_secret(sample)) in hits, sample
        assert {rid for rid, _ in hits} <= {sample.rule_id} | TOGETHER.get(sample.rule_id, set()), (sample, hits)


@pytest.mark.parametrize("kind", fakecreds.CONTEXTS)
@pytest.mark.parametrize("rule_id", sorted(TOKENS))
def test_token_found_in_every_file_kind(rules: RuleSet, rule_id: str, kind: str) -> None:
    rng = random.Random(f"{rule_id}/{kind}")
    for _ in range(3):
        token = TOKENS[rule_id](rng)
        # The key name is secret-shaped on purpose: the specific rule must win over the generic one.
        text = fakecreds.in_context(kind, "api_token", token)
        assert found(rules, text) == [(rule_id, token)], text


def test_shell_history(rules: RuleSet) -> None:
    rng = random.Random(7)
    gh, npm, slack = fakecreds.fake_github_token(rng), fakecreds.fake_npm_token(rng), fakecreds.fake_slack_token(rng)
    pw = fakecreds.fake_password(rng)
    history = (
        "ls -la\n"
        f'curl -H "Authorization: token {gh}" https://api.github.com/user\n'
        f"npm config set //registry.npmjs.org/:_authToken {npm}\n"
        f"SLACK_TOKEN={slack} ./notify.sh\n"
        f"mysql -u root --password={pw} app\n"
        "git push origin main\n"
    )
    assert found(rules, history) == [
        ("github-classic-token", gh),
        ("npm-token", npm),
        ("slack-token", slack),
        ("generic-secret-assignment", pw),
    ]


def test_docker_config_with_several_registries(rules: RuleSet) -> None:
    rng = random.Random(3)
    a, b = fakecreds.fake_docker_auth(rng), fakecreds.fake_docker_auth(rng)
    doc = json.dumps({"auths": {"ghcr.io": {"auth": a}, "quay.io": {"auth": b}}, "credsStore": "desktop"})
    assert found(rules, doc) == [("docker-config-auth", a), ("docker-config-auth", b)]


def test_kubeconfig_with_key_and_token(rules: RuleSet) -> None:
    rng = random.Random(4)
    key, token = fakecreds.fake_kube_client_key_data(rng), fakecreds.fake_kube_token(rng)
    text = fakecreds.kubeconfig(client_key_data=key, token=token)
    assert found(rules, text) == [("kubeconfig-client-key", key), ("kubeconfig-token", token)]


def test_kubeconfig_token_that_is_a_jwt_is_reported_once_as_kubeconfig(rules: RuleSet) -> None:
    token = fakecreds.fake_jwt(random.Random(5))
    assert found(rules, fakecreds.kubeconfig(token=token)) == [("kubeconfig-token", token)]


def test_aws_secret_near_key_id_without_a_named_key(rules: RuleSet) -> None:
    key_id, secret = fakecreds.fake_aws_key_pair(random.Random(6))
    text = f"creds = ('{key_id}', '{secret}')\n"
    assert found(rules, text) == [("aws-access-key-id", key_id), ("aws-secret-access-key", secret)]


def test_aws_secret_in_env_without_key_id(rules: RuleSet) -> None:
    secret = fakecreds.fake_aws_secret_access_key(random.Random(8))
    assert found(rules, f"AWS_SECRET_ACCESS_KEY={secret}\n") == [("aws-secret-access-key", secret)]


def test_private_key_in_json_string_and_yaml_block(rules: RuleSet) -> None:
    pem = fakecreds.fake_private_key_pem(random.Random(9), "ec")
    body = "\n".join(pem.strip().splitlines()[1:-1])
    assert found(rules, json.dumps({"key": pem})) == [("private-key", json.dumps(body)[1:-1])]
    indented = "tls:\n  key: |\n" + "".join("    " + line + "\n" for line in pem.strip().splitlines())
    assert [rid for rid, _ in found(rules, indented)] == ["private-key"]


def test_several_pem_keys_in_one_file(rules: RuleSet) -> None:
    rng = random.Random(10)
    pems = [fakecreds.fake_private_key_pem(rng, kind) for kind in ("rsa", "openssh", "pkcs8")]
    hits = found(rules, "\n".join(pems))
    assert [rid for rid, _ in hits] == ["private-key"] * 3


def test_database_uris_of_several_schemes(rules: RuleSet) -> None:
    rng = random.Random(11)
    for _ in range(10):
        uri, password = fakecreds.fake_database_uri(rng)
        assert found(rules, f"url: {uri}\n") == [("database-uri-password", password)]


def test_testpypi_token(rules: RuleSet) -> None:
    token = fakecreds.fake_pypi_token(random.Random(12), location=b"test.pypi.org")
    assert found(rules, f"password = {token}\n") == [("pypi-token", token)]
