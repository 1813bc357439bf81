"""Static tokens for operators and automation: create, list, revoke. No gRPC here.

Tokens are server administration: every operation needs `admin` on the system resource "tokens". A token is
minted with the policies it is created with, and nothing else: a token created without policies may do
nothing. Revocation removes the record and tells the authenticator to drop its cached verification of that
token, so it stops working on the next call to this server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from secretsvc.auth.principal import Principal
from secretsvc.auth.tokens import MintedToken, mint_token
from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.service import limits
from secretsvc.service.access import Authorizer, Capability, Resource, require
from secretsvc.service.clock import Clock
from secretsvc.service.naming import check_policy_name, check_token_name
from secretsvc.store.base import SecretStore, TokenRecord

TOKENS = Resource.system("tokens")


class TokenService:
    def __init__(self, store: SecretStore, authorizer: Authorizer, clock: Clock,
                 forget_token: Callable[[str], None]) -> None:
        self._store = store
        self._authz = authorizer
        self._clock = clock
        self._forget_token = forget_token  # drops an authenticator's cached verification, by token id

    def create(self, caller: Principal, name: str, policies: Sequence[str] = (), *,
               ttl_seconds: float = 0) -> MintedToken:
        check_token_name(name)
        if len(policies) > limits.MAX_POLICIES_PER_TOKEN:
            raise LimitExceeded(f"a token holds at most MAX_POLICIES_PER_TOKEN={limits.MAX_POLICIES_PER_TOKEN}"
                                " policies")
        for policy in policies:
            check_policy_name(policy)
        if not 0 <= ttl_seconds <= limits.MAX_TOKEN_TTL_SECONDS:
            raise InvalidArgument(
                f"ttl must be 0 (no expiry) to MAX_TOKEN_TTL_SECONDS={limits.MAX_TOKEN_TTL_SECONDS} seconds"
            )
        require(self._authz, caller, TOKENS, Capability.ADMIN)
        now = self._clock()
        minted = mint_token(name, now=now, policies=tuple(dict.fromkeys(policies)),
                            expires_at=now + ttl_seconds if ttl_seconds else None)
        self._store.put_token(minted.record)  # AlreadyExists if the name is taken
        return minted

    def list(self, caller: Principal) -> list[TokenRecord]:
        require(self._authz, caller, TOKENS, Capability.ADMIN)
        return self._store.list_tokens()

    def revoke(self, caller: Principal, name: str) -> bool:
        """Revoke the token named `name`; returns whether there was one."""
        check_token_name(name)
        require(self._authz, caller, TOKENS, Capability.ADMIN)
        removed = self._store.delete_token(name)
        if removed is None:
            return False
        self._forget_token(removed.token_id)
        return True
