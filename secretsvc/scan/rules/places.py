"""Detectors for credentials found by where they sit rather than by their shape alone: PEM private keys,
cloud and container credential files, passwords in URLs and `.netrc`, and AWS secret keys near their key id.

Each is registered by name; `data/core.toml` holds the rules' ids, descriptions and examples.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from secretsvc.scan.rules import checks, filters
from secretsvc.scan.rules.fragments import ASSIGN, NOT_PRINTABLE
from secretsvc.scan.rules.model import Check, Confirmer, Detector, regex_confirmer
from secretsvc.scan.rules.registry import detector, validator

MAX_PEM_BYTES = 65536  # a private-key PEM block longer than this is not one we look for
CONTEXT_BYTES = 8192  # how far a rule looks around a match for context (service-account JSON, kubeconfig)
MIN_PEM_BODY = 64
KUBECONFIG_REACH = 16 * CONTEXT_BYTES  # how far from a token its kubeconfig's `users:` / `kind:` may be
HOST_LOOKAHEAD_BYTES = 256

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
_NOT_EXAMPLE: Check = lambda data, s, e: not filters.is_documented_example(data[s:e])  # noqa: E731


def _value(pred: Callable[[bytes], bool]) -> Check:
    return lambda data, s, e: pred(data[s:e])


def _near(needles: tuple[bytes, ...], distance: int = CONTEXT_BYTES) -> Check:
    def check(data: bytes, s: int, e: int) -> bool:
        lo, hi = max(0, s - distance), min(len(data), e + distance)
        return any(data.find(n, lo, hi) >= 0 for n in needles)

    return check


def password_ok(value: bytes) -> bool:
    """Not a stand-in: long enough, not a default word, not a placeholder or a variable."""
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


def is_documentation_host(text: bytes) -> bool:
    """Whether `text` (a host, maybe followed by :port or /path) starts with a documentation-only name."""
    return _DOCUMENTATION_HOST.match(text.replace(_ROFF_ESCAPE, b"")) is not None


# A credential for a documentation host (RFC 2606/6761) is an example in a man page and a real secret in
# /root/.netrc: these checks mark the match as a documentation example (Match.documentation_example) and the
# pipeline decides by the file it is in, instead of the rule dropping it.


def _url_host_is_documentation(data: bytes, s: int, e: int) -> bool:
    """`scheme://user:secret@HOST`: the host right after the secret's `@` is a documentation name."""
    return is_documentation_host(data[e + 1 : e + 1 + HOST_LOOKAHEAD_BYTES])


def _netrc_host_is_documentation(data: bytes, s: int, e: int) -> bool:
    """A .netrc password belongs to the nearest `machine HOST` before it."""
    at = data.rfind(b"machine", max(0, s - 800), s)
    if at < 0:
        return False  # a `default` entry
    return is_documentation_host(data[at + len(b"machine") : at + len(b"machine") + HOST_LOOKAHEAD_BYTES].lstrip())


@validator("docker-auth")
def docker_auth(value: bytes) -> bool:
    """A docker config `auth`: base64 of printable `user:password` with a password that is not a stand-in."""
    password = checks.docker_auth_password(value)
    return password is not None and password_ok(password)


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


_AWS_KEY_ID = r"(?:AKIA|ASIA)[A-Z2-7]{16}"
_RANDOM_B64_40 = _value(lambda v: filters.char_classes(v) >= 3 and filters.shannon_entropy(v) >= 4.0)


@detector("aws-secret-access-key")
def aws_secret_access_key() -> tuple[Detector, ...]:
    """40 base64 characters near an access key id, or assigned to an `aws_secret*`-named key."""
    return (
        Detector(
            _AWS_KEY_ID,
            regex_confirmer(r"(?<![A-Za-z0-9/+=])(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
                            _NOT_EXAMPLE, _RANDOM_B64_40),
            back=320, forward=320,
        ),
        Detector(
            r"(?:aws.?secret|secret.?access.?key)",
            regex_confirmer(
                r"(?i:(?:aws.?secret|secret.?access.?key)[A-Za-z0-9_.-]{0,20})" + ASSIGN
                + r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
                _NOT_EXAMPLE, _value(lambda v: filters.shannon_entropy(v) >= 3.5),
            ),
            back=24, forward=128, caseless=True,
        ),
    )  # fmt: skip


@detector("pem-private-key")
def pem_private_key() -> tuple[Detector, ...]:
    begin = r"-----BEGIN (?P<label>(?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
    return (Detector(r"-----BEGIN [A-Z ]{0,20}PRIVATE KEY", _pem_confirmer(begin), back=64, forward=64),)


@detector("gcp-service-account-json")
def gcp_service_account_json() -> tuple[Detector, ...]:
    begin = r"\"private_key\"[ \t]*:[ \t]*\"-----BEGIN (?P<label>PRIVATE KEY)-----"
    confirm = _pem_confirmer(begin, _near((b"service_account", b"gserviceaccount.com")))
    return (Detector(r"\"private_key\"", confirm, back=32, forward=96),)


@detector("docker-config")
def docker_config() -> tuple[Detector, ...]:
    return (
        Detector(r"\"auth\"[ \t]{0,4}:", regex_confirmer(
            r"\"auth\"[ \t]*:[ \t]*\"(?P<secret>[A-Za-z0-9+/]{4,1024}={0,2})\"", _value(docker_auth)),
            back=16, forward=1100),
        Detector(r"\"identitytoken\"[ \t]{0,4}:", regex_confirmer(
            r"\"identitytoken\"[ \t]*:[ \t]*\"(?P<secret>[A-Za-z0-9._~+/=-]{16,4096})\"",
            _value(lambda v: filters.looks_random(v, min_len=16))), back=24, forward=4200),
    )  # fmt: skip


@detector("kubeconfig-client-key")
def kubeconfig_client_key() -> tuple[Detector, ...]:
    confirm = regex_confirmer(
        r"client-key-data\"?[ \t]*:[ \t]*\"?(?P<secret>[A-Za-z0-9+/]{40,}={0,2})",
        _value(checks.kube_client_key_valid), max_extent=4 * MAX_PEM_BYTES,
    )
    return (Detector(r"client-key-data", confirm, back=24, forward=256),)


@detector("kubeconfig-token")
def kubeconfig_token() -> tuple[Detector, ...]:
    inner = regex_confirmer(
        r"(?m)^[ \t]+(?:-[ \t]+)?token:[ \t]*(?P<q>[\"']?)(?P<secret>[A-Za-z0-9._~+/=-]{20,4096})(?P=q)[ \t]*\r?$",
        _value(lambda v: filters.looks_random(v, min_len=20)), _value(lambda v: not filters.is_placeholder(v)),
    )
    trigger = r"\stoken:[ \t]*[\"']?[A-Za-z0-9._~+/=-]{20}"
    return (Detector(trigger, _kubeconfig_confirmer(inner), back=256, forward=4200),)


_DB_SCHEMES = (
    r"(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle"
    r"|cockroachdb|clickhouse|jdbc:[a-z]{2,12})://"
)


@detector("database-uri")
def database_uri() -> tuple[Detector, ...]:
    np = NOT_PRINTABLE
    confirm = regex_confirmer(
        rf"(?i:{_DB_SCHEMES})(?P<user>[^{np}:@/'\"]{{0,64}}):(?P<secret>[^{np}@/'\"]{{1,256}})@[A-Za-z0-9._\[-]",
        _value(password_ok), _url_user_ok,
    )
    trigger = _DB_SCHEMES + r"[^\s:@/]*:"
    return (Detector(trigger, confirm, back=48, forward=300, caseless=True, doubt=_url_host_is_documentation),)


@detector("url-credentials")
def url_credentials() -> tuple[Detector, ...]:
    np = NOT_PRINTABLE
    confirm = regex_confirmer(
        rf"(?i:https?)://(?P<user>[^{np}:@/'\"]{{1,128}}):(?P<secret>[^{np}@/'\"]{{4,256}})@[A-Za-z0-9.\[-]",
        _value(lambda v: password_ok(v) and filters.shannon_entropy(v) >= 2.5), _url_user_ok,
    )
    trigger = r"https?://[^\s:@/]+:[^\s@/]+@"
    return (Detector(trigger, confirm, back=400, forward=16, caseless=True, doubt=_url_host_is_documentation),)


@detector("netrc")
def netrc() -> tuple[Detector, ...]:
    confirm = regex_confirmer(
        r"(?:machine[ \t]+[!-~]{1,256}+|default)(?:\s++(?:login|account)[ \t]+[!-~]{1,256}+){0,2}+"
        r"\s++password[ \t]++(?P<secret>[!-~]{1,256}+)(?=\s|$)", _value(password_ok),
    )  # fmt: skip
    trigger = r"machine[ \t]+\S+\s+(?:login|password|account)\s"
    return (Detector(trigger, confirm, back=300, forward=800, doubt=_netrc_host_is_documentation),)
