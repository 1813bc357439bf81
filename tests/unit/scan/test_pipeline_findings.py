"""Findings from matches: redaction, keyed fingerprints, line numbers, chunk de-duplication, location."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest

from secretsvc.scan.findings import (
    MAX_REVEALED_CHARS,
    FindingCollector,
    fingerprint,
    line_of,
    outer_path,
    redact,
)
from secretsvc.scan.model import Content, LayerInfo, Location, Match, Severity
from tests import fakecreds

KEY = bytes(range(32))


def _layers(n: int) -> list[LayerInfo]:
    return [LayerInfo(i, f"sha256:{i:064x}", f"sha256:{i + 100:064x}", f"RUN step {i}", None) for i in range(n)]


def _match(data: bytes, secret: bytes, rule_id: str = "test-rule", occurrence: int = 0) -> Match:
    start = -1
    for _ in range(occurrence + 1):
        start = data.index(secret, start + 1)
    return Match(rule_id, Severity.HIGH, start, start + len(secret), secret)


def test_fingerprint_is_hmac_sha256_of_the_secret() -> None:
    assert fingerprint(KEY, b"value") == hmac.new(KEY, b"value", hashlib.sha256).hexdigest()
    assert fingerprint(KEY, b"value") != fingerprint(bytes(32), b"value")


@pytest.mark.parametrize("seed", range(5))
def test_redact_shows_at_most_the_public_prefix_and_the_length(seed: int) -> None:
    rng = random.Random(seed)
    for sample in fakecreds.samples(rng):
        secret = sample.secret
        shown = redact(secret.encode())
        head, _, tail = shown.partition("…")
        assert tail == f"({len(secret)} chars)"
        assert len(head) <= MAX_REVEALED_CHARS
        assert secret.startswith(head)
        assert secret not in shown


def test_redact_reveals_known_prefixes_only() -> None:
    rng = random.Random(7)
    assert redact(fakecreds.fake_github_token(rng).encode()).startswith("gh")
    password = fakecreds.fake_password(rng, 24)
    assert redact(password.encode()) == f"…({len(password)} chars)"


def test_redact_shows_nothing_of_a_short_secret() -> None:
    short = ("gh" + "p_") + "abc"
    assert redact(short.encode()) == f"…({len(short)} chars)"


def test_line_numbers_count_from_the_chunk_first_line() -> None:
    data = b"one\ntwo\nthree SECRET\n"
    content = Content(data, "etc/app.conf", 0, Location.FILE, offset=4096, first_line=40)
    assert line_of(content, data.index(b"SECRET")) == 42
    assert line_of(Content(data, "Env[0]", None, Location.CONFIG_ENV), 5) is None
    assert line_of(Content(data, "bin/tool", 0, Location.FILE, binary=True), 5) is None


def test_overlapping_chunks_yield_one_finding() -> None:
    rng = random.Random(1)
    token = fakecreds.fake_github_token(rng).encode()
    body = b"x" * 50 + b"\n" + b"token=" + token + b"\n" + b"y" * 50
    # Two chunks of one file that both contain the token, as the walker overlaps them.
    first = Content(body, "app/.env", 1, Location.FILE)
    second = Content(body[30:], "app/.env", 1, Location.FILE, offset=30, first_line=1)
    collector = FindingCollector(fingerprint_key=KEY)
    collector.add(first, [_match(first.data, token)])
    collector.add(second, [_match(second.data, token)])
    # A truncated copy of the token, cut at a chunk end, is contained in the whole one and dropped.
    cut = Content(body[: body.index(token) + 10], "app/.env", 1, Location.FILE)
    collector.add(cut, [_match(cut.data, token[:10])])
    findings = collector.resolve(_layers(2), None)
    assert len(findings) == 1
    finding, baseline_id = findings[0]
    assert finding.line == 2
    assert finding.fingerprint == fingerprint(KEY, token)
    assert finding.layer_digest == f"sha256:{1:064x}"
    assert baseline_id is None


def test_same_secret_twice_in_a_file_is_two_findings() -> None:
    rng = random.Random(2)
    token = fakecreds.fake_slack_token(rng).encode()
    data = b"a=" + token + b"\nb=" + token + b"\n"
    content = Content(data, "conf", 0, Location.FILE)
    collector = FindingCollector(fingerprint_key=KEY, baseline_key=bytes(32))
    collector.add(content, [_match(data, token, occurrence=0), _match(data, token, occurrence=1)])
    findings = collector.resolve(_layers(1), None)
    assert [f.line for f, _ in findings] == [1, 2]
    assert all(b == fingerprint(bytes(32), token) for _, b in findings)


def test_resolve_asks_the_index_with_the_outer_archive_path() -> None:
    asked: list[tuple[int, str]] = []

    def resolver(layer: int, path: str) -> Location:
        asked.append((layer, path))
        return Location.DELETED_FILE

    data = b"password=" + b"Zq8" * 8
    collector = FindingCollector(fingerprint_key=KEY, descriptions={"test-rule": "A test rule"})
    collector.add(Content(data, "opt/app.jar!config/app.properties", 0, Location.FILE), [_match(data, b"Zq8" * 8)])
    collector.add(Content(data, "Env[0]", None, Location.CONFIG_ENV), [_match(data, b"Zq8" * 8)])
    findings = [f for f, _ in collector.resolve(_layers(1), resolver)]
    assert asked == [(0, "opt/app.jar")]
    assert [f.location for f in findings] == [Location.CONFIG_ENV, Location.DELETED_FILE]
    assert findings[0].layer_digest is None and findings[0].layer_index is None
    assert findings[1].description == "A test rule"
    assert len(collector) == 0


def test_findings_are_sorted_config_first_then_layer_path_line() -> None:
    secret = b"Kp3" * 8
    data = (b"k=" + secret + b"\n") * 3
    collector = FindingCollector(fingerprint_key=KEY)
    for layer, path in ((2, "b"), (0, "z"), (2, "a")):
        collector.add(Content(data, path, layer, Location.FILE), [_match(data, secret, occurrence=2)])
        collector.add(Content(data, path, layer, Location.FILE), [_match(data, secret, occurrence=0)])
    collector.add(Content(data, "history[1].created_by", None, Location.CONFIG_HISTORY), [_match(data, secret)])
    order = [(f.layer_index, f.path, f.line) for f, _ in collector.resolve(_layers(3), None)]
    assert order == [
        (None, "history[1].created_by", None),
        (0, "z", 1),
        (0, "z", 3),
        (2, "a", 1),
        (2, "a", 3),
        (2, "b", 1),
        (2, "b", 3),
    ]


def test_outer_path() -> None:
    assert outer_path("a/b.zip!c/d.jar!e") == "a/b.zip"
    assert outer_path("plain/file") == "plain/file"


def test_a_finding_does_not_hold_the_secret() -> None:
    rng = random.Random(3)
    token = fakecreds.fake_stripe_secret_key(rng).encode()
    collector = FindingCollector(fingerprint_key=KEY)
    collector.add(Content(token, "f", 0, Location.FILE), [_match(token, token)])
    ((finding, _),) = collector.resolve(_layers(1), None)
    assert token.decode() not in repr(finding)
    assert token.decode() not in str(finding.to_json())
    assert token.decode() not in repr(collector)
