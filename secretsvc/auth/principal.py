"""Who is calling: the identity every RPC carries into the service layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

PrincipalId = NewType("PrincipalId", str)


@dataclass(frozen=True, slots=True)
class Principal:
    principal_id: PrincipalId
    name: str
    kind: str  # "token" now; "mtls" and "kubernetes" arrive with their authenticators
    policies: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        return f"{self.kind}:{self.name}"
