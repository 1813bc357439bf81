"""Policy documents over the API: store, read, list and remove them, reload, and explain a decision. No gRPC.

Everything here is server administration and needs `admin` on the system resource "policies": a caller who
may change policies may grant itself anything, and `explain` shows how every identity is bound.

A document stored here joins the configured files in the set in force on every server sharing the store.
A change is checked against the files and every other stored document before it is written, so a document
that does not parse, breaks the schema, defines a policy another document already defines, or removes a
policy a binding still names, is refused with each problem's document and line, and nothing changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from enum import StrEnum

from secretsvc.auth.principal import Principal
from secretsvc.errors import InvalidArgument, LimitExceeded, NotFound
from secretsvc.policy import identity
from secretsvc.policy import limits as policy_limits
from secretsvc.policy.model import Capability, Decision, Grant, RuleRef
from secretsvc.service import limits
from secretsvc.service.access import Authorizer, Resource, require
from secretsvc.service.clock import Clock
from secretsvc.service.livepolicies import STORED_PREFIX, LivePolicies, ReloadResult
from secretsvc.service.naming import check_policy_document_name
from secretsvc.store.base import PolicyDocumentRecord, SecretStore

POLICIES = Resource.system("policies")
FORMATS = ("yaml", "json")


class Origin(StrEnum):
    BUILTIN = "builtin"
    FILE = "file"
    STORED = "stored"


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    name: str  # a stored document's name, a file's path, or "<builtin>"
    origin: Origin
    policies: tuple[str, ...]  # the policies it defines, as in force on this server
    bindings: int
    in_force: bool  # False: stored, but not (yet) loaded by this server
    record: PolicyDocumentRecord | None  # for stored documents


@dataclass(frozen=True, slots=True)
class Explanation:
    caller: Principal  # the identity explained, with the policies it carries
    identity_known: bool  # False for a token name no token has
    decision: Decision
    grants: tuple[Grant, ...]
    matched: tuple[RuleRef, ...]


class PolicyService:
    def __init__(self, store: SecretStore, live: LivePolicies, authorizer: Authorizer, clock: Clock) -> None:
        self._store = store
        self._live = live
        self._authz = authorizer
        self._clock = clock
        # One change at a time in this server, so two changes cannot each pass the check alone and clash
        # together. Replicas sharing a store can still race; the loser's reload is refused and logged.
        self._changing = threading.Lock()

    def put(self, caller: Principal, name: str, content: bytes, fmt: str, *,
            expected_revision: int | None = None) -> PolicyDocumentRecord:
        check_policy_document_name(name)
        if fmt not in FORMATS:
            raise InvalidArgument(f"policy document format must be one of {', '.join(FORMATS)}")
        if len(content) > policy_limits.MAX_POLICY_FILE_BYTES:
            raise LimitExceeded(f"policy document is larger than MAX_POLICY_FILE_BYTES="
                                f"{policy_limits.MAX_POLICY_FILE_BYTES} bytes")
        require(self._authz, caller, POLICIES, Capability.ADMIN)
        with self._changing:
            stored = {r.name: r for r in self._store.list_policy_documents()}
            if name not in stored and len(stored) >= limits.MAX_STORED_POLICY_DOCUMENTS:
                raise LimitExceeded(f"the store holds MAX_STORED_POLICY_DOCUMENTS="
                                    f"{limits.MAX_STORED_POLICY_DOCUMENTS} policy documents already")
            candidate = PolicyDocumentRecord(name=name, format=fmt, content=content, revision=0, updated_at=0.0)
            self._live.check_stored([*(r for n, r in stored.items() if n != name), candidate])
            record = self._store.put_policy_document(name, fmt, content, expected_revision=expected_revision,
                                                     now=self._clock())
            self._live.reload()
        return record

    def get(self, caller: Principal, name: str) -> PolicyDocumentRecord:
        check_policy_document_name(name)
        require(self._authz, caller, POLICIES, Capability.ADMIN)
        record = self._store.read_policy_document(name)
        if record is None:
            raise NotFound(f"no policy document named {name!r} is stored")
        return record

    def delete(self, caller: Principal, name: str, *, expected_revision: int | None = None) -> bool:
        """Remove a stored document; returns whether there was one. Refused while a binding in another
        document names a policy only this one defines."""
        check_policy_document_name(name)
        require(self._authz, caller, POLICIES, Capability.ADMIN)
        with self._changing:
            stored = self._store.list_policy_documents()
            if any(r.name == name for r in stored):
                self._live.check_stored([r for r in stored if r.name != name])
            removed = self._store.delete_policy_document(name, expected_revision=expected_revision)
            if removed:
                self._live.reload()
        return removed

    def list(self, caller: Principal) -> list[DocumentInfo]:
        """The documents in force (built-in, files, stored), then stored ones this server has not loaded."""
        require(self._authz, caller, POLICIES, Capability.ADMIN)
        stored = {r.name: r for r in self._store.list_policy_documents()}
        infos: list[DocumentInfo] = []
        for index, document in enumerate(self._live.current.documents):
            policies = tuple(p.name for p in document.policies)
            if index == 0:
                infos.append(DocumentInfo(document.source, Origin.BUILTIN, policies, len(document.bindings),
                                          True, None))
            elif document.source.startswith(STORED_PREFIX):
                name = document.source.removeprefix(STORED_PREFIX)
                infos.append(DocumentInfo(name, Origin.STORED, policies, len(document.bindings), True,
                                          stored.pop(name, None)))
            else:
                infos.append(DocumentInfo(document.source, Origin.FILE, policies, len(document.bindings), True,
                                          None))
        infos.extend(DocumentInfo(name, Origin.STORED, (), 0, False, record) for name, record in stored.items())
        return infos

    def reload(self, caller: Principal) -> ReloadResult:
        require(self._authz, caller, POLICIES, Capability.ADMIN)
        return self._live.reload(force=True)

    def explain(self, caller: Principal, identity_text: str, resource_text: str, capability: str) -> Explanation:
        """How the set in force decides `capability` on a resource for an identity, in the text forms of
        `secretsvc policy explain`. A `token:NAME` without listed policies is explained with the policies
        the stored token of that name carries."""
        for what, text in (("identity", identity_text), ("resource", resource_text), ("capability", capability)):
            if len(text.encode("utf-8", "surrogatepass")) > limits.MAX_EXPLAIN_ARGUMENT_BYTES:
                raise LimitExceeded(f"{what} is longer than MAX_EXPLAIN_ARGUMENT_BYTES="
                                    f"{limits.MAX_EXPLAIN_ARGUMENT_BYTES}")
        principal = identity.parse_identity(identity_text)
        target = identity.parse_resource(resource_text)
        if capability not in Capability.__members__.values():
            raise InvalidArgument(f"capability must be one of {', '.join(Capability)}")
        wanted = Capability(capability)
        require(self._authz, caller, POLICIES, Capability.ADMIN)
        known = True
        if principal.kind == "token" and not principal.policies:
            held = next((t.policies for t in self._store.list_tokens() if t.name == principal.name), None)
            known = held is not None
            principal = replace(principal, policies=tuple(held or ()))
        policy_set = self._live.current
        return Explanation(
            caller=principal, identity_known=known,
            decision=policy_set.decide(principal, target, wanted),
            grants=policy_set.grants(principal),
            matched=policy_set.matching_rules(principal, target, wanted),
        )
