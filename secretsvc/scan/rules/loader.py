"""Rule files: TOML in, validated `Rule`s out.

The built-in rules are the `data/*.toml` files shipped in the package (core.toml first); users add their
own with `--rules FILE`. The format is documented in docs/scan-rules.md. Every problem is an
`InvalidArgument` that names the file and the rule, and is found when the file is loaded, never as a rule
that silently never fires: unknown keys, a bad id, an unknown validator, detector or generator, a pattern
that does not compile or whose match has no length bound, an example template that cannot be filled.

A pattern rule becomes one `Detector`: its keywords, as one case-insensitive literal alternation (or its
`trigger` regex), go into the shared Hyperscan database; around each hit the patterns run over a window as
wide as the longest match they allow (plus `context_bytes` when the rule needs context), and each match's
secret span must pass the rule's length, entropy, validator, allow and context checks.
"""

from __future__ import annotations

import functools
import math
import re

# The width of a pattern's longest match sizes its window; `re` has no public API for it.
import re._parser as re_parser  # type: ignore[import-not-found]
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from secretsvc.boundedio import read_bounded
from secretsvc.errors import InvalidArgument
from secretsvc.scan.model import Severity
from secretsvc.scan.rules import examples as example_templates
from secretsvc.scan.rules import filters, registry
from secretsvc.scan.rules.model import Check, Confirmer, Detector, Rule, RuleInfo, regex_confirmer

PRIORITIES = {"generic": 0, "jwt": 1, "place": 2, "format": 3, "context": 4}
KNOWN_KEYS = frozenset({
    "id", "family", "severity", "description", "keywords", "trigger", "pattern", "patterns", "caseless",
    "min_length", "max_length", "min_entropy", "validator", "allow", "context", "context_bytes", "priority",
    "detector", "examples",
})  # fmt: skip
EXAMPLE_KEYS = frozenset({"positive", "negative"})
ID_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_ID_CHARS = 64
MAX_TEXT_CHARS = 200  # family, description
MAX_RULE_FILE_BYTES = 4 << 20
MAX_RULES_PER_FILE = 5000
MAX_LIST_ITEMS = 64  # keywords, patterns, allow, context, examples of one rule
MAX_PATTERN_CHARS = 4096
MAX_PATTERN_WIDTH = 65536  # the longest match a pattern may allow: it sizes the window read around a hit
DEFAULT_MAX_LENGTH = 4096
DEFAULT_CONTEXT_BYTES = 256
MAX_CONTEXT_BYTES = 8192
# A keyword need not be part of the match (a vendor's name in the variable a token is assigned to): the
# window around a keyword hit reaches this far beyond the longest match, so `ACME_PROD_API_KEY = "..."`
# is found from the keyword `acme`.
KEYWORD_REACH = 64
MIN_KEYWORD_CHARS = 2
MAX_KEYWORD_CHARS = 64
BUILTIN_PACKAGE = "secretsvc.scan.rules.data"
CORE_FILE = "core.toml"


@dataclass(frozen=True, slots=True)
class Examples:
    positive: tuple[str, ...]
    negative: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoadedRule:
    rule: Rule
    examples: Examples


def builtin_rules() -> tuple[LoadedRule, ...]:
    """Every rule shipped in the package; loaded and checked once per process."""
    return _builtin_rules()


@functools.cache
def _builtin_rules() -> tuple[LoadedRule, ...]:
    files = sorted(
        (f for f in resources.files(BUILTIN_PACKAGE).iterdir() if f.name.endswith(".toml")),
        key=lambda f: (f.name != CORE_FILE, f.name),
    )
    loaded: list[LoadedRule] = []
    for f in files:
        loaded += parse_rules(f.read_text(encoding="utf-8"), f.name)
    check_unique(loaded)
    return tuple(loaded)


def load_file(path: Path) -> list[LoadedRule]:
    """A user's rule file, read with a size bound."""
    raw = read_bounded(path, MAX_RULE_FILE_BYTES, what="the rule file", limit_name="MAX_RULE_FILE_BYTES",
                       error=InvalidArgument)  # fmt: skip
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument(f"{path}: not UTF-8 text") from None
    return parse_rules(text, str(path))


def check_unique(rules: Iterable[LoadedRule]) -> None:
    seen: dict[str, str] = {}
    for loaded in rules:
        info = loaded.rule.info
        if info.rule_id in seen:
            raise InvalidArgument(f"{info.source}: rule {info.rule_id}: the id is already used in {seen[info.rule_id]}")
        seen[info.rule_id] = info.source


def parse_rules(text: str, source: str) -> list[LoadedRule]:
    """The rules of one TOML document; `source` names it in errors and in each rule's info."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument(f"{source}: not valid TOML: {exc}") from None
    unknown = set(doc) - {"rule"}
    if unknown:
        raise InvalidArgument(f"{source}: unknown top-level key(s) {_names(unknown)}: rules go in [[rule]] tables")
    items = doc.get("rule", [])
    if not isinstance(items, list) or not items:
        raise InvalidArgument(f"{source}: no [[rule]] tables")
    if len(items) > MAX_RULES_PER_FILE:
        raise InvalidArgument(f"{source}: more than {MAX_RULES_PER_FILE} rules in one file")
    loaded = [_RuleReader(source, index, item).read() for index, item in enumerate(items)]
    check_unique(loaded)
    return loaded


def _names(keys: Iterable[str]) -> str:
    return ", ".join(repr(k) for k in sorted(keys))


def keyword_trigger(keywords: Sequence[str]) -> str:
    """One alternation of literal keywords, in the syntax Hyperscan and Python `re` share: every byte that
    is not a letter or digit is written as `\\xHH`, so no keyword can mean anything but itself."""
    parts = []
    for keyword in keywords:
        parts.append("".join(chr(b) if chr(b).isalnum() and b < 0x80 else f"\\x{b:02x}" for b in keyword.encode()))
    return "(?:" + "|".join(parts) + ")"


class _RuleReader:
    """Reads one [[rule]] table; every error names the file and the rule."""

    def __init__(self, source: str, index: int, table: Any) -> None:
        self.source = source
        self.where = f"{source}: rule #{index + 1}"
        if not isinstance(table, dict):
            raise InvalidArgument(f"{self.where}: a rule must be a table")
        self.table: dict[str, Any] = table

    def fail(self, message: str) -> InvalidArgument:
        return InvalidArgument(f"{self.where}: {message}")

    def read(self) -> LoadedRule:
        table = self.table
        rule_id = self.text("id", MAX_ID_CHARS)
        if not ID_PATTERN.fullmatch(rule_id):
            raise self.fail("id must be lower-case words of letters and digits joined by '-' (e.g. acme-api-key)")
        self.where = f"{self.source}: rule {rule_id}"
        unknown = set(table) - KNOWN_KEYS
        if unknown:
            raise self.fail(f"unknown key(s) {_names(unknown)} (known: {', '.join(sorted(KNOWN_KEYS))})")
        try:
            severity = Severity.parse(self.text("severity", 16))
        except ValueError as exc:
            raise self.fail(str(exc)) from None
        priority_name = self.text("priority", 16, default="format")
        if priority_name not in PRIORITIES:
            raise self.fail(f"priority must be one of {', '.join(PRIORITIES)}")
        keywords = self.keywords()
        info = RuleInfo(rule_id, severity, self.text("description", MAX_TEXT_CHARS), tuple(keywords),
                        family=self.text("family", MAX_TEXT_CHARS), source=self.source)  # fmt: skip
        detectors = self.named_detector() if "detector" in table else (self.pattern_detector(keywords),)
        return LoadedRule(Rule(info, detectors, priority=PRIORITIES[priority_name]), self.examples())

    # -- fields --------------------------------------------------------------------------------------

    def text(self, key: str, limit: int, *, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if value is None:
            raise self.fail(f"{key!r} is required")
        if not isinstance(value, str) or not value.strip() or len(value) > limit or "\n" in value:
            raise self.fail(f"{key!r} must be one non-empty line of at most {limit} characters")
        return value

    def strings(self, key: str, *, limit: int, required: bool = False) -> list[str]:
        value = self.table.get(key)
        if value is None:
            if required:
                raise self.fail(f"{key!r} is required")
            return []
        if isinstance(value, str):
            value = [value]
        if value == [] and not required:
            return []
        if not isinstance(value, list) or not value or len(value) > MAX_LIST_ITEMS:
            raise self.fail(f"{key!r} must be a list of 1 to {MAX_LIST_ITEMS} strings")
        for item in value:
            if not isinstance(item, str) or not item or len(item) > limit:
                raise self.fail(f"{key!r} must hold non-empty strings of at most {limit} characters")
        return value

    def number(self, key: str, lo: float, hi: float, *, integer: bool = True) -> float | None:
        value = self.table.get(key)
        if value is None:
            return None
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if not ok or isinstance(value, bool) or not lo <= value <= hi or not math.isfinite(value):
            kind = "a whole number" if integer else "a number"
            raise self.fail(f"{key!r} must be {kind} from {lo:g} to {hi:g}")
        return float(value)

    def keywords(self) -> list[str]:
        keywords = self.strings("keywords", limit=MAX_KEYWORD_CHARS, required="detector" not in self.table)
        for keyword in keywords:
            if len(keyword) < MIN_KEYWORD_CHARS:
                raise self.fail(f"keyword {keyword!r} is shorter than {MIN_KEYWORD_CHARS} characters")
            if len(keyword) > 2 and len(set(keyword.lower())) == 1 and "trigger" not in self.table:
                # A run of one character (base64 of zero bytes) would hit at every position of a long run.
                raise self.fail(f"keyword {keyword!r} repeats one character: add a 'trigger' that ends with the run")
        return keywords

    def compile(self, key: str, pattern: str, flags: int = 0) -> re.Pattern[bytes]:
        try:
            return re.compile(pattern.encode(), flags)
        except (re.error, UnicodeEncodeError) as exc:
            raise self.fail(f"{key} {pattern!r} does not compile: {exc}") from None

    # -- detectors -----------------------------------------------------------------------------------

    def named_detector(self) -> tuple[Detector, ...]:
        clash = {"pattern", "patterns", "trigger", "min_length", "max_length", "min_entropy", "validator",
                 "allow", "context", "context_bytes", "caseless"} & set(self.table)  # fmt: skip
        if clash:
            raise self.fail(f"a rule with a detector sets its checks in Python; remove {_names(clash)}")
        registry.load_builtins()
        name = self.text("detector", MAX_ID_CHARS)
        factory = registry.DETECTORS.get(name)
        if factory is None:
            raise self.fail(f"unknown detector {name!r} (known: {', '.join(sorted(registry.DETECTORS))})")
        return factory()

    def pattern_detector(self, keywords: list[str]) -> Detector:
        table = self.table
        if ("pattern" in table) == ("patterns" in table):
            raise self.fail("set exactly one of 'pattern' and 'patterns'")
        sources = self.strings("pattern" if "pattern" in table else "patterns", limit=MAX_PATTERN_CHARS, required=True)
        caseless = table.get("caseless", False)
        if not isinstance(caseless, bool):
            raise self.fail("'caseless' must be true or false")
        flags = re.IGNORECASE if caseless else 0
        width = 0
        compiled = []
        for source in sources:
            pattern = self.compile("pattern", source, flags)
            widest = re_parser.parse(source.encode(), flags).getwidth()[1]
            if widest > MAX_PATTERN_WIDTH:
                raise self.fail(f"pattern {source!r} has no length bound of at most {MAX_PATTERN_WIDTH} characters: "
                                "bound every repetition ({m,n}, not * or +)")  # fmt: skip
            width = max(width, widest)
            compiled.append(pattern)
        checks, context_bytes = self.checks()
        reach = width + context_bytes + KEYWORD_REACH
        trigger = table.get("trigger")
        if trigger is None:
            trigger = keyword_trigger(keywords)
        elif not isinstance(trigger, str) or not trigger or len(trigger) > MAX_PATTERN_CHARS:
            raise self.fail("'trigger' must be a regular expression of at most 4096 characters")
        else:
            self.compile("trigger", trigger)
        confirmers = [
            regex_confirmer(p, *checks, group="secret" if "secret" in p.groupindex else 0, max_extent=width)
            for p in compiled
        ]
        confirm = confirmers[0] if len(confirmers) == 1 else _chain(confirmers)
        return Detector(trigger, confirm, back=reach, forward=reach, caseless="trigger" not in table)

    def checks(self) -> tuple[list[Check], int]:
        """The rule's checks on a secret span, cheapest first, and how far its context reaches."""
        table = self.table
        min_length = int(self.number("min_length", 1, MAX_PATTERN_WIDTH) or 1)
        max_length = int(self.number("max_length", 1, MAX_PATTERN_WIDTH) or DEFAULT_MAX_LENGTH)
        if min_length > max_length:
            raise self.fail("min_length is larger than max_length")
        checks: list[Check] = [lambda data, s, e: min_length <= e - s <= max_length]
        min_entropy = self.number("min_entropy", 0, 8, integer=False)
        if min_entropy:
            checks.append(lambda data, s, e: filters.shannon_entropy(data[s:e]) >= min_entropy)
        if "validator" in table:
            registry.load_builtins()
            name = self.text("validator", MAX_ID_CHARS)
            valid = registry.VALIDATORS.get(name)
            if valid is None:
                raise self.fail(f"unknown validator {name!r} (known: {', '.join(sorted(registry.VALIDATORS))})")
            checks.append(lambda data, s, e: valid(data[s:e]))
        allow = [self.compile("allow", a) for a in self.strings("allow", limit=MAX_PATTERN_CHARS)]
        if allow:
            # On the secret alone: search(data, s, e) would not let `^` match at s.
            checks.append(lambda data, s, e: not any(a.search(data[s:e]) for a in allow))
        checks.append(lambda data, s, e: not filters.is_documented_example(data[s:e]))
        context_bytes = 0
        context = [c.lower().encode() for c in self.strings("context", limit=MAX_KEYWORD_CHARS)]
        if context:
            context_bytes = int(self.number("context_bytes", 1, MAX_CONTEXT_BYTES) or DEFAULT_CONTEXT_BYTES)
            checks.append(_context_check(context, context_bytes))
        elif "context_bytes" in table:
            raise self.fail("'context_bytes' without 'context'")
        return checks, context_bytes

    def examples(self) -> Examples:
        examples = self.table.get("examples")
        if not isinstance(examples, dict):
            raise self.fail("[rule.examples] with 'positive' and 'negative' lists is required")
        unknown = set(examples) - EXAMPLE_KEYS
        if unknown:
            raise self.fail(f"unknown key(s) in examples: {_names(unknown)}")
        out: dict[str, tuple[str, ...]] = {}
        for key in ("positive", "negative"):
            items = examples.get(key)
            if not isinstance(items, list) or not items or len(items) > MAX_LIST_ITEMS:
                raise self.fail(f"examples.{key} must be a list of 1 to {MAX_LIST_ITEMS} templates")
            for item in items:
                if not isinstance(item, str) or not item:
                    raise self.fail(f"examples.{key} must hold non-empty strings")
                try:
                    example_templates.check_template(item)
                except InvalidArgument as exc:
                    raise self.fail(f"examples.{key}: {exc}") from None
            out[key] = tuple(items)
        return Examples(out["positive"], out["negative"])


def _chain(confirmers: Sequence[Confirmer]) -> Confirmer:
    def confirm(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
        for c in confirmers:
            yield from c(data, start, end)

    return confirm


def _context_check(words: Sequence[bytes], reach: int) -> Check:
    def check(data: bytes, s: int, e: int) -> bool:
        near = data[max(0, s - reach) : e + reach].lower()
        return any(w in near for w in words)

    return check
