"""Rule files: every validation error of the loader names the file and the rule; bounds; keyword escaping."""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path
from typing import Any

import pytest

from secretsvc.errors import InvalidArgument
from secretsvc.scan.model import Severity
from secretsvc.scan.rules import RuleSet, loader
from secretsvc.scan.rules.loader import LoadedRule, parse_rules
from tests.unit.scan.rules.support import found

SOURCE = "team/rules.toml"
DROP = object()  # a key to leave out of the rule
MINIMAL: dict[str, Any] = {
    "id": "acme-api-key",
    "family": "Acme",
    "severity": "high",
    "description": "Acme API key",
    "keywords": ["acme_live_"],
    "pattern": "(?P<secret>acme_live_[a-z0-9]{16})",
}
EXAMPLES: dict[str, Any] = {"positive": ["k=acme_live_{lowernum:16}"], "negative": ["k=acme_live_{lowernum:4}"]}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value)  # a JSON string is a TOML basic string


def rule_toml(changes: dict[str, Any] | None = None, examples: Any = EXAMPLES) -> str:
    fields = {**MINIMAL, **(changes or {})}
    lines = ["[[rule]]"] + [f"{k} = {_value(v)}" for k, v in fields.items() if v is not DROP]
    if isinstance(examples, dict):
        lines.append("[rule.examples]")
        lines += [f"{k} = {_value(v)}" for k, v in examples.items()]
    return "\n".join(lines) + "\n"


def error_of(text: str) -> str:
    with pytest.raises(InvalidArgument) as caught:
        parse_rules(text, SOURCE)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: "), message
    return message


def rule_error(changes: dict[str, Any] | None = None, examples: Any = EXAMPLES) -> str:
    message = error_of(rule_toml(changes, examples))
    assert message.startswith(f"{SOURCE}: rule "), message
    return message


# -- a valid file ------------------------------------------------------------------------------------------


def test_a_minimal_rule_loads_with_the_documented_defaults() -> None:
    (loaded,) = parse_rules(rule_toml(), SOURCE)
    info = loaded.rule.info
    assert (info.rule_id, info.family, info.severity, info.description) == (
        "acme-api-key",
        "Acme",
        Severity.HIGH,
        "Acme API key",
    )
    assert info.keywords == ("acme_live_",) and info.source == SOURCE
    assert loaded.rule.priority == loader.PRIORITIES["format"]
    assert loaded.examples.positive == tuple(EXAMPLES["positive"])
    (detector,) = loaded.rule.detectors
    assert detector.caseless
    # The window reaches the longest match (26) plus KEYWORD_REACH on either side of a keyword hit.
    assert detector.back == detector.forward == 26 + loader.KEYWORD_REACH
    rules = RuleSet([loaded.rule])
    key = "acme_live_" + "".join(random.Random(1).choice(string.digits + "abcdef") for _ in range(16))
    assert found(rules, f"ACME={key}\n") == [("acme-api-key", key)]


def test_a_documented_example_value_is_dropped_by_every_data_rule() -> None:
    (loaded,) = parse_rules(rule_toml({"pattern": "(?P<secret>acme_live_[A-Z]{7})"}), SOURCE)
    rules = RuleSet([loaded.rule])
    assert found(rules, "k=acme_live_EXAMPLE\n") == []
    assert found(rules, "k=acme_live_ABCDEFG\n") == [("acme-api-key", "acme_live_ABCDEFG")]


# -- the file as a whole -----------------------------------------------------------------------------------


def test_not_toml() -> None:
    assert "not valid TOML" in error_of("[[rule]\nid = 1\n")


def test_unknown_top_level_key() -> None:
    assert "unknown top-level key(s) 'rules'" in error_of('rules = "x"\n' + rule_toml())


def test_no_rule_tables() -> None:
    assert "no [[rule]] tables" in error_of("# nothing\n")


def test_a_rule_that_is_not_a_table() -> None:
    assert f"{SOURCE}: rule #1: a rule must be a table" in error_of('rule = ["x"]\n')


def test_duplicate_id_in_one_file() -> None:
    message = error_of(rule_toml() + rule_toml())
    assert f"rule acme-api-key: the id is already used in {SOURCE}" in message


def test_too_many_rules_in_one_file(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "".join(rule_toml({"id": f"acme-{i}"}) for i in range(4))
    monkeypatch.setattr(loader, "MAX_RULES_PER_FILE", 3)
    assert "more than 3 rules in one file" in error_of(text)
    monkeypatch.setattr(loader, "MAX_RULES_PER_FILE", 4)
    assert len(parse_rules(text, SOURCE)) == 4


def test_the_real_rule_count_bound() -> None:
    one = "[[rule]]\n"  # counted before any rule is read, so empty tables suffice
    assert f"more than {loader.MAX_RULES_PER_FILE} rules" in error_of(one * (loader.MAX_RULES_PER_FILE + 1))


def test_file_size_bound_utf8_and_unreadable(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (loader.MAX_RULE_FILE_BYTES + 1))
    with pytest.raises(InvalidArgument, match="MAX_RULE_FILE_BYTES") as caught:
        loader.load_file(big)
    assert str(big) in str(caught.value)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(rule_toml().replace("Acme API key", "Acme caf\u00e9 key").encode("latin-1"))
    with pytest.raises(InvalidArgument, match=re.escape(f"{latin}: not UTF-8")):
        loader.load_file(latin)
    with pytest.raises(InvalidArgument, match=r"missing\.toml"):
        loader.load_file(tmp_path / "missing.toml")
    good = tmp_path / "good.toml"
    good.write_text(rule_toml(), encoding="utf-8")
    (loaded,) = loader.load_file(good)
    assert loaded.rule.info.source == str(good)


# -- one rule's fields -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"id": DROP}, "rule #1: 'id' is required"),
        ({"id": "Acme_Key"}, "rule #1: id must be lower-case words"),
        ({"id": "acme--key"}, "rule #1: id must be lower-case words"),
        ({"id": "a" * 65}, "rule #1: 'id' must be one non-empty line of at most 64"),
        ({"id": 7}, "rule #1: 'id' must be one non-empty line"),
        ({"colour": "red"}, "unknown key(s) 'colour'"),
        ({"severity": "urgent"}, "unknown severity 'urgent'"),
        ({"severity": DROP}, "'severity' is required"),
        ({"priority": "top"}, "priority must be one of generic, jwt, place, format, context"),
        ({"family": DROP}, "'family' is required"),
        ({"family": " "}, "'family' must be one non-empty line"),
        ({"description": "two\nlines"}, "'description' must be one non-empty line"),
        ({"description": "d" * 201}, "'description' must be one non-empty line of at most 200"),
        ({"keywords": DROP}, "'keywords' is required"),
        ({"keywords": []}, "'keywords' must be a list of 1 to 64 strings"),
        ({"keywords": [1]}, "'keywords' must hold non-empty strings"),
        ({"keywords": ["a"]}, "keyword 'a' is shorter than 2 characters"),
        ({"keywords": ["k" * 65]}, "'keywords' must hold non-empty strings of at most 64"),
        ({"keywords": [f"k{i}" for i in range(65)]}, "'keywords' must be a list of 1 to 64 strings"),
        ({"patterns": ["acme_[a-z]{4}"]}, "set exactly one of 'pattern' and 'patterns'"),
        ({"pattern": DROP}, "set exactly one of 'pattern' and 'patterns'"),
        ({"pattern": DROP, "patterns": []}, "'patterns' must be a list of 1 to 64 strings"),
        ({"pattern": "acme_(live"}, "pattern 'acme_(live' does not compile"),
        ({"pattern": "x" * 4097}, "'pattern' must hold non-empty strings of at most 4096"),
        ({"pattern": "acme_[a-z]+"}, "has no length bound of at most 65536 characters"),
        ({"pattern": "acme_.*"}, "has no length bound"),
        ({"pattern": "acme_[a-z]{70000}"}, "has no length bound"),
        ({"pattern": DROP, "patterns": ["acme_[a-z]{4}", "acme_[0-9]{2,}"]}, "'acme_[0-9]{2,}' has no length bound"),
        ({"caseless": "yes"}, "'caseless' must be true or false"),
        ({"min_length": 1.5}, "'min_length' must be a whole number from 1 to 65536"),
        ({"max_length": 0}, "'max_length' must be a whole number from 1 to 65536"),
        ({"min_length": True}, "'min_length' must be a whole number"),
        ({"min_length": 30, "max_length": 20}, "min_length is larger than max_length"),
        ({"min_entropy": 9}, "'min_entropy' must be a number from 0 to 8"),
        ({"min_entropy": "high"}, "'min_entropy' must be a number"),
        ({"validator": "crc64"}, "unknown validator 'crc64' (known: "),
        ({"allow": ["(unclosed"]}, "allow '(unclosed' does not compile"),
        ({"allow": "x"}, None),  # a single string is taken as a list of one
        ({"context": ["acme"], "context_bytes": 9000}, "'context_bytes' must be a whole number from 1 to 8192"),
        ({"context_bytes": 100}, "'context_bytes' without 'context'"),
        ({"context": [""]}, "'context' must hold non-empty strings"),
        ({"trigger": 5}, "'trigger' must be a regular expression of at most 4096 characters"),
        ({"trigger": "acme_("}, "trigger 'acme_(' does not compile"),
        ({"detector": "pem-private-key"}, "a rule with a detector sets its checks in Python; remove 'pattern'"),
        ({"detector": "pem-private-keys", "pattern": DROP}, "unknown detector 'pem-private-keys' (known: "),
    ],
)
def test_field_errors_name_the_file_and_the_rule(changes: dict[str, Any], expected: str | None) -> None:
    if expected is None:
        assert len(parse_rules(rule_toml(changes), SOURCE)) == 1
        return
    message = rule_error(changes)
    assert expected in message, message
    if not expected.startswith("rule #1"):
        assert message.startswith(f"{SOURCE}: rule acme-api-key: "), message


@pytest.mark.parametrize(
    ("examples", "expected"),
    [
        (None, "[rule.examples] with 'positive' and 'negative' lists is required"),
        ({**EXAMPLES, "neutral": ["x"]}, "unknown key(s) in examples: 'neutral'"),
        ({"positive": [], "negative": ["x"]}, "examples.positive must be a list of 1 to 64 templates"),
        ({"positive": ["x"]}, "examples.negative must be a list of 1 to 64 templates"),
        ({"positive": ["x"] * 65, "negative": ["x"]}, "examples.positive must be a list of 1 to 64"),
        ({"positive": [""], "negative": ["x"]}, "examples.positive must hold non-empty strings"),
        ({"positive": ["k={foo:3}"], "negative": ["x"]}, "examples.positive: unknown placeholder {foo:3}"),
        ({"positive": ["k={alnum:0}"], "negative": ["x"]}, "examples.positive: {alnum:0}: the length must be"),
        ({"positive": ["k={gen:nope}"], "negative": ["x"]}, "examples.positive: unknown generator {gen:nope}"),
        ({"positive": ["x"], "negative": ["k={"]}, "examples.negative: a lone '{' in an example"),
    ],
)
def test_example_errors_name_the_file_and_the_rule(examples: Any, expected: str) -> None:
    message = rule_error(examples=examples)
    assert message.startswith(f"{SOURCE}: rule acme-api-key: "), message
    assert expected in message, message


def test_a_detector_rule_needs_no_keywords_or_pattern() -> None:
    text = rule_toml({"id": "acme-pem", "pattern": DROP, "keywords": DROP, "detector": "pem-private-key"})
    (loaded,) = parse_rules(text, SOURCE)
    assert loaded.rule.detectors and loaded.rule.info.keywords == ()


# -- keywords are literal ----------------------------------------------------------------------------------


KEYWORD_CASES = [
    # (keyword, text that holds it literally, text that would match it read as a regex)
    ("a.b(c)*+?", "a.b(c)*+?", "aXb(c)"),
    ("[acme]", "[acme]", "a"),
    ("key word", "KEY WORD", "keyword"),
    ("cl\u00e9 api", "cl\u00e9 api", "cle api"),
    ("\\d{3}|x", "\\d{3}|x", "123"),
    ("^$", "x^$y", "\n"),
]


@pytest.fixture(scope="module")
def keyword_rules() -> list[LoadedRule]:
    loaded = []
    for i, (keyword, _, _) in enumerate(KEYWORD_CASES):
        changes = {"id": f"kw-{i}", "keywords": [keyword], "pattern": "(?P<secret>zq[0-9]{8}zq)"}
        loaded += parse_rules(rule_toml(changes), SOURCE)
    return loaded


@pytest.mark.parametrize("engine", ["hyperscan", "re"])
@pytest.mark.parametrize("case", range(len(KEYWORD_CASES)))
def test_keywords_are_matched_literally_by_both_engines(
    keyword_rules: list[LoadedRule], engine: str, case: int
) -> None:
    rules = RuleSet([keyword_rules[case].rule], engine=engine)
    assert rules.engine == engine
    _, literal, as_regex = KEYWORD_CASES[case]
    secret = "zq" + "".join(random.Random(case).choice(string.digits) for _ in range(8)) + "zq"
    assert found(rules, f"{literal} = {secret}\n") == [(f"kw-{case}", secret)]
    assert found(rules, f"{as_regex} = {secret}\n") == []


def test_keyword_trigger_escapes_every_byte_but_ascii_letters_and_digits() -> None:
    trigger = loader.keyword_trigger(["a.b", "cl\u00e9", "x y"])
    assert trigger == "(?:a\\x2eb|cl\\xc3\\xa9|x\\x20y)"


def test_a_keyword_of_one_repeated_character_needs_a_trigger() -> None:
    message = rule_error({"keywords": ["AAAAAAAA"], "pattern": "(?P<secret>A{8}[B-Z][a-z0-9]{16})"})
    assert "repeats one character" in message and "trigger" in message
    loaded = parse_rules(rule_toml({"keywords": ["AAAAAAAA"], "trigger": "A{8}[B-Z]",
                                    "pattern": "(?P<secret>A{8}[B-Z][a-z0-9]{16})"},
                                   examples={"positive": ["k=AAAAAAAAB{lowernum:16}"],
                                             "negative": ["k=AAAAAAAAB{lowernum:4}"]}), SOURCE)  # fmt: skip
    assert loaded[0].rule.detectors[0].trigger == "A{8}[B-Z]"
