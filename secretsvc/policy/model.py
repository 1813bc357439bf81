"""The values a policy document becomes: policies of rules, bindings from identities, and decisions.

Everything here is a frozen value that remembers where it was written (`Location`: source and line), so a
decision can name the rule and the binding that made it, and `secretsvc policy explain` can print them.

The vocabulary (`Capability`, `ResourceKind`) spells the same strings as `secretsvc.service.access`, whose
`StrEnum` members compare equal to these, so the service layer's values can be passed in unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Capability(StrEnum):
    READ = "read"
    LIST = "list"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    DESTROY = "destroy"
    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"
    REWRAP = "rewrap"
    ROTATE = "rotate"
    ADMIN = "admin"
    # Learn whether a candidate value equals a stored version (MatchValues), never the value itself.
    MATCH = "match"


class ResourceKind(StrEnum):
    SECRET = "secret"  # noqa: S105 - a resource kind, not a credential
    TRANSIT_KEY = "transit_key"
    SYSTEM = "system"


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class IdentityKind(StrEnum):
    """What a binding matches. The three certificate kinds are kept apart so that a subject common name can
    never pose as the DNS name or URI it spells (the authenticator keeps the same distinction)."""

    TOKEN = "token"  # noqa: S105 - an identity kind, not a credential
    SERVICEACCOUNT = "serviceaccount"
    MTLS_URI = "mtls-uri"
    MTLS_DNS = "mtls-dns"
    MTLS_SUBJECT = "mtls-subject"


# The document key that selects each kind of resource, and the capabilities that mean something for it.
# A capability outside its kind's set is refused on load: `encrypt` on a secret path would grant nothing.
SELECTOR_KEYS: dict[str, ResourceKind] = {
    "paths": ResourceKind.SECRET,
    "keys": ResourceKind.TRANSIT_KEY,
    "system": ResourceKind.SYSTEM,
}
APPLICABLE: dict[ResourceKind, frozenset[Capability]] = {
    ResourceKind.SECRET: frozenset({Capability.READ, Capability.LIST, Capability.CREATE, Capability.UPDATE,
                                    Capability.DELETE, Capability.DESTROY, Capability.MATCH}),
    ResourceKind.TRANSIT_KEY: frozenset(set(Capability) - {Capability.ADMIN, Capability.MATCH}),
    ResourceKind.SYSTEM: frozenset({Capability.ADMIN}),
}
# Server-wide resources the service asks about with `admin`. A rule naming another literal name is refused:
# it would be a typo that grants nothing.
SYSTEM_RESOURCES = ("access-review", "policies", "root-key", "tokens")


class Resource(Protocol):
    """What is asked about. `secretsvc.service.access.Resource` has this shape."""

    @property
    def kind(self) -> str: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Target:
    """A `Resource` for callers outside the service layer (the CLI, tests)."""

    kind: ResourceKind
    name: str  # "NAMESPACE/PATH" for a secret, the key name for a transit key, e.g. "tokens" for system

    def __str__(self) -> str:
        return f"{self.kind.value} {self.name}"


@dataclass(frozen=True, slots=True)
class Location:
    source: str  # a file name, or the name given with the bytes
    line: int  # 1-based; 0 for a problem with the whole file (unreadable, too large)

    def __str__(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


@dataclass(frozen=True, slots=True)
class At:
    """A string from a document and the line it was written on."""

    value: str
    line: int


@dataclass(frozen=True, slots=True)
class Rule:
    index: int  # position in its policy's rule list, 0-based
    kind: ResourceKind
    patterns: tuple[At, ...]
    capabilities: frozenset[Capability]
    effect: Effect
    location: Location  # where the rule starts


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    rules: tuple[Rule, ...]
    location: Location
    description: str = ""


@dataclass(frozen=True, slots=True)
class Binding:
    index: int  # position in its document's binding list, 0-based
    kind: IdentityKind
    pattern: At
    policies: tuple[At, ...]
    location: Location
    unsafe_match_all: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    source: str
    version: int
    policies: tuple[Policy, ...]
    bindings: tuple[Binding, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a document was refused, at the line that holds it."""

    location: Location
    where: str  # the element, e.g. "policies[0] (payments) rules[1].capabilities[2]"; "" for the whole file
    message: str
    limit: bool = False  # a named limit was exceeded

    def __str__(self) -> str:
        return f"{self.location}: {self.where}: {self.message}" if self.where else f"{self.location}: {self.message}"


@dataclass(frozen=True, slots=True)
class RuleRef:
    """The rule (and which of its patterns) that decided."""

    policy: str
    rule: Rule
    pattern: At

    @property
    def location(self) -> Location:
        """The line of the pattern that matched, in the rule's source."""
        return Location(self.rule.location.source, self.pattern.line)


@dataclass(frozen=True, slots=True)
class Grant:
    """A policy a caller holds, and why: a binding matched it, or it carries the name itself (a token made
    with --policy). `defined` is False for a name no document defines: it grants nothing."""

    policy: str
    binding: Binding | None
    defined: bool


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    capability: Capability
    resource_kind: ResourceKind
    resource_name: str
    rule: RuleRef | None  # None: no rule matched, denied by default
    grant: Grant | None  # how the caller came to hold the deciding rule's policy

    @property
    def binding(self) -> Binding | None:
        return None if self.grant is None else self.grant.binding

    @property
    def reason(self) -> str:
        if self.rule is None:
            return "no rule grants it (deny by default)"
        return "allowed by rule" if self.allowed else "denied by rule (an explicit deny wins)"
