"""Static token management: create, list, revoke, who may, and what a token may do once created."""

from __future__ import annotations

import pytest

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.auth.tokens import TokenAuthenticator, VerifiedTokenCache
from secretsvc.errors import AlreadyExists, InvalidArgument, LimitExceeded, PermissionDenied, Unauthenticated
from secretsvc.service import limits
from secretsvc.service.access import AdminPolicyOnly
from secretsvc.service.tokens import TokenService
from secretsvc.store.sqlite import SqliteStore
from tests.unit.service.support import ADMIN, ManualClock

APP = Principal(principal_id=PrincipalId("token:app"), name="app", kind="token", policies=("app",))


@pytest.fixture
def auth(store: SqliteStore, clock: ManualClock) -> TokenAuthenticator:
    return TokenAuthenticator(store, cache=VerifiedTokenCache(clock=clock), clock=clock)


@pytest.fixture
def tokens(store: SqliteStore, clock: ManualClock, auth: TokenAuthenticator) -> TokenService:
    return TokenService(store, AdminPolicyOnly(), clock, auth.forget_token)


def test_create_list_and_use(tokens: TokenService, auth: TokenAuthenticator) -> None:
    minted = tokens.create(ADMIN, "ci", ["deploy", "read-only", "deploy"])
    assert minted.record.policies == ("deploy", "read-only")  # duplicates dropped, order kept
    principal = auth.authenticate(minted.token)
    assert (principal.name, principal.kind, principal.policies) == ("ci", "token", ("deploy", "read-only"))
    listed = tokens.list(ADMIN)
    assert [(r.name, r.expires_at) for r in listed] == [("ci", None)]
    assert minted.token not in repr(listed)


def test_names_are_unique(tokens: TokenService) -> None:
    tokens.create(ADMIN, "ci")
    with pytest.raises(AlreadyExists, match="'ci'"):
        tokens.create(ADMIN, "ci", ["admin"])


def test_revocation_takes_effect_on_the_next_call(tokens: TokenService, auth: TokenAuthenticator) -> None:
    kept = tokens.create(ADMIN, "kept")
    gone = tokens.create(ADMIN, "gone")
    auth.authenticate(kept.token)
    auth.authenticate(gone.token)  # now cached
    assert tokens.revoke(ADMIN, "gone") is True
    with pytest.raises(Unauthenticated):
        auth.authenticate(gone.token)
    assert auth.authenticate(kept.token).name == "kept"
    assert tokens.revoke(ADMIN, "gone") is False


def test_a_token_expires_after_its_ttl(tokens: TokenService, auth: TokenAuthenticator, clock: ManualClock) -> None:
    minted = tokens.create(ADMIN, "short", ["p"], ttl_seconds=10)
    assert minted.record.expires_at == clock.now + 10
    auth.authenticate(minted.token)
    clock.advance(9.9)
    auth.authenticate(minted.token)
    clock.advance(0.2)
    with pytest.raises(Unauthenticated):
        auth.authenticate(minted.token)  # the cached verification does not outlive the token


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": ""}, InvalidArgument),
        ({"name": "has space"}, InvalidArgument),
        ({"name": "x" * (limits.MAX_TOKEN_NAME_BYTES + 1)}, LimitExceeded),
        ({"policies": ["bad policy"]}, InvalidArgument),
        ({"policies": [f"p{i}" for i in range(limits.MAX_POLICIES_PER_TOKEN + 1)]}, LimitExceeded),
        ({"ttl_seconds": -1}, InvalidArgument),
        ({"ttl_seconds": limits.MAX_TOKEN_TTL_SECONDS + 1}, InvalidArgument),
    ],
)
def test_bad_requests_are_refused(tokens: TokenService, kwargs: dict[str, object], error: type[Exception]) -> None:
    args: dict[str, object] = {"name": "ok", "policies": [], "ttl_seconds": 0, **kwargs}
    with pytest.raises(error):
        tokens.create(ADMIN, args["name"], args["policies"], ttl_seconds=args["ttl_seconds"])  # type: ignore[arg-type]
    assert tokens.list(ADMIN) == []


def test_only_admins_manage_tokens(tokens: TokenService) -> None:
    tokens.create(ADMIN, "ci")
    for call in (lambda: tokens.create(APP, "mine", ["admin"]), lambda: tokens.list(APP),
                 lambda: tokens.revoke(APP, "ci")):
        with pytest.raises(PermissionDenied, match="may not admin system tokens"):
            call()
    assert [r.name for r in tokens.list(ADMIN)] == ["ci"]
