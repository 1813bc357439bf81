"""AES-256-GCM, HMAC-SHA256 and scrypt as `secretsvc.crypto.aead` exposes them."""

from __future__ import annotations

import hashlib
import os

import pytest

from secretsvc import errors
from secretsvc.crypto import aead
from secretsvc.crypto.secretbytes import SecretBytes

KEY = SecretBytes(hashlib.sha256(b"aead test key").digest())


def test_round_trip_and_layout() -> None:
    nonce = bytes(range(12))
    sealed = aead.seal(KEY, b"hello", b"aad", random=lambda n: nonce[:n])
    assert sealed[:12] == nonce
    assert len(sealed) == 5 + aead.OVERHEAD_BYTES
    assert aead.open(KEY, sealed, b"aad") == b"hello"


def test_fixed_nonce_is_deterministic_and_random_nonces_differ() -> None:
    fixed = bytes(12)
    assert aead.seal(KEY, b"x", b"", random=lambda n: fixed) == aead.seal(
        KEY, b"x", b"", random=lambda n: fixed
    )
    assert aead.seal(KEY, b"x", b"") != aead.seal(KEY, b"x", b"")


def test_prefix_is_prepended_but_not_part_of_the_ciphertext() -> None:
    sealed = aead.seal(KEY, b"body", b"", prefix=b"HDR")
    assert sealed.startswith(b"HDR")
    assert aead.open(KEY, sealed[3:], b"") == b"body"


def test_other_aad_or_key_fails() -> None:
    sealed = aead.seal(KEY, b"hello", b"aad")
    with pytest.raises(errors.DecryptionFailed):
        aead.open(KEY, sealed, b"aae")
    with pytest.raises(errors.DecryptionFailed):
        aead.open(aead.random_key(), sealed, b"aad")


@pytest.mark.parametrize("length", range(aead.OVERHEAD_BYTES))
def test_input_shorter_than_nonce_and_tag_fails(length: int) -> None:
    with pytest.raises(errors.DecryptionFailed):
        aead.open(KEY, bytes(length), b"")


def test_empty_plaintext_is_a_valid_minimum() -> None:
    sealed = aead.seal(KEY, b"", b"")
    assert len(sealed) == aead.OVERHEAD_BYTES
    assert aead.open(KEY, sealed, b"") == b""


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_wrong_key_size_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="32-byte key"):
        aead.seal(SecretBytes(bytes(size)), b"", b"")


def test_random_source_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="wrong number of bytes"):
        aead.seal(KEY, b"", b"", random=lambda n: bytes(n - 1))
    with pytest.raises(ValueError, match="wrong number of bytes"):
        aead.random_key(lambda n: bytes(n + 1))


def test_random_key_is_32_fresh_bytes() -> None:
    a, b = aead.random_key(), aead.random_key()
    assert len(a) == aead.KEY_BYTES
    assert a != b


def test_hmac_sha256_matches_rfc4231_case_2() -> None:
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert aead.hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == expected
    assert aead.hmac_sha256(SecretBytes(b"Jefe"), b"what do ya want for nothing?").hex() == expected


def test_scrypt_matches_an_independent_implementation() -> None:
    salt = os.urandom(16)
    params = aead.ScryptParams(n=2**10, r=8, p=2)
    derived = aead.scrypt(SecretBytes(b"correct horse"), salt, params)
    assert derived.reveal() == hashlib.scrypt(b"correct horse", salt=salt, n=2**10, r=8, p=2, dklen=32)
    assert derived != aead.scrypt(SecretBytes(b"correct horsf"), salt, params)


def test_scrypt_defaults() -> None:
    assert aead.ScryptParams() == aead.ScryptParams(n=2**15, r=8, p=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 1},
        {"n": 3},
        {"n": 1000},
        {"n": 2**21},
        {"n": 0},
        {"n": -2},
        {"r": 0},
        {"r": aead.MAX_SCRYPT_R + 1},
        {"p": 0},
        {"p": aead.MAX_SCRYPT_P + 1},
        {"n": 2**20, "r": 16},
        {"n": True},
        {"r": 8.0},
    ],
)
def test_scrypt_params_out_of_bounds_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(errors.InvalidArgument, match="scrypt"):
        aead.ScryptParams(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, aead.MIN_SALT_BYTES - 1, aead.MAX_SALT_BYTES + 1])
def test_scrypt_salt_size_is_bounded(size: int) -> None:
    with pytest.raises(errors.InvalidArgument, match="salt"):
        aead.scrypt(SecretBytes(b"pw"), bytes(size), aead.ScryptParams(n=16, r=1, p=1))
