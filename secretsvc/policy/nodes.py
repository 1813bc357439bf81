"""YAML and JSON text -> a small tree of nodes that remember their line, for the schema to read.

Both formats become the same tree (`Scalar`, `Seq`, `Map`), so the schema is written once and every problem
it finds can name a line. Only plain data gets through:

- duplicate keys are refused in both formats (YAML and Python's json would silently keep the last one, so a
  second `effect:` could flip a rule unnoticed);
- YAML aliases are refused (they let a small file expand into a large tree), as are tags outside the core
  schema, and keys that are not strings; the tree is built from the parser's events (libyaml's when it is
  installed), so a refused construct costs nothing beyond reading up to it;
- nesting deeper than MAX_NESTING_DEPTH is refused before it can exhaust the stack, and lists and mappings
  longer than any the schema takes (MAX_LIST_ITEMS, MAX_MAPPING_KEYS) before they are built.

JSON is read by a small position-tracking parser rather than by the YAML loader: JSON is not quite a subset
of YAML 1.1 (escapes such as `\\/`, tabs, long keys), and this way a `.json` file means exactly what JSON
says it means. Each string is matched by JSON's grammar and decoded by `json.loads`.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from secretsvc.policy import limits

Format = Literal["yaml", "json"]


@dataclass(frozen=True, slots=True)
class Scalar:
    line: int
    value: object  # str, int, float, bool or None; YAML may also give a date or bytes, which the schema refuses


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    key_line: int
    value: Node


@dataclass(frozen=True, slots=True)
class Seq:
    line: int
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Map:
    line: int
    entries: tuple[Entry, ...]


Node = Scalar | Seq | Map


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Why the text is not a document: a syntax error, a refused construct, or a limit."""

    line: int
    message: str
    limit: bool = False


class _Refused(Exception):
    def __init__(self, line: int, message: str, *, limit: bool = False) -> None:
        super().__init__(message)
        self.line, self.message, self.limit = line, message, limit


def _depth_refused(line: int) -> _Refused:
    return _Refused(line, f"nested deeper than MAX_NESTING_DEPTH={limits.MAX_NESTING_DEPTH}", limit=True)


def read(data: bytes, fmt: Format) -> Node | Unreadable:
    """The document in `data`, or why there is none."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Unreadable(data[: exc.start].count(b"\n") + 1, "is not UTF-8 text")
    text = text.removeprefix("\ufeff")  # editors on some systems write a byte-order mark
    try:
        return _read_json(text) if fmt == "json" else _read_yaml(text)
    except _Refused as exc:
        return Unreadable(exc.line, exc.message, exc.limit)


# -- YAML ---------------------------------------------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"
_CORE_TAGS = frozenset({
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map",
})


# libyaml when present: the pure-Python scanner takes seconds over a hostile megabyte, libyaml a fraction.
_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = (
    yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader)


class _YamlReader:
    """Builds the tree from the parser's events rather than from composed nodes, so that an alias or a deep
    nesting is refused when the parser reaches it, before anything is built for it."""

    def __init__(self, text: str) -> None:
        # Any: the stubs type the C and Python parsers' events and marks apart, though they behave alike.
        self.loader: Any = _LOADER(text)

    def read(self) -> Node:
        loader = self.loader
        try:
            loader.get_event()  # stream start
            if loader.check_event(yaml.StreamEndEvent):
                raise _Refused(1, "is empty")
            loader.get_event()  # document start
            root = self.node(0)
            loader.get_event()  # document end
            if not loader.check_event(yaml.StreamEndEvent):
                raise _Refused(self.line(), "holds more than one YAML document")
            return root
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            if "nesting depth" in str(exc.problem):  # libyaml's own bound, met while it scans ahead
                raise _depth_refused(line) from None
            raise _Refused(line, f"YAML: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise _Refused(1, f"YAML: {exc}") from None
        finally:
            loader.dispose()

    def line(self) -> int:
        event = self.loader.peek_event()
        return event.start_mark.line + 1 if event is not None and event.start_mark else 1

    def tag(self, event: yaml.NodeEvent, kind: type[yaml.Node], value: str | None) -> str:
        tag = getattr(event, "tag", None)
        if tag is None or tag == "!":
            implicit = getattr(event, "implicit", True)
            tag = self.loader.resolve(kind, value, implicit)
        return str(tag)

    def node(self, depth: int) -> Node:
        event: Any = self.loader.get_event()
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(line, "YAML aliases (*name) are not allowed in policy documents; write the value out")
        if isinstance(event, yaml.ScalarEvent):
            tag = self.tag(event, yaml.ScalarNode, event.value)
            if tag not in _CORE_TAGS:
                raise _Refused(line, f"YAML tag {tag!r} is not allowed in policy documents")
            if tag == _STR:
                return Scalar(line, event.value)
            scalar = yaml.ScalarNode(tag, event.value, None, None, event.style)
            try:
                return Scalar(line, self.loader.construct_object(scalar, deep=True))
            except yaml.YAMLError as exc:
                raise _Refused(line, f"YAML: {exc}") from None
        if depth >= limits.MAX_NESTING_DEPTH:
            raise _depth_refused(line)
        assert isinstance(event, yaml.CollectionStartEvent), event
        kind: type[yaml.Node] = yaml.SequenceNode if isinstance(event, yaml.SequenceStartEvent) else yaml.MappingNode
        tag = self.tag(event, kind, None)
        if tag not in _CORE_TAGS:
            raise _Refused(line, f"YAML tag {tag!r} is not allowed in policy documents")
        if kind is yaml.SequenceNode:
            items: list[Node] = []
            while not self.loader.check_event(yaml.SequenceEndEvent):
                if len(items) == limits.MAX_LIST_ITEMS:
                    raise _Refused(line, f"has a list longer than MAX_LIST_ITEMS={limits.MAX_LIST_ITEMS}", limit=True)
                items.append(self.node(depth + 1))
            self.loader.get_event()
            return Seq(line, tuple(items))
        entries: list[Entry] = []
        seen: dict[str, int] = {}
        while not self.loader.check_event(yaml.MappingEndEvent):
            if len(entries) == limits.MAX_MAPPING_KEYS:
                raise _Refused(line, f"has a mapping with more than MAX_MAPPING_KEYS={limits.MAX_MAPPING_KEYS} keys",
                               limit=True)
            key_event = self.loader.peek_event()
            key_line = key_event.start_mark.line + 1
            if (not isinstance(key_event, yaml.ScalarEvent)
                    or self.tag(key_event, yaml.ScalarNode, key_event.value) != _STR):
                raise _Refused(key_line, "mapping keys must be plain strings (merge keys '<<' are not allowed)")
            self.loader.get_event()
            key = key_event.value
            if key in seen:
                raise _Refused(key_line, f"duplicate key {key!r} (first at line {seen[key]})")
            seen[key] = key_line
            entries.append(Entry(key, key_line, self.node(depth + 1)))
        self.loader.get_event()
        return Map(line, tuple(entries))


def _read_yaml(text: str) -> Node:
    return _YamlReader(text).read()


# -- JSON ---------------------------------------------------------------------------------------------------

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
# A JSON string exactly as RFC 8259 has it; json.loads then decodes the escapes.
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"')
_LITERALS = {"true": True, "false": False, "null": None}


class _JsonReader:
    def __init__(self, text: str) -> None:
        self.text = text
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def skip(self, pos: int) -> int:
        match = _WHITESPACE.match(self.text, pos)
        assert match is not None  # the pattern matches the empty string
        return match.end()

    def fail(self, pos: int, message: str) -> _Refused:
        return _Refused(self.line(pos), f"JSON: {message}")

    def expect(self, pos: int, char: str, what: str) -> int:
        if self.text.startswith(char, pos):
            return pos + 1
        found = repr(self.text[pos]) if pos < len(self.text) else "the end"
        raise self.fail(pos, f"expected {what}, found {found}")

    def value(self, pos: int, depth: int) -> tuple[Node, int]:
        text = self.text
        char = text[pos] if pos < len(text) else ""
        if char in ("{", "["):
            if depth >= limits.MAX_NESTING_DEPTH:
                raise _depth_refused(self.line(pos))
            return self.object(pos, depth + 1) if char == "{" else self.array(pos, depth + 1)
        if char == '"':
            string, end = self.string(pos)
            return Scalar(self.line(pos), string), end
        for word, literal in _LITERALS.items():
            if text.startswith(word, pos):
                return Scalar(self.line(pos), literal), pos + len(word)
        match = _NUMBER.match(text, pos)
        if match:
            number: int | float = float(match.group()) if match.group(1) or match.group(2) else int(match.group())
            return Scalar(self.line(pos), number), match.end()
        raise self.fail(pos, "expected a value, found " + (repr(char) if char else "the end"))

    def string(self, pos: int) -> tuple[str, int]:
        match = _STRING.match(self.text, pos)
        if match is None:
            raise self.fail(pos, "invalid string (unterminated, a control character, or a bad escape)")
        return json.loads(match.group()), match.end()

    def object(self, pos: int, depth: int) -> tuple[Map, int]:
        line = self.line(pos)
        entries: list[Entry] = []
        seen: dict[str, int] = {}
        pos = self.skip(pos + 1)
        if self.text.startswith("}", pos):
            return Map(line, ()), pos + 1
        while True:
            if not self.text.startswith('"', pos):
                raise self.fail(pos, "expected a string key")
            key_line = self.line(pos)
            key, pos = self.string(pos)
            if key in seen:
                raise _Refused(key_line, f"duplicate key {key!r} (first at line {seen[key]})")
            seen[key] = key_line
            if len(entries) == limits.MAX_MAPPING_KEYS:
                raise _Refused(line, f"has a mapping with more than MAX_MAPPING_KEYS={limits.MAX_MAPPING_KEYS} keys",
                               limit=True)
            pos = self.expect(self.skip(pos), ":", "':'")
            value, pos = self.value(self.skip(pos), depth)
            entries.append(Entry(key, key_line, value))
            pos = self.skip(pos)
            if self.text.startswith("}", pos):
                return Map(line, tuple(entries)), pos + 1
            pos = self.skip(self.expect(pos, ",", "',' or '}'"))

    def array(self, pos: int, depth: int) -> tuple[Seq, int]:
        line = self.line(pos)
        items: list[Node] = []
        pos = self.skip(pos + 1)
        if self.text.startswith("]", pos):
            return Seq(line, ()), pos + 1
        while True:
            if len(items) == limits.MAX_LIST_ITEMS:
                raise _Refused(line, f"has a list longer than MAX_LIST_ITEMS={limits.MAX_LIST_ITEMS}", limit=True)
            item, pos = self.value(pos, depth)
            items.append(item)
            pos = self.skip(pos)
            if self.text.startswith("]", pos):
                return Seq(line, tuple(items)), pos + 1
            pos = self.skip(self.expect(pos, ",", "',' or ']'"))


def _read_json(text: str) -> Node:
    reader = _JsonReader(text)
    start = reader.skip(0)
    if start == len(text):
        raise _Refused(1, "is empty")
    node, end = reader.value(start, 0)
    end = reader.skip(end)
    if end != len(text):
        raise reader.fail(end, "extra data after the document")
    return node


def to_python(node: Node) -> object:
    """The plain value a node holds (for tests and for printing)."""
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, Seq):
        return [to_python(item) for item in node.items]
    return {entry.key: to_python(entry.value) for entry in node.entries}
