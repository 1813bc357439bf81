"""Candidate extraction for known-secret matching: the places values are written, the bounds, hostile input."""

from __future__ import annotations

import random
import time

import pytest

from secretsvc.scan.candidates import (
    MAX_CANDIDATE_BYTES,
    MAX_CANDIDATES_PER_CONTENT,
    MIN_CANDIDATE_BYTES,
    extract,
)
from secretsvc.scan.model import Content, Location

ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def word(rng: random.Random, n: int = 12) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def values(data: bytes | str, **kw: object) -> list[bytes]:
    raw = data.encode() if isinstance(data, str) else data
    content = Content(data=raw, path="etc/app.conf", layer_index=0, location=Location.FILE, **kw)  # type: ignore[arg-type]
    return [raw[s.start : s.end] for s in extract(content).spans]


@pytest.mark.parametrize(
    "template",
    [
        "DB_PASSWORD={v}\n",
        "export DB_PASSWORD='{v}'\n",
        "password: {v}\n",
        'password: "{v}"\n',
        '{{"user": "app", "password": "{v}", "port": 5432}}',
        "[db]\npassword = {v}\n",
        "<config><password>{v}</password></config>",
        '<add key="pw" value="{v}"/>',
        "psql --password {v} --host db\n",
        "mysql --password={v} -h db\n",
        'curl -u app:x --data-urlencode "token={v}" https://x\n',
        "DATABASE_URL=postgres://app:{v}@db.internal:5432/app\n",
        "redis://:{v}@cache:6379/0",
        'const apiKey := "{v}"\n',
    ],
)
def test_each_place_yields_the_value(template: str) -> None:
    secret = word(random.Random(template), 14)
    assert secret.encode() in values(template.format(v=secret))


def test_a_small_file_holding_one_token_is_a_candidate_whole() -> None:
    secret = word(random.Random(1), 9) + "/+=" + word(random.Random(2), 5)
    assert values(f"  {secret}\n") == [secret.encode()]
    assert values(f"{secret}\n", offset=4096) == []  # a later chunk of a larger file is not a whole file


def test_env_values_of_the_config_are_candidates_whole() -> None:
    secret = "pass word with spaces " + word(random.Random(3), 6)
    content = Content(
        data=f"APP_SECRET={secret}".encode(), path="config.Env[0]", layer_index=None, location=Location.CONFIG_ENV
    )
    found = [content.data[s.start : s.end] for s in extract(content).spans]
    assert secret.encode() in found


def test_lengths_are_bounded() -> None:
    rng = random.Random(4)
    short = word(rng, MIN_CANDIDATE_BYTES - 1)
    edge = word(rng, MIN_CANDIDATE_BYTES)
    long = word(rng, MAX_CANDIDATE_BYTES + 1)
    found = values(f"a={short}\nb={edge}\nc={long}\n")
    assert edge.encode() in found
    assert short.encode() not in found
    assert all(MIN_CANDIDATE_BYTES <= len(v) <= MAX_CANDIDATE_BYTES for v in found)


def test_values_are_deduplicated_within_a_content() -> None:
    secret = word(random.Random(5))
    assert values(f"a={secret}\nb={secret}\nc: {secret}\n").count(secret.encode()) == 1


def test_the_per_content_cap_is_reported() -> None:
    rng = random.Random(6)
    text = "".join(f"k{i}={word(rng, 10)}\n" for i in range(MAX_CANDIDATES_PER_CONTENT + 10))
    content = Content(data=text.encode(), path="big.env", layer_index=0, location=Location.FILE)
    result = extract(content)
    assert result.truncated
    assert len(result.spans) == MAX_CANDIDATES_PER_CONTENT
    assert not extract(content, limit=MAX_CANDIDATES_PER_CONTENT + 10).truncated


def test_binary_content_gives_no_candidates_of_its_own() -> None:
    data = b"\x7fELF\x00\x00password=" + word(random.Random(7)).encode() + b"\x00"
    content = Content(data=data, path="bin/app", layer_index=0, location=Location.FILE, binary=True)
    assert extract(content).spans == ()


def test_no_candidate_holds_a_line_break_or_nul() -> None:
    rng = random.Random(8)
    data = bytes(rng.randrange(256) for _ in range(200_000))
    content = Content(data=data, path="noise", layer_index=0, location=Location.FILE)
    for span in extract(content, limit=10**6).spans:
        value = data[span.start : span.end]
        assert b"\n" not in value and b"\x00" not in value
        assert MIN_CANDIDATE_BYTES <= len(value) <= MAX_CANDIDATE_BYTES


@pytest.mark.parametrize(
    "hostile",
    [
        b"a=" * 500_000,
        b"<" + b"a" * 1_000_000,
        b'"' + b"x" * 1_000_000,
        b"--" + b"-a " * 300_000,
        b"s://" + b"u" * 1_000_000 + b":",
        (b"<a>" + b"v" * 2000) * 400,
        b"k" * 200 + b"=" + b"v" * 2_000_000,
    ],
)
def test_hostile_input_is_linear(hostile: bytes) -> None:
    content = Content(data=hostile, path="hostile", layer_index=0, location=Location.FILE)
    started = time.perf_counter()
    result = extract(content)
    assert time.perf_counter() - started < 5.0
    assert len(result.spans) <= MAX_CANDIDATES_PER_CONTENT
