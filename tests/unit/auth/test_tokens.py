"""Static bearer tokens: minting, authentication, and how little a failure or a stored record reveals."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsvc.auth.principal import Principal
from secretsvc.auth.tokens import MAX_TOKEN_BYTES, TOKEN_PREFIX, MintedToken, TokenAuthenticator, mint_token
from secretsvc.errors import Unauthenticated
from secretsvc.store.base import TokenRecord
from secretsvc.store.sqlite import SqliteStore

INVALID = "missing or invalid bearer token"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "secretsvc.db")
    yield opened
    opened.close()


@pytest.fixture
def minted(store: SqliteStore) -> MintedToken:
    token = mint_token("ci-deployer", now=1234.5, policies=("read-app", "write-app"))
    store.put_token(token.record)
    return token


def _parts(token: str) -> tuple[str, str, str]:
    prefix, _, rest = token.partition("_")
    token_id, _, secret_part = rest.partition("_")
    return prefix, token_id, secret_part


def test_minted_token_authenticates_to_its_principal(store: SqliteStore, minted: MintedToken) -> None:
    principal = TokenAuthenticator(store).authenticate(minted.token)
    assert principal == Principal(
        principal_id=principal.principal_id, name="ci-deployer", kind="token", policies=("read-app", "write-app")
    )
    assert principal.principal_id == f"token:{minted.record.token_id}"
    assert principal.display == "token:ci-deployer"


def test_token_shape(minted: MintedToken) -> None:
    prefix, token_id, secret_part = _parts(minted.token)
    assert prefix == TOKEN_PREFIX
    assert token_id == minted.record.token_id
    assert len(token_id) == 16
    int(token_id, 16)
    assert len(secret_part) >= 43  # 256 bits in unpadded base64url
    assert len(minted.token) <= MAX_TOKEN_BYTES
    assert minted.record.created_at == 1234.5
    assert minted.record.name == "ci-deployer"


def test_tokens_are_unique() -> None:
    tokens = [mint_token("x", now=0.0) for _ in range(50)]
    assert len({t.token for t in tokens}) == 50
    assert len({t.record.token_id for t in tokens}) == 50


def test_several_tokens_each_map_to_their_own_principal(store: SqliteStore) -> None:
    a = mint_token("alpha", now=0.0)
    b = mint_token("beta", now=0.0)
    store.put_token(a.record)
    store.put_token(b.record)
    auth = TokenAuthenticator(store)
    assert auth.authenticate(a.token).name == "alpha"
    assert auth.authenticate(b.token).name == "beta"


FAILURE_CASES = [
    "empty", "wrong secret", "last character changed", "secret truncated", "secret extended", "unknown id",
    "id of another length", "wrong prefix", "upper-case prefix", "no prefix", "no secret part",
    "no separator before secret", "no id", "only the prefix", "only underscores", "whitespace around",
    "bearer scheme included", "newline appended", "nul inside", "non-ascii", "over-long", "huge",
]


def _failures(minted: MintedToken) -> dict[str, str]:
    prefix, token_id, secret_part = _parts(minted.token)
    rng = random.Random(7)
    other_secret = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
                           for _ in range(len(secret_part)))
    flipped = secret_part[:-1] + ("A" if secret_part[-1] != "A" else "B")
    return {
        "empty": "",
        "wrong secret": f"{prefix}_{token_id}_{other_secret}",
        "last character changed": f"{prefix}_{token_id}_{flipped}",
        "secret truncated": f"{prefix}_{token_id}_{secret_part[:-1]}",
        "secret extended": f"{prefix}_{token_id}_{secret_part}x",
        "unknown id": f"{prefix}_{'0' * 16}_{secret_part}",
        "id of another length": f"{prefix}_{token_id}0_{secret_part}",
        "wrong prefix": f"tok_{token_id}_{secret_part}",
        "upper-case prefix": f"{prefix.upper()}_{token_id}_{secret_part}",
        "no prefix": f"{token_id}_{secret_part}",
        "no secret part": f"{prefix}_{token_id}_",
        "no separator before secret": f"{prefix}_{token_id}",
        "no id": f"{prefix}__{secret_part}",
        "only the prefix": prefix,
        "only underscores": "__",
        "whitespace around": f" {minted.token} ",
        "bearer scheme included": f"Bearer {minted.token}",
        "newline appended": minted.token + "\n",
        "nul inside": minted.token[:10] + "\x00" + minted.token[10:],
        "non-ascii": f"{prefix}_{token_id}_{secret_part[:-1]}é",
        "over-long": minted.token + "x" * (MAX_TOKEN_BYTES - len(minted.token) + 1),
        "huge": "x" * 100_000,
    }


@pytest.mark.parametrize("case", FAILURE_CASES)
def test_every_failure_says_the_same_thing(store: SqliteStore, minted: MintedToken, case: str) -> None:
    bad = _failures(minted)[case]
    with pytest.raises(Unauthenticated) as info:
        TokenAuthenticator(store).authenticate(bad)
    assert str(info.value) == INVALID
    assert info.value.__cause__ is None
    # The presented token never comes back in the error.
    _, _, secret_part = _parts(minted.token)
    assert secret_part not in repr(info.value)


def test_the_case_list_covers_every_failure(minted: MintedToken) -> None:
    assert sorted(FAILURE_CASES) == sorted(_failures(minted))


def test_over_long_limit_is_exact(store: SqliteStore) -> None:
    # A well-formed token of exactly MAX_TOKEN_BYTES passes the length check and reaches the lookup.
    token = mint_token("long", now=0.0)
    prefix, token_id, secret_part = _parts(token.token)
    padded_secret = secret_part + "A" * (MAX_TOKEN_BYTES - len(token.token))
    digest = hashlib.sha256(b"secretsvc.token.v1\x00" + padded_secret.encode()).digest()
    padded = TokenRecord(token_id=token_id, name="long", token_hash=digest, created_at=0.0)
    store.put_token(padded)
    exact = f"{prefix}_{token_id}_{padded_secret}"
    assert len(exact) == MAX_TOKEN_BYTES
    assert TokenAuthenticator(store).authenticate(exact).name == "long"
    with pytest.raises(Unauthenticated):
        TokenAuthenticator(store).authenticate(exact + "A")


def test_a_token_does_not_authenticate_against_another_store(tmp_path: Path, minted: MintedToken) -> None:
    with SqliteStore(tmp_path / "other.db") as other, pytest.raises(Unauthenticated):
        TokenAuthenticator(other).authenticate(minted.token)


def test_reissuing_a_token_id_replaces_the_old_secret(store: SqliteStore, minted: MintedToken) -> None:
    replacement = mint_token("ci-deployer", now=2.0)
    reissued = TokenRecord(
        token_id=minted.record.token_id, name="ci-deployer", token_hash=replacement.record.token_hash,
        created_at=2.0,
    )
    store.put_token(reissued)
    with pytest.raises(Unauthenticated):
        TokenAuthenticator(store).authenticate(minted.token)
    prefix, token_id, _ = _parts(minted.token)
    _, _, new_secret = _parts(replacement.token)
    assert TokenAuthenticator(store).authenticate(f"{prefix}_{token_id}_{new_secret}").name == "ci-deployer"


# --- what is shown and what is stored --------------------------------------------------------------------------


def test_minted_token_repr_hides_the_token(minted: MintedToken) -> None:
    _, token_id, secret_part = _parts(minted.token)
    for shown in (repr(minted), str(minted), f"{minted}", f"{minted!r}"):
        assert secret_part not in shown
        assert minted.token not in shown
        assert "redacted" in shown
        assert token_id in shown


def test_token_record_holds_only_a_hash(minted: MintedToken) -> None:
    _, _, secret_part = _parts(minted.token)
    record = minted.record
    assert record.token_hash == hashlib.sha256(b"secretsvc.token.v1\x00" + secret_part.encode()).digest()
    assert secret_part.encode() not in record.token_hash
    assert secret_part not in repr(record)
    for name in record.__slots__:
        field = getattr(record, name)
        assert secret_part not in str(field)


def test_the_database_never_holds_the_token(tmp_path: Path, store: SqliteStore, minted: MintedToken) -> None:
    _, token_id, secret_part = _parts(minted.token)
    store.checkpoint()
    with sqlite3.connect(store.path) as conn:
        rows = list(conn.execute("SELECT * FROM tokens"))
    assert len(rows) == 1
    assert token_id in rows[0]
    assert not any(secret_part in str(column) for column in rows[0])
    for file in tmp_path.iterdir():
        assert secret_part.encode() not in file.read_bytes()


def test_the_hash_is_domain_separated(minted: MintedToken) -> None:
    _, _, secret_part = _parts(minted.token)
    assert minted.record.token_hash != hashlib.sha256(secret_part.encode()).digest()


def test_undecodable_text_is_unauthenticated_not_a_crash(store: SqliteStore, minted: MintedToken) -> None:
    prefix, token_id, _ = _parts(minted.token)
    with pytest.raises(Unauthenticated, match=INVALID):
        TokenAuthenticator(store).authenticate(f"{prefix}_{token_id}_\udcff")
    with pytest.raises(Unauthenticated, match=INVALID):
        TokenAuthenticator(store).authenticate(f"{prefix}_\ud800_{token_id}")
