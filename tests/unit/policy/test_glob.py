"""Glob syntax: `*` within a segment, `**` across segments, everything else literal; refusals; linear matching."""

from __future__ import annotations

import itertools
import string
from fnmatch import fnmatchcase

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.policy import glob, limits
from secretsvc.service import naming


def matches(pattern: str, name: str, syntax: glob.Syntax = glob.SECRET) -> bool:
    return glob.compile_glob(pattern, syntax).matches(name)


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("payments/db", "payments/db", True),
    ("payments/db", "payments/db/x", False),
    ("payments/db", "payments/dbx", False),
    # `*` stays within one segment
    ("payments/*", "payments/db", True),
    ("payments/*", "payments/db/password", False),
    ("payments/db-*", "payments/db-main", True),
    ("payments/db-*", "payments/db-", True),  # '*' may match nothing
    ("payments/*-prod", "payments/api-prod", True),
    ("payments/*-prod", "payments/a/b-prod", False),
    ("payments/a*b*c", "payments/aXXbYYc", True),
    ("payments/a*b*c", "payments/abc", True),
    ("payments/a*b*c", "payments/acb", False),
    ("payments/a*a", "payments/a", False),  # the two literal parts may not overlap
    # `**` is zero or more whole segments
    ("payments/**", "payments/db", True),
    ("payments/**", "payments/db/a/b/c", True),
    ("payments/**/password", "payments/password", True),
    ("payments/**/password", "payments/db/main/password", True),
    ("payments/**/password", "payments/db/main/password2", False),
    ("**/password", "any/where/password", True),
    ("**/password", "ns/password", True),
    ("**", "ns/a/b", True),
    ("a/**/b/**/c", "a/b/c", True),
    ("a/**/b/**/c", "a/x/b/y/z/c", True),
    ("a/**/b/**/c", "a/x/c/y/b", False),
    ("a/**/b/c/**/d", "a/b/x/b/c/d", True),  # the first 'b' does not fit 'b/c'; a later one does
    # namespaces are whole segments: a prefix of a namespace is not the namespace
    ("payments/**", "payments-prod/db", False),
    ("pay*/db", "payments/db", True),
    ("pay*/db", "pay/db", True),
    ("*/db", "payments/db", True),
    ("*/db", "payments/x/db", False),
    ("*/**", "payments/x/db", True),
    # every other character is literal
    ("app/db.prod", "app/db.prod", True),
    ("app/db.prod", "app/dbXprod", False),
    ("app/a+b", "app/aab", False),
    ("app/a+b", "app/a+b", True),
    ("app/user@example.com", "app/user@example.com", True),
    ("app/k=v,x:y~z", "app/k=v,x:y~z", True),
    ("app/k=v,x:y~z", "app/k=v,x:y~zz", False),
])
def test_secret_patterns(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name) is expected


@pytest.mark.parametrize(("pattern", "name", "syntax", "expected"), [
    ("payments-*", "payments-db", glob.TRANSIT_KEY, True),
    ("payments-*", "billing-db", glob.TRANSIT_KEY, False),
    ("*", "anything.at_all-1", glob.TRANSIT_KEY, True),
    ("ci-*", "ci-deploy", glob.TOKEN, True),
    ("payments/*", "payments/web", glob.SERVICEACCOUNT, True),
    ("*/default", "payments/default", glob.SERVICEACCOUNT, True),
    ("*/default", "payments/web", glob.SERVICEACCOUNT, False),
    ("spiffe://cluster.local/ns/*/sa/web", "spiffe://cluster.local/ns/payments/sa/web", glob.MTLS_URI, True),
    ("spiffe://cluster.local/ns/*/sa/web", "spiffe://cluster.local/ns/a/b/sa/web", glob.MTLS_URI, False),
    ("spiffe://cluster.local/ns/payments/**", "spiffe://cluster.local/ns/payments/sa/web", glob.MTLS_URI, True),
    ("spiffe://cluster.local/**", "spiffe://other.local/ns/a/sa/b", glob.MTLS_URI, False),
    ("*.payments.svc", "api.payments.svc", glob.MTLS_DNS, True),
    ("*.payments.svc", "a.api.payments.svc", glob.MTLS_DNS, False),  # like a TLS wildcard: one label
    ("**.payments.svc", "a.api.payments.svc", glob.MTLS_DNS, True),
    ("*.Payments.SVC", "api.payments.svc", glob.MTLS_DNS, True),  # DNS names compare without case
    ("build agent *", "build agent 7", glob.MTLS_SUBJECT, True),
    ("build-*", "build-a/b.c", glob.MTLS_SUBJECT, True),  # a common name has no segments
])
def test_other_kinds_of_names(pattern: str, name: str, syntax: glob.Syntax, expected: bool) -> None:
    assert matches(pattern, name, syntax) is expected


@pytest.mark.parametrize(("pattern", "syntax", "message"), [
    ("payments", glob.SECRET, "NAMESPACE/PATH"),
    ("*", glob.SECRET, "NAMESPACE/PATH"),
    ("payments/a**", glob.SECRET, "whole segment"),
    ("payments/**/**", glob.SECRET, "twice in a row"),
    ("payments//db", glob.SECRET, "empty segment"),
    ("payments/db/", glob.SECRET, "empty segment"),
    ("/payments/db", glob.SECRET, "empty segment"),
    ("payments/../db", glob.SECRET, "'..'"),
    ("payments/./db", glob.SECRET, "'.'"),
    ("payments/db?", glob.SECRET, "character outside"),
    ("payments/[ab]", glob.SECRET, "character outside"),
    ("payments/{a,b}", glob.SECRET, "character outside"),
    ("payments/a b", glob.SECRET, "character outside"),
    ("pay@x/db", glob.SECRET, "first segment"),
    ("pay:x/db", glob.SECRET, "first segment"),
    ("", glob.SECRET, "empty"),
    ("payments/db", glob.TRANSIT_KEY, "character outside"),
    ("**", glob.TRANSIT_KEY, "'**'"),
    ("..", glob.TRANSIT_KEY, "'..'"),
    ("a/b/c", glob.SERVICEACCOUNT, "more than 2"),
    ("payments", glob.SERVICEACCOUNT, "at least 2"),
    ("Payments/web", glob.SERVICEACCOUNT, "character outside"),
    ("payments/**", glob.SERVICEACCOUNT, "'**'"),
    ("a..b", glob.MTLS_DNS, "empty segment"),
    ("a_b.example", glob.MTLS_DNS, "character outside"),
    ("spiffe://a b", glob.MTLS_URI, "character outside"),
    ("a\nb", glob.MTLS_SUBJECT, "character outside"),
])
def test_refused_patterns(pattern: str, syntax: glob.Syntax, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("?", r"\?").replace("*", r"\*")):
        glob.compile_glob(pattern, syntax)


def test_limits_on_patterns() -> None:
    with pytest.raises(LimitExceeded, match="MAX_PATTERN_CHARS"):
        glob.compile_glob("ns/" + "a" * limits.MAX_PATTERN_CHARS, glob.SECRET)
    glob.compile_glob("ns/" + "a" * (limits.MAX_PATTERN_CHARS - 3), glob.SECRET)
    stars = "/".join(["*"] * (limits.MAX_WILDCARDS_PER_PATTERN + 1))
    with pytest.raises(LimitExceeded, match="MAX_WILDCARDS_PER_PATTERN"):
        glob.compile_glob(stars, glob.SECRET)
    glob.compile_glob("/".join(["*"] * limits.MAX_WILDCARDS_PER_PATTERN), glob.SECRET)


def test_index_keys() -> None:
    compiled = glob.compile_glob("payments/db/*-prod/**/password", glob.SECRET)
    assert compiled.prefix == ("payments", "db")
    assert compiled.last == "password"
    assert compiled.lead == ""  # only used when there is no literal last segment
    assert glob.compile_glob("team-*", glob.TRANSIT_KEY).lead == "team-"
    assert glob.compile_glob("payments/db", glob.SECRET).prefix == ("payments", "db")
    assert glob.compile_glob("payments/db", glob.SECRET).last is None
    assert glob.compile_glob("*/*", glob.SERVICEACCOUNT).literal_free
    assert not glob.compile_glob("payments/*", glob.SERVICEACCOUNT).literal_free


def test_matching_is_linear_on_hostile_patterns() -> None:
    """The shapes that make backtracking matchers exponential are answered at once."""
    segment = "a" * 120
    name = "ns/" + "/".join([segment] * 30) + "/b"
    pattern = "ns/" + "/".join(["**", "*a*a*a*c"] * 2)
    compiled = glob.compile_glob(pattern, glob.SECRET)
    assert not compiled.matches(name)
    assert not glob.compile_glob("ns/**/a/**/a/**/a/**/a/**/c", glob.SECRET).matches("ns/" + "a/" * 31 + "b")


# -- the alphabets agree with the names the service accepts -------------------------------------------------

PRINTABLE = [c for c in string.printable if c not in "*\t\n\r\x0b\x0c"]


def _accepted(check: object, text: str) -> bool:
    try:
        check(text)  # type: ignore[operator]
    except InvalidArgument:
        return False
    return True


@pytest.mark.parametrize("char", PRINTABLE)
def test_path_alphabet_matches_naming(char: str) -> None:
    path_ok = _accepted(naming.check_path, f"a{char}b")
    assert _accepted(lambda p: glob.compile_glob(f"ns/{p}", glob.SECRET), f"a{char}b") is path_ok
    if char != "/":  # in a secret pattern it ends the namespace
        namespace_ok = _accepted(naming.check_namespace, f"a{char}b")
        assert _accepted(lambda n: glob.compile_glob(f"{n}/x", glob.SECRET), f"a{char}b") is namespace_ok
    key_ok = _accepted(naming.check_key_name, f"a{char}b")
    assert _accepted(lambda k: glob.compile_glob(k, glob.TRANSIT_KEY), f"a{char}b") is key_ok
    token_ok = _accepted(naming.check_token_name, f"a{char}b")
    assert _accepted(lambda t: glob.compile_glob(t, glob.TOKEN), f"a{char}b") is token_ok


# -- property: the linear matcher agrees with a plain recursive one ------------------------------------------


def reference(pattern: list[str], name: list[str]) -> bool:
    """A deliberately naive matcher: `**` tries every split; other segments use fnmatch."""
    if not pattern:
        return not name
    if pattern[0] == "**":
        return any(reference(pattern[1:], name[i:]) for i in range(len(name) + 1))
    return bool(name) and fnmatchcase(name[0], pattern[0]) and reference(pattern[1:], name[1:])


SEGMENT_NAMES = st.text(alphabet="ab.", min_size=1, max_size=4).filter(lambda s: s not in {".", ".."})
SEGMENT_PATTERNS = st.one_of(SEGMENT_NAMES, st.sampled_from(["*", "a*", "*b", "a*b", "*a*", "**"]))


def _no_double_twice(segments: list[str]) -> bool:
    return all(not (x == y == "**") for x, y in itertools.pairwise(segments))


@settings(max_examples=400, deadline=None)
@given(pattern=st.lists(SEGMENT_PATTERNS, min_size=1, max_size=6).filter(_no_double_twice),
       name=st.lists(SEGMENT_NAMES, min_size=1, max_size=7))
def test_glob_agrees_with_a_naive_matcher(pattern: list[str], name: list[str]) -> None:
    syntax = glob.MTLS_URI  # '/'-separated, '**' allowed, no minimum segment count
    compiled = glob.compile_glob("/".join(pattern), syntax)
    assert compiled.matches("/".join(name)) is reference(pattern, name)
