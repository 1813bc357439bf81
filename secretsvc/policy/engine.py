"""The policy set: who holds which policies, and whether a rule in them allows a capability on a resource.

Evaluation, for a caller, a resource and a capability:

1. The caller's policies: those it carries itself (a token made with --policy) and those of every binding
   whose identity pattern matches it. Names no document defines grant nothing.
2. The rules of those policies that name the capability and match the resource.
3. Any matching deny rule: denied. Else any matching allow rule: allowed. Else denied (deny by default).
   Specificity plays no part: `payments/db` allowed does not beat `payments/**` denied.

Speed: a caller's policies are resolved once and remembered (bounded); the rules of each distinct set of
policies are compiled once into an index per kind of resource, a trie keyed by the literal segments that
begin each pattern (`payments/db/*` sits under payments -> db), with each node's rules grouped by capability
and effect, and within those by their literal last segment (`**/password`) or by the literal start of their
first wildcard segment (`team-*`). A decision walks the resource's segments down the trie and tests only the
rules on that walk that name the capability and whose keys fit the resource, however many rules there are
elsewhere.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from secretsvc.auth.principal import Principal
from secretsvc.errors import InvalidArgument
from secretsvc.policy import builtin, glob, limits, nodes, schema
from secretsvc.policy.link import link
from secretsvc.policy.model import (
    Binding,
    Capability,
    Decision,
    Document,
    Effect,
    Grant,
    IdentityKind,
    Policy,
    Resource,
    ResourceKind,
    RuleRef,
)

_CAPABILITIES = frozenset(c.value for c in Capability)
_SEPARATORS = {kind.value: syntax.separator for kind, syntax in schema.RESOURCE_SYNTAX.items()}
_MTLS_KINDS = {"uri": IdentityKind.MTLS_URI, "dns": IdentityKind.MTLS_DNS, "subject": IdentityKind.MTLS_SUBJECT}


def builtin_document() -> Document:
    node = nodes.read(builtin.TEXT, "yaml")
    assert not isinstance(node, nodes.Unreadable), node
    document = schema.read_document(node, builtin.SOURCE)
    assert isinstance(document, Document), document
    return document


class _Entry:
    __slots__ = ("glob", "ref")

    def __init__(self, compiled: glob.Glob, ref: RuleRef) -> None:
        self.glob = compiled
        self.ref = ref


class _Bucket:
    """The rules of one trie node for one capability and effect. Keyed again, to test fewer of them: by a
    literal last segment (`**/password`), else by the literal start of the segment after the node's
    (`team-` in `team-*`), else kept in a list that every walk through the node tests."""

    __slots__ = ("by_last", "by_lead", "lead_lengths", "other")

    def __init__(self) -> None:
        self.by_last: dict[str, list[_Entry]] = {}
        self.by_lead: dict[str, list[_Entry]] = {}
        self.lead_lengths: list[int] = []
        self.other: list[_Entry] = []

    def add(self, entry: _Entry) -> None:
        compiled = entry.glob
        if compiled.last is not None:
            self.by_last.setdefault(compiled.last, []).append(entry)
        elif compiled.lead:
            self.by_lead.setdefault(compiled.lead, []).append(entry)
            if len(compiled.lead) not in self.lead_lengths:
                bisect.insort(self.lead_lengths, len(compiled.lead))
        else:
            self.other.append(entry)

    def first_match(self, segments: Sequence[str], depth: int) -> _Entry | None:
        for entry in self.by_last.get(segments[-1], ()) if segments else ():
            if entry.glob.match_from(segments, depth):
                return entry
        if self.lead_lengths and depth < len(segments):
            segment = segments[depth]
            for length in self.lead_lengths:
                if length > len(segment):
                    break
                for entry in self.by_lead.get(segment[:length], ()):
                    if entry.glob.match_from(segments, depth):
                        return entry
        for entry in self.other:
            if entry.glob.match_from(segments, depth):
                return entry
        return None


class _Node:
    __slots__ = ("allow", "children", "deny")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.allow: dict[str, _Bucket] = {}  # capability -> rules
        self.deny: dict[str, _Bucket] = {}


class _Index:
    """The rules for one kind of resource, in a trie over the literal segments their patterns start with."""

    __slots__ = ("root",)

    def __init__(self) -> None:
        self.root = _Node()

    def add(self, compiled: glob.Glob, ref: RuleRef) -> None:
        node = self.root
        for segment in compiled.prefix:
            node = node.children.setdefault(segment, _Node())
        by_capability = node.deny if ref.rule.effect is Effect.DENY else node.allow
        for capability in ref.rule.capabilities:
            by_capability.setdefault(capability.value, _Bucket()).add(_Entry(compiled, ref))

    def evaluate(self, segments: Sequence[str], capability: str) -> tuple[bool, _Entry | None]:
        """(allowed, the deciding entry): the first matching deny, else the most specific matching allow."""
        node = self.root
        path = [node]
        for segment in segments:
            child = node.children.get(segment)
            if child is None:
                break
            node = child
            path.append(node)
        allowed: _Entry | None = None
        for depth in range(len(path) - 1, -1, -1):
            node = path[depth]
            denies = node.deny.get(capability)
            if denies is not None:
                denied = denies.first_match(segments, depth)
                if denied is not None:
                    return False, denied
            if allowed is None:
                allows = node.allow.get(capability)
                if allows is not None:
                    allowed = allows.first_match(segments, depth)
        return allowed is not None, allowed


@dataclass(frozen=True, slots=True)
class _Caller:
    grants: tuple[Grant, ...]
    by_policy: dict[str, Grant]
    indexes: dict[str, _Index]  # resource kind -> index of the rules of the policies held


@dataclass(frozen=True, slots=True)
class _CompiledBinding:
    order: int  # load order, so a caller's grants list bindings as the documents do
    binding: Binding
    glob: glob.Glob


class _BindingIndex:
    """The bindings of one identity kind, keyed by the literal segments their patterns start with."""

    __slots__ = ("_by_prefix", "_lengths", "_syntax")

    def __init__(self, syntax: glob.Syntax, items: Sequence[_CompiledBinding]) -> None:
        self._syntax = syntax
        self._by_prefix: dict[tuple[str, ...], list[_CompiledBinding]] = {}
        for item in items:
            self._by_prefix.setdefault(item.glob.prefix, []).append(item)
        self._lengths = sorted({len(prefix) for prefix in self._by_prefix})

    def matching(self, name: str) -> list[_CompiledBinding]:
        segments = glob.split(self._syntax, name)
        found = []
        for length in self._lengths:
            if length > len(segments):
                break
            for item in self._by_prefix.get(tuple(segments[:length]), ()):
                if item.glob.match_from(segments, length):
                    found.append(item)
        return sorted(found, key=lambda item: item.order)


def binding_identity(principal: Principal) -> tuple[IdentityKind, str] | None:
    """The kind and name bindings match a principal by; None if no binding can match it.

    A certificate principal's id is `mtls:SOURCE:VALUE` (auth/certs.py); the source decides which kind of
    binding applies, so a subject common name can never match a binding written for a URI or DNS name.
    """
    if principal.kind == "token":
        return IdentityKind.TOKEN, principal.name
    if principal.kind == "serviceaccount":
        return IdentityKind.SERVICEACCOUNT, principal.name
    if principal.kind == "mtls":
        prefix, _, rest = principal.principal_id.partition(":")
        source, sep, value = rest.partition(":")
        kind = _MTLS_KINDS.get(source)
        if prefix == "mtls" and sep and kind is not None and value == principal.name:
            return kind, value
    return None


class PolicySet:
    """Policy documents compiled for evaluation, together with the built-in document (policy "admin").

    An immutable value: to change policies, build a new set and swap the reference. `allows` makes it an
    `Authorizer` for the service layer (`secretsvc.service.access`); `decide` says which rule and binding
    decided, for `secretsvc policy explain` and audit records.
    """

    def __init__(self, documents: Sequence[Document] = ()) -> None:
        all_documents = (builtin_document(), *documents)
        problems = link(all_documents)
        if problems:
            raise InvalidArgument("; ".join(str(p) for p in problems[:10]))
        self.documents: tuple[Document, ...] = all_documents
        self.policies: Mapping[str, Policy] = MappingProxyType({p.name: p for d in all_documents for p in d.policies})
        self.bindings: tuple[Binding, ...] = tuple(b for d in all_documents for b in d.bindings)
        self._rules: dict[str, tuple[tuple[ResourceKind, glob.Glob, RuleRef], ...]] = {
            name: tuple(
                (rule.kind, glob.compile_glob(pattern.value, schema.RESOURCE_SYNTAX[rule.kind]),
                 RuleRef(name, rule, pattern))
                for rule in policy.rules for pattern in rule.patterns)
            for name, policy in self.policies.items()
        }
        by_kind: dict[IdentityKind, list[_CompiledBinding]] = {kind: [] for kind in IdentityKind}
        for order, binding in enumerate(self.bindings):
            compiled = glob.compile_glob(binding.pattern.value, schema.IDENTITY_SYNTAX[binding.kind])
            by_kind[binding.kind].append(_CompiledBinding(order, binding, compiled))
        self._bindings = {kind: _BindingIndex(schema.IDENTITY_SYNTAX[kind], items) for kind, items in by_kind.items()}
        # Memos, cleared when full rather than evicted one by one: cheap, and safe across threads because
        # each get and set is one dict operation; a lost race only builds the same value twice.
        self._callers: dict[Principal, _Caller] = {}
        self._views: dict[frozenset[str], dict[str, _Index]] = {}

    @property
    def warnings(self) -> tuple[str, ...]:
        """What an operator should see when this set is loaded: bindings that match every identity."""
        return tuple(f"{b.location}: bindings[{b.index}] grants {', '.join(p.value for p in b.policies)} to every "
                     f"{b.kind.value} identity (unsafe_match_all)" for b in self.bindings if b.unsafe_match_all)

    # -- who holds what -------------------------------------------------------------------------------------

    def grants(self, principal: Principal) -> tuple[Grant, ...]:
        """The policies `principal` holds and why, carried ones first, then bindings in load order."""
        return self._caller(principal).grants

    def _resolve(self, principal: Principal) -> tuple[Grant, ...]:
        grants: dict[str, Grant] = {}
        for name in principal.policies:
            grants.setdefault(name, Grant(name, None, name in self.policies))
        identity = binding_identity(principal)
        if identity is not None:
            kind, name = identity
            for item in self._bindings[kind].matching(name):
                for policy in item.binding.policies:
                    grants.setdefault(policy.value, Grant(policy.value, item.binding, True))
        return tuple(grants.values())

    def _caller(self, principal: Principal) -> _Caller:
        caller = self._callers.get(principal)
        if caller is None:
            grants = self._resolve(principal)
            held = frozenset(g.policy for g in grants if g.defined)
            caller = _Caller(grants, {g.policy: g for g in grants}, self._view(held))
            if len(self._callers) >= limits.MAX_CACHED_PRINCIPALS:
                self._callers.clear()
            self._callers[principal] = caller
        return caller

    def _view(self, held: frozenset[str]) -> dict[str, _Index]:
        view = self._views.get(held)
        if view is None:
            view = {kind.value: _Index() for kind in ResourceKind}
            for name in sorted(held):
                for kind, compiled, ref in self._rules[name]:
                    view[kind.value].add(compiled, ref)
            if len(self._views) >= limits.MAX_CACHED_VIEWS:
                self._views.clear()
            self._views[held] = view
        return view

    # -- decisions ------------------------------------------------------------------------------------------

    def _evaluate(self, caller: _Caller, kind: str, name: str, capability: str) -> tuple[bool, _Entry | None]:
        index = caller.indexes.get(kind)
        if index is None:
            raise InvalidArgument(f"unknown resource kind {kind!r}; known: {', '.join(ResourceKind)}")
        if capability not in _CAPABILITIES:
            raise InvalidArgument(f"unknown capability {capability!r}; known: {', '.join(Capability)}")
        separator = _SEPARATORS[kind]
        return index.evaluate(name.split(separator) if separator else (name,), capability)

    def allows(self, caller: Principal, resource: Resource, capability: str) -> bool:
        """Whether `caller` may use `capability` on `resource` (the service layer's `Authorizer`)."""
        return self._evaluate(self._caller(caller), resource.kind, resource.name, capability)[0]

    def decide(self, principal: Principal, resource: Resource, capability: str) -> Decision:
        """The decision and what made it: the rule (file, line, policy, rule index, pattern) and the binding."""
        caller = self._caller(principal)
        allowed, entry = self._evaluate(caller, resource.kind, resource.name, capability)
        ref = None if entry is None else entry.ref
        grant = None if ref is None else caller.by_policy[ref.policy]
        return Decision(allowed, Capability(capability), ResourceKind(resource.kind), resource.name, ref, grant)

    def filter_visible(self, principal: Principal, namespace: str, paths: Iterable[str]) -> list[str]:
        """The secret paths in `namespace` a listing may show: those the caller holds `list` on."""
        caller = self._caller(principal)
        index = caller.indexes[ResourceKind.SECRET.value]
        prefix = namespace.split("/")
        return [p for p in paths if index.evaluate([*prefix, *p.split("/")], Capability.LIST.value)[0]]

    def visible_keys(self, principal: Principal, names: Iterable[str]) -> list[str]:
        """The transit key names a listing may show: those the caller holds `list` on."""
        index = self._caller(principal).indexes[ResourceKind.TRANSIT_KEY.value]
        return [n for n in names if index.evaluate((n,), Capability.LIST.value)[0]]

    def matching_rules(self, principal: Principal, resource: Resource, capability: str) -> tuple[RuleRef, ...]:
        """Every rule of the caller's policies that matches (deny and allow), in load order; for explain.

        A plain scan, deliberately not the index: `explain` should not trust what it is explaining.
        """
        held = {g.policy for g in self.grants(principal) if g.defined}
        return tuple(ref for name in self.policies if name in held
                     for kind, compiled, ref in self._rules[name]
                     if kind.value == resource.kind and capability in ref.rule.capabilities
                     and compiled.matches(resource.name))

