"""Breadth of the leak detector per credential family, side by side with gitleaks and Kingfisher.

Writes fake credentials for every family of `breadth_families.FAMILIES` (every vendor of
gitleaks' default configuration, the widely used ones Kingfisher adds, and common ones neither names),
generated at run time from the vendors' documented formats with a seeded RNG, one file per family in a
temporary directory, each value in a realistic context line. Then runs ours (`secretsvc scan DIR`, plain
files), gitleaks (`gitleaks dir`) and Kingfisher (`kingfisher scan DIR`) over the same files, maps every
finding back to the family file and sample line it came from, and prints per family: detected samples /
planted for each tool, whether a hit came from the family's own rule, a generic rule or another family's
rule ("wrong rule"), the totals, and the target check of issue 9: every family a peer detects with a rule of
its own is detected by ours too (the misses are the to-do list). Writes the figures (never a value) as JSON
to bench/out/.

Families covered (319; `--list` prints them with their variables and the documentation checked):
  gitleaks' vendors (129): 1Password, Adafruit IO, Adobe, age, Airtable, Algolia, Alibaba Cloud, Anthropic, JFrog,
  Asana, Atlassian, Authress, AWS, Microsoft Entra ID, Beamer, Bitbucket, Bittrex, Cisco Meraki, ClickHouse Cloud,
  Clojars, Cloudflare, Codecov, Cohere, Coinbase, Confluent, Contentful, curl auth, Databricks, Datadog, Defined
  Networking, DigitalOcean, Discord, Doppler, Drone CI, Dropbox, Duffel, Dynatrace, EasyPost, Etsy, Facebook,
  Fastly, Finicity, Finnhub, Flickr, Flutterwave, Fly.io, Frame.io, Freemius, FreshBooks, Google Cloud, Google
  Cloud service account, GitHub, GitLab, Gitter, GoCardless, Grafana, Harness, Terraform Cloud, Heroku, HubSpot,
  Hugging Face, Infracost, Intercom, 42 Intra, JSON Web Token, Kraken, Kubernetes, KuCoin, LaunchDarkly, Linear,
  LinkedIn, Lob, Looker, Mailchimp, Mailgun, Mapbox, Mattermost, MaxMind, MessageBird, Microsoft Teams, Netlify,
  New Relic, Notion, npm, NuGet, NuGet API key, New York Times, Octopus Deploy, Okta, OpenAI, OpenShift,
  Perplexity, Plaid, PlanetScale, Postman, Prefect, Private key (PEM), Private AI, Pulumi, PyPI, RapidAPI, ReadMe,
  RubyGems, Scalingo, Sendbird, SendGrid, Brevo, Sentry, SettleMint, Shippo, Shopify, Sidekiq, Slack, Snyk,
  SonarQube, Sourcegraph, Square, Squarespace, Stripe, Sumo Logic, Telegram, Travis CI, Twilio, Twitch, Twitter,
  Typeform, HashiCorp Vault, Yandex Cloud, Zendesk.
  Kingfisher's widely used additions (120): AbuseIPDB, Aiven, Amplitude, Apify, Apollo, AssemblyAI, Auth0, Azure,
  Bitly, Box, Brave Search, BrowserStack, Buildkite, Cerebras, CircleCI, Civo, Clerk, ClickUp, Cloudinary,
  Cloudsmith, CockroachDB Cloud, ConfigCat, Coveralls, crates.io, Databento, DataStax Astra, Deepgram, DeepSeek,
  Deno Deploy, Docker Hub, Docker Swarm, eBay, Elastic, ElevenLabs, Exoscale, fal.ai, Figma, Gitea, Google Gemini,
  Groq, Honeycomb, Hunter, IBM Cloud, InfluxDB, Ionic, JumpCloud, Moonshot Kimi, Klaviyo, LangSmith, Langfuse,
  Lark, Lichess, LlamaCloud, MailerSend, Mem0, Miro, Mistral AI, monday.com, MongoDB, MongoDB Atlas, Neon, ngrok,
  NVIDIA NGC, Nylas, OneSignal, Onfido, OpenRouter, OpenWeather, Opsgenie, OVH, Paddle, PagerDuty, PayPal, PayPal
  Braintree, Pinecone, Plivo, PostHog, Postmark, Razorpay, Render, Replicate, Resend, Rootly, RunPod, Salesforce,
  Samsara, Scaleway, Segment, Stability AI, Supabase, Tailscale, Telnyx, Together AI, Unkey, Upstash, Vercel,
  VirusTotal, Voyage AI, Vultr, WakaTime, Weights & Biases, WooCommerce, xAI, Zoho, Zuplo, Bitwarden, HashiCorp
  Cloud Platform, Postman collection, Mux, Tableau, Pinterest, Polar, Wiz, Disqus, Xendit, Midtrans, Ramp,
  api.data.gov, Weatherstack, Asaas.
  Others common in images (70): Akamai, Tencent Cloud, Trello, Zapier, Pusher, Vonage, Mixpanel, Rollbar, Bugsnag,
  Splunk, Jenkins, Hetzner Cloud, Linode, Infura, Etherscan, Alchemy, Django, Laravel, Ruby on Rails, Sanity,
  Webflow, Stytch, Adyen, Expo, Oracle Cloud, Zoom, Cisco Webex, Firebase Cloud Messaging, Railway, Loom,
  Pipedrive, Freshdesk, Customer.io, SparkPost, Mandrill, Help Scout, Storyblok, Qdrant, Weaviate, Jina AI,
  Fireworks AI, Anyscale, Infisical, htpasswd, Database URI, Azure DevOps, Azure OpenAI, Google OAuth, Docker
  config auth, netrc, Git credentials, JSON Web Key, PuTTY, Flask, Symfony, Binance, Steam, Riot Games, Ethereum,
  TeamCity, HashiCorp Consul, Redis Cloud, Ably, IFTTT, Close, Jotform, Stream, Agora, Wix, PKCS#12 keystore.

Peers are found in `--peers-venv` (default /tmp/peers-venv); see bench/README-scan.md for the install line.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import sys
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import breadth_corpus as bc  # the corpus writer next to this file
from breadth_families import FAMILIES
from scan_bench import MAX_REPORT_BYTES, Hit, ours_cmd, parse_gitleaks, parse_kingfisher, parse_ours, run_measured

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
RULES_DATA = ROOT / "secretsvc" / "scan" / "rules" / "data"
TOOLS = ("ours", "gitleaks", "kingfisher")
#: Extra column with --image: ours on the same files packed as a docker-archive image.
OURS_IMAGE = "ours-image"
#: Peer flags: JSON reports, no banner or progress, no network (Kingfisher validates and updates by default).
GITLEAKS_QUIET = ("--no-banner", "-l", "error", "--exit-code", "0", "-f", "json")
KINGFISHER_OFFLINE = ("--no-validate", "--no-update-check", "--no-limits", "-q", "-f", "json")
#: Shortest reported text credited by containment in a planted value (shorter ones match by accident).
MIN_OVERLAP_CHARS = 8
#: Ours' rule data files are read for their ids and family names only; a larger file is not a rule file.
MAX_RULE_FILE_BYTES = 8 * 1024 * 1024

# Words of a family name too common to tie a rule id to that family.
_STOPWORDS = {"cloud", "api", "key", "the", "and", "service", "account", "private", "web", "token", "platform"}
# How rule ids name a family whose name they do not spell out word for word: when a family has aliases, a
# peer's rule belongs to it only through one of them, so that words shared with other products (HashiCorp,
# Cisco, Docker, Google, Azure) do not attribute another product's rule.
ALIASES: Mapping[str, tuple[str, ...]] = {
    "Microsoft Entra ID": ("azure-ad", "azure-client-secret", "entra", "msal"),
    "Azure": ("azure-storage", "azure-servicebus", "azure-app-configuration", "azure-sas"),
    "Azure DevOps": ("azure-devops", "azdo"),
    "Azure OpenAI": ("azure-openai",),
    "Brevo": ("sendinblue", "brevo"),
    "Terraform Cloud": ("hashicorp-tf", "terraform"),
    "HashiCorp Vault": ("vault",),
    "HashiCorp Consul": ("consul",),
    "HashiCorp Cloud Platform": ("hcp", "hcpclientcredentials"),
    "JSON Web Token": ("jwt",),
    "Google Cloud": ("gcp", "google-cloud", "google-api"),
    "Google Cloud service account": ("gcp-service-account", "google-service-account"),
    "Google Gemini": ("gemini", "gcp-api-key"),
    "Google OAuth": ("google-oauth", "google-client-secret"),
    "Private key (PEM)": ("private-key", "privatekey", "pem", "rsa-private", "ec-private"),
    "42 Intra": ("intra42",),
    "JFrog": ("artifactory", "jfrog"),
    "Database URI": ("credential-uri", "connection-uri", "connection-string", "database-uri", "postgres",
                     "postgresql", "mysql", "mongodb", "redis", "amqp", "url-credentials"),
    "curl auth": ("curl",),
    "Moonshot Kimi": ("kimi", "moonshot"),
    "Docker Hub": ("dockerhub", "docker-hub"),
    "Docker Swarm": ("docker-swarm", "swarm"),
    "Docker config auth": ("docker-config", "docker-auth", "dockerconfig", "dockercfg"),
    "Git credentials": ("git-credential", "git-credentials", "gitcredentials"),
    "New York Times": ("nytimes",),
    "crates.io": ("crates-io", "cratesio", "crates"),
    "Weights & Biases": ("weights-and-biases", "wandb"),
    "NuGet API key": ("nuget",),
    "PayPal Braintree": ("braintree",),
    "Sumo Logic": ("sumologic", "sumo"),
    "Hugging Face": ("huggingface", "hugging-face"),
    "Firebase Cloud Messaging": ("firebase", "fcm"),
    "Help Scout": ("helpscout", "help-scout"),
    "Customer.io": ("customerio", "customer-io"),
    "Ruby on Rails": ("rails", "secret-key-base"),
    "Oracle Cloud": ("oracle", "oci"),
    "MongoDB": ("mongodb", "mongo"),
    "Kubernetes": ("kubernetes", "k8s"),
    "age": ("age-secret",),
    "SonarQube": ("sonar", "sonarqube"),
    "CockroachDB Cloud": ("cockroachlabs", "cockroachdb", "cockroach"),
    "PKCS#12 keystore": ("pkcs12", "pfx", "p12"),
    "api.data.gov": ("datagov", "data-gov"),
    "NVIDIA NGC": ("nvidia", "ngc"),
    "Cisco Webex": ("webex",),
    "Redis Cloud": ("redis-cloud", "redislabs"),
    "Postman collection": ("postman-collection", "postmancollectiontoken"),
    "monday.com": ("monday",),
    "npm": ("npm", "npmjsaccesstoken"),
    "Deno Deploy": ("deno", "denopatorg"),
    "xAI": ("xai", "grokxaiapikey"),
}  # fmt: skip
#: A family's name run together is credited inside a longer rule-id word only from this length on ("box" is
#: not Dropbox, "postmancollection" is Kingfisher's postmancollectiontoken).
MIN_SQUASHED_IN_WORD = 5


# -- attributing a hit to a family --------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]


def _contains_run(tokens: Sequence[str], run: Sequence[str]) -> bool:
    n = len(run)
    return n > 0 and any(list(tokens[i : i + n]) == list(run) for i in range(len(tokens) - n + 1))


def peer_rule_names_family(rule: str, family: str) -> bool:
    """Does a rule id name the family: by an alias, by every significant word of its name, or the name run together?"""
    tokens = _tokens(rule)
    if family in ALIASES:
        return any(_contains_run(tokens, _tokens(a)) or "".join(_tokens(a)) in tokens for a in ALIASES[family])
    squashed = "".join(_tokens(family))
    runs = {"".join(tokens[i:j]) for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1)}
    if squashed in runs or (len(squashed) >= MIN_SQUASHED_IN_WORD and any(squashed in t for t in tokens)):
        return True
    words = [w for w in _tokens(family) if len(w) >= 3 and w not in _STOPWORDS]
    return bool(words) and all(w in tokens for w in words)


#: Rules that match a format shared by many vendors (a JWT, a PEM block, a URI with a password, an assignment
#: of a random-looking value): a hit by one of them on another family's sample is generic, not wrong.
_GENERIC_RULE_WORDS = (
    "generic",
    "high-entropy",
    "password-assignment",
    "jwt",
    "private-key",
    "credential-uri",
    "database-uri",
    "uri-password",
    "basic-auth",
    "curl-auth",
)
#: Ours' families that are formats rather than vendors.
_GENERIC_FAMILIES = {"Generic", "Database URIs", "Private keys", "JSON Web Token", "netrc", "Git"}
#: Ours' family names that differ from the corpus' for the same vendor.
_EQUIVALENT = {
    "Private keys": "Private key (PEM)",
    "Database URIs": "Database URI",
    "Docker": "Docker config auth",
    "Git": "Git credentials",
}


def is_generic(rule: str, rule_families: Mapping[str, str] | None = None) -> bool:
    if rule_families and rule in rule_families:
        return rule_families[rule] in _GENERIC_FAMILIES
    r = rule.lower()
    return any(w in r for w in _GENERIC_RULE_WORDS)


def rule_names_family(rule: str, family: str, rule_families: Mapping[str, str]) -> bool:
    """Does the rule belong to the family? Ours' own rule->family table first, else the rule id's words."""
    if rule in rule_families:
        return _same_vendor(rule_families[rule], family)
    return peer_rule_names_family(rule, family)


def _same_vendor(ours: str, corpus: str) -> bool:
    """Ours splits a few vendors finer or coarser (Azure Storage / Azure, MongoDB Atlas / MongoDB)."""
    b = corpus.lower()
    names = {ours.lower(), _EQUIVALENT.get(ours, ours).lower()}
    return any(a == b or a.startswith(b + " ") or b.startswith(a + " ") for a in names)


def load_rule_families(data_dir: Path = RULES_DATA) -> dict[str, str]:
    """Rule id -> family from ours' rule data files (only ids and family names are read)."""
    out: dict[str, str] = {}
    for path in sorted(data_dir.glob("*.toml")):
        if path.stat().st_size > MAX_RULE_FILE_BYTES:
            raise ValueError(f"{path.name} is larger than MAX_RULE_FILE_BYTES")
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
        for rule in doc.get("rule", []):
            if "id" in rule and "family" in rule:
                out[str(rule["id"])] = str(rule["family"])
    return out


# -- scoring -----------------------------------------------------------------------------------------------

#: Per sample and tool: how it was found.
RIGHT, GENERIC, WRONG, MISS = "right", "generic", "wrong", "miss"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    rules: tuple[str, ...] = ()
    hidden: bool = False  # ours only: every hit below the default confidence


def relative(path: str, root: Path) -> str:
    p = path.replace("\\", "/")
    for prefix in (str(root.resolve()) + "/", str(root) + "/", "/" + bc.IMAGE_ROOT + "/", bc.IMAGE_ROOT + "/"):
        if p.startswith(prefix):
            return p[len(prefix) :]
    return p.removeprefix("./").lstrip("/")


def _overlaps(text: str | None, value: str) -> bool:
    if not text:
        return False
    t = re.sub(r"\s+", "", text)
    v = re.sub(r"\s+", "", value)
    return v in t or (len(t) >= MIN_OVERLAP_CHARS and t in v)


def hits_for(item: bc.Planted, hits: Iterable[Hit]) -> list[Hit]:
    """Hits in the sample's file on one of its lines, or whose reported text is (part of) its value."""
    lo, hi = item.lines
    return [h for h in hits if (h.line is not None and lo <= h.line <= hi) or _overlaps(h.text, item.value)]


def classify(
    item: bc.Planted, hits: Sequence[Hit], rule_families: Mapping[str, str], hidden: frozenset[Hit] = frozenset()
) -> Outcome:
    """How the sample was found: by its family's rule, a generic one, another family's, or not at all."""
    if not hits:
        return Outcome(MISS)
    rules = tuple(sorted({h.rule for h in hits}))
    below = all(h in hidden for h in hits)
    if any(rule_names_family(h.rule, item.family, rule_families) for h in hits):
        return Outcome(RIGHT, rules, below)
    if any(is_generic(h.rule, rule_families) for h in hits):
        return Outcome(GENERIC, rules, below)
    return Outcome(WRONG, rules, below)


def score_tool(
    planted: Sequence[bc.Planted],
    hits: Sequence[Hit],
    root: Path,
    rule_families: Mapping[str, str],
    hidden: Iterable[Hit] = (),
) -> list[Outcome]:
    """One outcome per planted sample, in the order given."""
    by_path: dict[str, list[Hit]] = {}
    for h in hits:
        by_path.setdefault(relative(h.path, root), []).append(h)
    hidden_set = frozenset(hidden)
    outcomes = []
    for p in planted:
        in_file = by_path.get(p.path, [])
        # A whole-file sample (key file, manifest, binary keystore) owns every hit in its file.
        mine = in_file if p.variant == "file" else hits_for(p, in_file)
        outcomes.append(classify(p, mine, rule_families, hidden_set))
    return outcomes


@dataclass(slots=True)
class FamilyRow:
    family: str
    planted: int
    found: dict[str, dict[str, int]] = field(default_factory=dict)  # tool -> status -> samples
    wrong_rules: dict[str, list[str]] = field(default_factory=dict)  # tool -> rule ids of wrong-rule hits

    def detected(self, tool: str) -> int:
        f = self.found.get(tool, {})
        return f.get(RIGHT, 0) + f.get(GENERIC, 0) + f.get(WRONG, 0)

    def named(self, tool: str) -> int:
        return self.found.get(tool, {}).get(RIGHT, 0)


def tabulate(planted: Sequence[bc.Planted], outcomes: Mapping[str, Sequence[Outcome]]) -> list[FamilyRow]:
    """Per family, per tool: samples found by the family's own rule, a generic one, another family's, or not."""
    rows: dict[str, FamilyRow] = {}
    for i, item in enumerate(planted):
        row = rows.setdefault(item.family, FamilyRow(item.family, 0))
        row.planted += 1
        for tool, outs in outcomes.items():
            o = outs[i]
            counts = row.found.setdefault(tool, {})
            counts[o.status] = counts.get(o.status, 0) + 1
            if o.status == WRONG:
                row.wrong_rules.setdefault(tool, [])
                row.wrong_rules[tool] = sorted(set(row.wrong_rules[tool]) | set(o.rules))
    return list(rows.values())


@dataclass(frozen=True, slots=True)
class Target:
    """Issue 9: every family a peer detects (with a rule of its own) is detected by ours too."""

    missed: tuple[str, ...]  # a peer names the family, ours finds no sample of it
    ours_unnamed: tuple[str, ...]  # a peer names the family, ours finds it only through generic or wrong rules
    peer_generic_only: tuple[str, ...]  # a peer finds it only through a generic rule, ours finds nothing

    @property
    def met(self) -> bool:
        return not self.missed


def check_target(rows: Sequence[FamilyRow], peers: Sequence[str]) -> Target:
    missed, unnamed, generic_only = [], [], []
    for r in rows:
        peer_named = any(r.named(p) for p in peers)
        peer_any = any(r.detected(p) for p in peers)
        if peer_named and not r.detected("ours"):
            missed.append(r.family)
        elif peer_named and not r.named("ours"):
            unnamed.append(r.family)
        elif peer_any and not r.detected("ours"):
            generic_only.append(r.family)
    return Target(tuple(missed), tuple(unnamed), tuple(generic_only))


def form_misses(
    planted: Sequence[bc.Planted], outcomes: Mapping[str, Sequence[Outcome]], peers: Sequence[str]
) -> list[tuple[str, str]]:
    """(family, variable) of every credential form a peer finds with its own rule in some sample and ours misses."""
    out: dict[tuple[str, str], None] = {}
    for i, p in enumerate(planted):
        if outcomes["ours"][i].status == MISS and any(outcomes[t][i].status == RIGHT for t in peers):
            out[(p.family, p.variant)] = None
    return list(out)


def file_style(path: str) -> str:
    """The context style a sample was written in, from its file name (`whole file` for key files and the like)."""
    name = path.rsplit("/", 1)[-1]
    styles = {".env": "env", "config.sh": "sh", "config.yaml": "yaml", "config.json": "json", "config.py": "py"}
    return styles.get(name, "js" if name == "config.js" else "whole file")


def by_style(planted: Sequence[bc.Planted], outcomes: Mapping[str, Sequence[Outcome]]) -> dict[str, dict[str, int]]:
    """Samples found per context style and tool, plus how many were planted in that style (`planted`)."""
    out: dict[str, dict[str, int]] = {}
    for i, p in enumerate(planted):
        row = out.setdefault(file_style(p.path), {"planted": 0})
        row["planted"] += 1
        for tool, outs in outcomes.items():
            row[tool] = row.get(tool, 0) + (outs[i].status != MISS)
    return out


# -- printing ----------------------------------------------------------------------------------------------


def cell(row: FamilyRow, tool: str) -> str:
    """`found/planted`, then `g` when some were found only by a generic rule and `w` by another family's."""
    if tool not in row.found:
        return "-"
    f = row.found[tool]
    marks = ("g" if f.get(GENERIC) else "") + ("w" if f.get(WRONG) else "")
    return f"{row.detected(tool)}/{row.planted}" + (f" {marks}" if marks else "")


def totals(rows: Sequence[FamilyRow], tool: str) -> dict[str, int]:
    return {
        "families_detected": sum(1 for r in rows if r.detected(tool)),
        "families_named": sum(1 for r in rows if r.named(tool)),
        "families_complete": sum(1 for r in rows if r.detected(tool) == r.planted),
        "samples_detected": sum(r.detected(tool) for r in rows),
        "samples_named": sum(r.named(tool) for r in rows),
        "samples_generic": sum(r.found.get(tool, {}).get(GENERIC, 0) for r in rows),
        "samples_wrong_rule": sum(r.found.get(tool, {}).get(WRONG, 0) for r in rows),
    }


def render_table(rows: Sequence[FamilyRow], tools: Sequence[str]) -> list[str]:
    width = max(len(r.family) for r in rows) + 2
    out = [f"{'family':<{width}}" + "".join(f"{t:>14}" for t in tools), "-" * (width + 14 * len(tools))]
    out += [f"{r.family:<{width}}" + "".join(f"{cell(r, t):>14}" for t in tools) for r in rows]
    out.append("-" * (width + 14 * len(tools)))
    planted = sum(r.planted for r in rows)
    for label, key in (
        ("families detected", "families_detected"),
        ("  by own rule", "families_named"),
        ("  all samples", "families_complete"),
        ("samples detected", "samples_detected"),
        ("  by own rule", "samples_named"),
        ("  generic rule", "samples_generic"),
        ("  wrong rule", "samples_wrong_rule"),
    ):
        denom = len(rows) if key.startswith("families") else planted
        out.append(f"{label:<{width}}" + "".join(f"{totals(rows, t)[key]:>9}/{denom:<4}" for t in tools))
    return out


# -- running -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolRun:
    name: str
    cmd: list[str]
    report: Path
    parse: Callable[[Path], list[Hit]]


def parse_ours_hidden(path: Path, min_confidence: str = "medium") -> list[Hit]:
    """Ours' hits that the default `--min-confidence` would hide (the bench runs ours at `low`)."""
    order = {"low": 0, "medium": 1, "high": 2}
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise ValueError(f"{path.name} is larger than MAX_REPORT_BYTES")
    doc = json.loads(path.read_text())
    hidden = {
        (f["path"], f["line"], f["rule_id"]) for f in doc["findings"] if order[f["confidence"]] < order[min_confidence]
    }
    return [h for h in parse_ours(path) if (h.path, h.line, h.rule) in hidden]


@dataclass(slots=True)
class SeedRun:
    """One corpus (one seed) scanned by every tool."""

    seed: int
    planted: list[bc.Planted]
    outcomes: dict[str, list[Outcome]]
    timings: dict[str, float]
    rows: list[FamilyRow] = field(default_factory=list)
    target: Target | None = None
    forms: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ours_none(self) -> list[str]:
        return [r.family for r in self.rows if not r.detected("ours")]

    @property
    def hidden_ours(self) -> int:
        return sum(1 for o in self.outcomes["ours"] if o.status != MISS and o.hidden)


def tool_runs(args: argparse.Namespace, corpus_dir: Path, raw: Path, key: bytes) -> dict[str, ToolRun]:
    """The command line of every tool over the corpus directory (and, with --image, ours over the image)."""
    peers_bin = args.peers_venv / "bin"
    ours_bin = args.ours_venv / "bin"
    report = {t: raw / f"{t}.json" for t in (*TOOLS, OURS_IMAGE)}
    runs = {
        "ours": ToolRun(
            "ours",
            [*ours_cmd(ours_bin, str(corpus_dir), key), "--min-confidence", "low", "--output", str(report["ours"])],
            report["ours"],
            parse_ours,
        ),
        "gitleaks": ToolRun(
            "gitleaks",
            [str(peers_bin / "gitleaks"), "dir", str(corpus_dir), *GITLEAKS_QUIET, "-r", str(report["gitleaks"])],
            report["gitleaks"],
            parse_gitleaks,
        ),
        "kingfisher": ToolRun(
            "kingfisher",
            [
                str(peers_bin / "kingfisher"),
                "scan",
                str(corpus_dir),
                *KINGFISHER_OFFLINE,
                "-o",
                str(report["kingfisher"]),
            ],
            report["kingfisher"],
            parse_kingfisher,
        ),
    }
    if args.image:
        ref = "docker-archive:" + str(bc.write_image(corpus_dir, args.workdir / "breadth-image.tar"))
        runs[OURS_IMAGE] = ToolRun(
            OURS_IMAGE,
            [*ours_cmd(ours_bin, ref, key), "--min-confidence", "low", "--output", str(report[OURS_IMAGE])],
            report[OURS_IMAGE],
            parse_ours,
        )
    return runs


def run_seed(args: argparse.Namespace, seed: int, families: Sequence[bc.Family], tools: Sequence[str]) -> SeedRun:
    """Write the corpus for one seed, run every tool over it and score each sample."""
    corpus_dir = args.workdir / "corpus"
    if corpus_dir.exists():
        shutil.rmtree(corpus_dir)
    raw = args.workdir / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    corpus = bc.write_corpus(corpus_dir, seed, args.per_family, families)
    print(f"corpus (seed {seed}): {len(families)} families, {len(corpus.planted)} samples in {corpus_dir}")
    runs = tool_runs(args, corpus_dir, raw, secrets.token_bytes(32))
    rule_families = load_rule_families()
    result = SeedRun(seed, corpus.planted, {}, {})
    for tool in tools:
        run = runs[tool]
        run.report.unlink(missing_ok=True)
        t0 = time.perf_counter()
        stats = run_measured(run.cmd, stdout=raw / f"{tool}.stdout")
        result.timings[tool] = time.perf_counter() - t0
        if not run.report.exists():
            err = (raw / f"{tool}.stderr").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{tool}: no report (exit {stats.returncode}); stderr tail:\n{err}")
        hits = run.parse(run.report)
        ours = tool in ("ours", OURS_IMAGE)
        hidden = parse_ours_hidden(run.report) if ours else []
        result.outcomes[tool] = score_tool(corpus.planted, hits, corpus_dir, rule_families if ours else {}, hidden)
        print(f"{tool}: {len(hits)} findings in {result.timings[tool]:.1f} s (exit {stats.returncode})")
    result.rows = tabulate(corpus.planted, result.outcomes)
    peers = [t for t in tools if t not in ("ours", OURS_IMAGE)]
    if peers:
        result.target = check_target(result.rows, peers)
        result.forms = form_misses(corpus.planted, result.outcomes, peers)
    return result


def print_run(run: SeedRun, tools: Sequence[str]) -> None:
    print()
    print("\n".join(render_table(run.rows, tools)))
    print("\n(cells: samples found / planted; g = some only by a generic rule, w = some by another family's rule)")
    styles = by_style(run.planted, run.outcomes)
    print(
        "\nsamples found by file style: "
        + "; ".join(
            f"{style} " + " ".join(f"{t} {row.get(t, 0)}" for t in tools) + f" of {row['planted']}"
            for style, row in sorted(styles.items())
        )
    )
    print(f"ours: {run.hidden_ours} found samples are below the default --min-confidence (medium), hidden by default")
    if OURS_IMAGE in run.outcomes:
        same = sum(a.status == b.status for a, b in zip(run.outcomes["ours"], run.outcomes[OURS_IMAGE], strict=True))
        print(f"ours on the image agrees with ours on the directory for {same}/{len(run.planted)} samples")
    for tool in tools:
        wrong = {r.family: r.wrong_rules[tool] for r in run.rows if tool in r.wrong_rules}
        if wrong:
            print(f"\nwrong-rule hits, {tool}: " + "; ".join(f"{fam} -> {', '.join(rs)}" for fam, rs in wrong.items()))
    if run.target is not None:
        t = run.target
        print(f"\ntarget (every family a peer names is detected by ours): {'met' if t.met else 'MISSED'}")
        print(f"  named by a peer, ours finds nothing ({len(t.missed)}): {', '.join(t.missed) or '-'}")
        unnamed = ", ".join(t.ours_unnamed) or "-"
        print(f"  named by a peer, ours only generic/other rule ({len(t.ours_unnamed)}): {unnamed}")
        forms = ", ".join(f"{f} {v}" for f, v in run.forms) or "-"
        print(f"  forms a peer names that ours misses ({len(run.forms)}): {forms}")
        generic_only = ", ".join(t.peer_generic_only) or "-"
        print(f"  a peer's generic rule finds it, ours nothing ({len(t.peer_generic_only)}): {generic_only}")
    print(f"\nfamilies ours finds nothing of ({len(run.ours_none)}): {', '.join(run.ours_none) or '-'}")


def run_doc(run: SeedRun, tools: Sequence[str], per_sample: bool) -> dict[str, object]:
    """The figures of one seed's run, for the JSON report (never a value)."""
    t = run.target
    doc: dict[str, object] = {
        "seed": run.seed,
        "families": len(run.rows),
        "samples": len(run.planted),
        "seconds": {k: round(v, 2) for k, v in run.timings.items()},
        "totals": {tool: totals(run.rows, tool) for tool in tools},
        "ours_hidden_by_default": run.hidden_ours,
        "by_style": by_style(run.planted, run.outcomes),
        "target": None
        if t is None
        else {
            "met": t.met,
            "missed": t.missed,
            "ours_unnamed": t.ours_unnamed,
            "peer_generic_only": t.peer_generic_only,
        },
        "forms_a_peer_names_ours_misses": [list(f) for f in run.forms],
        "ours_detects_nothing": run.ours_none,
    }
    if per_sample:
        doc["rows"] = [
            {"family": r.family, "planted": r.planted, "found": r.found, "wrong_rules": r.wrong_rules} for r in run.rows
        ]
        # Per sample: which form, where, and how each tool found it.
        doc["per_sample"] = [
            {
                "family": p.family,
                "variant": p.variant,
                "path": p.path,
                **{
                    tool: {"status": run.outcomes[tool][i].status, "rules": run.outcomes[tool][i].rules}
                    for tool in tools
                },
            }
            for i, p in enumerate(run.planted)
        ]
    return doc


def across_seeds(runs: Sequence[SeedRun]) -> dict[str, list[str]]:
    """Target misses that hold in every seed (a missing rule) and in some seed only (the file's style decides)."""
    missed = [set(r.target.missed) for r in runs if r.target is not None]
    if not missed:
        return {}
    every, some = set.intersection(*missed), set.union(*missed)
    order = [r.family for r in runs[0].rows]
    return {
        "missed_every_seed": [f for f in order if f in every],
        "missed_some_seed": [f for f in order if f in some - every],
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=20250901)
    ap.add_argument("--seeds", type=int, default=1, help="run N corpora (seed, seed+1, ...); table of the first")
    ap.add_argument("--per-family", type=int, default=3, help="samples per family (at least one per variant)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/breadth-bench"), help="corpus and raw reports")
    ap.add_argument("--peers-venv", type=Path, default=Path("/tmp/peers-venv"))
    ap.add_argument("--ours-venv", type=Path, default=ROOT / ".venv")
    ap.add_argument("--only-ours", action="store_true", help="skip the peers")
    ap.add_argument("--image", action="store_true", help="also run ours on the files packed as a docker-archive")
    ap.add_argument("--family", action="append", default=[], help="only this family (repeatable)")
    ap.add_argument("--list", action="store_true", help="print the families and their variables, then exit")
    ap.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = ap.parse_args(argv)

    families = [f for f in FAMILIES if not args.family or f.name in args.family]
    if args.list:
        for f in FAMILIES:
            source = f"  [{f.source}]" if f.source else ""
            print(f"{f.name}: {', '.join(v.var or 'file' for v in f.variants)}{source}")
        return 0
    if not families:
        ap.error("no family matches --family")
    if args.per_family < 1 or args.seeds < 1:
        ap.error("--per-family and --seeds must be at least 1")
    tools = ["ours"] if args.only_ours else list(TOOLS)
    if not (args.ours_venv / "bin" / "secretsvc").exists():
        ap.error(f"no secretsvc in {args.ours_venv / 'bin'}")
    for tool in tools[1:]:
        if not (args.peers_venv / "bin" / tool).exists():
            ap.error(f"{tool} not found in {args.peers_venv / 'bin'}; see bench/README-scan.md for the install line")
    if args.image:
        tools.append(OURS_IMAGE)

    try:
        runs = [run_seed(args, args.seed + i, families, tools) for i in range(args.seeds)]
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 2
    print_run(runs[0], tools)
    across = across_seeds(runs) if len(runs) > 1 else {}
    if len(runs) > 1:
        print(f"\nacross seeds {args.seed}..{args.seed + args.seeds - 1}:")
        for r in runs:
            t = totals(r.rows, "ours")
            missed = len(r.target.missed) if r.target else "-"
            print(
                f"  seed {r.seed}: ours {t['families_detected']} families ({t['families_named']} by own rule), "
                f"{t['samples_detected']}/{len(r.planted)} samples; families a peer names and ours misses: {missed}"
            )
        if across:
            print(
                f"  a peer names it, ours finds nothing in every seed: {', '.join(across['missed_every_seed']) or '-'}"
            )
            print(f"  ... in some seeds only: {', '.join(across['missed_some_seed']) or '-'}")

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"breadth-{time.strftime('%Y%m%d-%H%M%S')}.json"
    doc = {
        "per_family": args.per_family,
        "tools": tools,
        **run_doc(runs[0], tools, per_sample=True),
        "other_seeds": [run_doc(r, tools, per_sample=False) for r in runs[1:]],
        "across_seeds": across,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")
    missed = any(r.target is not None and not r.target.met for r in runs)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
