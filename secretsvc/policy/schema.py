"""The policy document schema, version 1: a node tree -> a `Document`, or every problem found, each at its line.

    version: 1                           # required
    policies:                            # optional, but not empty when present
      - name: payments-app               # letters, digits, . _ - ; unique across all documents
        description: "..."               # optional
        rules:                           # required, not empty
          - paths: ["payments/**"]       # exactly one of paths (secrets, NAMESPACE/PATH), keys (transit keys)
            capabilities: [read, list]   #   or system (server-wide, e.g. tokens); not empty
            effect: allow                # required: allow or deny
    bindings:                            # optional, but not empty when present
      - identity: {kind: mtls-uri, pattern: "spiffe://cluster.local/ns/payments/sa/*"}
        policies: [payments-app]         # required, not empty; each defined in some document
        unsafe_match_all: false          # required (true) when the pattern is wildcards alone

Unknown keys, wrong types, empty lists, duplicates within a list, unknown or inapplicable capabilities and
patterns that could never match are refused. Problems that need every document at once (a policy name
defined twice, a binding to an undefined policy) are found by the loader.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TypeVar

from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.policy import glob, limits
from secretsvc.policy.model import (
    APPLICABLE,
    SELECTOR_KEYS,
    SYSTEM_RESOURCES,
    At,
    Binding,
    Capability,
    Document,
    Effect,
    IdentityKind,
    Location,
    Policy,
    Problem,
    ResourceKind,
    Rule,
)
from secretsvc.policy.nodes import Map, Node, Scalar, Seq

VERSION = 1

RESOURCE_SYNTAX: dict[ResourceKind, glob.Syntax] = {
    ResourceKind.SECRET: glob.SECRET,
    ResourceKind.TRANSIT_KEY: glob.TRANSIT_KEY,
    ResourceKind.SYSTEM: glob.SYSTEM,
}
IDENTITY_SYNTAX: dict[IdentityKind, glob.Syntax] = {
    IdentityKind.TOKEN: glob.TOKEN,
    IdentityKind.SERVICEACCOUNT: glob.SERVICEACCOUNT,
    IdentityKind.MTLS_URI: glob.MTLS_URI,
    IdentityKind.MTLS_DNS: glob.MTLS_DNS,
    IdentityKind.MTLS_SUBJECT: glob.MTLS_SUBJECT,
}

_POLICY_NAME = re.compile(r"[A-Za-z0-9._-]+")
_DOCUMENT_KEYS = ("version", "policies", "bindings")
_POLICY_KEYS = ("name", "description", "rules")
_RULE_KEYS = (*SELECTOR_KEYS, "capabilities", "effect", "description")
_BINDING_KEYS = ("identity", "policies", "unsafe_match_all", "description")
_IDENTITY_KEYS = ("kind", "pattern")

T = TypeVar("T")


def _type_name(node: Node) -> str:
    if isinstance(node, Map):
        return "a mapping"
    if isinstance(node, Seq):
        return "a list"
    value = node.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__


def check_policy_name(name: str) -> str:
    """`name` if it can be a policy name (the rule of service.naming.check_policy_name), else the error."""
    if len(name) > limits.MAX_POLICY_NAME_CHARS:
        raise LimitExceeded(f"policy name is longer than MAX_POLICY_NAME_CHARS={limits.MAX_POLICY_NAME_CHARS}")
    if not _POLICY_NAME.fullmatch(name) or name in {".", ".."}:
        raise InvalidArgument(f"policy name {name[:64]!r} may only contain letters, digits, '.', '_', '-'")
    return name


def _valid_name(name: str) -> bool:
    try:
        check_policy_name(name)
    except InvalidArgument:
        return False
    return True


def _plain_name(node: Node) -> str | None:
    """The policy's name if it has a valid one, without reporting anything."""
    if isinstance(node, Map):
        for entry in node.entries:
            value = entry.value
            if (entry.key == "name" and isinstance(value, Scalar) and isinstance(value.value, str)
                    and _valid_name(value.value)):
                return value.value
    return None


class _Reader:
    """Walks one document's tree, collecting problems instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def at(self, line: int) -> Location:
        return Location(self.source, line)

    def problem(self, line: int, where: str, message: str, *, limit: bool = False) -> None:
        self.problems.append(Problem(self.at(line), where, message, limit))

    # -- shapes ---------------------------------------------------------------------------------------------

    def mapping(self, node: Node, where: str, allowed: tuple[str, ...]) -> dict[str, tuple[int, Node]] | None:
        if not isinstance(node, Map):
            self.problem(node.line, where, f"must be a mapping, not {_type_name(node)}")
            return None
        fields: dict[str, tuple[int, Node]] = {}
        for entry in node.entries:
            if entry.key not in allowed:
                self.problem(entry.key_line, where, f"unknown key {entry.key[:64]!r}; allowed: {', '.join(allowed)}")
            else:
                fields[entry.key] = (entry.key_line, entry.value)
        return fields

    def string(self, node: Node, where: str, *, max_chars: int | None = None, limit_name: str = "") -> At | None:
        if not isinstance(node, Scalar) or not isinstance(node.value, str):
            hint = "; quote it" if isinstance(node, Scalar) and node.value is not None else ""
            self.problem(node.line, where, f"must be a string, not {_type_name(node)}{hint}")
            return None
        if max_chars is not None and len(node.value) > max_chars:
            self.problem(node.line, where, f"is longer than {limit_name}={max_chars}", limit=True)
            return None
        return At(node.value, node.line)

    def items(self, node: Node, where: str, max_items: int, limit_name: str) -> Iterator[tuple[int, Node]]:
        """The items of a list that must not be empty: an empty list is a mistake (a policy that grants
        nothing, a rule for no paths, a binding to no policies), never a useful way to say nothing."""
        if not isinstance(node, Seq):
            self.problem(node.line, where, f"must be a list, not {_type_name(node)}")
            return
        if not node.items:
            self.problem(node.line, where, "is an empty list; list at least one item (or leave out an optional key)")
            return
        if len(node.items) > max_items:
            self.problem(node.line, where, f"has more than {limit_name}={max_items} items", limit=True)
            return
        yield from enumerate(node.items)

    def strings(self, node: Node, where: str, max_items: int, limit_name: str,
                check: Callable[[At, str], T | None]) -> list[T]:
        """A non-empty list of distinct strings, each passed through `check` (None: it reported a problem)."""
        out: list[T] = []
        seen: dict[str, int] = {}
        for index, item in self.items(node, where, max_items, limit_name):
            item_where = f"{where}[{index}]"
            text = self.string(item, item_where)
            if text is None:
                continue
            if text.value in seen:
                self.problem(text.line, item_where, f"{text.value[:64]!r} is listed twice (first at line "
                                                    f"{seen[text.value]})")
                continue
            seen[text.value] = text.line
            checked = check(text, item_where)
            if checked is not None:
                out.append(checked)
        return out

    def description(self, fields: dict[str, tuple[int, Node]], where: str) -> str:
        if "description" not in fields:
            return ""
        text = self.string(fields["description"][1], f"{where}.description",
                           max_chars=limits.MAX_DESCRIPTION_CHARS, limit_name="MAX_DESCRIPTION_CHARS")
        return "" if text is None else text.value

    def policy_name(self, text: At, where: str) -> At | None:
        try:
            check_policy_name(text.value)
        except LimitExceeded as exc:
            self.problem(text.line, where, str(exc), limit=True)
        except InvalidArgument as exc:
            self.problem(text.line, where, str(exc))
        else:
            return text
        return None

    def pattern(self, text: At, where: str, syntax: glob.Syntax) -> glob.Glob | None:
        try:
            return glob.compile_glob(text.value, syntax)
        except LimitExceeded as exc:
            self.problem(text.line, where, str(exc), limit=True)
        except InvalidArgument as exc:
            self.problem(text.line, where, f"{text.value[:64]!r}: {exc}")
        return None

    # -- the document ---------------------------------------------------------------------------------------

    def document(self, node: Node) -> Document | None:
        fields = self.mapping(node, "document", _DOCUMENT_KEYS)
        if fields is None:
            return None
        version = self.version(fields, node.line)
        policies: list[Policy] = []
        bindings: list[Binding] = []
        if "policies" in fields:
            for index, item in self.items(fields["policies"][1], "policies", limits.MAX_POLICIES, "MAX_POLICIES"):
                policy = self.policy(item, index)
                if policy is not None:
                    policies.append(policy)
        if "bindings" in fields:
            for index, item in self.items(fields["bindings"][1], "bindings", limits.MAX_BINDINGS, "MAX_BINDINGS"):
                binding = self.binding(item, index)
                if binding is not None:
                    bindings.append(binding)
        if "policies" not in fields and "bindings" not in fields:
            self.problem(node.line, "document", "defines no policies and no bindings")
        if self.problems or version is None:
            return None
        return Document(self.source, version, tuple(policies), tuple(bindings))

    def version(self, fields: dict[str, tuple[int, Node]], line: int) -> int | None:
        if "version" not in fields:
            self.problem(line, "version", f"is missing; write `version: {VERSION}`")
            return None
        node = fields["version"][1]
        if not isinstance(node, Scalar) or node.value != VERSION or isinstance(node.value, bool | float):
            self.problem(node.line, "version", f"must be {VERSION} (the only version this server reads)")
            return None
        return VERSION

    def policy(self, node: Node, index: int) -> Policy | None:
        where = f"policies[{index}]"
        # Problems anywhere in a policy name it, so they can be found in a file of many policies.
        named = _plain_name(node)
        fields = self.mapping(node, f"{where} ({named})" if named else where, _POLICY_KEYS)
        if fields is None:
            return None
        before = len(self.problems)
        name = None
        if "name" not in fields:
            self.problem(node.line, where, "has no name")
        else:
            name = self.string(fields["name"][1], f"{where}.name")
            if name is not None:
                name = self.policy_name(name, f"{where}.name")
        if name is not None:
            where = f"{where} ({name.value})"
        description = self.description(fields, where)
        rules: list[Rule] = []
        if "rules" not in fields:
            self.problem(node.line, where, "has no rules; a policy that grants nothing is a mistake")
        else:
            for rule_index, item in self.items(fields["rules"][1], f"{where}.rules", limits.MAX_RULES_PER_POLICY,
                                               "MAX_RULES_PER_POLICY"):
                rule = self.rule(item, rule_index, f"{where}.rules[{rule_index}]")
                if rule is not None:
                    rules.append(rule)
        if name is None or len(self.problems) > before:
            return None
        return Policy(name.value, tuple(rules), self.at(node.line), description)

    def rule(self, node: Node, index: int, where: str) -> Rule | None:
        fields = self.mapping(node, where, _RULE_KEYS)
        if fields is None:
            return None
        before = len(self.problems)
        selectors = [key for key in SELECTOR_KEYS if key in fields]
        kind = None
        patterns: list[At] = []
        if len(selectors) != 1:
            found = ", ".join(selectors) if selectors else "none"
            self.problem(node.line, where, f"needs exactly one of {', '.join(SELECTOR_KEYS)} (found: {found})")
        else:
            key = selectors[0]
            kind = SELECTOR_KEYS[key]
            syntax = RESOURCE_SYNTAX[kind]

            def check(text: At, item_where: str) -> At | None:
                compiled = self.pattern(text, item_where, syntax)
                if compiled is None:
                    return None
                if kind is ResourceKind.SYSTEM and "*" not in text.value and text.value not in SYSTEM_RESOURCES:
                    self.problem(text.line, item_where, f"unknown system resource {text.value[:64]!r}; known: "
                                                        f"{', '.join(SYSTEM_RESOURCES)} (or a pattern such as '*')")
                    return None
                return text

            patterns = self.strings(fields[key][1], f"{where}.{key}", limits.MAX_PATTERNS_PER_RULE,
                                    "MAX_PATTERNS_PER_RULE", check)
        capabilities: list[Capability] = []
        if "capabilities" not in fields:
            self.problem(node.line, where, "has no capabilities")
        else:
            def capability(text: At, item_where: str) -> Capability | None:
                try:
                    value = Capability(text.value)
                except ValueError:
                    self.problem(text.line, item_where, f"unknown capability {text.value[:64]!r}; known: "
                                                        f"{', '.join(Capability)}")
                    return None
                if kind is not None and value not in APPLICABLE[kind]:
                    applicable = ", ".join(c for c in Capability if c in APPLICABLE[kind])
                    self.problem(text.line, item_where, f"capability {value.value!r} means nothing for "
                                                        f"{selectors[0]}; it applies to: {applicable}")
                    return None
                return value

            capabilities = self.strings(fields["capabilities"][1], f"{where}.capabilities", len(Capability),
                                        "the number of capabilities", capability)
        effect = None
        if "effect" not in fields:
            self.problem(node.line, where, "has no effect; write `effect: allow` or `effect: deny`")
        else:
            text = self.string(fields["effect"][1], f"{where}.effect")
            if text is not None:
                try:
                    effect = Effect(text.value)
                except ValueError:
                    self.problem(text.line, f"{where}.effect", f"must be allow or deny, not {text.value[:64]!r}")
        self.description(fields, where)
        if kind is None or effect is None or len(self.problems) > before:
            return None
        return Rule(index, kind, tuple(patterns), frozenset(capabilities), effect, self.at(node.line))

    def binding(self, node: Node, index: int) -> Binding | None:
        where = f"bindings[{index}]"
        fields = self.mapping(node, where, _BINDING_KEYS)
        if fields is None:
            return None
        before = len(self.problems)
        kind = pattern = compiled = None
        if "identity" not in fields:
            self.problem(node.line, where, "has no identity")
        else:
            kind, pattern, compiled = self.identity(fields["identity"][1], f"{where}.identity")
        policies: list[At] = []
        if "policies" not in fields:
            self.problem(node.line, where, "has no policies")
        else:
            policies = self.strings(fields["policies"][1], f"{where}.policies", limits.MAX_POLICIES_PER_BINDING,
                                    "MAX_POLICIES_PER_BINDING", self.policy_name)
        unsafe = False
        if "unsafe_match_all" in fields:
            flag = fields["unsafe_match_all"][1]
            if not isinstance(flag, Scalar) or not isinstance(flag.value, bool):
                self.problem(flag.line, f"{where}.unsafe_match_all", f"must be true or false, not {_type_name(flag)}")
            else:
                unsafe = flag.value
        if compiled is not None and pattern is not None:
            if compiled.literal_free and not unsafe:
                self.problem(pattern.line, f"{where}.identity.pattern",
                             f"{pattern.value!r} matches every {kind} identity; if that is meant, add "
                             "`unsafe_match_all: true` to the binding")
            elif unsafe and not compiled.literal_free:
                self.problem(fields["unsafe_match_all"][0], f"{where}.unsafe_match_all",
                             "is only for a pattern of wildcards alone; this pattern does not match everything")
        description = self.description(fields, where)
        if kind is None or pattern is None or len(self.problems) > before:
            return None
        return Binding(index, kind, pattern, tuple(policies), self.at(node.line), unsafe, description)

    def identity(self, node: Node, where: str) -> tuple[IdentityKind | None, At | None, glob.Glob | None]:
        fields = self.mapping(node, where, _IDENTITY_KEYS)
        if fields is None:
            return None, None, None
        kind = None
        if "kind" not in fields:
            self.problem(node.line, where, f"has no kind; one of {', '.join(IdentityKind)}")
        else:
            text = self.string(fields["kind"][1], f"{where}.kind")
            if text is not None:
                try:
                    kind = IdentityKind(text.value)
                except ValueError:
                    self.problem(text.line, f"{where}.kind", f"unknown identity kind {text.value[:64]!r}; known: "
                                                             f"{', '.join(IdentityKind)}")
        if "pattern" not in fields:
            self.problem(node.line, where, "has no pattern")
            return kind, None, None
        pattern = self.string(fields["pattern"][1], f"{where}.pattern")
        if pattern is None or kind is None:
            return kind, pattern, None
        compiled = self.pattern(pattern, f"{where}.pattern", IDENTITY_SYNTAX[kind])
        return kind, pattern, compiled


def read_document(node: Node, source: str) -> Document | list[Problem]:
    """The document the tree holds, or every problem found in it (each naming `source` and a line)."""
    reader = _Reader(source)
    document = reader.document(node)
    if document is None:
        problems = reader.problems or [Problem(Location(source, node.line), "document", "is not a policy document")]
        problems.sort(key=lambda p: p.location.line)  # stable: same-line problems keep their order
        if len(problems) > limits.MAX_PROBLEMS_PER_DOCUMENT:
            more = len(problems) - limits.MAX_PROBLEMS_PER_DOCUMENT
            problems = [*problems[:limits.MAX_PROBLEMS_PER_DOCUMENT],
                        Problem(Location(source, 0), "", f"and {more} more problems (MAX_PROBLEMS_PER_DOCUMENT="
                                                         f"{limits.MAX_PROBLEMS_PER_DOCUMENT} are shown)")]
        return problems
    return document
