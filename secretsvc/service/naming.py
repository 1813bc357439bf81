"""Validation of the names callers choose: namespaces, secret paths, transit key, token and policy names.

Names end up in logs, metrics labels, audit records and (for paths) in the envelope's associated data, so
they are held to a strict, printable alphabet and bounded lengths. Messages quote the offending name only
through `repr` of a truncated form, so a control character cannot forge a log line.
"""

from __future__ import annotations

import re

from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.service import limits

_NAME = re.compile(r"[A-Za-z0-9._-]+")
# Paths allow a wider alphabet than namespaces (people name secrets after hosts, emails, URLs), but no
# whitespace, control characters, backslashes or characters that need quoting in shells and URLs.
_SEGMENT = re.compile(r"[A-Za-z0-9._@+=,:~-]+")


def _shown(text: str) -> str:
    return repr(text[:64] + ("…" if len(text) > 64 else ""))


def _byte_length(text: str) -> int:
    # surrogatepass: a lone surrogate must count toward the limit, not crash the count.
    return len(text.encode("utf-8", "surrogatepass"))


def _require_ascii(text: str, what: str) -> None:
    # Every allowed alphabet is ASCII; checking first also keeps lone surrogates away from str.encode().
    if not text.isascii():
        raise InvalidArgument(f"{what} {_shown(text)} has a character outside the allowed ASCII alphabet")


def check_namespace(namespace: str) -> str:
    if not namespace:
        raise InvalidArgument("namespace is empty")
    if _byte_length(namespace) > limits.MAX_NAMESPACE_BYTES:
        raise LimitExceeded(f"namespace is longer than MAX_NAMESPACE_BYTES={limits.MAX_NAMESPACE_BYTES}")
    _require_ascii(namespace, "namespace")
    if not _NAME.fullmatch(namespace) or namespace in {".", ".."}:
        raise InvalidArgument(f"namespace {_shown(namespace)} may only contain letters, digits, '.', '_', '-'")
    return namespace


def check_path(path: str) -> str:
    if not path:
        raise InvalidArgument("secret path is empty")
    if _byte_length(path) > limits.MAX_PATH_BYTES:
        raise LimitExceeded(f"secret path is longer than MAX_PATH_BYTES={limits.MAX_PATH_BYTES}")
    _require_ascii(path, "secret path")
    segments = path.split("/")
    if len(segments) > limits.MAX_PATH_SEGMENTS:
        raise LimitExceeded(f"secret path has more than MAX_PATH_SEGMENTS={limits.MAX_PATH_SEGMENTS} segments")
    for segment in segments:
        if not segment:
            raise InvalidArgument(f"secret path {_shown(path)} has an empty segment (leading, trailing or '//')")
        if segment in {".", ".."}:
            raise InvalidArgument(f"secret path {_shown(path)} has a '{segment}' segment")
        if _byte_length(segment) > limits.MAX_PATH_SEGMENT_BYTES:
            raise LimitExceeded(
                f"a segment of secret path {_shown(path)} is longer than "
                f"MAX_PATH_SEGMENT_BYTES={limits.MAX_PATH_SEGMENT_BYTES}"
            )
        if not _SEGMENT.fullmatch(segment):
            raise InvalidArgument(
                f"secret path {_shown(path)} has a character outside letters, digits and . _ @ + = , : ~ -"
            )
    return path


def check_prefix(prefix: str) -> str:
    """A list prefix: like a path, but may be empty or end in '/' or mid-segment."""
    if not prefix:
        return prefix
    if _byte_length(prefix) > limits.MAX_PATH_BYTES:
        raise LimitExceeded(f"prefix is longer than MAX_PATH_BYTES={limits.MAX_PATH_BYTES}")
    _require_ascii(prefix, "prefix")
    trimmed = prefix[:-1] if prefix.endswith("/") else prefix
    if trimmed:
        check_path(trimmed)
    return prefix


def _simple_name(name: str, what: str, max_bytes: int, limit_name: str) -> str:
    if not name:
        raise InvalidArgument(f"{what} is empty")
    if _byte_length(name) > max_bytes:
        raise LimitExceeded(f"{what} is longer than {limit_name}={max_bytes}")
    _require_ascii(name, what)
    if not _NAME.fullmatch(name) or name in {".", ".."}:
        raise InvalidArgument(f"{what} {_shown(name)} may only contain letters, digits, '.', '_', '-'")
    return name


def check_key_name(name: str) -> str:
    return _simple_name(name, "key name", limits.MAX_KEY_NAME_BYTES, "MAX_KEY_NAME_BYTES")


def check_token_name(name: str) -> str:
    return _simple_name(name, "token name", limits.MAX_TOKEN_NAME_BYTES, "MAX_TOKEN_NAME_BYTES")


def check_policy_name(name: str) -> str:
    return _simple_name(name, "policy name", limits.MAX_POLICY_NAME_BYTES, "MAX_POLICY_NAME_BYTES")


def check_policy_document_name(name: str) -> str:
    return _simple_name(name, "policy document name", limits.MAX_POLICY_DOCUMENT_NAME_BYTES,
                        "MAX_POLICY_DOCUMENT_NAME_BYTES")


def split_ref(ref: str) -> tuple[str, str]:
    """'namespace/some/path' -> ('namespace', 'some/path'), both validated."""
    namespace, sep, path = ref.partition("/")
    if not sep:
        raise InvalidArgument(f"{_shown(ref)} is not NAMESPACE/PATH")
    return check_namespace(namespace), check_path(path)
