"""Who is calling: authenticators that turn request credentials into a `Principal`."""

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.auth.tokens import MintedToken, TokenAuthenticator, mint_token

__all__ = ["MintedToken", "Principal", "PrincipalId", "TokenAuthenticator", "mint_token"]
