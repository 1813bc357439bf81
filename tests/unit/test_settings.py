"""The shared setting parsers and `find_given`: which of flag, environment and file gives a value, and its origin."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from secretsvc.settings import (
    Given,
    Setting,
    bounded,
    find_given,
    one_of,
    parse_bool,
    parse_float,
    parse_int,
    parse_optional_path,
    parse_paths,
    parse_str,
)

SETTINGS = (
    Setting("workers", "APP_WORKERS", parse_int, 16),
    Setting("log_level", "APP_LOG_LEVEL", parse_str, "info"),
    Setting("k8s_issuer", "APP_K8S_ISSUER", parse_str, "", field="issuer", meaning="the issuer"),
)


def test_a_setting_sets_the_field_of_its_name_unless_told() -> None:
    assert [s.field for s in SETTINGS] == ["workers", "log_level", "issuer"]


def test_flags_over_environment_over_file_and_absent_when_given_nowhere() -> None:
    file = Path("/etc/app.toml")
    given = find_given(SETTINGS, {"workers": 4, "log_level": None}, {"APP_WORKERS": "3", "APP_LOG_LEVEL": ""},
                       {"workers": 2, "log_level": "error"}, file)
    assert given == {
        "workers": Given(4, "--workers", from_file=False),
        "log_level": Given("", "APP_LOG_LEVEL", from_file=False),  # a flag left None falls through; "" counts
    }
    from_file = find_given(SETTINGS, {}, {}, {"k8s_issuer": "https://x"}, file)
    assert from_file == {"k8s_issuer": Given("https://x", "/etc/app.toml: k8s_issuer", from_file=True)}
    assert find_given(SETTINGS, {"k8s_issuer": "a"}, {}, {}, None)["k8s_issuer"].origin == "--k8s-issuer"


@pytest.mark.parametrize(("parse", "raw", "expected"), [
    (parse_bool, " YES ", True), (parse_bool, "", False), (parse_bool, False, False),
    (parse_int, "7", 7), (parse_int, 3.0, 3),
    (parse_float, "2.5", 2.5), (parse_float, 1, 1.0),
    (parse_str, " a ", " a "),
    (parse_optional_path, " ", None), (parse_optional_path, Path("/x"), Path("/x")),
    (parse_paths, "a:b:", (Path("a"), Path("b"))), (parse_paths, ["a", " "], (Path("a"),)),
    (one_of("json", "text"), "text", "text"), (one_of("info", fold_case=True), "INFO", "INFO"),
    (bounded(parse_int, 1, 3), "3", 3),
])
def test_parsers_accept(parse: Any, raw: Any, expected: Any) -> None:
    assert parse(raw) == expected


@pytest.mark.parametrize(("parse", "raw", "reason"), [
    (parse_bool, "maybe", "must be true or false"),
    (parse_int, True, "must be a whole number"), (parse_int, 2.7, "must be a whole number"),
    (parse_float, True, "must be a number"),
    (parse_str, 8290, "must be a string"), (parse_optional_path, 3, "must be a string"),
    (one_of("json", "text"), "JSON", "must be one of json, text"),
    (bounded(parse_int, 1, 256), 0, "must be between 1 and 256"),
    (bounded(parse_float, 0, 600), math.nan, "must be between 0 and 600"),
])
def test_parsers_refuse_with_a_reason(parse: Any, raw: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{reason}$"):
        parse(raw)
