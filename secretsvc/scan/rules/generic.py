"""The generic heuristic: a random-looking value assigned to a secret-named key, in any text format."""

from __future__ import annotations

import re
from collections.abc import Iterator

from secretsvc.scan.rules import filters
from secretsvc.scan.rules.fragments import NOT_PRINTABLE
from secretsvc.scan.rules.model import Detector
from secretsvc.scan.rules.registry import detector

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
MAX_KEY_BYTES = 80

_NP = NOT_PRINTABLE
_GENERIC_VALUE = re.compile(
    (rf"[ \t]{{0,4}}(?P<q>[\"'`]?)(?P<secret>[^{_NP}\"'`,;&(){{}}\[\]<>]{{8,256}})(?P=q)(?=[\s,;}})\]&]|$)").encode()
)
# The key must hold a secret word that ends there or continues in camelCase or after a separator:
# `db_password`, `clientSecret`, `API_KEY`, not `tokenstream` or `secretary`.
_GENERIC_KEYWORD = re.compile((rf"(?i:{SENSITIVE_NAME_WORDS})s?(?-i:(?![a-z]))").encode())
_KEY_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_YAML_ALIAS = re.compile(rb"[&*][A-Za-z_][A-Za-z0-9_.-]*")


def generic_value_ok(value: bytes) -> bool:
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


def assigned_key(data: bytes, pos: int) -> bytes:
    """The name assigned to at `pos` (just after `=`, `:`, `:=` or `=>`), read backwards."""
    s, e = assigned_key_span(data, pos)
    return data[s:e]


def assigned_key_span(data: bytes, pos: int) -> tuple[int, int]:
    """Where `assigned_key` lies in `data`."""
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
    return j, i


def _generic_confirm(data: bytes, pos: int, _end: int) -> Iterator[tuple[int, int]]:
    """Anchored at a trigger's end, just after the assignment: no window to search."""
    m = _GENERIC_VALUE.match(data, pos)
    if m is None:
        return
    key = assigned_key(data, pos)
    if _GENERIC_KEYWORD.search(key) is None:
        return
    norm = re.sub(rb"[^a-z0-9]", b"", key.lower()).decode()
    if norm.endswith(NON_SECRET_KEY_SUFFIXES):
        return
    s, e = m.span("secret")
    if generic_value_ok(data[s:e]):
        yield s, e


@detector("generic-assignment")
def generic_assignment() -> tuple[Detector, ...]:
    trigger = rf"(?:{SENSITIVE_NAME_WORDS})[A-Za-z0-9_.-]*[\"']?[ \t]*(?::=|=>|=|:)"
    return (Detector(trigger, _generic_confirm, back=0, forward=0, caseless=True),)
