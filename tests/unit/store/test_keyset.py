"""Page tokens and prefix ranges, the backend-neutral half of listing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.store import _keyset

# Text that UTF-8 can carry: no lone surrogates.
utf8_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]))


@given(path=utf8_text.filter(bool))
def test_page_token_round_trips(path: str) -> None:
    token = _keyset.encode_page_token(path)
    assert token.startswith(_keyset.PAGE_TOKEN_PREFIX)
    assert _keyset.decode_page_token(token, "") == path
    assert _keyset.decode_page_token(token, path[:1]) == path


@given(path=utf8_text.filter(bool), position=st.integers(min_value=0), char=st.characters())
def test_tampered_page_token_is_rejected_or_decodes_to_another_canonical_path(
    path: str, position: int, char: str
) -> None:
    token = _keyset.encode_page_token(path)
    index = position % len(token)
    tampered = token[:index] + char + token[index + 1:]
    try:
        decoded = _keyset.decode_page_token(tampered, "")
    except InvalidArgument:
        return
    # A change that still decodes must be the canonical token of what it decodes to.
    assert decoded is not None
    assert _keyset.encode_page_token(decoded) == tampered


def test_empty_token_is_the_first_page() -> None:
    assert _keyset.decode_page_token("", "any") is None


def test_overlong_token_is_rejected_before_decoding() -> None:
    token = _keyset.encode_page_token("a" * (_keyset.MAX_PAGE_TOKEN_LENGTH))
    with pytest.raises(InvalidArgument, match="longer than"):
        _keyset.decode_page_token(token, "")


@given(prefix=utf8_text, rest=utf8_text)
def test_upper_bound_is_above_every_extension_of_the_prefix(prefix: str, rest: str) -> None:
    upper = _keyset.prefix_upper_bound(prefix)
    candidate = prefix + rest
    assert candidate >= prefix
    if upper is None:
        assert all(ord(c) == 0x10FFFF for c in prefix)
    else:
        assert candidate < upper
        assert candidate.encode() < upper.encode()  # code-point order is UTF-8 byte order
        upper.encode("utf-8")  # never a lone surrogate


@given(prefix=utf8_text.filter(bool), other=utf8_text)
def test_nothing_without_the_prefix_falls_in_the_range(prefix: str, other: str) -> None:
    upper = _keyset.prefix_upper_bound(prefix)
    in_range = other >= prefix and (upper is None or other < upper)
    assert in_range == other.startswith(prefix)


def test_upper_bound_skips_surrogates_and_carries() -> None:
    assert _keyset.prefix_upper_bound("ab") == "ac"
    assert _keyset.prefix_upper_bound("a" + chr(0xD7FF)) == "a" + chr(0xE000)
    assert _keyset.prefix_upper_bound("a" + chr(0x10FFFF)) == "b"
    assert _keyset.prefix_upper_bound("") is None


def test_page_size_bounds() -> None:
    _keyset.check_page_size(1)
    _keyset.check_page_size(_keyset.MAX_PAGE_SIZE)
    with pytest.raises(InvalidArgument):
        _keyset.check_page_size(0)
    with pytest.raises(LimitExceeded):
        _keyset.check_page_size(_keyset.MAX_PAGE_SIZE + 1)


def test_lone_surrogates_are_invalid_text() -> None:
    with pytest.raises(InvalidArgument):
        _keyset.check_text("a\udc80", "prefix")
