"""When a failed call is tried again, and how long to wait first.

Only UNAVAILABLE is retried, and only for methods that change nothing on the server (reads, and the transit
calls whose result depends on the key alone): UNAVAILABLE can also arrive after the server did the work
(storage busy on commit, a connection lost before the answer), and repeating a write could apply it twice or
fail its check-and-set. Writes rely on gRPC's own transparent retry, which resends only calls that never
left the client. Waits grow exponentially with full jitter (a uniform draw below the ceiling), so clients
that failed together do not return together; every attempt shares the call's one deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Full method names: the services are generated from protos/secretsvc/v1 (package secretsvc.v1).
IDEMPOTENT_METHODS = frozenset({
    "/secretsvc.v1.Secrets/GetSecret",
    "/secretsvc.v1.Secrets/GetSecrets",
    "/secretsvc.v1.Secrets/ListSecrets",
    "/secretsvc.v1.Secrets/GetSecretMetadata",
    "/secretsvc.v1.Transit/GetKey",
    "/secretsvc.v1.Transit/ListKeys",
    "/secretsvc.v1.Transit/Encrypt",
    "/secretsvc.v1.Transit/Decrypt",
    "/secretsvc.v1.Transit/EncryptBatch",
    "/secretsvc.v1.Transit/DecryptBatch",
    "/secretsvc.v1.Transit/GenerateDataKey",
    "/secretsvc.v1.Transit/Rewrap",
    "/secretsvc.v1.Admin/GetRootKey",
    "/secretsvc.v1.Tokens/ListTokens",
    "/secretsvc.v1.Policies/GetPolicyDocument",
    "/secretsvc.v1.Policies/ListPolicyDocuments",
    "/secretsvc.v1.Policies/ExplainPolicy",
    "/secretsvc.v1.Access/CheckAccess",
    "/secretsvc.v1.Matching/MatchValues",
    "/grpc.health.v1.Health/Check",
})
MAX_ATTEMPTS_LIMIT = 10


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4  # the first call and up to three retries
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    methods: frozenset[str] = IDEMPOTENT_METHODS

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValueError(f"max_attempts must be between 1 and MAX_ATTEMPTS_LIMIT={MAX_ATTEMPTS_LIMIT}")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff or self.multiplier < 1:
            raise ValueError("backoff must satisfy 0 <= initial_backoff <= max_backoff and multiplier >= 1")

    def retries(self, method: str) -> bool:
        return self.max_attempts > 1 and method in self.methods

    def delay(self, attempt: int, uniform: Callable[[], float]) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based); `uniform` draws from [0, 1)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return ceiling * uniform()


NO_RETRY = RetryPolicy(max_attempts=1)
