"""The default rules: one stable id per credential type, with its triggers and precision checks.

Ids never change once published (baselines and config ignores refer to them). docs/scan-rules.md describes
each rule; keep the two in step.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from secretsvc.scan.model import Severity
from secretsvc.scan.rules import checks, filters
from secretsvc.scan.rules.model import Check, Confirmer, Detector, Rule, RuleInfo, regex_confirmer

MAX_PEM_BYTES = 65536  # a private-key PEM block longer than this is not one we look for
MAX_SECRET_BYTES = 4096  # longest secret a regex-confirmed rule extracts
CONTEXT_BYTES = 8192  # how far a rule looks around a match for context (service-account JSON, kubeconfig)
MIN_PEM_BODY = 64

# Priorities: a token whose format proves its type (3) beats the place it was found (2), which beats a
# bare JWT (1) and the generic heuristic (0); a container or cloud credential file (4) beats all.
GENERIC, JWT, PLACE, FORMAT, CONTEXT = 0, 1, 2, 3, 4

_ALNUM_BEFORE = r"(?<![A-Za-z0-9_])"
_ALNUM_AFTER = r"(?![A-Za-z0-9_])"
_URLSAFE_BEFORE = r"(?<![A-Za-z0-9_-])"
_URLSAFE_AFTER = r"(?![A-Za-z0-9_-])"
_NP = r"\x00-\x20\x7f-\xff"  # not printable ASCII: binary runs never form a secret value
_ASSIGN = r"[\"']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}[\"']?"
SENSITIVE_NAME_WORDS = (
    r"passw(?:or)?d|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key"
    r"|credentials?"
)
NON_SECRET_KEY_SUFFIXES = (
    "file", "path", "dir", "name", "url", "uri", "endpoint", "type", "length", "len", "size", "ttl", "id",
    "env", "header", "field", "format", "mode", "policy", "ref", "count", "prefix", "suffix", "regex",
    "pattern", "hash", "version", "expiry", "expires", "timeout", "enabled", "required", "provider", "source",
    "store", "location", "method", "strategy", "kind", "class", "label", "min", "max", "rotation", "algorithm",
)  # fmt: skip
PLACEHOLDER_USERS = frozenset(
    {b"user", b"username", b"usr", b"foo", b"name", b"login", b"me", b"you", b"someone", b"myuser"}
)
DEFAULT_CREDENTIAL_WORDS = frozenset({
    b"pass", b"pw", b"root", b"admin", b"user", b"guest", b"postgres", b"mysql",
    # "password" in the languages manuals are translated into: a stand-in, not a credential
    b"passwort", b"kennwort", b"passwd", b"motdepasse", b"contrasena", b"senha", b"wachtwoord", b"haslo",
})  # fmt: skip
# Names reserved for documentation and tests (RFC 2606, RFC 6761): credentials for them are examples.
_DOCUMENTATION_HOST = re.compile(
    rb"(?i)(?:[a-z0-9-]+\.)*(?:example(?:\.(?:com|org|net|edu))?|[a-z0-9-]+\.(?:example|test|invalid))(?![a-z0-9.-])"
)
_ROFF_ESCAPE = b"\\&"  # man pages write "example\&.org" to stop roff from breaking the line there
HOST_LOOKAHEAD_BYTES = 256


def _value(pred: Callable[[bytes], bool]) -> Check:
    return lambda data, s, e: pred(data[s:e])


def _not(pred: Callable[[bytes], bool]) -> Check:
    return lambda data, s, e: not pred(data[s:e])


def _near(needles: tuple[bytes, ...], distance: int = CONTEXT_BYTES) -> Check:
    def check(data: bytes, s: int, e: int) -> bool:
        lo, hi = max(0, s - distance), min(len(data), e + distance)
        return any(data.find(n, lo, hi) >= 0 for n in needles)

    return check


KUBECONFIG_REACH = 16 * CONTEXT_BYTES  # how far from a token its kubeconfig's `users:` / `kind:` may be


def _kubeconfig_confirmer(inner: Confirmer) -> Confirmer:
    """Tokens under a `users:` list, in a document with `kind: Config` or `clusters:`.

    The context is looked up once per window, not per candidate, so a flood of `token:` lines costs
    linear time.
    """

    def confirm(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
        lo, hi = max(0, start - KUBECONFIG_REACH), min(len(data), end + KUBECONFIG_REACH)
        users = data.find(b"users:", lo, end)
        if users < 0 or (data.find(b"kind: Config", lo, hi) < 0 and data.find(b"clusters:", lo, hi) < 0):
            return
        for s, e in inner(data, start, end):
            if s > users:
                yield s, e

    return confirm


def _trim(data: bytes, s: int, e: int) -> tuple[int, int]:
    """Shrink a PEM body span past whitespace and literal `\\n` escapes at either end."""
    while s < e:
        if data[s : s + 1].isspace():
            s += 1
        elif data[s : s + 2] in (b"\\n", b"\\r"):
            s += 2
        else:
            break
    while e > s:
        if data[e - 1 : e].isspace():
            e -= 1
        elif data[e - 2 : e] in (b"\\n", b"\\r"):
            e -= 2
        else:
            break
    return s, e


def _pem_confirmer(begin: str, *extra: Check) -> Confirmer:
    """Private-key blocks with a body that decodes to a key structure; the match is the body."""
    header = re.compile(begin.encode())

    def confirm(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
        searched: dict[bytes, int] = {}  # label -> offset up to which no END marker exists
        for m in header.finditer(data, start, end):
            label = m.group("label")
            marker = b"-----END " + label + b"-----"
            limit = m.end() + MAX_PEM_BYTES
            if searched.get(label, -1) >= limit:
                continue
            stop = data.find(marker, max(m.end(), searched.get(label, 0) - len(marker)), limit)
            if stop < 0:
                searched[label] = limit
                continue
            s, e = _trim(data, m.end(), stop)
            if e - s < MIN_PEM_BODY or not checks.pem_body_valid(data[s:e], label):
                continue
            if all(check(data, s, e) for check in extra):
                yield s, e

    return confirm


def _generic_value_ok(value: bytes) -> bool:
    # Names, types and words (`_ALLOWED_KEY_TYPES`, `git-credential.o`) lack digits; generated secrets
    # almost never do. Cheapest checks first: hostile input can hold many candidates.
    if not filters.has_digit(value) or not filters.looks_random(value):
        return False
    if filters.is_placeholder(value) or filters.is_code_reference(value) or filters.is_digest_or_uuid(value):
        return False
    if filters.is_documented_example(value):
        return False
    is_url_or_path = b"://" in value or value.startswith((b"/", b"./", b"~/"))
    return not (is_url_or_path or value.startswith((b"$", b":", b"=")) or _YAML_ALIAS.fullmatch(value))


def _password_ok(value: bytes) -> bool:
    return (
        len(value) >= 4
        and value.lower() not in DEFAULT_CREDENTIAL_WORDS
        and not filters.is_placeholder(value)
        and not value.startswith(b"$")
    )


def _url_user_ok(data: bytes, s: int, e: int) -> bool:
    """`https://user:...@`, `postgres://username:...@`: the documentation's stand-in user."""
    scheme = data.rfind(b"://", max(0, s - 200), s)
    user = data[scheme + 3 : s - 1].lower() if scheme >= 0 else b""
    return user not in PLACEHOLDER_USERS


def _is_documentation_host(text: bytes) -> bool:
    """Whether `text` (a host, maybe followed by :port or /path) starts with a documentation-only name."""
    return _DOCUMENTATION_HOST.match(text.replace(_ROFF_ESCAPE, b"")) is not None


def _url_host_ok(data: bytes, s: int, e: int) -> bool:
    """`scheme://user:secret@HOST`: the host right after the secret's `@` is not a documentation name."""
    return not _is_documentation_host(data[e + 1 : e + 1 + HOST_LOOKAHEAD_BYTES])


def _netrc_host_ok(data: bytes, s: int, e: int) -> bool:
    """A .netrc password belongs to the nearest `machine HOST` before it; example hosts are documentation."""
    at = data.rfind(b"machine", max(0, s - 800), s)
    if at < 0:
        return True  # a `default` entry
    return not _is_documentation_host(data[at + len(b"machine") : at + len(b"machine") + HOST_LOOKAHEAD_BYTES].lstrip())


def _docker_password_ok(value: bytes) -> bool:
    password = checks.docker_auth_password(value)
    return password is not None and _password_ok(password)


_YAML_ALIAS = re.compile(rb"[&*][A-Za-z_][A-Za-z0-9_.-]*")
_NOT_EXAMPLE = _not(filters.is_documented_example)
_RANDOM_B64_40 = _value(lambda v: filters.char_classes(v) >= 3 and filters.shannon_entropy(v) >= 4.0)


def _aws() -> list[Rule]:
    key_id = r"(?:AKIA|ASIA)[A-Z2-7]{16}"
    return [
        Rule(
            RuleInfo("aws-access-key-id", Severity.HIGH, "AWS access key id (long-term AKIA or temporary ASIA)",
                     ("AKIA", "ASIA")),
            (Detector(key_id, regex_confirmer(rf"(?<![A-Z0-9])(?P<secret>{key_id})(?![A-Z0-9])", _NOT_EXAMPLE),
                      back=24, forward=4),),
            priority=FORMAT,
        ),
        Rule(
            RuleInfo("aws-secret-access-key", Severity.CRITICAL,
                     "AWS secret access key, near an access key id or assigned to an aws_secret-named key",
                     ("aws_secret", "secret_access_key")),
            (
                Detector(
                    key_id,
                    regex_confirmer(r"(?<![A-Za-z0-9/+=])(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
                                    _NOT_EXAMPLE, _RANDOM_B64_40),
                    back=320, forward=320,
                ),
                Detector(
                    r"(?:aws.?secret|secret.?access.?key)",
                    regex_confirmer(
                        r"(?i:(?:aws.?secret|secret.?access.?key)[A-Za-z0-9_.-]{0,20})" + _ASSIGN
                        + r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
                        _NOT_EXAMPLE, _value(lambda v: filters.shannon_entropy(v) >= 3.5),
                    ),
                    back=24, forward=128, caseless=True,
                ),
            ),
            priority=PLACE,
        ),
    ]  # fmt: skip


def _token(
    rule_id: str,
    severity: Severity,
    description: str,
    keywords: tuple[str, ...],
    trigger: str,
    pattern: str,
    *extra: Check,
    back: int = 160,
    forward: int = 256,
    left: str = _ALNUM_BEFORE,
    right: str = _ALNUM_AFTER,
    priority: int = FORMAT,
) -> Rule:
    confirm = regex_confirmer(f"{left}(?P<secret>{pattern}){right}", *extra, max_extent=MAX_SECRET_BYTES)
    return Rule(
        RuleInfo(rule_id, severity, description, keywords),
        (Detector(trigger, confirm, back=back, forward=forward),),
        priority=priority,
    )


def _tokens() -> list[Rule]:
    random_enough = _value(lambda v: filters.shannon_entropy(v) >= 3.0)
    return [
        _token("gcp-api-key", Severity.MEDIUM, "Google Cloud API key", ("AIza",),
               r"AIza[0-9A-Za-z_-]{35}", r"AIza[0-9A-Za-z_-]{35}", random_enough,
               left=_URLSAFE_BEFORE, right=_URLSAFE_AFTER, forward=8),
        _token("github-classic-token", Severity.HIGH, "GitHub personal access (ghp_) or OAuth (gho_) token",
               ("ghp_", "gho_"), r"gh[po]_[A-Za-z0-9]{36}", r"gh[po]_[A-Za-z0-9]{36}",
               _value(lambda v: checks.crc32_tail_valid(v, 4)), forward=8),
        _token("github-app-token", Severity.HIGH, "GitHub App user (ghu_), installation (ghs_) or refresh (ghr_) "
               "token", ("ghu_", "ghs_", "ghr_"), r"gh[usr]_[A-Za-z0-9]{36}", r"gh[usr]_[A-Za-z0-9]{36}",
               _value(lambda v: checks.crc32_tail_valid(v, 4)), forward=8),
        _token("github-fine-grained-token", Severity.HIGH, "GitHub fine-grained personal access token",
               ("github_pat_",), r"github_pat_[A-Za-z0-9]{22}_", r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
               random_enough, forward=72),
        _token("gitlab-token", Severity.HIGH, "GitLab personal, deploy, runner, pipeline-trigger or OAuth token",
               ("glpat-", "gldt-", "glrt-", "glptt-", "gloas-"),
               r"gl(?:pat|dt|rt|ptt|cbt|oas|ft|soat)-[0-9A-Za-z_-]{20}",
               r"gl(?:pat|dt|rt|ptt|cbt|oas|ft|soat)-[0-9A-Za-z_.-]{20,255}",
               _value(lambda v: filters.shannon_entropy(v.partition(b"-")[2]) >= 3.0),
               left=_URLSAFE_BEFORE, right=r"(?![A-Za-z0-9_.-])"),
        _token("slack-token", Severity.HIGH, "Slack bot, user, app-level or configuration token",
               ("xoxb-", "xoxp-", "xoxa-", "xoxe-", "xapp-"),
               r"(?:xox[baprse]|xapp)-[0-9]{1,16}-",
               r"(?:xox[baprs]-(?:[0-9]{8,16}-){1,3}[0-9A-Za-z]{24,64}|xoxe(?:\.xox[bp])?-[0-9]-[A-Za-z0-9]{100,200}"
               r"|xapp-[0-9]-[A-Z0-9]{8,16}-[0-9]{8,16}-[a-f0-9]{32,80})",
               back=40, forward=260, left=_URLSAFE_BEFORE, right=_URLSAFE_AFTER),
        _token("slack-webhook", Severity.MEDIUM, "Slack incoming-webhook URL", ("hooks.slack.com",),
               r"hooks\.slack\.com/(?:services|workflows|triggers)/",
               r"https://hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{8,12}/[AB][A-Z0-9]{8,12}"
               r"/[A-Za-z0-9]{20,40}", back=64, forward=96, left="", right=r"(?![A-Za-z0-9])"),
        _token("stripe-secret-key", Severity.CRITICAL, "Stripe live secret (sk_live_) or restricted (rk_live_) key",
               ("sk_live_", "rk_live_"), r"[sr]k_live_[0-9A-Za-z]{24}", r"[sr]k_live_[0-9A-Za-z]{24,247}",
               random_enough, forward=256),
        _token("twilio-api-key", Severity.HIGH, "Twilio API key SID (SK + 32 hex)", ("SK",),
               r"SK[0-9a-f]{32}", r"SK[0-9a-f]{32}", _value(lambda v: filters.shannon_entropy(v) >= 3.0),
               left=r"(?<![A-Za-z0-9])", right=r"(?![A-Za-z0-9])", forward=4),
        _token("sendgrid-api-key", Severity.HIGH, "SendGrid API key", ("SG.",),
               r"SG\.[0-9A-Za-z_-]{22}\.", r"SG\.[0-9A-Za-z_-]{22}\.[0-9A-Za-z_-]{43}", random_enough,
               left=_URLSAFE_BEFORE, right=_URLSAFE_AFTER, forward=48),
        _token("openai-api-key", Severity.HIGH, "OpenAI API key (legacy, project, service-account or admin)",
               ("T3BlbkFJ",), r"T3BlbkFJ",
               r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,200}T3BlbkFJ[A-Za-z0-9_-]{20,200}",
               back=220, forward=220, left=_URLSAFE_BEFORE, right=_URLSAFE_AFTER),
        _token("anthropic-api-key", Severity.HIGH, "Anthropic API or admin key", ("sk-ant-",),
               r"sk-ant-(?:api|admin)[0-9]{2}-", r"sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{80,120}AA",
               left=_URLSAFE_BEFORE, right=_URLSAFE_AFTER, forward=130),
        _token("npm-token", Severity.HIGH, "npm access token", ("npm_",), r"npm_[A-Za-z0-9]{36}",
               r"npm_[A-Za-z0-9]{36}", _value(lambda v: checks.crc32_tail_valid(v, 4)), forward=8),
        _token("pypi-token", Severity.HIGH, "PyPI or TestPyPI API token (a pypi.org macaroon)", ("pypi-",),
               r"pypi-AgE", r"pypi-AgE[A-Za-z0-9_-]{40,4000}", _value(checks.pypi_macaroon_valid),
               left=_URLSAFE_BEFORE, right=_URLSAFE_AFTER, forward=256),
        _token("vault-token", Severity.HIGH, "HashiCorp Vault / OpenBao service, batch or recovery token",
               ("hvs.", "hvb.", "hvr."), r"hv[sbr]\.[A-Za-z0-9_-]{24}", r"hv[sbr]\.[A-Za-z0-9_-]{24,512}",
               random_enough, left=r"(?<![A-Za-z0-9_.-])", right=_URLSAFE_AFTER, forward=520),
    ]  # fmt: skip


def _legacy_vault() -> Detector:
    return Detector(
        r"(?:vault|bao)_?token",
        regex_confirmer(r"(?i:(?:vault|bao)_?token)" + _ASSIGN + r"(?P<secret>s\.[A-Za-z0-9]{24})(?![A-Za-z0-9])",
                        _value(lambda v: filters.shannon_entropy(v) >= 3.0)),
        back=16, forward=64, caseless=True,
    )  # fmt: skip


def _places() -> list[Rule]:
    pem_begin = r"-----BEGIN (?P<label>(?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
    gcp_begin = r"\"private_key\"[ \t]*:[ \t]*\"-----BEGIN (?P<label>PRIVATE KEY)-----"
    db_schemes = (
        r"(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle"
        r"|cockroachdb|clickhouse|jdbc:[a-z]{2,12})://"
    )
    return [
        Rule(RuleInfo("private-key", Severity.HIGH, "PEM private key (RSA, EC, DSA, PKCS#8, encrypted, OpenSSH, PGP) "
                      "with a body that decodes to a key", ("PRIVATE KEY",)),
             (Detector(r"-----BEGIN [A-Z ]{0,20}PRIVATE KEY", _pem_confirmer(pem_begin), back=64, forward=64),),
             priority=PLACE),
        Rule(RuleInfo("gcp-service-account-key", Severity.CRITICAL,
                      "Google Cloud service-account JSON key (the match is the private key body)", ("private_key",)),
             (Detector(r"\"private_key\"", _pem_confirmer(gcp_begin, _near((b"service_account",
                                                                                b"gserviceaccount.com"))),
                       back=32, forward=96),),
             priority=CONTEXT),
        Rule(RuleInfo("azure-storage-connection-string", Severity.CRITICAL,
                      "Azure storage account key in a connection string", ("AccountKey=",)),
             (Detector(r"AccountKey=", regex_confirmer(
                 r"AccountKey=(?P<secret>[A-Za-z0-9+/]{86}==)(?![A-Za-z0-9+/=])",
                 _value(checks.azure_account_key_valid), _NOT_EXAMPLE), back=16, forward=100),),
             priority=CONTEXT),
        Rule(RuleInfo("docker-config-auth", Severity.HIGH,
                      "Registry credentials in a docker config.json (auth = base64 user:password, identitytoken)",
                      ('"auth"', '"identitytoken"')),
             (Detector(r"\"auth\"[ \t]{0,4}:", regex_confirmer(
                 r"\"auth\"[ \t]*:[ \t]*\"(?P<secret>[A-Za-z0-9+/]{4,1024}={0,2})\"", _value(_docker_password_ok)),
                 back=16, forward=1100),
              Detector(r"\"identitytoken\"[ \t]{0,4}:", regex_confirmer(
                  r"\"identitytoken\"[ \t]*:[ \t]*\"(?P<secret>[A-Za-z0-9._~+/=-]{16,4096})\"",
                  _value(lambda v: filters.looks_random(v, min_len=16))), back=24, forward=4200)),
             priority=CONTEXT),
        Rule(RuleInfo("kubeconfig-client-key", Severity.CRITICAL, "Client private key embedded in a kubeconfig",
                      ("client-key-data",)),
             (Detector(r"client-key-data", regex_confirmer(
                 r"client-key-data\"?[ \t]*:[ \t]*\"?(?P<secret>[A-Za-z0-9+/]{40,}={0,2})",
                 _value(checks.kube_client_key_valid), max_extent=4 * MAX_PEM_BYTES), back=24, forward=256),),
             priority=CONTEXT),
        Rule(RuleInfo("kubeconfig-token", Severity.HIGH, "Bearer token of a kubeconfig user", ("token:",)),
             (Detector(r"\stoken:[ \t]*[\"']?[A-Za-z0-9._~+/=-]{20}", _kubeconfig_confirmer(regex_confirmer(
                 r"(?m)^[ \t]+(?:-[ \t]+)?token:[ \t]*(?P<q>[\"']?)(?P<secret>[A-Za-z0-9._~+/=-]{20,4096})(?P=q)"
                 r"[ \t]*\r?$", _value(lambda v: filters.looks_random(v, min_len=20)),
                 _not(filters.is_placeholder))), back=256, forward=4200),),
             priority=CONTEXT),
        Rule(RuleInfo("jwt", Severity.MEDIUM, "JSON Web Token with a signature", ("eyJ",)),
             (Detector(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ", regex_confirmer(
                 rf"{_URLSAFE_BEFORE}(?P<secret>eyJ[A-Za-z0-9_-]{{8,}}\.eyJ[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]{{16,}})"
                 rf"{_URLSAFE_AFTER}", _value(checks.jwt_valid), max_extent=MAX_SECRET_BYTES * 4),
                 back=2048, forward=8192),),
             priority=JWT),
        Rule(RuleInfo("database-uri-password", Severity.HIGH, "Password in a database or broker connection URI",
                      ("postgres://", "mysql://", "mongodb://", "redis://", "amqp://")),
             (Detector(db_schemes + r"[^\s:@/]*:", regex_confirmer(
                 rf"(?i:{db_schemes})(?P<user>[^{_NP}:@/'\"]{{0,64}}):(?P<secret>[^{_NP}@/'\"]{{1,256}})@[A-Za-z0-9._\[-]",
                 _value(_password_ok), _url_user_ok, _url_host_ok), back=48, forward=300, caseless=True),),
             priority=PLACE),
        Rule(RuleInfo("git-credentials", Severity.HIGH, "Password or token in an http(s) URL (.git-credentials, "
                      "remote URLs)", ("https://", "http://")),
             (Detector(r"https?://[^\s:@/]+:[^\s@/]+@", regex_confirmer(
                 rf"(?i:https?)://(?P<user>[^{_NP}:@/'\"]{{1,128}}):(?P<secret>[^{_NP}@/'\"]{{4,256}})@[A-Za-z0-9.\[-]",
                 _value(lambda v: _password_ok(v) and filters.shannon_entropy(v) >= 2.5), _url_user_ok, _url_host_ok),
                 back=400, forward=16, caseless=True),),
             priority=PLACE),
        Rule(RuleInfo("netrc-password", Severity.HIGH, "Password of a .netrc machine entry", ("machine",)),
             (Detector(r"machine[ \t]+\S+\s+(?:login|password|account)\s", regex_confirmer(
                 r"(?:machine[ \t]+[!-~]{1,256}+|default)(?:\s++(?:login|account)[ \t]+[!-~]{1,256}+){0,2}+"
                 r"\s++password[ \t]++(?P<secret>[!-~]{1,256}+)(?=\s|$)", _value(_password_ok), _netrc_host_ok),
                 back=300, forward=800),),
             priority=PLACE),
    ]  # fmt: skip


_GENERIC_VALUE = re.compile(
    (rf"[ \t]{{0,4}}(?P<q>[\"'`]?)(?P<secret>[^{_NP}\"'`,;&(){{}}\[\]<>]{{8,256}})(?P=q)(?=[\s,;}})\]&]|$)").encode()
)
# The key must hold a secret word that ends there or continues in camelCase or after a separator:
# `db_password`, `clientSecret`, `API_KEY`, not `tokenstream` or `secretary`.
_GENERIC_KEYWORD = re.compile((rf"(?i:{SENSITIVE_NAME_WORDS})s?(?-i:(?![a-z]))").encode())
_KEY_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
MAX_KEY_BYTES = 80


def _assigned_key(data: bytes, pos: int) -> bytes:
    """The name assigned to at `pos` (just after `=`, `:`, `:=` or `=>`), read backwards."""
    lo = max(0, pos - MAX_KEY_BYTES - 8)
    i = pos
    while i > lo and data[i - 1] in b":=>":
        i -= 1
    while i > lo and data[i - 1] in b" \t":
        i -= 1
    if i > lo and data[i - 1] in b"\"'":
        i -= 1
    j = i
    while j > lo and data[j - 1] in _KEY_CHARS:
        j -= 1
    return data[j:i]


def _generic_confirm(data: bytes, pos: int, _end: int) -> Iterator[tuple[int, int]]:
    """Anchored at a trigger's end, just after the assignment: no window to search."""
    m = _GENERIC_VALUE.match(data, pos)
    if m is None:
        return
    key = _assigned_key(data, pos)
    if _GENERIC_KEYWORD.search(key) is None:
        return
    norm = re.sub(rb"[^a-z0-9]", b"", key.lower()).decode()
    if norm.endswith(NON_SECRET_KEY_SUFFIXES):
        return
    s, e = m.span("secret")
    if _generic_value_ok(data[s:e]):
        yield s, e


def _generic() -> Rule:
    return Rule(
        RuleInfo("generic-secret-assignment", Severity.MEDIUM,
                 "High-entropy value assigned to a secret-named key (password, secret, token, api_key, ...)",
                 ("password", "secret", "token", "api_key", "credential")),
        (Detector(rf"(?:{SENSITIVE_NAME_WORDS})[A-Za-z0-9_.-]*[\"']?[ \t]*(?::=|=>|=|:)",
                  _generic_confirm, back=0, forward=0, caseless=True),),
        priority=GENERIC,
    )  # fmt: skip


def default_rules() -> list[Rule]:
    rules = [*_aws(), *_tokens(), *_places(), _generic()]
    vault = next(r for r in rules if r.info.rule_id == "vault-token")
    rules[rules.index(vault)] = Rule(vault.info, (*vault.detectors, _legacy_vault()), priority=vault.priority)
    return rules
