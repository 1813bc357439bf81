"""Who is calling: the identity every RPC carries into the service layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

PrincipalId = NewType("PrincipalId", str)


@dataclass(frozen=True, slots=True)
class Principal:
    principal_id: PrincipalId
    name: str
    kind: str  # "token", "serviceaccount" (Kubernetes); "mtls" arrives with its authenticator
    policies: tuple[str, ...] = ()
    # Kubernetes service accounts only (kind "serviceaccount"): where the verified token says the caller runs.
    # `pod` is None for a token not bound to a pod (e.g. one made with `kubectl create token`).
    namespace: str | None = None
    service_account: str | None = None
    pod: str | None = None

    @property
    def display(self) -> str:
        return f"{self.kind}:{self.name}"
