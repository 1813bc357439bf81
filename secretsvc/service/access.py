"""What a caller may do: the question every use case asks before it touches the store.

The service layer receives the caller (`Principal`) as an argument on every call and asks an `Authorizer`
whether it may use a capability on a resource. Resources are named the way policy documents name them:
secrets as `NAMESPACE/PATH`, transit keys by name, and server-wide operations (root key, tokens, policies)
as system resources. Deny is the default: an authorizer answers yes only for what something grants.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from secretsvc.auth.principal import Principal
from secretsvc.errors import PermissionDenied
from secretsvc.policy.model import Capability, ResourceKind  # one vocabulary, the policy documents' own

__all__ = ["ADMIN_POLICY", "ROOT_KEY", "AdminPolicyOnly", "Authorizer", "Capability", "Resource", "ResourceKind",
           "require", "visible"]


@dataclass(frozen=True, slots=True)
class Resource:
    kind: ResourceKind
    name: str  # "NAMESPACE/PATH" for a secret, the key name for a transit key, e.g. "root-key" for system

    @classmethod
    def secret(cls, namespace: str, path: str) -> Resource:
        return cls(ResourceKind.SECRET, f"{namespace}/{path}")

    @classmethod
    def transit_key(cls, name: str) -> Resource:
        return cls(ResourceKind.TRANSIT_KEY, name)

    @classmethod
    def system(cls, name: str) -> Resource:
        return cls(ResourceKind.SYSTEM, name)

    def __str__(self) -> str:
        return f"{self.kind.value} {self.name}"


ROOT_KEY = Resource.system("root-key")


class Authorizer(Protocol):
    def allows(self, caller: Principal, resource: Resource, capability: Capability) -> bool:
        """Whether `caller` may use `capability` on `resource`. Must be fast: it runs on every call."""
        ...


def require(authorizer: Authorizer, caller: Principal, resource: Resource, capability: Capability) -> None:
    """Raise `PermissionDenied` unless the caller may. The message names what was refused (the caller named
    the resource itself) but not which rule refused it: `secretsvc policy explain` is for that."""
    if not authorizer.allows(caller, resource, capability):
        raise PermissionDenied(f"{caller.display} may not {capability.value} {resource}")


def visible(authorizer: Authorizer, caller: Principal, resources: Iterable[Resource]) -> list[Resource]:
    """The resources a listing may show the caller: those it may list."""
    return [r for r in resources if authorizer.allows(caller, r, Capability.LIST)]


ADMIN_POLICY = "admin"


class AdminPolicyOnly:
    """Allows everything to callers holding the "admin" policy, and nothing to anyone else.

    The smallest authorizer, for embedding the service layer and for tests that are not about policy. The
    server itself always uses a `PolicySet` (secretsvc/policy), whose built-in admin document grants the same
    when no documents are configured.
    """

    def allows(self, caller: Principal, resource: Resource, capability: Capability) -> bool:
        return ADMIN_POLICY in caller.policies
