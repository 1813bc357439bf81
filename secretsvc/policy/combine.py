"""Authorizers combined as values: `AllOf` (every one must allow) and `AnyOf` (one allowing is enough).

For composing a policy set with other checks the service layer may grow (a maintenance switch that refuses
writes, a second set being rolled out), without a special case in any use case. An empty combination is
refused: `AllOf([])` would allow everything and `AnyOf([])` nothing, and neither is ever what was meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from secretsvc.auth.principal import Principal
from secretsvc.errors import InvalidArgument
from secretsvc.policy.model import Resource


class Authorizer(Protocol):
    """The shape of `secretsvc.service.access.Authorizer`, which `PolicySet` has."""

    def allows(self, caller: Principal, resource: Resource, capability: str, /) -> bool: ...


class AllOf:
    def __init__(self, members: Sequence[Authorizer]) -> None:
        if not members:
            raise InvalidArgument("AllOf needs at least one authorizer; an empty AllOf would allow everything")
        self.members = tuple(members)

    def allows(self, caller: Principal, resource: Resource, capability: str) -> bool:
        return all(m.allows(caller, resource, capability) for m in self.members)


class AnyOf:
    def __init__(self, members: Sequence[Authorizer]) -> None:
        if not members:
            raise InvalidArgument("AnyOf needs at least one authorizer; an empty AnyOf allows nothing")
        self.members = tuple(members)

    def allows(self, caller: Principal, resource: Resource, capability: str) -> bool:
        return any(m.allows(caller, resource, capability) for m in self.members)
