"""Ed25519 signing keys: sign and verify, PEM round trips, key ids, refusals, and keys kept out of reprs."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from secretsvc.crypto import pki
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.crypto.signing import (
    MAX_KEY_PEM_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    SigningKey,
    VerifyKey,
)
from secretsvc.errors import InvalidArgument
from tests.fakecreds import broken_pem


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def test_a_signature_verifies_with_the_public_key_only(key: SigningKey) -> None:
    signature = key.sign(b"checkpoint 7")
    assert len(signature) == SIGNATURE_BYTES
    public = VerifyKey.from_pem(key.public_key.to_pem())
    assert public.verify(signature, b"checkpoint 7")


def test_a_changed_message_signature_or_key_fails(key: SigningKey) -> None:
    signature = key.sign(b"checkpoint 7")
    assert not key.public_key.verify(signature, b"checkpoint 8")
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not key.public_key.verify(flipped, b"checkpoint 7")
    assert not SigningKey.generate().public_key.verify(signature, b"checkpoint 7")


@pytest.mark.parametrize("length", [0, 1, SIGNATURE_BYTES - 1, SIGNATURE_BYTES + 1, 1000])
def test_a_signature_of_the_wrong_length_is_false_not_an_error(key: SigningKey, length: int) -> None:
    assert not key.public_key.verify(b"\x00" * length, b"m")


def test_private_key_pem_round_trip_keeps_the_key(key: SigningKey) -> None:
    pem = key.to_pem()
    assert isinstance(pem, SecretBytes)
    assert pem.reveal().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = SigningKey.from_pem(pem)
    assert again.public_key == key.public_key
    assert key.public_key.verify(again.sign(b"x"), b"x")


def test_key_id_is_a_stable_fingerprint_of_the_public_key(key: SigningKey) -> None:
    assert key.key_id == key.public_key.key_id == VerifyKey.from_pem(key.public_key.to_pem()).key_id
    assert key.key_id.startswith("ed25519:") and len(key.key_id) == len("ed25519:") + 32
    assert SigningKey.generate().key_id != key.key_id


def test_the_private_key_stays_out_of_reprs_and_pickles(key: SigningKey) -> None:
    secret_part = key.to_pem().reveal().split(b"\n")[1].decode()
    for text in (repr(key), str(key), f"{key}"):
        assert secret_part not in text and "redacted" in text and key.key_id in text
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_a_non_ed25519_key_is_refused() -> None:
    ca = pki.new_ca("test CA", now=datetime(2030, 1, 1, tzinfo=UTC))  # an ECDSA P-256 key and certificate
    with pytest.raises(InvalidArgument, match="not an Ed25519"):
        SigningKey.from_pem(ca.key_pem)
    with pytest.raises(InvalidArgument):
        VerifyKey.from_pem(ca.cert_pem)  # a certificate is not a bare public key


@pytest.mark.parametrize("pem", [b"", b"garbage", broken_pem("PRIVATE KEY", "AAAA")])
def test_garbage_is_refused_without_quoting_it(pem: bytes) -> None:
    with pytest.raises(InvalidArgument) as private:
        SigningKey.from_pem(SecretBytes(pem))
    with pytest.raises(InvalidArgument):
        VerifyKey.from_pem(pem)
    assert "AAAA" not in str(private.value)


def test_oversized_pem_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidArgument, match="MAX_KEY_PEM_BYTES"):
        VerifyKey.from_pem(b"x" * (MAX_KEY_PEM_BYTES + 1))
    with pytest.raises(InvalidArgument, match="MAX_KEY_PEM_BYTES"):
        SigningKey.from_pem(SecretBytes(b"x" * (MAX_KEY_PEM_BYTES + 1)))


@pytest.mark.parametrize("raw", [b"", b"\x01" * (PUBLIC_KEY_BYTES - 1), b"\x01" * (PUBLIC_KEY_BYTES + 1)])
def test_a_raw_public_key_must_be_32_bytes(raw: bytes) -> None:
    with pytest.raises(InvalidArgument):
        VerifyKey(raw)
