"""Durations for `secretsvc token create --ttl`."""

from __future__ import annotations

import argparse

import pytest

from secretsvc.cli.token_cmds import parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("3600", 3600), ("45s", 45), ("30m", 1800), ("12h", 43200), ("90d", 7776000), ("2w", 1209600),
    ("1h30m", 5400), ("1d2h3m4s", 93784),
])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1x", "h1", "1h 30m", "-5m", "1.5h", "30m1"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        parse_duration(text)
