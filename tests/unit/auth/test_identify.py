"""One place decides who is calling: static tokens, service-account JWTs, client certificates."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsvc.auth.identify import CallerIdentifier, looks_like_jwt
from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.auth.serviceaccount_config import ServiceAccountConfig, build_authenticator
from secretsvc.auth.tokens import MintedToken, TokenAuthenticator, mint_token
from secretsvc.errors import Unauthenticated
from secretsvc.store.sqlite import SqliteStore
from tests.serviceaccount_fakes import TestKey, jwks, rsa_key, sa_claims

ISSUER = "https://kubernetes.default.svc.cluster.local"
CERT = Principal(principal_id=PrincipalId("mtls:spiffe://cluster.local/ns/web/sa/front"),
                 name="spiffe://cluster.local/ns/web/sa/front", kind="mtls")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "secretsvc.db")
    yield opened
    opened.close()


@pytest.fixture
def static(store: SqliteStore) -> MintedToken:
    minted = mint_token("ci", now=time.time(), policies=("deploy",))
    store.put_token(minted.record)
    return minted


@pytest.fixture(scope="module")
def key() -> TestKey:
    return rsa_key("k1")


@pytest.fixture
def identifier(store: SqliteStore, key: TestKey, tmp_path: Path) -> CallerIdentifier:
    keys = tmp_path / "jwks.json"
    keys.write_bytes(jwks(key))
    accounts = build_authenticator(ServiceAccountConfig(audiences=("secretsvc",), issuer=ISSUER, jwks_file=keys))
    return CallerIdentifier(TokenAuthenticator(store), service_accounts=accounts, identifies_by_certificate=True)


def test_each_kind_of_credential_goes_to_its_authenticator(identifier: CallerIdentifier, static: MintedToken,
                                                            key: TestKey) -> None:
    assert identifier.identify(static.token, lambda: None).name == "ci"
    account = identifier.identify(key.sign(sa_claims(time.time(), issuer=ISSUER)), lambda: None)
    assert (account.kind, account.name) == ("serviceaccount", "payments/api")
    assert identifier.identify("", lambda: CERT) is CERT


def test_a_token_wins_over_the_client_certificate(identifier: CallerIdentifier, static: MintedToken) -> None:
    assert identifier.identify(static.token, lambda: CERT).name == "ci"


def test_a_bad_token_is_refused_even_with_a_good_certificate(identifier: CallerIdentifier) -> None:
    with pytest.raises(Unauthenticated, match="missing or invalid bearer token"):
        identifier.identify("svc_0000000000000000_nope", lambda: CERT)


@pytest.mark.parametrize("bearer", ["", "opaque-token", "eyJhbGciOiJub25lIn0.e30.", "a.b.c"])
def test_everything_else_is_refused_the_same_way(store: SqliteStore, bearer: str) -> None:
    identifier = CallerIdentifier(TokenAuthenticator(store))  # no service accounts, no certificates
    with pytest.raises(Unauthenticated, match=r"^missing or invalid bearer token$"):
        identifier.identify(bearer, lambda: CERT)


def test_jwt_shape() -> None:
    assert looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    assert not looks_like_jwt("svc_0123_abc")
    assert not looks_like_jwt("eyJ.only-two")
