"""`SecretService` against hostile input: names that must be refused, and ciphertext altered at rest."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import CorruptRecord, InvalidArgument, LimitExceeded, NotFound, StorageError
from secretsvc.service import limits
from secretsvc.service.naming import check_namespace, check_path, check_prefix, split_ref
from secretsvc.service.secrets import SecretService
from tests.unit.service.support import ADMIN, value

NS = "team-a"

BAD_PATHS = [
    ("", InvalidArgument, "empty"),
    ("/leading", InvalidArgument, "empty segment"),
    ("trailing/", InvalidArgument, "empty segment"),
    ("a//b", InvalidArgument, "empty segment"),
    ("..", InvalidArgument, "'..' segment"),
    ("a/../b", InvalidArgument, "'..' segment"),
    (".", InvalidArgument, "'.' segment"),
    ("a/./b", InvalidArgument, "'.' segment"),
    ("a\x00b", InvalidArgument, "character outside"),
    ("a\nb", InvalidArgument, "character outside"),
    ("a\rforged", InvalidArgument, "character outside"),
    ("a\x1b[2Jb", InvalidArgument, "character outside"),
    ("a\x7fb", InvalidArgument, "character outside"),
    ("a\\b", InvalidArgument, "character outside"),
    ("..\\..\\etc", InvalidArgument, "character outside"),
    ("a b", InvalidArgument, "character outside"),
    ("a\tb", InvalidArgument, "character outside"),
    ("a?b", InvalidArgument, "character outside"),
    ("a*b", InvalidArgument, "character outside"),
    ("a$b", InvalidArgument, "character outside"),
    ("café", InvalidArgument, "character outside"),
    ("a\u202eb", InvalidArgument, "character outside"),  # right-to-left override
    ("a\u00a0b", InvalidArgument, "character outside"),  # no-break space
    ("x" * (limits.MAX_PATH_BYTES + 1), LimitExceeded, "MAX_PATH_BYTES"),
    ("/".join(["y" * 128] * 3 + ["y" * 126]), LimitExceeded, "MAX_PATH_BYTES="),
    ("é" * (limits.MAX_PATH_BYTES // 2 + 1), LimitExceeded, "MAX_PATH_BYTES="),  # bytes, not characters
    ("x" * (limits.MAX_PATH_SEGMENT_BYTES + 1), LimitExceeded, "MAX_PATH_SEGMENT_BYTES"),
    ("/".join(["s"] * (limits.MAX_PATH_SEGMENTS + 1)), LimitExceeded, "MAX_PATH_SEGMENTS"),
]

GOOD_PATHS = [
    "a",
    "db/password",
    "hosts/web-01.example.com/ssh_key",
    "users/alice@example.com",
    "k=v,x:y~z+w",
    "...",  # only exactly '.' and '..' are special
    ".hidden/..x",
    "/".join(["s"] * limits.MAX_PATH_SEGMENTS),
    "/".join(["x" * limits.MAX_PATH_SEGMENT_BYTES] * 3),
    "/".join(["y" * 128] * 3 + ["y" * 125]),  # exactly MAX_PATH_BYTES
]

BAD_NAMESPACES = [
    ("", InvalidArgument),
    (".", InvalidArgument),
    ("..", InvalidArgument),
    ("a/b", InvalidArgument),
    ("a b", InvalidArgument),
    ("a\x00", InvalidArgument),
    ("a\n", InvalidArgument),
    ("a\\b", InvalidArgument),
    ("a@b", InvalidArgument),
    ("naïve", InvalidArgument),
    ("n" * (limits.MAX_NAMESPACE_BYTES + 1), LimitExceeded),
]


def test_the_longest_good_path_is_exactly_at_the_limit() -> None:
    assert len(GOOD_PATHS[-1].encode()) == limits.MAX_PATH_BYTES


@pytest.mark.parametrize(("path", "error", "fragment"), BAD_PATHS)
def test_bad_paths_are_refused_before_anything_is_stored(
    secrets_svc: SecretService, path: str, error: type[InvalidArgument], fragment: str
) -> None:
    with pytest.raises(error) as info:
        secrets_svc.put(ADMIN, NS, path, value(random.Random(1)))
    assert type(info.value) is error
    assert fragment in str(info.value)
    # A control character never reaches the message raw (it could forge a log line).
    assert not any(ch in str(info.value) for ch in "\x00\n\r\x1b\x7f\u202e")
    with pytest.raises(error):
        secrets_svc.get(ADMIN, NS, path)
    with pytest.raises(error):
        secrets_svc.metadata(ADMIN, NS, path)
    with pytest.raises(error):
        secrets_svc.delete_secret(ADMIN, NS, path)
    with pytest.raises(error):
        secrets_svc.delete_versions(ADMIN, NS, path, [1])
    assert list(secrets_svc.list_paths(ADMIN, NS).paths) == []


@pytest.mark.parametrize("path", GOOD_PATHS)
def test_good_paths_round_trip(secrets_svc: SecretService, path: str) -> None:
    secret = value(random.Random(2))
    secrets_svc.put(ADMIN, NS, path, secret)
    assert secrets_svc.get(ADMIN, NS, path).value == secret
    assert list(secrets_svc.list_paths(ADMIN, NS).paths) == [path]


@pytest.mark.parametrize(("namespace", "error"), BAD_NAMESPACES)
def test_bad_namespaces_are_refused(secrets_svc: SecretService, namespace: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        secrets_svc.put(ADMIN, namespace, "p", value(random.Random(3)))
    assert type(info.value) is error
    with pytest.raises(error):
        secrets_svc.get(ADMIN, namespace, "p")
    with pytest.raises(error):
        secrets_svc.list_paths(ADMIN, namespace)


def test_namespace_at_the_limit_is_accepted(secrets_svc: SecretService) -> None:
    namespace = "n" * limits.MAX_NAMESPACE_BYTES
    secrets_svc.put(ADMIN, namespace, "p", value(random.Random(4)))
    assert secrets_svc.get(ADMIN, namespace, "p").version == 1


def test_long_hostile_name_is_truncated_in_the_message() -> None:
    hostile = "\n" + "z" * 400
    with pytest.raises(InvalidArgument) as info:
        check_path(hostile[: limits.MAX_PATH_SEGMENT_BYTES])
    assert len(str(info.value)) < 200


def test_split_ref() -> None:
    assert split_ref("ns/a/b") == ("ns", "a/b")
    with pytest.raises(InvalidArgument, match="NAMESPACE/PATH"):
        split_ref("no-slash")
    with pytest.raises(InvalidArgument):
        split_ref("/path")
    with pytest.raises(InvalidArgument):
        split_ref("ns/")


@pytest.mark.parametrize("prefix", ["", "a", "a/", "a/b", "a/b/", "ap"])
def test_good_prefixes(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


# --- properties: arbitrary text validates or raises InvalidArgument, never anything else ----------------------

_ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=600)
_PATHLIKE = st.lists(
    st.one_of(st.sampled_from(["", ".", "..", "a", "b.c", "x" * 129]), st.text(max_size=8)), max_size=40
).map("/".join)


def _validates_or_invalid(check: object, text: str) -> None:
    assert callable(check)
    try:
        result = check(text)
    except InvalidArgument:
        return
    assert result == text


@given(text=st.one_of(_ANY_TEXT, _PATHLIKE))
@settings(max_examples=400, deadline=None)
def test_any_text_as_path_validates_or_is_invalid(text: str) -> None:
    _validates_or_invalid(check_path, text)
    _validates_or_invalid(check_prefix, text)


@given(text=_ANY_TEXT)
@settings(max_examples=300, deadline=None)
def test_any_text_as_namespace_validates_or_is_invalid(text: str) -> None:
    _validates_or_invalid(check_namespace, text)


@given(namespace=st.one_of(_ANY_TEXT, st.sampled_from(["ns", "a.b"])), path=st.one_of(_ANY_TEXT, _PATHLIKE))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_name_through_the_service_is_stored_or_invalid(
    secrets_svc: SecretService, namespace: str, path: str
) -> None:
    try:
        secrets_svc.put(ADMIN, namespace, path, SecretBytes(b"v"))
    except InvalidArgument:
        return
    assert secrets_svc.get(ADMIN, namespace, path).value == SecretBytes(b"v")
    assert secrets_svc.delete_secret(ADMIN, namespace, path)


_SURROGATE_TEXT = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=4)


@given(text=_SURROGATE_TEXT)
@settings(max_examples=20, deadline=None)
def test_lone_surrogates_are_invalid_not_a_crash(text: str) -> None:
    _validates_or_invalid(check_path, "a" + text)
    _validates_or_invalid(check_namespace, text)


# --- ciphertext altered at rest ------------------------------------------------------------------------------


def _stored_envelope(db: Path, namespace: str, path: str, version: int) -> bytes:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT envelope FROM secret_versions WHERE namespace = ? AND path = ? AND version = ?",
            (namespace, path, version),
        ).fetchone()
    assert row is not None
    return bytes(row[0])


def _overwrite_envelope(db: Path, namespace: str, path: str, version: int, envelope: bytes) -> None:
    conn = sqlite3.connect(db)
    try:
        with conn:
            changed = conn.execute(
                "UPDATE secret_versions SET envelope = ? WHERE namespace = ? AND path = ? AND version = ?",
                (envelope, namespace, path, version),
            ).rowcount
    finally:
        conn.close()
    assert changed == 1


def _assert_no_value_in(message: str, secret: SecretBytes) -> None:
    raw = secret.reveal()
    assert raw.hex() not in message
    assert raw.hex().upper() not in message
    assert repr(raw)[2:-1][:16] not in message


@pytest.mark.parametrize("where", ["header", "wrapped_key", "payload", "tag"])
def test_a_flipped_byte_in_the_stored_envelope_is_a_corrupt_record(
    secrets_svc: SecretService, db_path: Path, where: str
) -> None:
    secret = value(random.Random(5))
    secrets_svc.put(ADMIN, NS, "db/password", secret)
    envelope = bytearray(_stored_envelope(db_path, NS, "db/password", 1))
    offsets = {"header": 3, "wrapped_key": 40, "payload": len(envelope) - 30, "tag": len(envelope) - 1}
    envelope[offsets[where]] ^= 0x01
    _overwrite_envelope(db_path, NS, "db/password", 1, bytes(envelope))
    with pytest.raises(CorruptRecord) as info:
        secrets_svc.get(ADMIN, NS, "db/password")
    message = str(info.value)
    assert "db/password" in message
    assert "version 1" in message
    _assert_no_value_in(message, secret)
    assert isinstance(info.value, StorageError)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_every_single_byte_flip_is_caught(secrets_svc: SecretService, db_path: Path) -> None:
    secret = value(random.Random(6), 8)
    secrets_svc.put(ADMIN, NS, "p", secret)
    original = _stored_envelope(db_path, NS, "p", 1)
    for i in range(len(original)):
        tampered = bytearray(original)
        tampered[i] ^= 0x80
        _overwrite_envelope(db_path, NS, "p", 1, bytes(tampered))
        with pytest.raises(CorruptRecord):
            secrets_svc.get(ADMIN, NS, "p")
    _overwrite_envelope(db_path, NS, "p", 1, original)
    assert secrets_svc.get(ADMIN, NS, "p").value == secret


@pytest.mark.parametrize("mangle", ["truncate", "extend", "single_byte"])
def test_truncated_or_extended_envelope_is_a_corrupt_record(
    secrets_svc: SecretService, db_path: Path, mangle: str
) -> None:
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(7)))
    envelope = _stored_envelope(db_path, NS, "p", 1)
    changed = {"truncate": envelope[:-5], "extend": envelope + b"\x00", "single_byte": envelope[:1]}[mangle]
    _overwrite_envelope(db_path, NS, "p", 1, changed)
    with pytest.raises(CorruptRecord):
        secrets_svc.get(ADMIN, NS, "p")


def test_an_envelope_copied_from_another_secret_is_refused(secrets_svc: SecretService, db_path: Path) -> None:
    rng = random.Random(8)
    admin, guest = value(rng), value(rng)
    secrets_svc.put(ADMIN, NS, "admin/password", admin)
    secrets_svc.put(ADMIN, NS, "guest/password", guest)
    stolen = _stored_envelope(db_path, NS, "admin/password", 1)
    _overwrite_envelope(db_path, NS, "guest/password", 1, stolen)
    with pytest.raises(CorruptRecord) as info:
        secrets_svc.get(ADMIN, NS, "guest/password")
    _assert_no_value_in(str(info.value), admin)
    assert secrets_svc.get(ADMIN, NS, "admin/password").value == admin


def test_an_envelope_copied_from_another_namespace_is_refused(secrets_svc: SecretService, db_path: Path) -> None:
    rng = random.Random(9)
    secrets_svc.put(ADMIN, "prod", "key", value(rng))
    secrets_svc.put(ADMIN, "dev", "key", value(rng))
    _overwrite_envelope(db_path, "dev", "key", 1, _stored_envelope(db_path, "prod", "key", 1))
    with pytest.raises(CorruptRecord):
        secrets_svc.get(ADMIN, "dev", "key")


def test_an_envelope_copied_from_another_version_is_refused(secrets_svc: SecretService, db_path: Path) -> None:
    rng = random.Random(10)
    old, new = value(rng), value(rng)
    secrets_svc.put(ADMIN, NS, "p", old)
    secrets_svc.put(ADMIN, NS, "p", new)
    # Rolling the current version back to older content must not go unnoticed.
    _overwrite_envelope(db_path, NS, "p", 2, _stored_envelope(db_path, NS, "p", 1))
    with pytest.raises(CorruptRecord):
        secrets_svc.get(ADMIN, NS, "p")
    assert secrets_svc.get(ADMIN, NS, "p", 1).value == old


def test_corruption_of_one_version_leaves_the_others_readable(secrets_svc: SecretService, db_path: Path) -> None:
    rng = random.Random(11)
    first, second = value(rng), value(rng)
    secrets_svc.put(ADMIN, NS, "p", first)
    secrets_svc.put(ADMIN, NS, "p", second)
    envelope = bytearray(_stored_envelope(db_path, NS, "p", 2))
    envelope[-1] ^= 0xFF
    _overwrite_envelope(db_path, NS, "p", 2, bytes(envelope))
    with pytest.raises(CorruptRecord):
        secrets_svc.get(ADMIN, NS, "p")
    assert secrets_svc.get(ADMIN, NS, "p", 1).value == first
    # A new write supersedes the damaged version.
    third = value(rng)
    secrets_svc.put(ADMIN, NS, "p", third)
    assert secrets_svc.get(ADMIN, NS, "p").value == third


def test_unknown_secret_is_not_found_even_with_a_damaged_neighbour(
    secrets_svc: SecretService, db_path: Path
) -> None:
    secrets_svc.put(ADMIN, NS, "p", value(random.Random(12)))
    _overwrite_envelope(db_path, NS, "p", 1, b"\x01garbage")
    with pytest.raises(NotFound):
        secrets_svc.get(ADMIN, NS, "q")
