"""Seeded generators of fake credentials for the leak detector's tests.

Every value is built at run time from a `random.Random`, so no credential-shaped literal is ever stored in
the tree; prefixes are assembled by concatenation. Formats follow the real ones closely enough that a
detector cannot tell them apart: the same alphabets and lengths and, where the format carries one, a valid
checksum (GitHub and npm CRC32 tails, the PyPI macaroon structure, DER framing of private keys).

Use `samples(rng)` for one planted credential per rule, each in a natural context; `decoys(rng)` for strings
that only look like credentials and must not be flagged; `in_context(kind, key, value)` to place a value in
an env file, YAML, JSON, INI, source code or shell history.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass

from secretsvc.scan.rules import generators

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"
BASE32_AWS = string.ascii_uppercase + "234567"


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# -- cloud providers ---------------------------------------------------------------------------------------


def fake_aws_access_key_id(rng: random.Random) -> str:
    return rng.choice(["AK" + "IA", "AS" + "IA"]) + _pick(rng, BASE32_AWS, 16)


def fake_aws_secret_access_key(rng: random.Random) -> str:
    return _pick(rng, B64, 40)


def fake_aws_key_pair(rng: random.Random) -> tuple[str, str]:
    return fake_aws_access_key_id(rng), fake_aws_secret_access_key(rng)


def fake_gcp_api_key(rng: random.Random) -> str:
    return "AI" + "za" + _pick(rng, URLSAFE, 35)


def fake_gcp_service_account_json(rng: random.Random) -> tuple[str, str]:
    """Returns (the JSON document, the PEM private key it embeds)."""
    project = "proj-" + _pick(rng, string.ascii_lowercase + string.digits, 8)
    pem = fake_private_key_pem(rng, "pkcs8")
    doc = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": _pick(rng, HEX, 40),
        "private_key": pem,
        "client_email": f"deployer@{project}.iam.gserviceaccount.com",
        "client_id": _pick(rng, string.digits, 21),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return json.dumps(doc, indent=2), pem


def fake_azure_storage_key(rng: random.Random) -> str:
    return generators.azure_account_key(rng)


def fake_azure_storage_connection_string(rng: random.Random) -> tuple[str, str]:
    """Returns (the connection string, its AccountKey)."""
    key = fake_azure_storage_key(rng)
    account = "acct" + _pick(rng, string.ascii_lowercase + string.digits, 10)
    text = f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};EndpointSuffix=core.windows.net"
    return text, key


# -- code hosts --------------------------------------------------------------------------------------------


def _checksummed(prefix: str, rng: random.Random) -> str:
    return prefix + generators.crc32_base62_body(rng)


def fake_github_token(rng: random.Random, kind: str = "p") -> str:
    """A classic (ghp_, gho_) or app (ghu_, ghs_, ghr_) token with a valid CRC32 tail."""
    return _checksummed("gh" + kind + "_", rng)


def fake_github_app_token(rng: random.Random) -> str:
    return fake_github_token(rng, rng.choice("usr"))


def fake_github_fine_grained_token(rng: random.Random) -> str:
    return "github" + "_pat_" + _pick(rng, ALNUM, 22) + "_" + _pick(rng, ALNUM, 59)


def fake_gitlab_token(rng: random.Random) -> str:
    return "gl" + "pat-" + _pick(rng, URLSAFE, 20)


def corrupt_checksum(token: str) -> str:
    """The same token with its last character changed, so a CRC32 tail no longer matches."""
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


# -- chat and SaaS -----------------------------------------------------------------------------------------


def fake_slack_token(rng: random.Random, kind: str = "b") -> str:
    head = "xo" + "x" + kind + "-"
    if kind == "p":
        return (
            head
            + _pick(rng, string.digits, 12)
            + "-"
            + _pick(rng, string.digits, 12)
            + "-"
            + _pick(rng, string.digits, 13)
            + "-"
            + _pick(rng, HEX, 32)
        )
    return head + _pick(rng, string.digits, 12) + "-" + _pick(rng, string.digits, 13) + "-" + _pick(rng, ALNUM, 24)


def fake_slack_webhook(rng: random.Random) -> str:
    upper = string.ascii_uppercase + string.digits
    return (
        "https://hooks."
        + "slack.com/services/T"
        + _pick(rng, upper, 10)
        + "/B"
        + _pick(rng, upper, 10)
        + "/"
        + _pick(rng, ALNUM, 24)
    )


def fake_stripe_secret_key(rng: random.Random) -> str:
    return rng.choice(["sk", "rk"]) + "_li" + "ve_" + _pick(rng, ALNUM, rng.choice([24, 99]))


def fake_twilio_api_key(rng: random.Random) -> str:
    return "S" + "K" + _pick(rng, HEX, 32)


def fake_sendgrid_api_key(rng: random.Random) -> str:
    return "S" + "G." + _pick(rng, URLSAFE, 22) + "." + _pick(rng, URLSAFE, 43)


def fake_openai_api_key(rng: random.Random) -> str:
    marker = "T3Blbk" + "FJ"  # base64 of the vendor name, present in every key
    if rng.random() < 0.5:
        return "sk-" + _pick(rng, ALNUM, 20) + marker + _pick(rng, ALNUM, 20)
    return "sk-" + "proj-" + _pick(rng, URLSAFE, 74) + marker + _pick(rng, URLSAFE, 74)


def fake_anthropic_api_key(rng: random.Random) -> str:
    return "sk-" + "ant-" + "api03-" + _pick(rng, URLSAFE, 93) + "AA"


# -- package registries ------------------------------------------------------------------------------------


def fake_npm_token(rng: random.Random) -> str:
    return _checksummed("np" + "m_", rng)


def fake_pypi_token(rng: random.Random, location: bytes = b"pypi.org") -> str:
    """A macaroon (v2 binary format) like PyPI issues: location, identifier, caveats, 32-byte signature."""
    return generators.pypi_token(rng, location)


# -- containers and clusters -------------------------------------------------------------------------------


def fake_password(rng: random.Random, n: int = 20) -> str:
    """A high-entropy password: letters, digits and a few punctuation marks, always all four classes."""
    core = _pick(rng, ALNUM + "!#%*+-.@^_", n - 3)
    return core + rng.choice(string.ascii_uppercase) + rng.choice(string.digits) + rng.choice("!#%*")


def fake_docker_auth(rng: random.Random) -> str:
    """The value of an `auths.<registry>.auth` entry: base64 of `user:password`."""
    user = "ci-" + _pick(rng, string.ascii_lowercase, 6)
    return base64.b64encode(f"{user}:{fake_password(rng)}".encode()).decode()


def docker_config_json(auth: str, registry: str = "registry.example.org") -> str:
    return json.dumps({"auths": {registry: {"auth": auth}}}, indent="\t")


def fake_kube_token(rng: random.Random) -> str:
    return _pick(rng, ALNUM, 64)


def kubeconfig(*, client_key_data: str | None = None, token: str | None = None) -> str:
    user_lines = []
    if client_key_data is not None:
        user_lines.append("    client-certificate-data: " + base64.b64encode(b"not a key").decode())
        user_lines.append("    client-key-data: " + client_key_data)
    if token is not None:
        user_lines.append("    token: " + token)
    return "\n".join(
        [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            "- cluster:",
            "    server: https://10.0.0.1:6443",
            "  name: prod",
            "contexts:",
            "- context:",
            "    cluster: prod",
            "    user: admin",
            "  name: prod",
            "current-context: prod",
            "users:",
            "- name: admin",
            "  user:",
            *user_lines,
            "",
        ]
    )


def fake_kube_client_key_data(rng: random.Random) -> str:
    return generators.kube_client_key_data(rng)


def fake_vault_token(rng: random.Random) -> str:
    return "hv" + rng.choice("sb") + "." + "CAESI" + _pick(rng, URLSAFE, 90)


# -- private keys and tokens -------------------------------------------------------------------------------


def broken_pem(label: str, body: str, *, end: bool = True) -> bytes:
    """PEM armour around a body that is no key or certificate (or, with end=False, cut off before its END
    line): for the refusal tests of PEM readers, without a key-shaped literal in the test files."""
    dashes = "-----"
    lines = [dashes + "BEGIN " + label + dashes, body, *([dashes + "END " + label + dashes] if end else []), ""]
    return "\n".join(lines).encode()


def fake_private_key_pem(rng: random.Random, kind: str = "rsa") -> str:
    """A PEM block with a structurally valid body (DER SEQUENCE or an openssh-key-v1 blob) of random bytes.

    kind: rsa (PKCS#1), ec (SEC1), dsa, pkcs8, encrypted (PKCS#8 encrypted), openssh.
    """
    return generators.private_key_pem(rng, kind)


def fake_jwt(rng: random.Random) -> str:
    return generators.jwt(rng)


def fake_database_uri(rng: random.Random) -> tuple[str, str]:
    """Returns (the URI, its password)."""
    password = fake_password(rng, 18).replace("@", "x").replace("/", "y").replace("#", "z").replace("%", "w")
    scheme = rng.choice(["postgresql", "postgres", "mysql", "mongodb+srv", "redis", "amqp"])
    user = "app_" + _pick(rng, string.ascii_lowercase, 5)
    return f"{scheme}://{user}:{password}@db-{_pick(rng, HEX, 6)}.internal:5432/app", password


def fake_netrc(rng: random.Random) -> tuple[str, str]:
    password = fake_password(rng)
    return (
        f"machine api.{_pick(rng, string.ascii_lowercase, 8)}.com\n  login deploy\n  password {password}\n",
        password,
    )


def fake_git_credentials(rng: random.Random) -> tuple[str, str]:
    """Returns (the line, its password): an app password, not a token with a format of its own."""
    token = _pick(rng, ALNUM, 32)
    return f"https://deploy-bot:{token}@bitbucket.org\n", token


# -- contexts ----------------------------------------------------------------------------------------------

CONTEXTS = ("env", "yaml", "json", "ini", "python", "shell")


def in_context(kind: str, key: str, value: str) -> str:
    """Place `key = value` the way a file of the given kind would."""
    if kind == "env":
        return f"# service settings\nLOG_LEVEL=info\n{key}={value}\nPORT=8080\n"
    if kind == "yaml":
        return f"service:\n  name: api\n  {key}: {value}\n  replicas: 2\n"
    if kind == "json":
        return json.dumps({"name": "api", key: value, "replicas": 2}, indent=2) + "\n"
    if kind == "ini":
        return f"[default]\nregion = eu-west-1\n{key} = {value}\n"
    if kind == "python":
        return f'import os\n\n{key.upper()} = "{value}"\nTIMEOUT = 30\n'
    if kind == "shell":
        return f"cd /srv/app\nexport {key.upper()}='{value}'\n./run.sh --verbose\n"
    raise ValueError(f"unknown context {kind!r}")


@dataclass(frozen=True, slots=True)
class Sample:
    """One planted credential: `text` is a whole file holding `secret`, which a rule named `rule_id` finds."""

    rule_id: str
    secret: str
    text: str

    def __repr__(self) -> str:
        return f"Sample({self.rule_id!r}, {len(self.text)} chars)"


def samples(rng: random.Random) -> list[Sample]:
    """One or more planted credentials per rule, each in a natural context."""
    out: list[Sample] = []
    key_id, secret = fake_aws_key_pair(rng)
    aws_ini = f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    out.append(Sample("aws-access-key-id", key_id, aws_ini))
    out.append(Sample("aws-secret-access-key", secret, aws_ini))
    sa_json, sa_key = fake_gcp_service_account_json(rng)
    out.append(Sample("gcp-service-account-key", sa_key, sa_json))
    v = fake_gcp_api_key(rng)
    out.append(Sample("gcp-api-key", v, in_context("env", "GOOGLE_MAPS_KEY", v)))
    conn, azkey = fake_azure_storage_connection_string(rng)
    out.append(Sample("azure-storage-connection-string", azkey, in_context("env", "AZURE_STORAGE", conn)))
    v = fake_github_token(rng)
    out.append(Sample("github-classic-token", v, in_context("shell", "gh_token", v)))
    v = fake_github_fine_grained_token(rng)
    out.append(Sample("github-fine-grained-token", v, in_context("yaml", "github", v)))
    v = fake_github_app_token(rng)
    out.append(Sample("github-app-token", v, in_context("json", "installation", v)))
    v = fake_gitlab_token(rng)
    out.append(Sample("gitlab-token", v, in_context("env", "GL_PAT", v)))
    v = fake_slack_token(rng, rng.choice("bp"))
    out.append(Sample("slack-token", v, in_context("python", "slack_bot", v)))
    v = fake_slack_webhook(rng)
    out.append(Sample("slack-webhook", v, in_context("yaml", "notify_url", v)))
    v = fake_stripe_secret_key(rng)
    out.append(Sample("stripe-secret-key", v, in_context("env", "STRIPE", v)))
    v = fake_twilio_api_key(rng)
    out.append(Sample("twilio-api-key", v, in_context("ini", "twilio_sid", v)))
    v = fake_sendgrid_api_key(rng)
    out.append(Sample("sendgrid-api-key", v, in_context("python", "mailer", v)))
    v = fake_openai_api_key(rng)
    out.append(Sample("openai-api-key", v, in_context("shell", "llm", v)))
    v = fake_anthropic_api_key(rng)
    out.append(Sample("anthropic-api-key", v, in_context("json", "llm", v)))
    v = fake_npm_token(rng)
    out.append(Sample("npm-token", v, f"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={v}\n"))
    v = fake_pypi_token(rng)
    out.append(Sample("pypi-token", v, f"[pypi]\n  username = __token__\n  password = {v}\n"))
    v = fake_docker_auth(rng)
    out.append(Sample("docker-config-auth", v, docker_config_json(v)))
    v = fake_kube_client_key_data(rng)
    out.append(Sample("kubeconfig-client-key", v, kubeconfig(client_key_data=v)))
    v = fake_kube_token(rng)
    out.append(Sample("kubeconfig-token", v, kubeconfig(token=v)))
    v = fake_vault_token(rng)
    out.append(Sample("vault-token", v, in_context("env", "VAULT_TOKEN", v)))
    for kind in ("rsa", "ec", "dsa", "pkcs8", "encrypted", "openssh"):
        pem = fake_private_key_pem(rng, kind)
        out.append(Sample("private-key", pem, pem))
    v = fake_jwt(rng)
    out.append(Sample("jwt", v, f"curl -H 'Authorization: Bearer {v}' https://api.internal/v1/me\n"))
    uri, pw = fake_database_uri(rng)
    out.append(Sample("database-uri-password", pw, in_context("env", "DATABASE_URL", uri)))
    netrc, pw = fake_netrc(rng)
    out.append(Sample("netrc-password", pw, netrc))
    line, tok = fake_git_credentials(rng)
    out.append(Sample("git-credentials", tok, line))
    pw = fake_password(rng)
    out.append(Sample("generic-secret-assignment", pw, in_context(rng.choice(CONTEXTS), "db_password", pw)))
    return out


def pem_secret_span(sample: Sample) -> str:
    """For PEM samples the match covers the key body: the base64 between the BEGIN and END lines."""
    lines = sample.secret.strip().splitlines()
    return "\n".join(lines[1:-1])


def decoys(rng: random.Random) -> list[str]:
    """Strings that look like credentials but are not; a precise detector flags none of them."""
    dashes = "-----"
    aws_example_id = "AK" + "IA" + "IOSFODNN7" + "EXAMPLE"
    aws_example_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
    sha = _pick(rng, HEX, 64)
    uuid = "-".join(_pick(rng, HEX, n) for n in (8, 4, 4, 4, 12))
    pubkey_b64 = base64.b64encode(b"\x00\x00\x00\x07ssh-rsa" + rng.randbytes(270)).decode()
    cert_body = base64.b64encode(b"\x30\x82\x03\x00" + rng.randbytes(760)).decode()
    cert_lines = "\n".join(cert_body[i : i + 64] for i in range(0, len(cert_body), 64))
    return [
        f"[default]\naws_access_key_id = {aws_example_id}\naws_secret_access_key = {aws_example_secret}\n",
        "AWS_SECRET_ACCESS_KEY=${AWS_SECRET}\n",
        "password: {{ .Values.token }}\n",
        'api_key = "<your-key>"\n',
        "DB_PASSWORD=changeme\n",
        "client_secret: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
        'secret = "**********"\n',
        f"image: registry.example.org/app@sha256:{sha}\n",
        f"token = '{sha}'  # content digest of the release\n",
        f"request_id: {uuid}\n",
        f"api_token: {uuid}\n",
        f"ssh-rsa {pubkey_b64} deploy@host\n",
        f"{dashes}BEGIN PUBLIC KEY{dashes}\n{cert_lines}\n{dashes}END PUBLIC KEY{dashes}\n",
        f"{dashes}BEGIN CERTIFICATE{dashes}\n{cert_lines}\n{dashes}END CERTIFICATE{dashes}\n",
        f'if line.startswith("{dashes}BEGIN RSA PRIVATE KEY{dashes}"):\n    return parse_key(line)\n',
        f"# Paste your key between {dashes}BEGIN PRIVATE KEY{dashes} and {dashes}END PRIVATE KEY{dashes}\n",
        'password = os.environ["DB_PASSWORD"]\n',
        "password = get_password(user)\n",
        "secret_key = settings.SECRET_KEY\n",
        'token = "test"\n',
        "api_key: dummy-api-key\n",
        'PASSWORD = "example-password"\n',
        "DATABASE_URL=postgres://user:password@localhost:5432/app\n",
        "DATABASE_URL=postgresql://app:${DB_PASS}@db:5432/app\n",
        "https://user:<token>@github.com\n",
        "password_file = /run/secrets/db_password\n",
        "token_endpoint: https://auth.example.org/oauth/token\n",
        "export GITHUB_TOKEN=$(cat /run/secrets/gh)\n",
        'stripe_key = "' + "sk_" + "test_" + _pick(rng, ALNUM, 24) + '"\n',
        f"checksum = {_pick(rng, HEX, 40)}\n",
    ]
