"""The depth-bounded JSON loader: nesting is measured outside strings, in linear time, before parsing."""

from __future__ import annotations

import json
import time

import pytest

from secretsvc import errors
from secretsvc.scan.sources.jsondoc import load_json, nesting_exceeds


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", "{{{{"]', 1),  # brackets inside strings do not count
        ('["\\"[[[["]', 1),  # nor after an escaped quote
        ('["\\\\", [[]]]', 3),  # an escaped backslash ends before the quote
    ],
)
def test_depth_is_measured_outside_strings(text: str, depth: int) -> None:
    json.loads(text)
    assert not nesting_exceeds(text, depth)
    assert nesting_exceeds(text, depth - 1) == (depth > 0)


def test_deep_documents_are_refused_before_parsing() -> None:
    with pytest.raises(errors.LimitExceeded, match=r"manifest nests .* max_json_depth=64"):
        load_json(b"[" * 200_000, "manifest", 64)
    assert load_json(b"[" * 64 + b"]" * 64, "manifest", 64) is not None


def test_malformed_documents_are_invalid_arguments() -> None:
    for data in (b"{not json", b"\xff\xfe\xfd", b'"unterminated', b"]]]"):
        with pytest.raises(errors.InvalidArgument, match="not valid JSON"):
            load_json(data, "index.json", 64)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "unit", ['"\\"', '"\\', "[]", '{"a":"b",', "["], ids=["escapes", "backslashes", "pairs", "objects", "opens"]
)
def test_measuring_is_linear_on_hostile_shapes(unit: str) -> None:
    def cost(n: int) -> float:
        text = unit * n
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            nesting_exceeds(text, 64)
            best = min(best, time.perf_counter() - started)
        return best

    small, large = cost(50_000), cost(400_000)
    assert large < 0.5
    assert large < 8 * 8 * max(small, 1e-4)  # 8x the input: linear is ~8x, quadratic ~64x
