"""The record format: canonical bytes, what an event may hold (and may not), HMAC'd names, the strict parser."""

from __future__ import annotations

import base64
import dataclasses
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsvc.audit import limits
from secretsvc.audit.record import (
    GENESIS,
    AuditEvent,
    CheckpointReason,
    MalformedRecord,
    Outcome,
    checkpoint_body,
    checkpoint_record,
    event_record,
    parse_line,
    record_hash,
    resource_hmac,
)
from secretsvc.crypto import aead
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import InvalidArgument
from tests.unit.audit.support import event

TIME = "2030-01-02T03:04:05.000006Z"
KEY_ID = "ed25519:" + "ab" * 16


def _line(e: AuditEvent | None = None, hmac_key: SecretBytes | None = None, seq: int = 5) -> bytes:
    return event_record(e or event(1), seq=seq, prev="1" * 64, time=TIME, hmac_key=hmac_key)


def test_an_event_line_is_sorted_compact_ascii_json() -> None:
    line = _line(event(1, resource="équipe/app/clé"))
    assert line.isascii() and b" " not in line and b"\n" not in line
    record = json.loads(line)
    assert list(record) == sorted(record)
    assert record == {
        "v": 1, "type": "event", "seq": 5, "prev": "1" * 64, "time": TIME, "request_id": "req-1",
        "principal": "token:ci", "method": "/secretsvc.v1.Secrets/GetSecret", "resource_kind": "secret",
        "resource": "équipe/app/clé", "capability": "read", "outcome": "ok", "code": "OK", "latency_us": 101,
    }
    assert parse_line(line).fields == record


def test_the_hash_is_sha256_of_the_line_without_newline() -> None:
    import hashlib

    line = _line()
    assert record_hash(line) == hashlib.sha256(line).hexdigest()
    assert len(GENESIS) == 64 and set(GENESIS) == {"0"}


def test_an_event_has_no_field_that_could_hold_a_value_token_or_key() -> None:
    names = {f.name for f in dataclasses.fields(AuditEvent)}
    assert names == {"request_id", "method", "code", "latency_us", "principal", "resource_kind", "resource",
                     "capability"}
    with pytest.raises(TypeError):
        AuditEvent(request_id="r", method="m", code="OK", latency_us=1, value=b"hunter2")  # type: ignore[call-arg]


@pytest.mark.parametrize(("code", "outcome"), [
    ("OK", Outcome.OK), ("PERMISSION_DENIED", Outcome.DENIED), ("UNAUTHENTICATED", Outcome.DENIED),
    ("NOT_FOUND", Outcome.ERROR), ("UNAVAILABLE", Outcome.ERROR),
])
def test_the_outcome_follows_the_status_code(code: str, outcome: Outcome) -> None:
    assert event(code=code).outcome is outcome
    assert json.loads(_line(event(code=code)))["outcome"] == outcome.value


def test_with_an_hmac_key_the_resource_is_its_hmac_except_system_names() -> None:
    key = aead.random_key()
    record = json.loads(_line(event(1, resource="payments/db/password"), hmac_key=key))
    assert record["resource"] == resource_hmac(key, "payments/db/password")
    assert record["resource"].startswith("hmac-sha256:") and len(record["resource"]) == len("hmac-sha256:") + 64
    assert b"payments" not in _line(event(1, resource="payments/db/password"), hmac_key=key)
    system = json.loads(_line(event(1, resource="root-key", kind="system"), hmac_key=key))
    assert system["resource"] == "root-key"


def test_the_resource_hmac_is_documented_hmac_sha256_with_a_label() -> None:
    key = SecretBytes(bytes(range(32)))
    expected = aead.hmac_sha256(key, b"secretsvc.audit.resource.v1\x00" + b"a/b").hex()
    assert resource_hmac(key, "a/b") == "hmac-sha256:" + expected
    assert resource_hmac(key, "a/b") != resource_hmac(SecretBytes(bytes(32)), "a/b")


def test_an_oversized_resource_is_clipped_but_its_hmac_covers_the_whole_name() -> None:
    long_name = "x" * (limits.MAX_RESOURCE_CHARS * 4)
    clear = json.loads(_line(event(1, resource=long_name)))
    assert clear["resource"].startswith("x" * limits.MAX_RESOURCE_CHARS) and clear["resource"].endswith("[clipped]")
    assert len(clear["resource"]) < limits.MAX_RESOURCE_CHARS + 20
    key = aead.random_key()
    hashed = json.loads(_line(event(1, resource=long_name), hmac_key=key))
    assert hashed["resource"] == resource_hmac(key, long_name)
    assert resource_hmac(key, long_name) != resource_hmac(key, long_name[:-1])


@pytest.mark.parametrize("change", [
    {"code": "ok"}, {"code": ""}, {"code": "X" * 40}, {"capability": "Read"}, {"capability": "read; rm"},
    {"resource_kind": "a b"}, {"latency_us": -1}, {"latency_us": 1.5}, {"latency_us": True},
    {"request_id": 7}, {"resource": b"bytes"},
])
def test_an_event_the_server_built_wrong_is_refused_loudly(change: dict[str, object]) -> None:
    base = dataclasses.asdict(event(1))
    with pytest.raises(InvalidArgument):
        AuditEvent(**{**base, **change})  # type: ignore[arg-type]


def test_newlines_and_quotes_in_text_cannot_forge_a_line() -> None:
    forged = '"}\n{"type":"checkpoint","seq":1}'
    line = _line(event(1, resource=forged, principal="evil\r\nname"))
    assert b"\n" not in line and b"\r" not in line
    assert parse_line(line).fields["resource"] == forged
    assert b'"type":"checkpoint"' not in line  # the checkpoint marker the tail scan relies on never appears


def _checkpoint(**overrides: object) -> bytes:
    body = checkpoint_body(seq=9, prev="2" * 64, time=TIME, key_id=KEY_ID, reason=CheckpointReason.COUNT,
                           dropped=0, discarded_bytes=0)
    body.update(overrides)
    return checkpoint_record(body, b"\x07" * 64)


def test_a_checkpoint_parses_with_its_signature() -> None:
    parsed = parse_line(_checkpoint())
    assert parsed.kind == "checkpoint" and parsed.seq == 9 and parsed.reason is CheckpointReason.COUNT
    assert parsed.signature == b"\x07" * 64
    assert "sig" not in parsed.signed_body()


def _reencoded(line: bytes, **changes: object) -> bytes:
    record = json.loads(line)
    record.update(changes)
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(("line", "why"), [
    (b"", "not JSON"),
    (b"[1,2]", "not a JSON object"),
    (b"{" * 100_000, "not JSON"),
    (b'{"seq":' + b"9" * 5000 + b"}", "not JSON"),
    (_line().replace(b",", b", ", 1), "not canonical"),
    (b'{"seq":1,"seq":2}', "not canonical"),
    (_line().replace(b'"v":1', b'"v":1.0'), "version"),
    (_line().replace(b'"latency_us":101', b'"latency_us":1.01e2'), "not canonical"),
    (_reencoded(_line(), type="note"), "neither"),
    (_reencoded(_line(), extra=1), "unexpected"),
    (_reencoded(_line(), v=2), "version"),
    (_reencoded(_line(), seq=True), "seq"),
    (_reencoded(_line(), seq=-1), "seq"),
    (_reencoded(_line(), seq=2**63), "seq"),
    (_reencoded(_line(), prev="Z" * 64), "prev"),
    (_reencoded(_line(), time="yesterday"), "time"),
    (_reencoded(_line(), outcome="ok", code="PERMISSION_DENIED"), "outcome"),
    (_reencoded(_line(), request_id="r" * (limits.MAX_REQUEST_ID_CHARS + 100)), "request_id"),
    (_reencoded(_checkpoint(), reason="because"), "reason"),
    (_reencoded(_checkpoint(), key_id="rsa:1"), "key_id"),
    (_reencoded(_checkpoint(), sig="AAAA"), "sig"),
    (_reencoded(_checkpoint(), sig="!" * 88), "sig"),
    # The same 64 bytes with stray low bits in the last base64 character: a second spelling, refused.
    (_reencoded(_checkpoint(), sig=base64.b64encode(b"\x07" * 64).decode()[:-3] + "x=="), "canonical base64"),
])
def test_the_parser_refuses_anything_but_one_exact_spelling(line: bytes, why: str) -> None:
    with pytest.raises(MalformedRecord, match=why):
        parse_line(line)


_text = st.text(max_size=300)


@settings(max_examples=150, deadline=None)
@given(request_id=_text, method=_text, principal=st.none() | _text, resource=st.none() | st.text(max_size=2000),
       code=st.sampled_from(["OK", "NOT_FOUND", "PERMISSION_DENIED"]), latency=st.integers(0, 10**15),
       hmac=st.booleans())
def test_any_event_encodes_to_one_bounded_line_that_parses_back(
    request_id: str, method: str, principal: str | None, resource: str | None, code: str, latency: int, hmac: bool
) -> None:
    e = AuditEvent(request_id=request_id, method=method, code=code, latency_us=latency, principal=principal,
                   resource_kind="secret", resource=resource, capability="read")
    line = _line(e, hmac_key=SecretBytes(b"k" * 32) if hmac else None)
    assert len(line) <= limits.MAX_LINE_BYTES and b"\n" not in line
    parsed = parse_line(line)
    assert parsed.fields["latency_us"] == min(latency, limits.MAX_LATENCY_US)
    if len(request_id) <= limits.MAX_REQUEST_ID_CHARS:
        assert parsed.fields["request_id"] == request_id


def test_the_worst_case_event_stays_under_the_line_bound() -> None:
    astral = "\U0001f600"  # escaped as a surrogate pair: 12 bytes per character
    e = AuditEvent(request_id=astral * 1000, method=astral * 1000, code="PERMISSION_DENIED", latency_us=10**18,
                   principal=astral * 1000, resource_kind="transit_key", resource=astral * 5000, capability="read")
    assert len(_line(e)) <= limits.MAX_LINE_BYTES


def test_format_time_matches_datetime_to_the_microsecond() -> None:
    from datetime import UTC, datetime

    from secretsvc.audit.record import format_time

    rng = random.Random(71)
    stamps = [rng.uniform(0, 4_102_444_800) for _ in range(20_000)]
    # Halves and near-halves of a microsecond, and the edges of a second, where rounding carries.
    stamps += [1_900_000_000 + k / 1e6 + d for k in range(0, 1_000_001, 99_999) for d in (0.0, 5e-7, -5e-7, 4.9e-7)]
    stamps += [1_900_000_000.9999995, 1_900_000_000.9999996, 0.0, 1.0, 59.9999999]
    for ts in stamps:
        assert format_time(ts) == datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), ts
