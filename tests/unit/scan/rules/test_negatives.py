"""What must not be flagged: decoys, broken checksums, structures that only resemble credentials."""

from __future__ import annotations

import base64
import json
import random

import pytest

from secretsvc.scan.rules import RuleSet
from tests import fakecreds
from tests.unit.scan.rules.support import found


@pytest.mark.parametrize("seed", range(10))
def test_decoys_are_not_flagged(rules: RuleSet, seed: int) -> None:
    for decoy in fakecreds.decoys(random.Random(seed)):
        assert found(rules, decoy) == [], decoy


def test_decoys_together_in_one_file(rules: RuleSet) -> None:
    assert found(rules, "\n".join(fakecreds.decoys(random.Random(99)))) == []


@pytest.mark.parametrize(
    ("rule_id", "make"),
    [
        ("github-classic-token", fakecreds.fake_github_token),
        ("github-app-token", fakecreds.fake_github_app_token),
        ("npm-token", fakecreds.fake_npm_token),
    ],
)
def test_crc32_tail_must_match(rules: RuleSet, rule_id: str, make: object) -> None:
    rng = random.Random(rule_id)
    for _ in range(20):
        token = make(rng)  # type: ignore[operator]
        assert found(rules, f"see {token} here\n") == [(rule_id, token)]
        assert found(rules, f"see {fakecreds.corrupt_checksum(token)} here\n") == []


def test_pypi_token_must_be_a_pypi_macaroon(rules: RuleSet) -> None:
    rng = random.Random(1)
    token = fakecreds.fake_pypi_token(rng)
    assert found(rules, f"x {token} y\n") == [("pypi-token", token)]
    assert found(rules, f"x {token[:-8]} y\n") == []  # truncated signature
    assert found(rules, f"x {fakecreds.fake_pypi_token(rng, location=b'pypi.example')} y\n") == []
    lookalike = "pypi-" + "AgE" + "".join(rng.choice(fakecreds.URLSAFE) for _ in range(150))
    assert found(rules, f"x {lookalike} y\n") == []


def test_private_key_body_must_decode_to_a_key(rules: RuleSet) -> None:
    rng = random.Random(2)
    for kind in ("rsa", "ec", "pkcs8", "openssh"):
        pem = fakecreds.fake_private_key_pem(rng, kind)
        lines = pem.splitlines()
        broken = "\n".join([lines[0], "A" + lines[1][1:], *lines[2:]])  # first DER/magic byte destroyed
        assert found(rules, broken) == [], kind
    dashes = "-----"
    label = "RSA PRIVATE " + "KEY"
    prose = f"{dashes}BEGIN {label}{dashes}\n...your key here...\n{dashes}END {label}{dashes}\n"
    assert found(rules, prose) == []


def test_unterminated_private_key_is_not_flagged(rules: RuleSet) -> None:
    pem = fakecreds.fake_private_key_pem(random.Random(3), "rsa")
    assert found(rules, pem.rsplit("-----END", 1)[0]) == []


def test_jwt_parts_must_be_json(rules: RuleSet) -> None:
    rng = random.Random(4)
    token = fakecreds.fake_jwt(rng)
    _head, payload, sig = token.split(".")
    not_json = base64.urlsafe_b64encode(b'{"alg": HS256 broken').rstrip(b"=").decode()
    assert found(rules, f"t {not_json[:2]}J{not_json[3:]}.{payload}.{sig}\n") == []
    unsigned = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=").decode()
    assert found(rules, f"t {unsigned}.{payload}.{sig}\n") == []


def test_docker_auth_must_hold_user_and_password(rules: RuleSet) -> None:
    no_colon = base64.b64encode(b"justausername").decode()
    placeholder = base64.b64encode(b"user:changeme").decode()
    empty = base64.b64encode(b"user:").decode()
    for value in (no_colon, placeholder, empty):
        assert found(rules, fakecreds.docker_config_json(value)) == [], value


def test_kubeconfig_key_data_must_be_a_private_key(rules: RuleSet) -> None:
    dashes = "-----"
    cert = f"{dashes}BEGIN CERTIFICATE{dashes}\nMIIB\n{dashes}END CERTIFICATE{dashes}\n"
    data = base64.b64encode(cert.encode()).decode()
    assert found(rules, fakecreds.kubeconfig(client_key_data=data)) == []


def test_token_key_outside_a_kubeconfig_is_not_a_kubeconfig_token(rules: RuleSet) -> None:
    token = fakecreds.fake_kube_token(random.Random(5))
    hits = found(rules, f"auth:\n  token: {token}\n")
    assert all(rid != "kubeconfig-token" for rid, _ in hits)


def test_lone_forty_char_base64_is_not_an_aws_secret(rules: RuleSet) -> None:
    value = fakecreds.fake_aws_secret_access_key(random.Random(6))
    assert found(rules, f"value = {value}\n") == []


def test_stripe_test_keys_are_not_flagged(rules: RuleSet) -> None:
    key = "sk_" + "test_" + "".join(random.Random(7).choice(fakecreds.ALNUM) for _ in range(24))
    assert found(rules, f"key: {key}\n") == []


@pytest.mark.parametrize(
    "text",
    [
        "password = get_password(user)\n",
        "token: {{ .Values.token }}\n",
        "PASSWORD=${DB_PASSWORD}\n",
        "secret_key = settings.SECRET_KEY\n",
        "password_file: /run/secrets/db\n",
        "token_url = https://auth.internal/token\n",
        "max_tokens: 4096\n",
        "tokenizer = Tokenizer8(vocab)\n",
        "private_key: _ALLOWED_PRIVATE_KEY_TYPES,\n",
        "EllipticCurvePrivateKeyWithSerialization = EllipticCurvePrivateKey\n",
        "secret: &default_secret\n",
        "api_key: *default_key\n",
        "password: qwerty12345\n",
        "https://user:hunter2x@example.org/simple\n",
        "postgres://postgres:postgres@localhost/app\n",
        "netrc: machine example.org login me password ${NETRC_PASSWORD}\n",
        'client_secret = "<client-secret>"\n',
        "token = 0123456789abcdef0123456789abcdef01234567  # sha1 digest of the tarball\n",
    ],
)
def test_code_and_template_lookalikes(rules: RuleSet, text: str) -> None:
    assert found(rules, text) == []
