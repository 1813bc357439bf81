"""Helpers shared by the service-layer tests: a manual clock and seeded secret values."""

from __future__ import annotations

import random

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.crypto.secretbytes import SecretBytes

# The caller of service calls in tests that are not about authorization: it holds the built-in admin policy.
ADMIN = Principal(principal_id=PrincipalId("token:test-admin"), name="test-admin", kind="token", policies=("admin",))


class ManualClock:
    """A clock that moves only when told to, so TTLs and timestamps are exact."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def value(rng: random.Random, size: int = 48) -> SecretBytes:
    """A random secret value; distinctive enough that finding it in a message or a file means a leak."""
    return SecretBytes(rng.randbytes(size))
