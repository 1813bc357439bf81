"""Detectors for secrets without a vendor format, in the places configuration keeps them: XML elements and
attributes, `.pgpass` lines, secret-named keys of config files, and files that hold nothing but one token.

A password a person chose has no shape to recognise; what marks it is where it sits. Each detector here
reads that place closely (the element or key is secret-named, the line has the `.pgpass` layout) and then
refuses what is not a value: placeholders, variables and template references, encrypted values, default
words, numbers, names and paths (`plain_value_ok`). `data/generic.toml` holds the rules' ids and examples.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from secretsvc.scan.rules import filters
from secretsvc.scan.rules.context import CONFIG_FILE, KEYSTORE_FILE, SECRET_FILE
from secretsvc.scan.rules.generic import NON_SECRET_KEY_SUFFIXES, assigned_key_span
from secretsvc.scan.rules.model import Detector
from secretsvc.scan.rules.places import DEFAULT_CREDENTIAL_WORDS
from secretsvc.scan.rules.registry import detector

MIN_VALUE_CHARS = 6  # a shorter chosen password is a stand-in (`pass`, `admin`) far more often than not
MAX_VALUE_CHARS = 256
MAX_KEY_CHARS = 80
MAX_SECRET_FILE_BYTES = 4096  # a file that holds one token is small; a larger one is a document
MIN_TOKEN_CHARS = 16
MAX_XML_TAG_SCAN = 400  # how far back an attribute looks for the `<` that opens its tag
MAX_XML_COMMENT_SCAN = 16 * 1024  # how far back a match looks for a `<!--` that is still open

# Secret words a key or element may hold; `pass` alone only as a whole word or a camelCase tail
# (`keystorePass`), since it ends too many other words (`bypass`, `compass`).
NAME_WORDS = (
    r"passw(?:or)?d|pwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key"
    r"|credentials?"
)
_KEY_WORD = re.compile((rf"(?i:{NAME_WORDS})s?(?-i:(?![a-z]))|(?:^|[^A-Za-z])(?i:pass)$|[a-z]Pass$").encode())
# Settings that name or describe a secret rather than hold it, beyond the generic heuristic's suffixes.
_MORE_NON_SECRET_SUFFIXES = (
    "days", "hint", "prompt", "message", "text", "title", "chars", "complexity", "strength", "reset", "cmd",
    "command", "helper", "manager", "backend", "scheme", "encoder", "mechanism", "host", "port", "user",
    "username", "email", "server", "realm", "issuer", "audience", "scope", "scopes", "keyid", "mount",
    "enable", "ref", "secretref", "keyref", "from", "generator", "output", "request", "response", "flow",
)  # fmt: skip
_NON_SECRET_SUFFIXES = NON_SECRET_KEY_SUFFIXES + _MORE_NON_SECRET_SUFFIXES
_NON_SECRET_PREFIXES = ("existing", "require", "allow", "enable", "disable", "show", "forgot", "public")
# Words a setting takes that are not secrets.
_SETTING_WORDS = frozenset({
    b"yes", b"no", b"on", b"off", b"required", b"optional", b"disabled", b"enabled", b"auto", b"default",
    b"random", b"generate", b"generated", b"prompt", b"none", b"unset", b"changeit", b"secret", b"hidden",
    b"masked", b"redacted", b"inherit", b"sha256", b"bcrypt", b"argon2", b"plain", b"plaintext", b"md5",
})  # fmt: skip
# Values that are encrypted or resolved elsewhere: sops `ENC[...]`, jasypt `ENC(...)`, Spring `{cipher}`.
_ENCRYPTED = re.compile(rb"ENC\[|ENC\(|\{cipher\}|\$ANSIBLE_VAULT", re.IGNORECASE)
_SCHEME = re.compile(rb"[a-z][a-z0-9+.-]{1,20}:")  # `vault:`, `arn:`, `file:`, `env:`: a reference
_NUMBER = re.compile(rb"[0-9]+(?:\.[0-9]+)?[smhdwkKMG]?")
_METAVAR = re.compile(rb"[A-Z][A-Z_-]*")  # `PASSWORD`, `DB_PASS`: a name written in a usage line
_CAPITALISED_WORD = re.compile(rb"[A-Z]?[a-z]+[.,:;!?]?")  # `Authentication`, `hunter`, `ensemble.`
_TEMPLATE_MARKS = (b"$", b"%", b"@", b"<", b"[", b"{", b"!", b"&", b"*", b"-", b"`", b"\\", b"/", b"./", b"~/")


def plain_value_ok(value: bytes, *, min_chars: int = MIN_VALUE_CHARS) -> bool:
    """Whether a value set under a secret-named key can be a real secret rather than a stand-in."""
    if not min_chars <= len(value) <= MAX_VALUE_CHARS or any(c <= 0x20 or c >= 0x7F for c in value):
        return False
    lower = value.lower()
    if lower in DEFAULT_CREDENTIAL_WORDS or lower in _SETTING_WORDS or value.startswith(_TEMPLATE_MARKS):
        return False
    if value.endswith(b"%") or b"://" in value or _ENCRYPTED.search(value):
        return False
    if _NUMBER.fullmatch(value) or _METAVAR.fullmatch(value) or _SCHEME.match(value):
        return False
    if filters.is_digest_or_uuid(value):  # a content digest or an id, which config files hold plenty of
        return False
    return not (
        filters.is_placeholder(value) or filters.is_code_reference(value) or filters.is_documented_example(value)
    )


def chosen_password_ok(value: bytes) -> bool:
    """`plain_value_ok`, and not a single plain word: where nothing but the value says it is a secret
    (a command line, an attribute), `Authentication` or `hunter` is prose far more often than a password."""
    return plain_value_ok(value) and _CAPITALISED_WORD.fullmatch(value) is None


def secret_key(key: bytes) -> bool:
    """A key or element name that holds a secret: `DB_PASSWORD`, `clientSecret`, `keystorePass`; not
    `password_file`, `token_ttl`, `existingSecret` or `tokenizer`."""
    if not key or len(key) > MAX_KEY_CHARS or _KEY_WORD.search(key) is None:
        return False
    norm = re.sub(rb"[^a-z0-9]", b"", key.lower()).decode()
    return not (norm.endswith(_NON_SECRET_SUFFIXES) or norm.startswith(_NON_SECRET_PREFIXES))


# -- secret-named keys in config files ------------------------------------------------------------------

# Triggers start at the secret word, not at the line or the quote before the key: a leading bounded
# repetition costs Hyperscan far more than the confirm step's look back does.
_CONFIG_KEY_TRIGGER = r"(?:" + NAME_WORDS + r"|pass)[A-Za-z0-9_.-]{0,40}[\"']?[ \t]{0,8}[=:]"
_CONFIG_VALUE = re.compile(
    rb"[ \t]*(?:\"(?P<dq>[^\"\s]{1,256})\"|'(?P<sq>[^'\s]{1,256})'|(?P<bare>[^\s\"']{1,256}))"
    rb"[ \t]*(?:[ \t][#;][^\r\n]*)?\r?(?:\n|$)"
)
_LINE_LEAD = re.compile(rb"[ \t]{0,32}(?:export[ \t]+)?[\"']?")


def _key_starts_line(data: bytes, key_start: int) -> bool:
    """Whether only indentation, `export` or a quote stand between the line's start and the key."""
    lo = max(0, key_start - 48)
    line_start = data.rfind(b"\n", lo, key_start) + 1
    if line_start == 0 and lo > 0:
        return False
    return _LINE_LEAD.fullmatch(data, line_start, key_start) is not None


def _config_confirm(data: bytes, _start: int, end: int) -> Iterator[tuple[int, int]]:
    """Anchored at the trigger's end, just after `=` or `:`: the key must start the line and the rest of the
    line must be the value."""
    if data[end - 1 : end] == b":" and data[end : end + 1] == b"=":
        end += 1  # `:=`
    m = _CONFIG_VALUE.match(data, end)
    if m is None:
        return
    ks, ke = assigned_key_span(data, end)
    if not (secret_key(data[ks:ke]) and _key_starts_line(data, ks)):
        return
    group = next(g for g in ("dq", "sq", "bare") if m.start(g) >= 0)
    s, e = m.span(group)
    if plain_value_ok(data[s:e]):
        yield s, e


_JSON_MEMBER_TRIGGER = r"(?:" + NAME_WORDS + r"|pass)[A-Za-z0-9_.-]{0,40}\"[ \t]{0,8}:"
_JSON_VALUE = re.compile(rb"[ \t]*\"(?P<secret>[^\"\s\\]{1,256})\"(?=[ \t]*[,}\]\r\n]|[ \t]*$)")


def _json_member_confirm(data: bytes, _start: int, end: int) -> Iterator[tuple[int, int]]:
    """`"password": "..."` inside a config value (JSON credentials in an `Env` entry, in a YAML string)."""
    m = _JSON_VALUE.match(data, end)
    if m is None:
        return
    ks, ke = assigned_key_span(data, end)
    if data[ks - 1 : ks] != b'"' or not secret_key(data[ks:ke]):
        return
    s, e = m.span("secret")
    if plain_value_ok(data[s:e]):
        yield s, e


@detector("config-password")
def config_password() -> tuple[Detector, ...]:
    """A secret-named key at the start of a line of a config file, or a JSON member in one, with any value
    that is not a stand-in."""
    return (
        Detector(_CONFIG_KEY_TRIGGER, _config_confirm, back=0, forward=0, caseless=True, scope=CONFIG_FILE),
        Detector(_JSON_MEMBER_TRIGGER, _json_member_confirm, back=0, forward=0, caseless=True, scope=CONFIG_FILE),
    )  # fmt: skip


# -- XML elements and attributes ---------------------------------------------------------------------------

_XML_NAME = r"[A-Za-z_][A-Za-z0-9_.:-]{0,60}"
_XML_ELEMENT = re.compile(
    rf"<(?P<tag>{_XML_NAME})>[ \t]*(?:<!\[CDATA\[(?P<cdata>[^\]<>\s]{{1,256}})\]\]>|(?P<text>[^<>\s]{{1,256}}))"
    rf"[ \t]*</(?P=tag)>".encode()
)
_XML_ATTRIBUTE = re.compile(
    rf"(?P<name>{_XML_NAME})[ \t]*=[ \t]*(?P<q>[\"'])(?P<secret>[^\"'<>\s]{{1,256}})(?P=q)".encode()
)
# `<property name="password" value="..."/>` (Spring), `<add key="ApiKey" value="..."/>` (.NET appSettings)
_XML_NAMED_VALUE = re.compile(
    rb"(?:name|key)[ \t]*=[ \t]*[\"'](?P<key>[A-Za-z0-9_.:-]{1,80})[\"'][^<>]{0,200}?"
    rb"\bvalue[ \t]*=[ \t]*(?P<q>[\"'])(?P<secret>[^\"'<>\s]{1,256})(?P=q)"
)
_XML_TAG_OPEN = re.compile(rb"<[A-Za-z_][A-Za-z0-9_.:-]{0,60}\s")


def _xml_element_confirm(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    for m in _XML_ELEMENT.finditer(data, start, min(len(data), end + 2 * MAX_VALUE_CHARS)):
        if m.start() >= end:
            break  # it starts past the window: a later trigger hit's, if any
        group = "cdata" if m.start("cdata") >= 0 else "text"
        s, e = m.span(group)
        if not secret_key(m.group("tag").rsplit(b":", 1)[-1]):
            continue
        if plain_value_ok(data[s:e]) and not _in_comment(data, s):
            yield s, e


def _in_comment(data: bytes, pos: int) -> bool:
    """Whether `pos` lies inside an XML comment: settings.xml and server.xml ship their examples that way."""
    opened = data.rfind(b"<!--", max(0, pos - MAX_XML_COMMENT_SCAN), pos)
    return opened >= 0 and data.find(b"-->", opened, pos) < 0


def _in_tag(data: bytes, pos: int) -> bool:
    """Whether `pos` lies inside an XML start tag (`<user ... password="x" ...>`), not in code or prose."""
    lo = max(0, pos - MAX_XML_TAG_SCAN)
    opened = data.rfind(b"<", lo, pos)
    return opened >= 0 and data.rfind(b">", opened, pos) < 0 and _XML_TAG_OPEN.match(data, opened) is not None


def _xml_attribute_confirm(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    stop = min(len(data), end + MAX_VALUE_CHARS + 8)
    for m in _XML_ATTRIBUTE.finditer(data, start, stop):
        if m.start() >= end:
            break  # it starts past the window: a later trigger hit's, if any
        s, e = m.span("secret")
        if not (secret_key(m.group("name")) and _in_tag(data, m.start())):
            continue
        if chosen_password_ok(data[s:e]) and not _in_comment(data, s):
            yield s, e


def _xml_named_value_confirm(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    for m in _XML_NAMED_VALUE.finditer(data, start, min(len(data), end + 200 + MAX_VALUE_CHARS)):
        if m.start() >= end:
            break  # it starts past the window: a later trigger hit's, if any
        s, e = m.span("secret")
        if not (secret_key(m.group("key")) and _in_tag(data, m.start())):
            continue
        if plain_value_ok(data[s:e]) and not _in_comment(data, s):
            yield s, e


@detector("xml-secret")
def xml_secret() -> tuple[Detector, ...]:
    words = rf"(?:{NAME_WORDS}|pass)"
    return (
        Detector(rf"{words}[A-Za-z0-9_.:-]{{0,40}}>", _xml_element_confirm, back=2 * MAX_KEY_CHARS, forward=8,
                 caseless=True),
        Detector(rf"{words}[A-Za-z0-9_.:-]{{0,20}}[ \t]{{0,4}}=[ \t]{{0,4}}[\"']", _xml_attribute_confirm,
                 back=MAX_KEY_CHARS + 40, forward=0, caseless=True),
        Detector(rf"{words}[A-Za-z0-9_.:-]{{0,40}}[\"']", _xml_named_value_confirm, back=MAX_KEY_CHARS + 40,
                 forward=0, caseless=True),
    )  # fmt: skip


# -- .pgpass -------------------------------------------------------------------------------------------------

# host:port:database:user:password, `*` for any field, `\:` and `\\` escaped inside a field.
_PGPASS_FIELD = rb"(?:\\[:\\]|[^\s:\\]){1,128}"
_PGPASS_LINE = re.compile(
    rb"(?m)^(?P<host>"
    + _PGPASS_FIELD
    + rb"):(?P<port>[0-9]{1,5}|\*):(?P<db>"
    + _PGPASS_FIELD
    + rb"):(?P<user>"
    + _PGPASS_FIELD
    + rb"):(?P<secret>"
    + _PGPASS_FIELD
    + rb")\r?$"
)
_HEXISH = re.compile(rb"[0-9A-Fa-f]{0,4}")


def _pgpass_confirm(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    for m in _PGPASS_LINE.finditer(data, start, min(len(data), end + 2 * MAX_VALUE_CHARS)):
        if m.start() >= end:
            break  # it starts past the window: a later trigger hit's, if any
        fields = m.group("host", "db", "user", "secret")
        if all(_HEXISH.fullmatch(f) for f in fields):
            continue  # an IPv6 address, not five fields
        s, e = m.span("secret")
        if plain_value_ok(data[s:e]):
            yield s, e


@detector("pgpass")
def pgpass() -> tuple[Detector, ...]:
    # From the port on: a trigger anchored at the line's start costs Hyperscan several times more. It runs to
    # the line's end, as a .pgpass line does: otherwise every colon of a certificate fingerprint
    # (`55:92:60:84:...`, thousands in a CA bundle) would be a hit, enough to reach the per-block hit limit.
    trigger = r":(?:[0-9]{1,5}|\*):[^\s:]{1,128}:[^\s:]{1,128}:[^\s:]{1,128}(?:\r?\n|\Z)"
    return (Detector(trigger, _pgpass_confirm, back=5 * 130 + 8, forward=8),)


# -- files that hold one token -----------------------------------------------------------------------------

_WHOLE_TOKEN = re.compile(rb"\s{0,16}(?P<secret>[!-~]{16,4096})\s{0,16}")


def _secret_file_confirm(data: bytes, _start: int, _end: int) -> Iterator[tuple[int, int]]:
    if len(data) > MAX_SECRET_FILE_BYTES:
        return
    m = _WHOLE_TOKEN.fullmatch(data)
    if m is None:
        return
    s, e = m.span("secret")
    value = data[s:e]
    if not filters.looks_random(value, min_len=MIN_TOKEN_CHARS) or value.startswith((b"$", b"{{", b"-----")):
        return
    if not filters.is_placeholder(value) and not filters.is_documented_example(value):
        yield s, e


@detector("secret-file")
def secret_file() -> tuple[Detector, ...]:
    """The whole of a small file named as a secret (`*.token`, `api.key`): one random-looking token."""
    return (Detector(r"^\s{0,16}[!-~]{16}", _secret_file_confirm, back=0, forward=0, scope=SECRET_FILE),)


# -- keystores ---------------------------------------------------------------------------------------------

MIN_KEYSTORE_BYTES = 128
MAX_KEYSTORE_SPAN = 4096
# PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo SEQUENCE, ... } (RFC 7292). A binary file
# reaches the rules with every byte outside printable ASCII read as a newline, a file the walker took for text
# (no NUL in its first block) as it is: 0x30 is "0"; then the length octets (0x80-0x84 and up to four more,
# which may read as anything), then 02 01 03, then the authSafe's SEQUENCE.
_PFX_HEADER = re.compile(rb"0[\n\x80-\x84][\x00-\xff]{0,4}?[\n\x02][\n\x01][\n\x03]0")


def _keystore_confirm(data: bytes, _start: int, _end: int) -> Iterator[tuple[int, int]]:
    if len(data) >= MIN_KEYSTORE_BYTES and _PFX_HEADER.match(data, 0, 12):
        yield 0, min(len(data), MAX_KEYSTORE_SPAN)  # the keystore itself is the secret; its fingerprint too


@detector("pkcs12-keystore")
def pkcs12_keystore() -> tuple[Detector, ...]:
    """A `.p12`/`.pfx` file that starts like a PKCS#12 PFX structure."""
    return (Detector(r"^0", _keystore_confirm, back=0, forward=0, scope=KEYSTORE_FILE),)
