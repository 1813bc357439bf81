"""Access reviews: may an identity use a capability on these secrets, and can they be read? No gRPC.

What the injector's admission webhook asks before a pod starts, so a pod whose service account may not read a
secret, or that asks for a secret that does not exist, is refused at admission instead of crash-looping in
its init container. Decided by the policies in force, exactly as the calls themselves would be; nothing is
read but metadata.

Reviewing needs `admin` on the system resource "access-review": the answers say which secrets exist, so only
components trusted with that (the webhook) should hold it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from secretsvc.auth.principal import Principal
from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.policy import identity
from secretsvc.policy.model import Capability
from secretsvc.service import limits
from secretsvc.service.access import Authorizer, Resource, require
from secretsvc.service.livepolicies import LivePolicies
from secretsvc.service.naming import check_namespace, check_path
from secretsvc.store.base import SecretStore, VersionState

ACCESS_REVIEW = Resource.system("access-review")


@dataclass(frozen=True, slots=True)
class AccessAnswer:
    namespace: str
    path: str
    version: int | None
    allowed: bool
    exists: bool  # the version asked for (or the current one) is there and readable
    reason: str  # why not, for the pod's author; "" when allowed and readable
    rule: str | None  # DOCUMENT:LINE of the deciding rule, when one matched


class AccessReviewService:
    def __init__(self, store: SecretStore, policies: LivePolicies, authorizer: Authorizer) -> None:
        self._store = store
        self._policies = policies
        self._authz = authorizer

    def check(self, caller: Principal, identity_text: str, capability: str,
              items: Sequence[tuple[str, str, int | None]]) -> list[AccessAnswer]:
        if len(items) > limits.MAX_GET_SECRETS_ITEMS:
            raise LimitExceeded(f"one review covers at most MAX_GET_SECRETS_ITEMS={limits.MAX_GET_SECRETS_ITEMS} "
                                "secrets")
        if len(identity_text) > limits.MAX_EXPLAIN_ARGUMENT_BYTES:
            raise LimitExceeded("identity is longer than "
                                f"MAX_EXPLAIN_ARGUMENT_BYTES={limits.MAX_EXPLAIN_ARGUMENT_BYTES}")
        subject = identity.parse_identity(identity_text)
        wanted = capability or Capability.READ.value
        if wanted not in Capability.__members__.values():
            raise InvalidArgument(f"capability must be one of {', '.join(Capability)}")
        for namespace, path, version in items:
            check_namespace(namespace)
            check_path(path)
            if version is not None and not 1 <= version <= limits.MAX_VERSION_NUMBER:
                raise InvalidArgument(f"{namespace}/{path}: version must be 1..MAX_VERSION_NUMBER")
        require(self._authz, caller, ACCESS_REVIEW, Capability.ADMIN)
        policy_set = self._policies.current
        answers = []
        for namespace, path, version in items:
            decision = policy_set.decide(subject, Resource.secret(namespace, path), Capability(wanted))
            readable, missing = self._readable(namespace, path, version)
            rule = None if decision.rule is None else str(decision.rule.location)
            if not decision.allowed:
                why = (f"denied by the rule at {rule} (policy {decision.rule.policy!r})" if decision.rule
                       else "no policy grants it (deny by default)")
                reason = f"{subject.display} may not {wanted} {namespace}/{path}: {why}"
            else:
                reason = missing
            answers.append(AccessAnswer(namespace, path, version, decision.allowed, readable, reason, rule))
        return answers

    def _readable(self, namespace: str, path: str, version: int | None) -> tuple[bool, str]:
        meta = self._store.read_meta(namespace, path)
        ref = f"{namespace}/{path}"
        if meta is None:
            return False, f"{ref} does not exist"
        wanted = version or meta.current_version
        state = next((v.state for v in meta.versions if v.version == wanted), None)
        if state is None:
            return False, f"{ref} has no version {wanted}"
        if state is VersionState.DELETED:
            return False, f"version {wanted} of {ref} is deleted"
        if state is VersionState.DESTROYED:
            return False, f"version {wanted} of {ref} was destroyed"
        return True, ""
