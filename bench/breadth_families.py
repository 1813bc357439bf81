"""The vendor families of the breadth benchmark and the generators of their structured formats.

Each entry is written from the vendor's documented format (the `source` of a family, where given, names the
vendor's page describing the credential): fixed prefix, alphabet and length as a `breadth_corpus` template, or a
function where the format has structure or a checksum. Where a vendor documents no format (most unprefixed keys),
the shape is the one the vendor's consoles issue (length and alphabet); those are the least certain entries.
Nothing here is taken from a scanner's rule file, ours included: this table is what the scanners are measured
against. The first block is every vendor of gitleaks' default configuration, the second the widely used vendors
Kingfisher adds, the third other vendors common in images.
"""

from __future__ import annotations

import base64
import json
import random
import string
import zlib
from collections.abc import Callable

from breadth_corpus import BASE62, ENV_ONLY, F, Family, Generator, R, pick, render

# -- structured formats ------------------------------------------------------------------------------------


def base62_crc32(body: str) -> str:
    """GitHub's (and npm's) 6-character checksum tail: CRC32 of the random part, base62, zero-padded."""
    value = zlib.crc32(body.encode())
    out = ""
    while value:
        value, rem = divmod(value, 62)
        out = BASE62[rem] + out
    return out.rjust(6, "0")


def crc_token(prefix: str) -> Generator:
    """`prefix` + 30 base62 characters + their CRC32 in 6 base62 characters (GitHub ghp_/gho_/..., npm_)."""

    def gen(rng: random.Random) -> str:
        body = pick(rng, "an", 30)
        return prefix + body + base62_crc32(body)

    return gen


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def jwt(claims: Callable[[random.Random], dict[str, object]], prefix: str = "") -> Generator:
    """A compact JWS (HS256 header, the given claims, a random 32-byte signature)."""

    def gen(rng: random.Random) -> str:
        head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        body = _b64url(json.dumps(claims(rng), separators=(",", ":")).encode())
        return prefix + head + "." + body + "." + _b64url(rng.randbytes(32))

    return gen


def _user_claims(rng: random.Random) -> dict[str, object]:
    return {"sub": str(rng.randint(10**6, 10**9)), "iat": 1_700_000_000 + rng.randint(0, 10**7), "role": "admin"}


def openai_key(prefix: str, kind: str, half: int) -> Generator:
    """OpenAI keys carry base64("OpenAI") between two random halves."""

    def gen(rng: random.Random) -> str:
        return prefix + pick(rng, kind, half) + _b64(b"OpenAI") + pick(rng, kind, half)

    return gen


def pypi_token(rng: random.Random) -> str:
    """A PyPI API token: `pypi-` + base64url of a v2 macaroon whose location is pypi.org (hence AgEIcHlwaS5vcmc)."""
    ident = json.dumps({"version": 1, "permissions": "user"}).encode() + rng.randbytes(16)
    mac = b"\x02\x01\x08pypi.org\x02" + bytes([len(ident)]) + ident + b"\x00"
    mac += b"\x02" + bytes([40]) + b'{"permissions":"user","version":1,"x":1}' + b"\x00\x00\x06\x20" + rng.randbytes(32)
    return "pypi-" + _b64url(mac)


def pem_block(label: str, nbytes: int) -> Generator:
    """A PEM block: header, base64 of a DER-looking body in 64-column lines, footer."""

    def gen(rng: random.Random) -> str:
        body = b"\x30\x82" + nbytes.to_bytes(2, "big") + b"\x02\x01\x00" + rng.randbytes(nbytes - 3)
        text = _b64(body)
        lines = [text[i : i + 64] for i in range(0, len(text), 64)]
        dash = "-" * 5
        return "\n".join([f"{dash}BEGIN {label}{dash}", *lines, f"{dash}END {label}{dash}"])

    return gen


def onepassword_service_token(rng: random.Random) -> str:
    """`ops_` + base64 of the service-account JSON (sign-in address, SRP and key material)."""
    doc = {
        "signInAddress": "my.1password.com",
        "userAuth": {"method": "SRPg-4096", "alg": "PBES2g-HS256", "iterations": 650000, "salt": pick(rng, "b64u", 22)},
        "email": pick(rng, "lan", 13) + "@1passwordserviceaccounts.com",
        "srpX": pick(rng, "hex", 64),
        "muk": {"alg": "A256GCM", "ext": True, "k": pick(rng, "b64u", 43), "key_ops": ["encrypt", "decrypt"]},
        "secretKey": "A3-" + "-".join(pick(rng, "uan", n) for n in (6, 6, 5, 5, 5, 5)),
        "throttleSecret": {"seed": pick(rng, "hex", 64), "deviceUuid": pick(rng, "lan", 26)},
        "deviceUuid": pick(rng, "lan", 26),
    }
    return "ops_" + _b64(json.dumps(doc).encode())


def grafana_cloud_token(rng: random.Random) -> str:
    doc = {
        "o": str(rng.randint(10**5, 10**7)),
        "n": "stack-" + pick(rng, "lan", 6),
        "k": pick(rng, "an", 24),
        "m": {"r": "us"},
    }
    return "glc_" + _b64(json.dumps(doc, separators=(",", ":")).encode()).rstrip("=")


def grafana_api_key(rng: random.Random) -> str:
    doc = {"k": pick(rng, "an", 32), "n": "deploy", "id": rng.randint(1, 999)}
    return _b64(json.dumps(doc, separators=(",", ":")).encode())


def mapbox_token(kind: str) -> Generator:
    def gen(rng: random.Random) -> str:
        claims = json.dumps({"u": pick(rng, "low", 8), "a": pick(rng, "lan", 25)}, separators=(",", ":"))
        return kind + "." + _b64url(claims.encode()) + "." + pick(rng, "b64u", 22)

    return gen


def sentry_org_token(rng: random.Random) -> str:
    doc = {
        "iat": 1_700_000_000 + rng.randint(0, 10**7),
        "url": "https://sentry.io",
        "region_url": "https://us.sentry.io",
        "org": pick(rng, "low", 8),
    }
    return "sntrys_" + _b64(json.dumps(doc, separators=(",", ":")).encode()).rstrip("=") + "_" + pick(rng, "b64", 43)


def artifactory_reference_token(rng: random.Random) -> str:
    raw = b"reftkn:01:" + str(rng.randint(10**9, 10**10 - 1)).encode() + b":" + pick(rng, "an", 27).encode()
    return _b64(raw).rstrip("=")


def bedrock_long_lived(rng: random.Random) -> str:
    return (
        "AB"
        + "SK"
        + _b64(
            ("BedrockAPIKey-" + pick(rng, "lan", 4) + "-at-" + pick(rng, "d", 12) + ":").encode()
            + pick(rng, "b64", 40).encode()
        )
    )


def bedrock_short_lived(rng: random.Random) -> str:
    url = (
        "bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
        + "AS"
        + "IA"
        + pick(rng, "b32", 16)
        + "%2F20250101%2Fus-east-1%2Fbedrock%2Faws4_request&X-Amz-Signature="
        + pick(rng, "hex", 64)
        + "&Version=1"
    )
    return "bedrock-api-key-" + _b64(url.encode())


def jwt_in_base64(rng: random.Random) -> str:
    return _b64(jwt(_user_claims)(rng).encode())


def kube_secret(rng: random.Random) -> str:
    pw = _b64(pick(rng, "an", 24).encode())
    return "\n".join(
        [
            "apiVersion: v1",
            "kind: Secret",
            "metadata:",
            f"  name: db-{pick(rng, 'low', 5)}",
            "type: Opaque",
            "data:",
            f"  password: {pw}",
        ]
    )


def gcp_service_account(rng: random.Random) -> str:
    key = pem_block("PRIVATE KEY", 1216)(rng).replace("\n", "\\n") + "\\n"
    proj = pick(rng, "low", 6) + "-" + pick(rng, "d", 6)
    doc = {
        "type": "service_account",
        "project_id": proj,
        "private_key_id": pick(rng, "hex", 40),
        "private_key": key,
        "client_email": f"deploy@{proj}.iam.gserviceaccount.com",
        "client_id": pick(rng, "d", 21),
    }
    return json.dumps(doc, indent=2).replace("\\\\n", "\\n")


def nuget_config(rng: random.Random) -> str:
    return "\n".join(
        [
            "<packageSourceCredentials>",
            "  <internal>",
            '    <add key="Username" value="build" />',
            f'    <add key="ClearTextPassword" value="{pick(rng, "an", 20)}" />',
            "  </internal>",
            "</packageSourceCredentials>",
        ]
    )


def curl_line(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f'curl -H "Authorization: Bearer {pick(rng, "an", 40)}" https://api.internal.example/v1/items'
    return f"curl -u deploy:{pick(rng, 'an', 20)} https://ci.internal.example/job/build"


def freemius_php(rng: random.Random) -> str:
    return f"    'secret_key' => 'sk_{pick(rng, 'an', 29)}',"


def db_uri(rng: random.Random) -> str:
    scheme = rng.choice(["postgresql", "mysql", "mongodb+srv", "redis", "amqp"])
    return f"{scheme}://app:{pick(rng, 'an', 20)}@db-{pick(rng, 'lan', 6)}.internal.example:5432/main"


def django_key(insecure_prefix: bool) -> Generator:
    """Django's get_random_secret_key(): 50 characters of this alphabet; startproject adds `django-insecure-`."""

    def gen(rng: random.Random) -> str:
        body = "".join(rng.choice(string.ascii_lowercase + string.digits + "!@#%^&*(-_=+)") for _ in range(50))
        return ("django-insecure-" if insecure_prefix else "") + body

    return gen


def docker_config(rng: random.Random) -> str:
    """A docker config.json `auths` entry: base64 of user:password."""
    auth = _b64(f"deploy:{pick(rng, 'an', 24)}".encode())
    return json.dumps({"auths": {f"registry.{pick(rng, 'low', 6)}.example": {"auth": auth}}}, indent=2)


def netrc(rng: random.Random) -> str:
    return f"machine git.{pick(rng, 'low', 6)}.example\n  login deploy\n  password {pick(rng, 'an', 24)}"


def git_credentials(rng: random.Random) -> str:
    return f"https://deploy:{pick(rng, 'an', 24)}@git.{pick(rng, 'low', 6)}.example"


def jwk_private(rng: random.Random) -> str:
    doc = {
        "kty": "EC",
        "crv": "P-256",
        "kid": pick(rng, "lan", 8),
        "x": pick(rng, "b64u", 43),
        "y": pick(rng, "b64u", 43),
        "d": pick(rng, "b64u", 43),
    }
    return json.dumps(doc, indent=2)


def putty_key(rng: random.Random) -> str:
    pub = _b64(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + rng.randbytes(32))
    priv = _b64(b"\x00\x00\x00\x20" + rng.randbytes(32))
    return "\n".join(
        [
            "PuTTY-User-Key-File-3: ssh-ed25519",
            "Encryption: none",
            f"Comment: deploy@{pick(rng, 'low', 6)}",
            "Public-Lines: 2",
            pub[:64],
            pub[64:],
            "Private-Lines: 1",
            priv,
            f"Private-MAC: {pick(rng, 'hex', 64)}",
        ]
    )


def pkcs12_file(rng: random.Random) -> str:
    """A PKCS#12 keystore's DER framing (version 3, a data ContentInfo) around random bytes, as latin-1 text."""
    body = rng.randbytes(1200)
    data_oid = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01"
    inner = b"\x04\x82" + len(body).to_bytes(2, "big") + body
    info = data_oid + b"\xa0\x82" + len(inner).to_bytes(2, "big") + inner
    auth_safe = b"\x30\x82" + len(info).to_bytes(2, "big") + info
    pfx = b"\x02\x01\x03" + auth_safe
    return (b"\x30\x82" + len(pfx).to_bytes(2, "big") + pfx).decode("latin-1")


def asaas_key(rng: random.Random) -> str:
    """Asaas: `$aact_` + base64 of `<hex>::<digits>::$aach_<uuid>`."""
    inner = f"{pick(rng, 'hex', 32)}::{pick(rng, 'd', 19)}::$aach_" + render("{uuid}", rng)
    return "$aact_" + _b64(inner.encode())


def teamcity_token(rng: random.Random) -> str:
    return _b64url(b'{"typ": "TCV2"}') + "." + pick(rng, "b64u", 36) + "." + pick(rng, "b64u", 48)


GH = "https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/"

#: Covered families; the first block is every vendor of gitleaks' default configuration, the second the widely
#: used vendors Kingfisher adds, the third vendors neither peer names but that images commonly carry.
FAMILIES: tuple[Family, ...] = (
    # -- vendors of gitleaks' default configuration --
    F(
        "1Password",
        ("OP_SECRET_KEY", "A3-{uan:6}-{uan:6}-{uan:5}-{uan:5}-{uan:5}-{uan:5}"),
        ("OP_SERVICE_ACCOUNT_TOKEN", onepassword_service_token),
        source="https://developer.1password.com/docs/service-accounts/",
    ),
    F("Adafruit IO", ("ADAFRUIT_IO_KEY", "aio_{an:28}"), source="https://io.adafruit.com/api/docs/"),
    F("Adobe", ("ADOBE_CLIENT_ID", "{hex:32}"), ("ADOBE_CLIENT_SECRET", "p8e-{an:32}")),
    F("age", ("AGE_SECRET_KEY", "AGE-SECRET-KEY-1{bech32:58}"), source="https://age-encryption.org/v1"),
    F(
        "Airtable",
        ("AIRTABLE_API_KEY", "key{an:14}"),
        ("AIRTABLE_TOKEN", "pat{an:14}.{hex:64}"),
        source="https://airtable.com/developers/web/guides/personal-access-tokens",
    ),
    F("Algolia", ("ALGOLIA_ADMIN_API_KEY", "{hex:32}"), companions=(("ALGOLIA_APP_ID", "{uan:10}"),)),
    F("Alibaba Cloud", ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI{an:20}"), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "{an:30}")),
    F(
        "Anthropic",
        ("ANTHROPIC_API_KEY", "sk-ant-api03-{b64u:93}AA"),
        ("ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-{b64u:93}AA"),
        source="https://docs.anthropic.com/en/api/getting-started",
    ),
    F(
        "JFrog",
        ("ARTIFACTORY_API_KEY", "AKCp{an:69}"),
        ("JFROG_ACCESS_TOKEN", artifactory_reference_token),
        companions=(("ARTIFACTORY_URL", "https://{low:8}.jfrog.io/artifactory"),),
    ),
    F("Asana", ("ASANA_ACCESS_TOKEN", "1/{d:16}:{hex:32}"), ("ASANA_CLIENT_SECRET", "{an:32}")),
    F(
        "Atlassian",
        ("ATLASSIAN_API_TOKEN", "ATATT3xFfGF0{b64u:174}={HEX:8}"),
        ("JIRA_API_TOKEN", "{an:24}"),
        source="https://support.atlassian.com/atlassian-account/docs/manage-api-tokens-for-your-atlassian-account/",
    ),
    F(
        "Authress",
        ("AUTHRESS_SERVICE_CLIENT_ACCESS_KEY", "sc_{lan:24}.{lan:4}.acc_{lan:20}.MC4CAQAwBQYDK2VwBCIEI{b64:43}"),
    ),
    F(
        "AWS",
        ("AWS_ACCESS_KEY_ID", "AKIA{b32:16}"),
        ("AWS_SECRET_ACCESS_KEY", "{b64:40}"),
        ("AWS_BEARER_TOKEN_BEDROCK", bedrock_long_lived),
        ("AWS_BEDROCK_API_KEY", bedrock_short_lived),
        source="https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html",
    ),
    F(
        "Microsoft Entra ID",
        ("AZURE_CLIENT_SECRET", "{an:3}{d:1}Q~{b64u:34}"),
        source="https://learn.microsoft.com/en-us/entra/identity-platform/howto-create-service-principal-portal",
        companions=(
            ("AZURE_TENANT_ID", "{uuid}"),
            ("AZURE_CLIENT_ID", "{uuid}"),
        ),
    ),
    F("Beamer", ("BEAMER_API_KEY", "b_{b64u:44}")),
    F(
        "Bitbucket",
        ("BITBUCKET_CLIENT_ID", "{an:32}"),
        ("BITBUCKET_CLIENT_SECRET", "{an:64}"),
        ("BITBUCKET_APP_PASSWORD", "ATBB{an:32}{HEX:8}"),
        ("BITBUCKET_ACCESS_TOKEN", "ATCTT3xFfGN0{b64u:174}={HEX:8}"),
        # Atlassian's answer on the prefixes: API tokens ATAT, app passwords ATBB, access tokens ATCT.
        source="https://community.atlassian.com/forums/Bitbucket-questions/Can-we-confirm-BitBucket-s-token-prefixes/qaq-p/3096469",
    ),
    F("Bittrex", ("BITTREX_API_KEY", "{hex:32}"), ("BITTREX_API_SECRET", "{hex:32}")),
    F("Cisco Meraki", ("MERAKI_DASHBOARD_API_KEY", "{hex:40}")),
    F(
        "ClickHouse Cloud",
        ("CLICKHOUSE_CLOUD_KEY_SECRET", "4b1d{an:38}"),
        companions=(("CLICKHOUSE_CLOUD_KEY_ID", "{an:20}"),),
    ),
    F("Clojars", ("CLOJARS_DEPLOY_TOKEN", "CLOJARS_{lan:60}")),
    F(
        "Cloudflare",
        ("CLOUDFLARE_API_KEY", "{hex:37}"),
        ("CLOUDFLARE_API_TOKEN", "{b64u:40}"),
        ("CLOUDFLARE_ORIGIN_CA_KEY", "v1.0-{hex:24}-{hex:146}"),
        source="https://developers.cloudflare.com/fundamentals/api/",
        companions=(("CLOUDFLARE_ACCOUNT_ID", "{hex:32}"),),
    ),
    F("Codecov", ("CODECOV_TOKEN", "{uuid}")),
    F("Cohere", ("COHERE_API_KEY", "{an:40}")),
    F("Coinbase", ("COINBASE_ACCESS_TOKEN", "{lan:64}")),
    F("Confluent", ("CONFLUENT_CLOUD_API_KEY", "{uan:16}"), ("CONFLUENT_CLOUD_API_SECRET", "{b64:64}")),
    F("Contentful", ("CONTENTFUL_DELIVERY_TOKEN", "{b64u:43}"), ("CONTENTFUL_MANAGEMENT_TOKEN", "CFPAT-{b64u:43}")),
    R("curl auth", curl_line, "deploy.sh"),
    F(
        "Databricks",
        ("DATABRICKS_TOKEN", "dapi{hex:32}"),
        source="https://docs.databricks.com/en/dev-tools/auth/pat.html",
    ),
    F(
        "Datadog",
        ("DATADOG_API_KEY", "{hex:32}"),
        ("DATADOG_APP_KEY", "{hex:40}"),
        source="https://docs.datadoghq.com/account_management/api-app-keys/",
    ),
    F("Defined Networking", ("DN_API_KEY", "dnkey-{b32:26}-{b32:52}")),
    F(
        "DigitalOcean",
        ("DIGITALOCEAN_TOKEN", "dop_v1_{hex:64}"),
        ("DIGITALOCEAN_OAUTH_TOKEN", "doo_v1_{hex:64}"),
        ("DIGITALOCEAN_REFRESH_TOKEN", "dor_v1_{hex:64}"),
        source="https://docs.digitalocean.com/reference/api/create-personal-access-token/",
    ),
    F(
        "Discord",
        ("DISCORD_BOT_TOKEN", "M{b64u:25}.{b64u:6}.{b64u:38}"),
        ("DISCORD_WEBHOOK_URL", "https://discord.com/api/webhooks/{d:18}/{b64u:68}"),
        ("DISCORD_CLIENT_SECRET", "{b64u:32}"),
    ),
    F(
        "Doppler",
        ("DOPPLER_TOKEN", "dp.pt.{an:43}"),
        ("DOPPLER_SERVICE_TOKEN", "dp.st.prd.{an:40}"),
        ("DOPPLER_CLI_TOKEN", "dp.ct.{an:40}"),
        source="https://docs.doppler.com/docs/token-formats",
    ),
    F("Drone CI", ("DRONE_TOKEN", "{an:32}")),
    F("Dropbox", ("DROPBOX_ACCESS_TOKEN", "sl.{b64u:135}"), ("DROPBOX_LONG_LIVED_TOKEN", "{an:11}AAAAAAAAAA{b64u:43}")),
    F("Duffel", ("DUFFEL_ACCESS_TOKEN", "duffel_live_{b64u:43}")),
    F(
        "Dynatrace",
        ("DYNATRACE_API_TOKEN", "dt0c01.{uan:24}.{uan:64}"),
        source="https://docs.dynatrace.com/docs/manage/identity-access-management/access-tokens-and-oauth-clients/access-tokens",
    ),
    F("EasyPost", ("EASYPOST_API_KEY", "EZAK{an:54}"), ("EASYPOST_TEST_API_KEY", "EZTK{an:54}")),
    F("Etsy", ("ETSY_API_KEY", "{lan:24}")),
    F("Facebook", ("FACEBOOK_ACCESS_TOKEN", "EAA{an:160}"), ("FACEBOOK_APP_SECRET", "{hex:32}")),
    F("Fastly", ("FASTLY_API_TOKEN", "{b64u:32}")),
    F("Finicity", ("FINICITY_APP_KEY", "{hex:32}"), ("FINICITY_CLIENT_SECRET", "{an:20}")),
    F("Finnhub", ("FINNHUB_API_KEY", "{lan:20}")),
    F("Flickr", ("FLICKR_API_KEY", "{hex:32}")),
    F(
        "Flutterwave",
        ("FLW_SECRET_KEY", "FLWSECK-{hex:32}-X"),
        ("FLW_PUBLIC_KEY", "FLWPUBK-{hex:32}-X"),
        ("FLW_ENCRYPTION_KEY", "FLWSECK{hex:12}"),
    ),
    F("Fly.io", ("FLY_API_TOKEN", "fo1_{b64u:43}"), ("FLY_ACCESS_TOKEN", "FlyV1 fm2_{b64:180}")),
    F("Frame.io", ("FRAMEIO_TOKEN", "fio-u-{b64u:64}")),
    R("Freemius", freemius_php, "freemius-config.php"),
    F("FreshBooks", ("FRESHBOOKS_ACCESS_TOKEN", "{hex:64}")),
    F(
        "Google Cloud",
        ("GOOGLE_API_KEY", "AIza{b64u:35}"),
        source="https://cloud.google.com/docs/authentication/api-keys",
    ),
    R("Google Cloud service account", gcp_service_account, "service-account.json"),
    F(
        "GitHub",
        ("GITHUB_TOKEN", crc_token("ghp_")),
        ("GITHUB_OAUTH_TOKEN", crc_token("gho_")),
        ("GITHUB_APP_TOKEN", crc_token("ghs_")),
        ("GITHUB_USER_TOKEN", crc_token("ghu_")),
        ("GITHUB_REFRESH_TOKEN", crc_token("ghr_")),
        ("GITHUB_PAT", "github_pat_{an:22}_{an:59}"),
        source=GH,
    ),
    F(
        "GitLab",
        ("GITLAB_TOKEN", "glpat-{b64u:20}"),
        ("GITLAB_DEPLOY_TOKEN", "gldt-{b64u:20}"),
        ("GITLAB_RUNNER_TOKEN", "glrt-{b64u:20}"),
        ("GITLAB_TRIGGER_TOKEN", "glptt-{hex:40}"),
        ("GITLAB_CI_JOB_TOKEN", "glcbt-{hex:2}_{b64u:20}"),
        ("GITLAB_FEED_TOKEN", "glft-{b64u:20}"),
        ("GITLAB_INCOMING_MAIL_TOKEN", "glimt-{lan:25}"),
        ("GITLAB_AGENT_TOKEN", "glagent-{b64u:50}"),
        ("GITLAB_OAUTH_SECRET", "gloas-{hex:64}"),
        ("GITLAB_SCIM_TOKEN", "glsoat-{b64u:20}"),
        ("GITLAB_FEATURE_FLAGS_TOKEN", "glffct-{b64u:20}"),
        ("GITLAB_SESSION", "_gitlab_session={hex:32}"),
        source="https://docs.gitlab.com/ee/security/tokens/",
    ),
    F("Gitter", ("GITTER_TOKEN", "{hex:40}")),
    F("GoCardless", ("GOCARDLESS_ACCESS_TOKEN", "live_{b64u:40}")),
    F(
        "Grafana",
        ("GRAFANA_API_KEY", grafana_api_key),
        ("GRAFANA_CLOUD_TOKEN", grafana_cloud_token),
        ("GRAFANA_SERVICE_ACCOUNT_TOKEN", "glsa_{an:32}_{hex:8}"),
        source="https://grafana.com/docs/grafana/latest/administration/service-accounts/",
    ),
    F("Harness", ("HARNESS_API_KEY", "pat.{b64u:22}.{hex:24}.{an:20}")),
    F(
        "Terraform Cloud",
        ("TFE_TOKEN", "{an:14}.atlasv1.{an:67}"),
        source="https://developer.hashicorp.com/terraform/cloud-docs/users-teams-organizations/api-tokens",
    ),
    F("Heroku", ("HEROKU_API_KEY", "{uuid}"), ("HEROKU_API_TOKEN", "HRKU-AA{b64u:58}")),
    F("HubSpot", ("HUBSPOT_API_KEY", "{uuid}"), ("HUBSPOT_ACCESS_TOKEN", "pat-na1-{uuid}")),
    F(
        "Hugging Face",
        ("HF_TOKEN", "hf_{alpha:34}"),
        ("HUGGINGFACE_ORG_TOKEN", "api_org_{alpha:34}"),
        source="https://huggingface.co/docs/hub/security-tokens",
    ),
    F("Infracost", ("INFRACOST_API_KEY", "ico-{an:32}")),
    F("Intercom", ("INTERCOM_ACCESS_TOKEN", "{b64u:59}=")),
    F("42 Intra", ("INTRA42_CLIENT_SECRET", "s-s4t2ud-{hex:64}"), ("INTRA42_CLIENT_ID", "u-s4t2ud-{hex:64}")),
    F("JSON Web Token", ("AUTH_JWT", jwt(_user_claims)), ("SESSION_JWT_B64", jwt_in_base64)),
    F("Kraken", ("KRAKEN_PRIVATE_KEY", "{b64:86}=="), ("KRAKEN_API_KEY", "{b64:56}")),
    R("Kubernetes", kube_secret, "secret.yaml"),
    F("KuCoin", ("KUCOIN_API_KEY", "{hex:24}"), ("KUCOIN_API_SECRET", "{uuid}")),
    F("LaunchDarkly", ("LAUNCHDARKLY_ACCESS_TOKEN", "api-{uuid}"), ("LAUNCHDARKLY_SDK_KEY", "sdk-{uuid}")),
    F(
        "Linear",
        ("LINEAR_API_KEY", "lin_api_{an:40}"),
        ("LINEAR_CLIENT_SECRET", "{hex:32}"),
        source="https://linear.app/developers/graphql",
    ),
    F("LinkedIn", ("LINKEDIN_CLIENT_ID", "{lan:14}"), ("LINKEDIN_CLIENT_SECRET", "{an:16}")),
    F("Lob", ("LOB_API_KEY", "live_{hex:35}"), ("LOB_PUBLISHABLE_KEY", "live_pub_{hex:31}")),
    F("Looker", ("LOOKER_CLIENT_ID", "{an:20}"), ("LOOKER_CLIENT_SECRET", "{an:24}")),
    F(
        "Mailchimp",
        ("MAILCHIMP_API_KEY", "{hex:32}-us{d:2}"),
        source="https://mailchimp.com/developer/marketing/guides/quick-start/",
    ),
    F(
        "Mailgun",
        ("MAILGUN_API_KEY", "key-{hex:32}"),
        ("MAILGUN_PUBLIC_KEY", "pubkey-{hex:32}"),
        ("MAILGUN_WEBHOOK_SIGNING_KEY", "{hex:32}-{hex:8}-{hex:8}"),
    ),
    F(
        "Mapbox",
        ("MAPBOX_ACCESS_TOKEN", mapbox_token("pk")),
        ("MAPBOX_SECRET_TOKEN", mapbox_token("sk")),
        source="https://docs.mapbox.com/help/dive-deeper/access-tokens/",
    ),
    F("Mattermost", ("MATTERMOST_ACCESS_TOKEN", "{lan:26}")),
    F("MaxMind", ("MAXMIND_LICENSE_KEY", "{an:6}_{an:29}_mmk"), source="https://dev.maxmind.com/license-key-format"),
    F("MessageBird", ("MESSAGEBIRD_ACCESS_KEY", "{an:25}"), ("MESSAGEBIRD_CLIENT_ID", "{uuid}")),
    F(
        "Microsoft Teams",
        (
            "TEAMS_WEBHOOK_URL",
            "https://{low:8}.webhook.office.com/webhookb2/{uuid}@{uuid}/IncomingWebhook/{hex:32}/{uuid}",
        ),
    ),
    F("Netlify", ("NETLIFY_AUTH_TOKEN", "{b64u:43}"), ("NETLIFY_PAT", "nfp_{an:36}")),
    F(
        "New Relic",
        ("NEW_RELIC_API_KEY", "NRAK-{uan:27}"),
        ("NEW_RELIC_INSERT_KEY", "NRII-{b64u:32}"),
        ("NEW_RELIC_BROWSER_KEY", "NRJS-{hex:19}"),
        ("NEW_RELIC_LICENSE_KEY", "{hex:36}NRAL"),
        source="https://docs.newrelic.com/docs/apis/intro-apis/new-relic-api-keys/",
    ),
    F("Notion", ("NOTION_API_KEY", "secret_{an:43}"), ("NOTION_TOKEN", "ntn_{d:11}{an:35}")),
    F(
        "npm",
        ("NPM_TOKEN", crc_token("npm_")),
        source="https://github.blog/changelog/2021-09-23-npm-has-a-new-access-token-format/",
    ),
    R("NuGet", nuget_config, "NuGet.Config"),
    F("NuGet API key", ("NUGET_API_KEY", "oy2{lan:43}")),
    F("New York Times", ("NYTIMES_API_KEY", "{an:32}")),
    F("Octopus Deploy", ("OCTOPUS_API_KEY", "API-{uan:26}")),
    F("Okta", ("OKTA_API_TOKEN", "00{b64u:40}")),
    F(
        "OpenAI",
        ("OPENAI_API_KEY", openai_key("sk-proj-", "b64u", 74)),
        ("OPENAI_KEY", openai_key("sk-", "an", 20)),
        ("OPENAI_ADMIN_KEY", openai_key("sk-admin-", "b64u", 74)),
        source="https://platform.openai.com/docs/api-reference/authentication",
    ),
    F("OpenShift", ("OPENSHIFT_TOKEN", "sha256~{b64u:43}")),
    F("Perplexity", ("PERPLEXITY_API_KEY", "pplx-{an:48}")),
    F(
        "Plaid",
        ("PLAID_CLIENT_ID", "{hex:24}"),
        ("PLAID_SECRET", "{hex:30}"),
        ("PLAID_ACCESS_TOKEN", "access-production-{uuid}"),
    ),
    F(
        "PlanetScale",
        ("PLANETSCALE_SERVICE_TOKEN", "pscale_tkn_{b64u:43}"),
        ("PLANETSCALE_OAUTH_TOKEN", "pscale_oauth_{b64u:43}"),
        ("PLANETSCALE_PASSWORD", "pscale_pw_{b64u:43}"),
    ),
    F(
        "Postman",
        ("POSTMAN_API_KEY", "PMAK-{hex:24}-{hex:34}"),
        source="https://learning.postman.com/docs/developer/postman-api/authentication/",
    ),
    F("Prefect", ("PREFECT_API_KEY", "pnu_{an:36}")),
    R(
        "Private key (PEM)",
        lambda r: pem_block(r.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"]), r.choice([608, 1216]))(r),
        "server.key",
    ),
    F("Private AI", ("PRIVATEAI_API_KEY", "{an:32}")),
    F("Pulumi", ("PULUMI_ACCESS_TOKEN", "pul-{hex:40}")),
    F("PyPI", ("PYPI_TOKEN", pypi_token), source="https://pypi.org/help/#apitoken"),
    F("RapidAPI", ("RAPIDAPI_KEY", "{b64u:50}")),
    F("ReadMe", ("README_API_KEY", "rdme_{lan:70}")),
    F(
        "RubyGems",
        ("GEM_HOST_API_KEY", "rubygems_{hex:48}"),
        source="https://guides.rubygems.org/api-key-scopes/",
        styles=ENV_ONLY,
    ),
    F("Scalingo", ("SCALINGO_API_TOKEN", "tk-us-{b64u:48}")),
    F("Sendbird", ("SENDBIRD_APP_ID", "{UUID}"), ("SENDBIRD_API_TOKEN", "{hex:40}")),
    F(
        "SendGrid",
        ("SENDGRID_API_KEY", "SG.{b64u:22}.{b64u:43}"),
        source="https://www.twilio.com/docs/sendgrid/ui/account-and-settings/api-keys",
    ),
    F("Brevo", ("SENDINBLUE_API_KEY", "xkeysib-{hex:64}-{an:16}")),
    F(
        "Sentry",
        ("SENTRY_AUTH_TOKEN", "sntryu_{hex:64}"),
        ("SENTRY_ORG_TOKEN", sentry_org_token),
        ("SENTRY_LEGACY_TOKEN", "{hex:64}"),
        source="https://docs.sentry.io/account/auth-tokens/",
    ),
    F(
        "SettleMint",
        ("SETTLEMINT_ACCESS_TOKEN", "sm_aat_{an:16}"),
        ("SETTLEMINT_PERSONAL_TOKEN", "sm_pat_{an:16}"),
        ("SETTLEMINT_SERVICE_TOKEN", "sm_sat_{an:16}"),
    ),
    F("Shippo", ("SHIPPO_API_TOKEN", "shippo_live_{hex:40}")),
    F(
        "Shopify",
        ("SHOPIFY_ACCESS_TOKEN", "shpat_{hex:32}"),
        ("SHOPIFY_CUSTOM_APP_TOKEN", "shpca_{hex:32}"),
        ("SHOPIFY_PRIVATE_APP_TOKEN", "shppa_{hex:32}"),
        ("SHOPIFY_SHARED_SECRET", "shpss_{hex:32}"),
        source="https://shopify.dev/changelog/length-of-the-shopify-access-token-is-increasing",
    ),
    F(
        "Sidekiq",
        ("BUNDLE_ENTERPRISE__CONTRIBSYS__COM", "{hex:8}:{hex:8}"),
        ("SIDEKIQ_GEM_SOURCE", "https://{hex:8}:{hex:8}@gems.contribsys.com/"),
        styles=ENV_ONLY,
    ),
    F(
        "Slack",
        ("SLACK_BOT_TOKEN", "xoxb-{d:11}-{d:13}-{an:24}"),
        ("SLACK_USER_TOKEN", "xoxp-{d:11}-{d:11}-{d:13}-{hex:32}"),
        ("SLACK_APP_TOKEN", "xapp-1-A{uan:10}-{d:13}-{hex:64}"),
        ("SLACK_CONFIG_TOKEN", "xoxe.xoxp-1-{b64u:140}"),
        ("SLACK_CONFIG_REFRESH_TOKEN", "xoxe-1-{b64u:140}"),
        ("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T{uan:8}/B{uan:10}/{an:24}"),
        source="https://api.slack.com/authentication/token-types",
    ),
    F("Snyk", ("SNYK_TOKEN", "{uuid}")),
    F(
        "SonarQube",
        ("SONAR_TOKEN", "squ_{hex:40}"),
        ("SONAR_PROJECT_TOKEN", "sqp_{hex:40}"),
        source="https://docs.sonarsource.com/sonarqube-server/latest/user-guide/managing-tokens/",
    ),
    F("Sourcegraph", ("SRC_ACCESS_TOKEN", "sgp_{hex:16}_{hex:40}")),
    F("Square", ("SQUARE_ACCESS_TOKEN", "EAAA{b64u:60}"), ("SQUARE_OAUTH_SECRET", "sq0csp-{b64u:43}")),
    F("Squarespace", ("SQUARESPACE_API_KEY", "{uuid}")),
    F(
        "Stripe",
        ("STRIPE_SECRET_KEY", "sk_live_{an:99}"),
        ("STRIPE_RESTRICTED_KEY", "rk_live_{an:99}"),
        source="https://docs.stripe.com/keys",
    ),
    F("Sumo Logic", ("SUMO_ACCESS_ID", "su{an:12}"), ("SUMO_ACCESS_KEY", "{an:64}")),
    F(
        "Telegram",
        ("TELEGRAM_BOT_TOKEN", "{d:10}:AA{b64u:33}"),
        source="https://core.telegram.org/bots/api#authorizing-your-bot",
    ),
    F("Travis CI", ("TRAVIS_API_TOKEN", "{an:22}")),
    F(
        "Twilio",
        ("TWILIO_API_KEY", "SK{hex:32}"),
        ("TWILIO_AUTH_TOKEN", "{hex:32}"),
        source="https://www.twilio.com/docs/iam/api-keys",
    ),
    F("Twitch", ("TWITCH_API_TOKEN", "{lan:30}")),
    F(
        "Twitter",
        ("TWITTER_API_KEY", "{an:25}"),
        ("TWITTER_API_SECRET", "{an:50}"),
        ("TWITTER_ACCESS_TOKEN", "{d:19}-{an:40}"),
        ("TWITTER_BEARER_TOKEN", "AAAAAAAAAAAAAAAAAAAAA{an:90}"),
    ),
    F("Typeform", ("TYPEFORM_TOKEN", "tfp_{b64u:44}_{b64u:14}")),
    F(
        "HashiCorp Vault",
        ("VAULT_TOKEN", "hvs.{b64u:91}"),
        ("VAULT_BATCH_TOKEN", "hvb.{b64u:138}"),
        source="https://developer.hashicorp.com/vault/docs/concepts/tokens#token-prefixes",
    ),
    F(
        "Yandex Cloud",
        ("YANDEX_API_KEY", "AQVN{b64u:36}"),
        ("YANDEX_STATIC_KEY", "YC{b64u:38}"),
        ("YANDEX_OAUTH_TOKEN", "y0_{b64u:55}"),
        source="https://yandex.cloud/en/docs/iam/concepts/authorization/api-key",
    ),
    F("Zendesk", ("ZENDESK_API_TOKEN", "{an:40}")),
    # -- widely used vendors Kingfisher adds --
    F("AbuseIPDB", ("ABUSEIPDB_API_KEY", "{hex:80}")),
    F("Aiven", ("AIVEN_TOKEN", "{b64:372}")),
    F("Amplitude", ("AMPLITUDE_SECRET_KEY", "{hex:32}")),
    F("Apify", ("APIFY_TOKEN", "apify_api_{an:36}")),
    F("Apollo", ("APOLLO_API_KEY", "{b64u:22}")),
    F("AssemblyAI", ("ASSEMBLYAI_API_KEY", "{hex:32}")),
    F(
        "Auth0",
        ("AUTH0_CLIENT_SECRET", "{b64u:64}"),
        companions=(
            ("AUTH0_DOMAIN", "{low:8}.us.auth0.com"),
            ("AUTH0_CLIENT_ID", "{an:32}"),
        ),
    ),
    F(
        "Azure",
        (
            "AZURE_STORAGE_CONNECTION_STRING",
            "DefaultEndpointsProtocol=https;AccountName={lan:12};AccountKey={b64:86}==;EndpointSuffix=core.windows.net",
        ),
        (
            "AZURE_SERVICEBUS_CONNECTION_STRING",
            "Endpoint=sb://{lan:10}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={b64:43}=",
        ),
        (
            "AZURE_APPCONFIG_CONNECTION_STRING",
            "Endpoint=https://{lan:10}.azconfig.io;Id={b64u:4}-l0-s0:{an:20};Secret={b64:43}=",
        ),
        source="https://learn.microsoft.com/en-us/azure/storage/common/storage-configure-connection-string",
    ),
    F("Bitly", ("BITLY_ACCESS_TOKEN", "{hex:40}")),
    F("Box", ("BOX_DEVELOPER_TOKEN", "{an:32}")),
    F("Brave Search", ("BRAVE_SEARCH_API_KEY", "BSA{b64u:27}")),
    F(
        "BrowserStack",
        ("BROWSERSTACK_ACCESS_KEY", "{an:20}"),
        companions=(("BROWSERSTACK_USERNAME", "{low:8}_{an:6}"),),
    ),
    F(
        "Buildkite",
        ("BUILDKITE_API_TOKEN", "bkua_{hex:40}"),
        source="https://buildkite.com/docs/apis/managing-api-tokens",
    ),
    F("Cerebras", ("CEREBRAS_API_KEY", "csk-{lan:48}")),
    F("CircleCI", ("CIRCLECI_TOKEN", "CCIPAT_{an:22}_{hex:40}"), ("CIRCLECI_PROJECT_TOKEN", "CCIPRJ_{an:22}_{hex:40}")),
    F("Civo", ("CIVO_TOKEN", "{an:50}")),
    F("Clerk", ("CLERK_SECRET_KEY", "sk_live_{an:42}")),
    F("ClickUp", ("CLICKUP_API_TOKEN", "pk_{d:8}_{uan:32}")),
    F("Cloudinary", ("CLOUDINARY_URL", "cloudinary://{d:15}:{b64u:27}@{lan:9}")),
    F("Cloudsmith", ("CLOUDSMITH_API_KEY", "{hex:40}")),
    F("CockroachDB Cloud", ("COCKROACH_API_KEY", "CCDB1_{an:22}_{an:40}")),
    F("ConfigCat", ("CONFIGCAT_SDK_KEY", "configcat-sdk-1/{b64u:22}/{b64u:22}")),
    F("Coveralls", ("COVERALLS_REPO_TOKEN", "{an:37}")),
    F(
        "crates.io",
        ("CARGO_REGISTRY_TOKEN", "cio{an:32}"),
        styles=ENV_ONLY,
        source="https://doc.rust-lang.org/cargo/reference/registry-authentication.html",
    ),
    F("Databento", ("DATABENTO_API_KEY", "db-{an:29}")),
    F("DataStax Astra", ("ASTRA_DB_APPLICATION_TOKEN", "AstraCS:{an:24}:{hex:64}")),
    F("Deepgram", ("DEEPGRAM_API_KEY", "{hex:40}")),
    F("DeepSeek", ("DEEPSEEK_API_KEY", "sk-{hex:32}")),
    F("Deno Deploy", ("DENO_DEPLOY_TOKEN", "ddp_{an:36}"), ("DENO_ORG_TOKEN", "ddo_{an:36}")),
    F(
        "Docker Hub",
        ("DOCKERHUB_TOKEN", "dckr_pat_{b64u:27}"),
        ("DOCKERHUB_ORG_TOKEN", "dckr_oat_{b64u:32}"),
        source="https://docs.docker.com/security/for-developers/access-tokens/",
    ),
    F(
        "Docker Swarm",
        ("SWARM_JOIN_TOKEN", "SWMTKN-1-{lan:50}-{lan:25}"),
        ("SWARM_UNLOCK_KEY", "SWMKEY-1-{an:43}"),
        source="https://docs.docker.com/engine/reference/commandline/swarm_unlock-key/",
    ),
    F(
        "eBay",
        ("EBAY_CLIENT_SECRET", "PRD-{hex:12}-{hex:4}-{hex:4}-{hex:4}-{hex:4}"),
        companions=(("EBAY_CLIENT_ID", "{alpha:8}-{alpha:6}-PRD-{hex:9}-{hex:8}"),),
    ),
    F(
        "Elastic",
        ("ELASTIC_API_KEY", lambda r: _b64((pick(r, "an", 20) + ":" + pick(r, "b64u", 22)).encode())),
        ("ELASTIC_CLOUD_API_KEY", "essu_{b64:80}"),
    ),
    F("ElevenLabs", ("ELEVENLABS_API_KEY", "sk_{hex:48}")),
    F("Exoscale", ("EXOSCALE_API_KEY", "EXO{hex:24}"), ("EXOSCALE_API_SECRET", "{b64u:43}")),
    F("fal.ai", ("FAL_KEY", "{uuid}:{hex:32}")),
    F("Figma", ("FIGMA_TOKEN", "figd_{b64u:40}")),
    F("Gitea", ("GITEA_TOKEN", "{hex:40}")),
    F("Google Gemini", ("GEMINI_API_KEY", "AIza{b64u:35}")),
    F("Groq", ("GROQ_API_KEY", "gsk_{an:52}"), source="https://console.groq.com/docs/quickstart"),
    F("Honeycomb", ("HONEYCOMB_API_KEY", "{an:22}"), ("HONEYCOMB_INGEST_KEY", "hcaik_01{lan:56}")),
    F("Hunter", ("HUNTER_API_KEY", "{hex:40}")),
    F("IBM Cloud", ("IBMCLOUD_API_KEY", "{b64u:44}")),
    F("InfluxDB", ("INFLUXDB_TOKEN", "{b64u:86}==")),
    F("Ionic", ("IONIC_TOKEN", "ion_{an:42}")),
    F("JumpCloud", ("JUMPCLOUD_API_KEY", "jca_{an:36}")),
    F("Moonshot Kimi", ("MOONSHOT_API_KEY", "sk-{an:48}")),
    F("Klaviyo", ("KLAVIYO_PRIVATE_KEY", "pk_{hex:34}")),
    F(
        "LangSmith",
        ("LANGSMITH_API_KEY", "lsv2_pt_{hex:32}_{hex:10}"),
        ("LANGCHAIN_SERVICE_KEY", "lsv2_sk_{hex:32}_{hex:10}"),
    ),
    F(
        "Langfuse",
        ("LANGFUSE_SECRET_KEY", "sk-lf-{uuid}"),
        companions=(
            ("LANGFUSE_PUBLIC_KEY", "pk-lf-{uuid}"),
            ("LANGFUSE_HOST", "https://cloud.langfuse.com"),
        ),
    ),
    F("Lark", ("LARK_APP_SECRET", "{an:32}"), companions=(("LARK_APP_ID", "cli_{hex:16}"),)),
    F("Lichess", ("LICHESS_TOKEN", "lip_{an:20}")),
    F("LlamaCloud", ("LLAMA_CLOUD_API_KEY", "llx-{an:48}")),
    F("MailerSend", ("MAILERSEND_API_TOKEN", "mlsn.{hex:64}")),
    F("Mem0", ("MEM0_API_KEY", "m0-{an:40}")),
    F(
        "Miro",
        ("MIRO_ACCESS_TOKEN", lambda r: _b64url(b'{"miro.origin":"eu01"}') + "_" + pick(r, "b64u", 27)),
        companions=(("MIRO_CLIENT_ID", "{d:19}"),),
    ),
    F("Mistral AI", ("MISTRAL_API_KEY", "{an:32}")),
    F(
        "monday.com",
        (
            "MONDAY_API_TOKEN",
            jwt(
                lambda r: {
                    "tid": r.randint(10**8, 10**9),
                    "aai": 11,
                    "uid": r.randint(10**6, 10**8),
                    "iad": "2024-05-01T10:00:00.000Z",
                    "per": "me:write",
                }
            ),
        ),
    ),
    F("MongoDB", ("MONGODB_URI", "mongodb+srv://app:{an:20}@cluster0.{lan:5}.mongodb.net/main")),
    F(
        "MongoDB Atlas",
        ("MONGODB_ATLAS_CLIENT_SECRET", "mdb_sa_sk_{an:40}"),
        companions=(("MONGODB_ATLAS_CLIENT_ID", "mdb_sa_id_{hex:24}"),),
    ),
    F("Neon", ("NEON_API_KEY", "napi_{lan:64}")),
    F("ngrok", ("NGROK_AUTHTOKEN", "2{an:26}_{an:21}"), ("NGROK_API_KEY", "2{an:26}_{an:21}")),
    F("NVIDIA NGC", ("NVIDIA_API_KEY", "nvapi-{b64u:64}")),
    F("Nylas", ("NYLAS_API_KEY", "nyk_v0_{an:49}")),
    F("OneSignal", ("ONESIGNAL_REST_API_KEY", "os_v2_app_{b32l:106}")),
    F("Onfido", ("ONFIDO_API_TOKEN", "api_live.{b64u:11}.{b64u:32}")),
    F(
        "OpenRouter",
        ("OPENROUTER_API_KEY", "sk-or-v1-{hex:64}"),
        source="https://openrouter.ai/docs/api-reference/authentication",
    ),
    F("OpenWeather", ("OPENWEATHER_API_KEY", "{hex:32}")),
    F("Opsgenie", ("OPSGENIE_API_KEY", "{uuid}")),
    F(
        "OVH",
        ("OVH_APPLICATION_KEY", "{an:16}"),
        ("OVH_APPLICATION_SECRET", "{an:32}"),
        ("OVH_CONSUMER_KEY", "{an:32}"),
    ),
    F("Paddle", ("PADDLE_API_KEY", "pdl_live_apikey_{lan:26}_{an:22}_{an:3}")),
    F("PagerDuty", ("PAGERDUTY_API_KEY", "u+{b64u:18}")),
    F("PayPal", ("PAYPAL_CLIENT_SECRET", "E{b64u:79}"), companions=(("PAYPAL_CLIENT_ID", "A{b64u:79}"),)),
    F("PayPal Braintree", ("BRAINTREE_ACCESS_TOKEN", "access_token$production${lan:16}${hex:32}")),
    F("Pinecone", ("PINECONE_API_KEY", "pcsk_{an:5}_{an:63}")),
    F("Plivo", ("PLIVO_AUTH_ID", "MA{uan:18}"), ("PLIVO_AUTH_TOKEN", "{an:40}")),
    F("PostHog", ("POSTHOG_PERSONAL_API_KEY", "phx_{an:43}"), ("POSTHOG_PROJECT_API_KEY", "phc_{an:43}")),
    F("Postmark", ("POSTMARK_SERVER_TOKEN", "{uuid}")),
    F("Razorpay", ("RAZORPAY_KEY_ID", "rzp_live_{an:14}"), ("RAZORPAY_KEY_SECRET", "{an:24}")),
    F("Render", ("RENDER_API_KEY", "rnd_{an:32}")),
    F("Replicate", ("REPLICATE_API_TOKEN", "r8_{an:37}")),
    F("Resend", ("RESEND_API_KEY", "re_{an:8}_{an:24}"), source="https://resend.com/docs/api-reference/introduction"),
    F("Rootly", ("ROOTLY_API_KEY", "rootly_{hex:64}")),
    F("RunPod", ("RUNPOD_API_KEY", "rpa_{uan:46}")),
    F(
        "Salesforce",
        ("SALESFORCE_ACCESS_TOKEN", "00D{an:12}!{b64u:96}"),
        companions=(("SALESFORCE_INSTANCE_URL", "https://{low:10}.my.salesforce.com"),),
    ),
    F("Samsara", ("SAMSARA_API_TOKEN", "samsara_api_{an:30}")),
    F("Scaleway", ("SCW_ACCESS_KEY", "SCW{uan:17}"), ("SCW_SECRET_KEY", "{uuid}")),
    F("Segment", ("SEGMENT_PUBLIC_API_TOKEN", "sgp_{an:64}")),
    F("Stability AI", ("STABILITY_API_KEY", "sk-{an:48}")),
    F(
        "Supabase",
        ("SUPABASE_ACCESS_TOKEN", "sbp_{hex:40}"),
        ("SUPABASE_SECRET_KEY", "sb_secret_{b64u:31}"),
        (
            "SUPABASE_SERVICE_ROLE_KEY",
            jwt(
                lambda r: {
                    "iss": "supabase",
                    "ref": pick(r, "low", 20),
                    "role": "service_role",
                    "iat": 1_700_000_000,
                    "exp": 2_000_000_000,
                }
            ),
        ),
        companions=(("SUPABASE_URL", "https://{low:20}.supabase.co"),),
    ),
    F(
        "Tailscale",
        ("TS_API_KEY", "tskey-api-k{an:10}CNTRL-{an:32}"),
        ("TS_AUTHKEY", "tskey-auth-k{an:10}CNTRL-{an:32}"),
        source="https://tailscale.com/kb/1277/key-prefixes",
    ),
    F("Telnyx", ("TELNYX_API_KEY", "KEY{HEX:32}_{b64u:22}")),
    F("Together AI", ("TOGETHER_API_KEY", "tgp_v1_{b64u:43}")),
    F("Unkey", ("UNKEY_ROOT_KEY", "unkey_{an:24}")),
    F(
        "Upstash",
        ("UPSTASH_REDIS_REST_TOKEN", "AX{b64u:58}="),
        companions=(("UPSTASH_REDIS_REST_URL", "https://{low:10}-{low:6}-{d:5}.upstash.io"),),
    ),
    F("Vercel", ("VERCEL_TOKEN", "{an:24}"), ("VERCEL_ACCESS_TOKEN", "vcp_{an:56}")),
    F("VirusTotal", ("VIRUSTOTAL_API_KEY", "{hex:64}")),
    F("Voyage AI", ("VOYAGE_API_KEY", "pa-{b64u:43}")),
    F("Vultr", ("VULTR_API_KEY", "{uan:36}")),
    F("WakaTime", ("WAKATIME_API_KEY", "waka_{uuid}")),
    F("Weights & Biases", ("WANDB_API_KEY", "{hex:40}")),
    F("WooCommerce", ("WOOCOMMERCE_CONSUMER_KEY", "ck_{hex:40}"), ("WOOCOMMERCE_CONSUMER_SECRET", "cs_{hex:40}")),
    F("xAI", ("XAI_API_KEY", "xai-{an:80}")),
    F("Zoho", ("ZOHO_ACCESS_TOKEN", "1000.{hex:32}.{hex:32}"), companions=(("ZOHO_CLIENT_ID", "1000.{uan:30}"),)),
    F("Zuplo", ("ZUPLO_API_KEY", "zpka_{hex:32}_{hex:8}")),
    F(
        "Bitwarden",
        ("BWS_ACCESS_TOKEN", "0.{uuid}.{an:30}:{b64:22}=="),
        source="https://bitwarden.com/help/access-tokens/",
    ),
    F("HashiCorp Cloud Platform", ("HCP_CLIENT_SECRET", "{b64u:64}"), companions=(("HCP_CLIENT_ID", "{an:32}"),)),
    F("Postman collection", ("POSTMAN_COLLECTION_TOKEN", "PMAT-{uan:26}")),
    F("Mux", ("MUX_TOKEN_SECRET", "{b64:75}"), companions=(("MUX_TOKEN_ID", "{uuid}"),)),
    F(
        "Tableau",
        ("TABLEAU_PAT_SECRET", "{b64:22}==:{an:32}"),
        companions=(
            ("TABLEAU_PAT_NAME", "ci-{low:6}"),
            ("TABLEAU_SERVER", "https://prod-useast-a.online.tableau.com"),
        ),
    ),
    F("Pinterest", ("PINTEREST_ACCESS_TOKEN", "pina_{uan:96}")),
    F("Polar", ("POLAR_ACCESS_TOKEN", "polar_pat_{b64u:43}"), ("POLAR_ORG_TOKEN", "polar_oat_{b64u:43}")),
    F("Wiz", ("WIZ_CLIENT_SECRET", "{an:64}"), companions=(("WIZ_CLIENT_ID", "{lan:53}"),)),
    F("Disqus", ("DISQUS_API_SECRET", "{an:64}")),
    F("Xendit", ("XENDIT_SECRET_KEY", "xnd_production_{b64u:64}")),
    F("Midtrans", ("MIDTRANS_SERVER_KEY", "Mid-server-{b64u:24}")),
    F("Ramp", ("RAMP_CLIENT_SECRET", "ramp_sec_{an:48}"), companions=(("RAMP_CLIENT_ID", "ramp_id_{an:40}"),)),
    F("api.data.gov", ("DATA_GOV_API_KEY", "{an:40}")),
    F("Weatherstack", ("WEATHERSTACK_ACCESS_KEY", "{hex:32}")),
    F("Asaas", ("ASAAS_API_KEY", asaas_key)),
    # -- other vendors common in images --
    F("Akamai", ("AKAMAI_CLIENT_TOKEN", "akab-{lan:16}-{lan:16}"), ("AKAMAI_CLIENT_SECRET", "{b64:43}=")),
    F("Tencent Cloud", ("TENCENTCLOUD_SECRET_ID", "AKID{an:32}"), ("TENCENTCLOUD_SECRET_KEY", "{an:32}")),
    F("Trello", ("TRELLO_API_KEY", "{hex:32}"), ("TRELLO_TOKEN", "ATTA{hex:64}{HEX:8}")),
    F("Zapier", ("ZAPIER_WEBHOOK_URL", "https://hooks.zapier.com/hooks/catch/{d:7}/{lan:6}/")),
    F(
        "Pusher",
        ("PUSHER_APP_SECRET", "{hex:20}"),
        companions=(
            ("PUSHER_APP_ID", "{d:7}"),
            ("PUSHER_APP_KEY", "{hex:20}"),
        ),
    ),
    F("Vonage", ("VONAGE_API_SECRET", "{an:16}"), companions=(("VONAGE_API_KEY", "{hex:8}"),)),
    F("Mixpanel", ("MIXPANEL_API_SECRET", "{hex:32}")),
    F("Rollbar", ("ROLLBAR_ACCESS_TOKEN", "{hex:32}")),
    F("Bugsnag", ("BUGSNAG_API_KEY", "{hex:32}")),
    F("Splunk", ("SPLUNK_HEC_TOKEN", "{uuid}")),
    F("Jenkins", ("JENKINS_API_TOKEN", "11{hex:32}")),
    F("Hetzner Cloud", ("HCLOUD_TOKEN", "{an:64}")),
    F("Linode", ("LINODE_TOKEN", "{hex:64}")),
    F("Infura", ("INFURA_API_KEY", "{hex:32}")),
    F("Etherscan", ("ETHERSCAN_API_KEY", "{uan:34}")),
    F("Alchemy", ("ALCHEMY_API_KEY", "{b64u:32}")),
    F(
        "Django",
        ("DJANGO_SECRET_KEY", django_key(True)),
        ("DJANGO_SECRET", django_key(False)),
        source="https://docs.djangoproject.com/en/stable/ref/settings/#secret-key",
        styles=("env", "sh", "py"),
    ),
    F("Laravel", ("APP_KEY", "base64:{b64:43}="), source="https://laravel.com/docs/encryption", styles=ENV_ONLY),
    F("Ruby on Rails", ("SECRET_KEY_BASE", "{hex:128}"), styles=ENV_ONLY),
    F("Sanity", ("SANITY_API_TOKEN", "sk{an:180}")),
    F("Webflow", ("WEBFLOW_API_TOKEN", "{hex:64}")),
    F("Stytch", ("STYTCH_SECRET", "secret-live-{b64u:36}=")),
    F("Adyen", ("ADYEN_API_KEY", "AQE{an:12}+{b64:160}")),
    F("Expo", ("EXPO_TOKEN", "{b64u:40}")),
    F("Oracle Cloud", ("OCI_AUTH_TOKEN", "{b64:20}")),
    F("Zoom", ("ZOOM_CLIENT_SECRET", "{an:32}")),
    F("Cisco Webex", ("WEBEX_ACCESS_TOKEN", "{an:64}_{an:4}_{uuid}")),
    F("Firebase Cloud Messaging", ("FCM_SERVER_KEY", "AAAA{b64u:7}:APA91b{b64u:134}")),
    F("Railway", ("RAILWAY_TOKEN", "{uuid}")),
    F("Loom", ("LOOM_API_KEY", "{uuid}")),
    F("Pipedrive", ("PIPEDRIVE_API_TOKEN", "{hex:40}")),
    F("Freshdesk", ("FRESHDESK_API_KEY", "{an:20}")),
    F("Customer.io", ("CUSTOMERIO_API_KEY", "{hex:32}")),
    F("SparkPost", ("SPARKPOST_API_KEY", "{hex:40}")),
    F("Mandrill", ("MANDRILL_API_KEY", "md-{b64u:22}")),
    F("Help Scout", ("HELPSCOUT_APP_SECRET", "{an:32}")),
    F("Storyblok", ("STORYBLOK_TOKEN", "{an:22}tt")),
    F("Qdrant", ("QDRANT_API_KEY", "{b64u:32}")),
    F("Weaviate", ("WEAVIATE_API_KEY", "{an:40}")),
    F("Jina AI", ("JINA_API_KEY", "jina_{hex:32}{b64u:28}")),
    F("Fireworks AI", ("FIREWORKS_API_KEY", "fw_{an:24}")),
    F("Anyscale", ("ANYSCALE_API_KEY", "esecret_{lan:26}")),
    F("Infisical", ("INFISICAL_TOKEN", "st.{uuid}.{hex:32}.{hex:32}")),
    R(
        "htpasswd",
        lambda r: pick(r, "low", 6) + ":$apr1$" + pick(r, "an", 8) + "$" + pick(r, "b64", 22),
        ".htpasswd",
        source="https://httpd.apache.org/docs/2.4/misc/password_encryptions.html",
    ),
    F("Database URI", ("DATABASE_URL", db_uri)),
    F(
        "Azure DevOps",
        ("AZURE_DEVOPS_PAT", "{b32l:52}"),
        ("AZURE_DEVOPS_EXT_PAT", "{an:76}AZDO{an:4}"),
        source="https://learn.microsoft.com/en-us/azure/devops/organizations/accounts/use-personal-access-tokens-to-authenticate",
    ),
    F("Azure OpenAI", ("AZURE_OPENAI_API_KEY", "{hex:32}")),
    F(
        "Google OAuth",
        ("GOOGLE_CLIENT_SECRET", "GOCSPX-{b64u:28}"),
        companions=(("GOOGLE_CLIENT_ID", "{d:12}-{lan:32}.apps.googleusercontent.com"),),
    ),
    R("Docker config auth", docker_config, "config.json"),
    R("netrc", netrc, ".netrc"),
    R("Git credentials", git_credentials, ".git-credentials"),
    R("JSON Web Key", jwk_private, "signing-key.jwk"),
    R("PuTTY", putty_key, "deploy.ppk"),
    F("Flask", ("FLASK_SECRET_KEY", "{hex:64}")),
    F("Symfony", ("APP_SECRET", "{hex:32}"), styles=ENV_ONLY),
    F("Binance", ("BINANCE_API_KEY", "{an:64}"), ("BINANCE_API_SECRET", "{an:64}")),
    F("Steam", ("STEAM_WEB_API_KEY", "{HEX:32}")),
    F("Riot Games", ("RIOT_API_KEY", "RGAPI-{uuid}")),
    F("Ethereum", ("ETH_PRIVATE_KEY", "0x{hex:64}")),
    F("TeamCity", ("TEAMCITY_TOKEN", teamcity_token)),
    F("HashiCorp Consul", ("CONSUL_HTTP_TOKEN", "{uuid}")),
    F(
        "Redis Cloud",
        ("REDIS_URL", "redis://default:{an:32}@redis-{d:5}.c{d:3}.us-east-1-2.ec2.redns.redis-cloud.com:{d:5}"),
    ),
    F("Ably", ("ABLY_API_KEY", "{b64u:6}.{b64u:6}:{b64u:43}")),
    F("IFTTT", ("IFTTT_WEBHOOK_URL", "https://maker.ifttt.com/trigger/deploy/with/key/{b64u:22}")),
    F("Close", ("CLOSE_API_KEY", "api_{an:22}.{an:22}")),
    F("Jotform", ("JOTFORM_API_KEY", "{hex:32}")),
    F("Stream", ("STREAM_API_SECRET", "{lan:64}"), companions=(("STREAM_API_KEY", "{lan:12}"),)),
    F("Agora", ("AGORA_APP_CERTIFICATE", "{hex:32}")),
    F("Wix", ("WIX_API_KEY", jwt(_user_claims, prefix="IST."))),
    R("PKCS#12 keystore", pkcs12_file, "client.p12"),
)
