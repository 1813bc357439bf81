"""YAML and JSON become the same line-numbered tree; duplicates, aliases, tags and deep nesting are refused."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsvc.policy import limits, nodes


def read(text: str | bytes, fmt: nodes.Format) -> nodes.Node:
    node = nodes.read(text if isinstance(text, bytes) else text.encode(), fmt)
    assert not isinstance(node, nodes.Unreadable), node
    return node


def refused(text: str | bytes, fmt: nodes.Format) -> nodes.Unreadable:
    node = nodes.read(text if isinstance(text, bytes) else text.encode(), fmt)
    assert isinstance(node, nodes.Unreadable), node
    return node


def test_yaml_and_json_give_the_same_tree_with_lines() -> None:
    as_yaml = read("version: 1\npolicies:\n  - name: a\n    rules: [x, y]\n", "yaml")
    as_json = read('{"version": 1,\n "policies": [\n  {"name": "a",\n   "rules": ["x", "y"]}]}', "json")
    assert nodes.to_python(as_yaml) == nodes.to_python(as_json) == {"version": 1, "policies": [
        {"name": "a", "rules": ["x", "y"]}]}
    for tree in (as_yaml, as_json):
        assert isinstance(tree, nodes.Map)
        policies = tree.entries[1]
        assert policies.key == "policies" and policies.key_line == 2
        assert isinstance(policies.value, nodes.Seq)
        policy = policies.value.items[0]
        assert isinstance(policy, nodes.Map)
        assert policy.entries[1].key_line == 4
        rules = policy.entries[1].value
        assert isinstance(rules, nodes.Seq) and rules.items[1].line == 4


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_duplicate_keys_are_refused_at_the_second(fmt: nodes.Format) -> None:
    text = ("a: 1\nb: 2\na: 3\n" if fmt == "yaml" else '{"a": 1,\n"b": 2,\n"a": 3}')
    problem = refused(text, fmt)
    assert problem.line == 3 and "duplicate key 'a' (first at line 1)" in problem.message


@pytest.mark.parametrize(("text", "line", "message"), [
    ("a: &x [1, 2]\nb: *x\n", 2, "aliases"),
    ("a: !!python/object:os.system x\n", 1, "tag"),
    ("a: !custom x\n", 1, "tag"),
    ("base: &b {x: 1}\nother:\n  <<: {x: 2}\n", 3, "merge keys"),
    ("1: a\n", 1, "plain strings"),
    ("? [a]\n: b\n", 1, "plain strings"),
    ("a: 1\n---\nb: 2\n", 2, "YAML"),
    ("a: [1, 2\nb: 3\n", 2, "YAML"),
    ("", 1, "empty"),
    ("# only a comment\n", 1, "empty"),
])
def test_yaml_refusals(text: str, line: int, message: str) -> None:
    problem = refused(text, "yaml")
    assert problem.line == line and message in problem.message, problem


@pytest.mark.parametrize(("text", "line", "message"), [
    ('{"a": 1}\n{"b": 2}', 2, "extra data"),
    ('{"a": 1,}', 1, "string key"),
    ('{"a": NaN}', 1, "expected a value"),
    ('{"a": Infinity}', 1, "expected a value"),
    ('{"a": "\\x41"}', 1, "invalid string"),
    ('{"a": "line\nbreak"}', 1, "invalid string"),
    ("{'a': 1}", 1, "string key"),
    ('{"a": 01}', 1, "','"),
    ('[1,\n2,\n', 3, "expected a value"),
    ("", 1, "empty"),
])
def test_json_refusals(text: str, line: int, message: str) -> None:
    problem = refused(text, "json")
    assert problem.line == line and message in problem.message, problem


def test_json_is_read_as_json_says() -> None:
    tree = read('{\t"a":\t"x\\/y \\u00e9 \\ud83d\\ude00", "b": [true, false, null, -1.5e3, 0]}', "json")
    assert nodes.to_python(tree) == {"a": "x/y é 😀", "b": [True, False, None, -1500.0, 0]}


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_nesting_deeper_than_the_limit_is_refused_before_it_costs(fmt: nodes.Format) -> None:
    depth = limits.MAX_NESTING_DEPTH
    read("[" * depth + "]" * depth, fmt)
    problem = refused("[" * (depth + 1) + "]" * (depth + 1), fmt)
    assert problem.limit and "MAX_NESTING_DEPTH" in problem.message
    problem = refused("[" * 100_000, fmt)  # would exhaust the stack of a recursive reader without the bound
    assert "MAX_NESTING_DEPTH" in problem.message


def test_text_must_be_utf8_and_may_start_with_a_byte_order_mark() -> None:
    problem = refused(b"a: 1\nb: \xff\n", "yaml")
    assert problem.line == 2 and "UTF-8" in problem.message
    assert nodes.to_python(read("\ufeffa: 1\n".encode(), "yaml")) == {"a": 1}
    assert nodes.to_python(read("\ufeff{\"a\": 1}".encode(), "json")) == {"a": 1}


# -- properties: the readers agree with the libraries on plain data ------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(value=VALUES, indent=st.sampled_from([None, 1, 2, "\t"]))
def test_json_reader_agrees_with_json_loads(value: object, indent: int | str | None) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    assert nodes.to_python(read(text, "json")) == json.loads(text)


@settings(max_examples=200, deadline=None)
@given(value=VALUES)
def test_yaml_reader_agrees_with_safe_load(value: object) -> None:
    text = yaml.safe_dump(value, allow_unicode=True)
    assert nodes.to_python(read(text, "yaml")) == yaml.safe_load(text)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_lists_and_mappings_longer_than_any_the_schema_takes_are_refused_unbuilt(
        fmt: nodes.Format, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_LIST_ITEMS", 3)
    monkeypatch.setattr(limits, "MAX_MAPPING_KEYS", 2)
    read("[1, 2, 3]", fmt)
    problem = refused("\n[1, 2, 3, 4]", fmt)
    assert problem.limit and problem.line == 2 and "MAX_LIST_ITEMS=3" in problem.message
    read('{"a": 1, "b": 2}', fmt)
    problem = refused('{"a": 1, "b": 2, "c": 3}', fmt)
    assert problem.limit and "MAX_MAPPING_KEYS=2" in problem.message


def test_the_pure_python_parser_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libyaml the Python parser gives the same events, so the same tree and the same refusals."""
    text = "version: 1\npolicies:\n  - name: a\n    rules: [x, 'y', 3, true, null]\n"
    with_libyaml = nodes.to_python(read(text, "yaml"))
    monkeypatch.setattr(nodes, "_LOADER", yaml.SafeLoader)
    assert nodes.to_python(read(text, "yaml")) == with_libyaml
    assert refused("a: 1\na: 2\n", "yaml").line == 2
    assert "aliases" in refused("a: &x 1\nb: *x\n", "yaml").message
    assert "MAX_NESTING_DEPTH" in refused("[" * 1000, "yaml").message
