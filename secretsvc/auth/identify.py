"""Which authenticator decides a call's identity, from what the call presents.

    bearer "svc_..."           a static token (`auth/tokens.py`)
    bearer that is a JWT       a Kubernetes service-account token (`auth/serviceaccount.py`), if configured
    no bearer, a client cert   the certificate's identity (mutual TLS), if the server identifies by it

A call that carries both a token and a client certificate acts as the token's identity: the certificate then
authenticates the connection, not the caller. Every refusal is the same `Unauthenticated`, whichever
authenticator refused, so probing cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from secretsvc.auth.principal import Principal
from secretsvc.auth.tokens import TOKEN_PREFIX
from secretsvc.errors import Unauthenticated

REFUSED = "missing or invalid bearer token"


class Authenticator(Protocol):
    def authenticate(self, token: str) -> Principal: ...


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts, the first a base64url JSON object ("eyJ" is '{"' encoded)."""
    return token.startswith("eyJ") and token.count(".") == 2


class CallerIdentifier:
    def __init__(self, tokens: Authenticator, *, service_accounts: Authenticator | None = None,
                 identifies_by_certificate: bool = False) -> None:
        self._tokens = tokens
        self._service_accounts = service_accounts
        # When false, a call without a bearer token cannot be anyone, and is refused before its body is read.
        self.identifies_by_certificate = identifies_by_certificate

    def identify(self, bearer: str, certificate: Callable[[], Principal | None]) -> Principal:
        """The caller of a call that presented `bearer` ("" for none); `certificate` gives the identity of the
        connection's verified client certificate, if any, and is asked only when there is no token."""
        if bearer:
            if bearer.startswith(TOKEN_PREFIX + "_"):
                return self._tokens.authenticate(bearer)
            if self._service_accounts is not None and looks_like_jwt(bearer):
                return self._service_accounts.authenticate(bearer)
            raise Unauthenticated(REFUSED)
        if self.identifies_by_certificate:
            principal = certificate()
            if principal is not None:
                return principal
        raise Unauthenticated(REFUSED)
