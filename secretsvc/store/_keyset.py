"""Keyset pagination helpers shared by every store backend: page tokens and prefix ranges.

A page token is an opaque, versioned encoding of the last path a page returned; the next page starts
strictly after it. Prefixes become half-open ranges (`prefix <= path < upper`) so no backend needs LIKE and
its wildcard escaping, and the range stays index-friendly.
"""

from __future__ import annotations

import base64
import re

from secretsvc.errors import InvalidArgument, LimitExceeded

PAGE_TOKEN_PREFIX = "p1."  # noqa: S105 (a format tag, not a credential)
# A token longer than this cannot encode any path the service accepts; refusing early bounds the decode.
MAX_PAGE_TOKEN_LENGTH = 4096
MAX_PAGE_SIZE = 1000

_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)
_TOKEN_BODY = re.compile(r"[A-Za-z0-9_-]+")


def encode_page_token(last_path: str) -> str:
    """The token that resumes a listing after `last_path`."""
    body = base64.urlsafe_b64encode(last_path.encode("utf-8")).rstrip(b"=").decode("ascii")
    return PAGE_TOKEN_PREFIX + body


def decode_page_token(token: str, prefix: str) -> str | None:
    """The path a listing resumes after, or None for the first page ("").

    Raises InvalidArgument for anything this module did not produce for a listing of `prefix`.
    """
    if token == "":
        return None
    if len(token) > MAX_PAGE_TOKEN_LENGTH:
        raise InvalidArgument(f"malformed page token (longer than {MAX_PAGE_TOKEN_LENGTH} characters)")
    if not token.startswith(PAGE_TOKEN_PREFIX):
        raise InvalidArgument("malformed page token")
    body = token[len(PAGE_TOKEN_PREFIX):]
    if not _TOKEN_BODY.fullmatch(body):
        raise InvalidArgument("malformed page token")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        path = raw.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("malformed page token") from None
    # Only the canonical encoding is accepted, so one position has exactly one token.
    if encode_page_token(path) != token:
        raise InvalidArgument("malformed page token")
    if not path.startswith(prefix):
        raise InvalidArgument("page token does not belong to this listing")
    return path


def check_page_size(page_size: int) -> None:
    if page_size < 1:
        raise InvalidArgument(f"page size must be at least 1, got {page_size}")
    if page_size > MAX_PAGE_SIZE:
        raise LimitExceeded(f"page size {page_size} exceeds the maximum of {MAX_PAGE_SIZE}")


def check_text(value: str, what: str) -> None:
    """Refuse strings that cannot be stored as UTF-8 (lone surrogates), or as PostgreSQL text (NUL)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{what} is not valid UTF-8 text") from None
    if "\x00" in value:
        raise InvalidArgument(f"{what} must not contain NUL characters")


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string starting with `prefix`, in code-point (= UTF-8 byte)
    order; None when no upper bound is needed (empty prefix, or only maximal code points)."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1])
        if code < _MAX_CODE_POINT:
            code += 1
            if code in _SURROGATES:
                code = _SURROGATES.stop
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None
