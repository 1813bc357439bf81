"""Known-answer vectors for envelope format v1 (tests/vectors/envelope_v1.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from secretsvc import errors
from secretsvc.crypto import envelope
from tests.vectors import generate_envelope_vectors as gen

VECTORS: dict[str, Any] = json.loads(gen.VECTOR_FILE.read_text(encoding="utf-8"))
VALID = [v for v in VECTORS["vectors"] if v["valid"]]
INVALID = [v for v in VECTORS["vectors"] if not v["valid"]]


def test_the_file_holds_both_kinds() -> None:
    assert len(VALID) >= 5
    assert len(INVALID) >= 20
    kinds = {v["context"]["kind"] for v in VALID}
    assert kinds == {"secret", "transit", "transit_key_material"}


def test_the_file_matches_the_generator_byte_for_byte() -> None:
    # Re-sealing with the recorded keys and nonces must reproduce every envelope exactly.
    assert gen.render() == gen.VECTOR_FILE.read_text(encoding="utf-8")


def test_the_kek_keys_are_the_recorded_ones() -> None:
    assert VECTORS["key_id"] == gen.KEY_ID
    assert VECTORS["kek_keys"] == {str(v): gen.kek_key(v).hex() for v in gen.KEK_VERSIONS}


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_valid_vector_opens_to_its_plaintext(vector: dict[str, Any]) -> None:
    ctx = gen.context_from_json(vector["context"])
    assert ctx.encoded.hex() == vector["context_encoding"]
    opened = envelope.open_envelope(gen.keyset(2), bytes.fromhex(vector["envelope"]), ctx)
    assert opened.reveal() == bytes.fromhex(vector["plaintext"])
    header = envelope.parse_header(bytes.fromhex(vector["envelope"]))
    assert header.key_id == VECTORS["key_id"]
    assert header.key_version == vector["kek_version"]


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_valid_vector_reseals_to_the_same_bytes(vector: dict[str, Any]) -> None:
    r = vector["randomness"]
    random = gen.FixedRandom(
        [bytes.fromhex(r["data_key"]), bytes.fromhex(r["wrap_nonce"]), bytes.fromhex(r["payload_nonce"])]
    )
    ctx = gen.context_from_json(vector["context"])
    sealed = envelope.seal(
        gen.keyset(vector["kek_version"], random), bytes.fromhex(vector["plaintext"]), ctx, random=random
    )
    assert sealed.hex() == vector["envelope"]
    assert random.exhausted()


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v["name"])
def test_invalid_vector_fails_uniformly(vector: dict[str, Any]) -> None:
    ctx = gen.context_from_json(vector["context"])
    data = bytes.fromhex(vector["envelope"])
    with pytest.raises(errors.DecryptionFailed) as info:
        envelope.open_envelope(gen.keyset(2), data, ctx)
    assert str(info.value) == "decryption failed"

    # Rewrap authenticates the header and wrapped key but not the payload; either way it must never turn a
    # bad envelope into one that opens.
    try:
        rewrapped = envelope.rewrap(gen.keyset(2), data, ctx)
    except errors.DecryptionFailed:
        return
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(gen.keyset(2), rewrapped, ctx)
