"""Property tests: the envelope round-trips anything and no change to it or its context goes unnoticed."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsvc import errors
from secretsvc.crypto import envelope
from secretsvc.crypto.envelope import EnvelopeContext
from secretsvc.crypto.keyset import Keyset
from secretsvc.crypto.secretbytes import SecretBytes


def _kek() -> Keyset:
    # Two versions, so a changed key-version byte can land on a version that exists.
    versions = [(v, 0.0, SecretBytes(hashlib.sha256(b"prop kek %d" % v).digest())) for v in (1, 2, 3)]
    return Keyset("local:0123456789abcdef", versions)


KEK = _kek()

texts = st.text(max_size=40)
versions = st.integers(min_value=1, max_value=envelope.MAX_CONTEXT_VERSION)
contexts = st.one_of(
    st.builds(EnvelopeContext.for_secret, texts, texts, versions),
    st.builds(EnvelopeContext.for_transit, texts, st.binary(max_size=40)),
    st.builds(EnvelopeContext.for_transit_key_material, texts, versions),
)
plaintexts = st.binary(max_size=2048)

FIXED_CTX = EnvelopeContext.for_secret("ns", "app/key", 4)
FIXED = envelope.seal(KEK, b"a fixed plaintext of some length", FIXED_CTX)


@given(plaintexts, contexts)
def test_round_trip(plaintext: bytes, ctx: EnvelopeContext) -> None:
    sealed = envelope.seal(KEK, plaintext, ctx)
    assert envelope.open_envelope(KEK, sealed, ctx).reveal() == plaintext


@given(contexts, contexts)
def test_distinct_contexts_have_distinct_encodings_and_do_not_open(
    a: EnvelopeContext, b: EnvelopeContext
) -> None:
    if a == b:
        assert a.encoded == b.encoded
        return
    assert a.encoded != b.encoded
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(KEK, envelope.seal(KEK, b"x", a), b)


@given(st.data())
def test_any_changed_byte_fails(data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(FIXED) - 1), label="index")
    delta = data.draw(st.integers(min_value=1, max_value=255), label="xor")
    changed = bytearray(FIXED)
    changed[index] ^= delta
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(KEK, bytes(changed), FIXED_CTX)


@settings(max_examples=50)
@given(plaintexts, contexts, st.data())
def test_any_changed_byte_of_any_envelope_fails(
    plaintext: bytes, ctx: EnvelopeContext, data: st.DataObject
) -> None:
    sealed = envelope.seal(KEK, plaintext, ctx)
    index = data.draw(st.integers(min_value=0, max_value=len(sealed) - 1), label="index")
    changed = bytearray(sealed)
    changed[index] ^= data.draw(st.integers(min_value=1, max_value=255), label="xor")
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(KEK, bytes(changed), ctx)


@given(st.binary(min_size=1, max_size=8))
def test_appended_bytes_fail(extra: bytes) -> None:
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(KEK, FIXED + extra, FIXED_CTX)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_open_and_never_raise_anything_else(junk: bytes) -> None:
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(KEK, junk, FIXED_CTX)


@pytest.mark.parametrize(
    "ctx", [FIXED_CTX, EnvelopeContext.for_transit("t", b"c")], ids=["secret", "transit"]
)
def test_truncation_at_every_length_fails(ctx: EnvelopeContext) -> None:
    sealed = envelope.seal(KEK, b"0123456789", ctx)
    for length in range(len(sealed)):
        with pytest.raises(errors.DecryptionFailed):
            envelope.open_envelope(KEK, sealed[:length], ctx)
        # Rewrap leaves the payload unread, so it may pass a cut payload through, but never makes it whole.
        try:
            moved = envelope.rewrap(KEK, sealed[:length], ctx)
        except errors.DecryptionFailed:
            continue
        with pytest.raises(errors.DecryptionFailed):
            envelope.open_envelope(KEK, moved, ctx)


@settings(max_examples=30)
@given(plaintexts, contexts)
def test_rewrap_preserves_the_plaintext(plaintext: bytes, ctx: EnvelopeContext) -> None:
    old = Keyset(KEK.key_id, [(1, 0.0, KEK.material(1))])
    sealed = envelope.seal(old, plaintext, ctx)
    moved = envelope.rewrap(KEK, sealed, ctx)
    assert envelope.parse_header(moved).key_version == 3
    assert envelope.open_envelope(KEK, moved, ctx).reveal() == plaintext
