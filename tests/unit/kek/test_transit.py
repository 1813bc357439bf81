"""`TransitKek` against a real OpenBao: wrap/unwrap with bound associated data, versions and rotation,
min_decryption_version, batches, token and AppRole auth with renewal, and the failure kinds (unreachable and
hung servers are `KekUnavailable`, never `DecryptionFailed`)."""

from __future__ import annotations

import contextlib
import itertools
import os
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.crypto import envelope
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import WrappedKey
from secretsvc.kek.transit import TransitKek, TransitSettings
from secretsvc.kek.vaultauth import AppRoleLogin, TokenLogin
from tests.baokit import OpenBao, start_openbao

_names = itertools.count(1)
AAD = b"secretsvc.dek.v1|test-record"


def _key_name(openbao: OpenBao, key_type: str = "aes256-gcm96") -> str:
    name = f"kek-{os.getpid()}-{next(_names)}"
    openbao.create_key(name, key_type)
    return name


def _open(openbao: OpenBao, name: str, **kw: object) -> TransitKek:
    login = kw.pop("login", TokenLogin(token=SecretBytes(openbao.root_token.encode())))
    assert isinstance(login, TokenLogin | AppRoleLogin)
    timeout = kw.pop("timeout_seconds", 5.0)
    assert isinstance(timeout, float)
    return TransitKek.open(TransitSettings(openbao.addr, name, login, timeout_seconds=timeout))


def _write_secret_file(path: Path, value: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return path


def _policy_for(openbao: OpenBao, name: str) -> str:
    policy = f"transit-{name}"
    openbao.put_policy(
        policy,
        "\n".join(
            f'path "transit/{p}" {{ capabilities = ["{cap}"] }}'
            for p, cap in (
                (f"keys/{name}", "read"),
                (f"keys/{name}/rotate", "update"),
                (f"encrypt/{name}", "update"),
                (f"decrypt/{name}", "update"),
            )
        ),
    )
    return policy


@pytest.fixture
def kek(openbao: OpenBao) -> TransitKek:
    return _open(openbao, _key_name(openbao))


def test_wrap_and_unwrap_with_associated_data(kek: TransitKek) -> None:
    key = SecretBytes(os.urandom(32))
    wrapped = kek.wrap(key, AAD)
    assert wrapped.key_id == kek.key_id and kek.key_id.startswith("vault-transit:transit/")
    assert wrapped.key_version == 1 and wrapped.blob.startswith(b"vault:v1:")
    assert kek.unwrap(wrapped, AAD) == key


def test_other_associated_data_fails_as_decryption_failed(kek: TransitKek) -> None:
    wrapped = kek.wrap(SecretBytes(os.urandom(32)), AAD)
    with pytest.raises(errors.DecryptionFailed):
        kek.unwrap(wrapped, AAD + b"x")
    with pytest.raises(errors.DecryptionFailed):
        kek.unwrap(wrapped, b"")


def test_tampered_ciphertext_and_mismatched_header_version_fail(kek: TransitKek) -> None:
    wrapped = kek.wrap(SecretBytes(os.urandom(32)), AAD)
    blob = bytearray(wrapped.blob)
    blob[12] = ord("A") if blob[12] != ord("A") else ord("B")
    with pytest.raises(errors.DecryptionFailed):
        kek.unwrap(WrappedKey(wrapped.key_id, 1, bytes(blob)), AAD)
    # The header claims version 2 for a v1 ciphertext: refused before Transit is asked.
    with pytest.raises(errors.DecryptionFailed):
        kek.unwrap(WrappedKey(wrapped.key_id, 2, wrapped.blob), AAD)
    with pytest.raises(errors.DecryptionFailed):
        kek.unwrap(WrappedKey(wrapped.key_id, 1, b"not a transit ciphertext"), AAD)


def test_a_wrap_from_another_key_does_not_unwrap(openbao: OpenBao, kek: TransitKek) -> None:
    other = _open(openbao, _key_name(openbao))
    wrapped = other.wrap(SecretBytes(os.urandom(32)), AAD)
    with pytest.raises(errors.DecryptionFailed):
        kek.unwrap(wrapped, AAD)  # other key id
    with pytest.raises(errors.DecryptionFailed):
        kek.unwrap(WrappedKey(kek.key_id, 1, wrapped.blob), AAD)  # same id claimed: Transit's key refuses it


def test_rotation_adds_a_version_and_older_ones_still_unwrap(kek: TransitKek) -> None:
    key1 = SecretBytes(os.urandom(32))
    old = kek.wrap(key1, AAD)
    assert kek.rotate() == 2
    assert kek.primary_version() == 2
    assert [v.version for v in kek.versions()] == [1, 2]
    assert all(v.created_at > 1_600_000_000 for v in kek.versions())
    new = kek.wrap(SecretBytes(os.urandom(32)), AAD)
    assert new.key_version == 2 and new.blob.startswith(b"vault:v2:")
    assert kek.unwrap(old, AAD) == key1


def test_min_decryption_version_retires_old_versions(openbao: OpenBao) -> None:
    name = _key_name(openbao)
    kek = _open(openbao, name)
    old = kek.wrap(SecretBytes(os.urandom(32)), AAD)
    kek.rotate()
    openbao.api("POST", f"transit/keys/{name}/config", {"min_decryption_version": 2})
    kek.check_reachable()
    assert [v.version for v in kek.versions()] == [2]
    with pytest.raises(errors.DecryptionFailed):
        kek.unwrap(old, AAD)


def test_envelopes_seal_and_open_through_transit(kek: TransitKek) -> None:
    ctx = envelope.EnvelopeContext.for_secret("ns", "db/password", 1)
    sealed = envelope.seal(kek, b"value", ctx)
    assert envelope.parse_header(sealed).key_id == kek.key_id
    assert envelope.open_envelope(kek, sealed, ctx).reveal() == b"value"
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(kek, sealed, envelope.EnvelopeContext.for_secret("ns", "db/password", 2))
    kek.rotate()
    moved = envelope.rewrap(kek, sealed, ctx)
    assert envelope.parse_header(moved).key_version == 2
    assert envelope.open_envelope(kek, moved, ctx).reveal() == b"value"


def test_batches_wrap_and_unwrap_in_one_request_each(kek: TransitKek) -> None:
    keys = [SecretBytes(os.urandom(32)) for _ in range(5)]
    aads = [AAD + bytes([i]) for i in range(5)]
    wrapped = kek.wrap_many(list(zip(keys, aads, strict=True)))
    assert [w.key_version for w in wrapped] == [1] * 5
    items = list(zip(wrapped, aads, strict=True))
    items[2] = (wrapped[2], b"wrong aad")
    items[3] = (WrappedKey(kek.key_id, 7, wrapped[3].blob), aads[3])
    out = kek.unwrap_many(items)
    assert out[0] == keys[0] and out[1] == keys[1] and out[4] == keys[4]
    assert isinstance(out[2], errors.DecryptionFailed) and isinstance(out[3], errors.DecryptionFailed)
    assert kek.wrap_many([]) == [] and kek.unwrap_many([]) == []


def test_large_batches_are_split_below_the_servers_json_limits(kek: TransitKek) -> None:
    keys = [SecretBytes(os.urandom(32)) for _ in range(250)]  # 250 items in one request would be refused
    aads = [AAD + i.to_bytes(2, "big") for i in range(250)]
    wrapped = kek.wrap_many(list(zip(keys, aads, strict=True)))
    assert kek.unwrap_many(list(zip(wrapped, aads, strict=True))) == keys


def test_keys_that_cannot_bind_associated_data_are_refused(openbao: OpenBao) -> None:
    with pytest.raises(errors.KeyringError, match="AEAD"):
        _open(openbao, _key_name(openbao, "ed25519"))
    derived = f"derived-{os.getpid()}"
    openbao.api("POST", f"transit/keys/{derived}", {"type": "aes256-gcm96", "derived": True})
    with pytest.raises(errors.KeyringError, match="derived"):
        _open(openbao, derived)
    with pytest.raises(errors.KeyringError, match="not found"):
        _open(openbao, "no-such-key")


def test_a_token_without_permission_is_unavailable_not_decryption_failed(openbao: OpenBao, kek: TransitKek) -> None:
    wrapped = kek.wrap(SecretBytes(os.urandom(32)), AAD)
    name = kek.key_id.rsplit("/", 1)[1]
    openbao.put_policy(f"read-only-{name}", f'path "transit/keys/{name}" {{ capabilities = ["read"] }}')
    token = openbao.create_token([f"read-only-{name}"])
    weak = _open(openbao, name, login=TokenLogin(token=SecretBytes(token.encode())))
    with pytest.raises(errors.KekUnavailable) as info:
        weak.unwrap(wrapped, AAD)
    assert token not in str(info.value)


def test_a_token_that_may_not_look_itself_up_still_works(openbao: OpenBao) -> None:
    name = _key_name(openbao)
    out = openbao.api(
        "POST", "auth/token/create", {"policies": [_policy_for(openbao, name)], "no_default_policy": True}
    )
    auth = out["auth"]
    assert isinstance(auth, dict)
    kek = _open(openbao, name, login=TokenLogin(token=SecretBytes(str(auth["client_token"]).encode())))
    key = SecretBytes(os.urandom(32))
    assert kek.unwrap(kek.wrap(key, AAD), AAD) == key


def test_token_file_is_read_again_when_the_token_is_revoked(openbao: OpenBao, tmp_path: Path) -> None:
    name = _key_name(openbao)
    policy = _policy_for(openbao, name)
    first = openbao.create_token([policy])
    token_file = _write_secret_file(tmp_path / "token", first)
    kek = _open(openbao, name, login=TokenLogin(token_file=token_file))
    wrapped = kek.wrap(SecretBytes(os.urandom(32)), AAD)
    openbao.api("POST", "auth/token/revoke", {"token": first})
    _write_secret_file(token_file, openbao.create_token([policy]))
    assert len(kek.unwrap(wrapped, AAD)) == 32


@pytest.mark.slow
def test_a_short_lived_token_is_renewed_before_it_expires(openbao: OpenBao) -> None:
    name = _key_name(openbao)
    token = openbao.create_token([_policy_for(openbao, name)], ttl="3s")
    kek = _open(openbao, name, login=TokenLogin(token=SecretBytes(token.encode())))
    key = SecretBytes(os.urandom(32))
    wrapped = kek.wrap(key, AAD)
    for _ in range(3):  # 6.3 s in all: without renewal the 3 s token would be long gone
        time.sleep(2.1)
        assert kek.unwrap(wrapped, AAD) == key
    looked = openbao.api("POST", "auth/token/lookup", {"token": token})["data"]
    assert isinstance(looked, dict) and int(looked["ttl"]) > 0


@pytest.mark.slow
def test_approle_login_and_renewal(openbao: OpenBao, tmp_path: Path) -> None:
    name = _key_name(openbao)
    policy = _policy_for(openbao, name)
    # Already enabled when an earlier test in this process got here first.
    with contextlib.suppress(urllib.error.HTTPError):
        openbao.api("POST", "sys/auth/approle", {"type": "approle"})
    role = f"role-{name}"
    openbao.api(
        "POST", f"auth/approle/role/{role}", {"token_policies": [policy], "token_ttl": "3s", "token_max_ttl": "5s"}
    )
    role_id = openbao.api("GET", f"auth/approle/role/{role}/role-id")["data"]
    secret_id = openbao.api("POST", f"auth/approle/role/{role}/secret-id", {})["data"]
    assert isinstance(role_id, dict) and isinstance(secret_id, dict)
    login = AppRoleLogin(
        _write_secret_file(tmp_path / "role-id", str(role_id["role_id"])),
        _write_secret_file(tmp_path / "secret-id", str(secret_id["secret_id"])),
    )
    kek = _open(openbao, name, login=login)
    key = SecretBytes(os.urandom(32))
    wrapped = kek.wrap(key, AAD)
    # Past the 5 s max TTL: renewal alone cannot keep the token, so a fresh login must happen.
    for _ in range(4):
        time.sleep(2.1)
        assert kek.unwrap(wrapped, AAD) == key

    bad = AppRoleLogin(login.role_id_file, _write_secret_file(tmp_path / "bad-secret-id", "0" * 36))
    with pytest.raises(errors.KekUnavailable, match="cannot log in"):
        _open(openbao, name, login=bad)


@pytest.fixture
def own_openbao(tmp_path: Path) -> Iterator[OpenBao]:
    bao = start_openbao(tmp_path / "bao", persistent=True)
    try:
        yield bao
    finally:
        bao.stop()


@pytest.mark.slow
def test_server_down_mid_run_is_unavailable_and_recovers(own_openbao: OpenBao) -> None:
    name = _key_name(own_openbao)
    kek = _open(own_openbao, name, timeout_seconds=2.0)
    key = SecretBytes(os.urandom(32))
    wrapped = kek.wrap(key, AAD)
    own_openbao.stop()
    with pytest.raises(errors.KekUnavailable) as info:
        kek.unwrap(wrapped, AAD)
    assert info.value.retry_after_seconds > 0
    with pytest.raises(errors.KekUnavailable):
        kek.wrap(key, AAD)
    with pytest.raises(errors.KekUnavailable):
        kek.check_reachable()
    own_openbao.start()
    assert kek.unwrap(wrapped, AAD) == key


@pytest.mark.slow
def test_a_hung_server_is_unavailable_within_the_deadline(own_openbao: OpenBao) -> None:
    kek = _open(own_openbao, _key_name(own_openbao), timeout_seconds=1.0)
    wrapped = kek.wrap(SecretBytes(os.urandom(32)), AAD)
    own_openbao.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(errors.KekUnavailable):
            kek.unwrap(wrapped, AAD)
        assert time.monotonic() - started < 3.0
    finally:
        own_openbao.thaw()
