"""Envelope format v1: round trips, binding, limits, rewrap and crypto-shredding."""

from __future__ import annotations

import hashlib
import os

import pytest

from secretsvc import errors
from secretsvc.crypto import envelope
from secretsvc.crypto.envelope import EnvelopeContext
from secretsvc.crypto.keyset import Keyset
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyVersionInfo, WrappedKey

CTX = EnvelopeContext.for_secret("default", "db/conn", 1)


def _kek(key_id: str = "local:00000000000000aa") -> Keyset:
    return Keyset.generate(key_id)


def test_round_trip_of_bytes_and_secretbytes() -> None:
    kek = _kek()
    sealed = envelope.seal(kek, b"value", CTX)
    assert envelope.open_envelope(kek, sealed, CTX) == SecretBytes(b"value")
    sealed = envelope.seal(kek, SecretBytes(b"value"), CTX)
    assert envelope.open_envelope(kek, sealed, CTX).reveal() == b"value"


def test_one_mebibyte_round_trip() -> None:
    kek = _kek()
    plaintext = os.urandom(1 << 20)
    sealed = envelope.seal(kek, plaintext, CTX)
    assert len(sealed) == len(plaintext) + envelope.parse_header(sealed).payload_offset + 28
    assert envelope.open_envelope(kek, sealed, CTX).reveal() == plaintext


def test_every_seal_uses_a_fresh_data_key_and_nonce() -> None:
    kek = _kek()
    a, b = envelope.seal(kek, b"same", CTX), envelope.seal(kek, b"same", CTX)
    ha, hb = envelope.parse_header(a), envelope.parse_header(b)
    assert ha.wrapped_key != hb.wrapped_key
    assert a[ha.payload_offset :] != b[hb.payload_offset :]


def test_header_is_parsed_as_documented() -> None:
    kek = _kek()
    kek.rotate()
    sealed = envelope.seal(kek, b"v", CTX)
    header = envelope.parse_header(sealed)
    key_id = b"local:00000000000000aa"
    assert sealed[0] == 1
    assert sealed[1] == len(key_id)
    assert sealed[2 : 2 + len(key_id)] == key_id
    assert sealed[2 + len(key_id) : 6 + len(key_id)] == (2).to_bytes(4, "big")
    wrapped_len = int.from_bytes(sealed[6 + len(key_id) : 8 + len(key_id)], "big")
    assert header.wrapped_key == sealed[8 + len(key_id) : 8 + len(key_id) + wrapped_len]
    assert (header.format_version, header.key_id, header.key_version) == (1, key_id.decode(), 2)
    assert header.payload_offset == 8 + len(key_id) + wrapped_len
    assert "bytes>" in repr(header)
    assert header.wrapped_key.hex() not in repr(header)


def test_other_kek_fails_uniformly() -> None:
    sealed = envelope.seal(_kek(), b"v", CTX)
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(_kek("local:00000000000000bb"), sealed, CTX)
    # Same id, other key material: the unwrap itself fails.
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(_kek(), sealed, CTX)


CONTEXTS = [
    EnvelopeContext.for_secret("default", "db/conn", 1),
    EnvelopeContext.for_secret("default", "db/conn", 2),
    EnvelopeContext.for_secret("other", "db/conn", 1),
    EnvelopeContext.for_secret("default", "db/conm", 1),
    EnvelopeContext.for_secret("default/db", "conn", 1),
    EnvelopeContext.for_secret("", "defaultdb/conn", 1),
    EnvelopeContext.for_transit("db", b"conn"),
    EnvelopeContext.for_transit("db", b""),
    EnvelopeContext.for_transit("orders", b"\x00"),
    EnvelopeContext.for_transit_key_material("db", 1),
    EnvelopeContext.for_transit_key_material("orders", 1),
]


def test_contexts_encode_distinctly() -> None:
    assert len({c.encoded for c in CONTEXTS}) == len(CONTEXTS)


@pytest.mark.parametrize("sealed_for", range(len(CONTEXTS)))
def test_an_envelope_opens_only_for_its_own_context(sealed_for: int) -> None:
    kek = _kek()
    sealed = envelope.seal(kek, b"v", CONTEXTS[sealed_for])
    for i, ctx in enumerate(CONTEXTS):
        if i == sealed_for:
            assert envelope.open_envelope(kek, sealed, ctx).reveal() == b"v"
        else:
            with pytest.raises(errors.DecryptionFailed):
                envelope.open_envelope(kek, sealed, ctx)


def test_context_encoding_is_the_documented_one() -> None:
    ctx = EnvelopeContext.for_transit("k", b"\x01\x02")
    assert ctx.encoded == bytes([2, 2]) + b"\x00\x00\x00\x01k" + b"\x00\x00\x00\x02\x01\x02"
    ctx = EnvelopeContext.for_transit_key_material("k", 258)
    assert ctx.encoded == bytes([3, 2]) + b"\x00\x00\x00\x01k" + b"\x00\x00\x00\x08" + (258).to_bytes(
        8, "big"
    )


def test_context_repr_shows_only_sizes() -> None:
    ctx = EnvelopeContext.for_transit("orders", b"user-context-value")
    assert "user-context-value" not in repr(ctx)
    assert "TRANSIT" in repr(ctx)


@pytest.mark.parametrize(
    "build",
    [
        lambda: EnvelopeContext.for_secret("ns", "p", 0),
        lambda: EnvelopeContext.for_secret("ns", "p", -1),
        lambda: EnvelopeContext.for_secret("ns", "p", 2**63),
        lambda: EnvelopeContext.for_secret("ns", "p", True),
        lambda: EnvelopeContext.for_secret("ns", "p", 1.0),
        lambda: EnvelopeContext.for_secret(b"ns", "p", 1),
        lambda: EnvelopeContext.for_secret("ns", "\ud800", 1),
        lambda: EnvelopeContext.for_transit("k", "text"),
        lambda: EnvelopeContext.for_transit_key_material("k", 0),
        lambda: EnvelopeContext(envelope.ContextKind.SECRET, ()),
        lambda: EnvelopeContext(envelope.ContextKind.SECRET, ("text",)),
        lambda: EnvelopeContext(7, (b"",)),
    ],
)
def test_invalid_contexts_are_refused(build: object) -> None:
    with pytest.raises(errors.InvalidArgument):
        build()  # type: ignore[operator]


def test_context_field_length_is_bounded() -> None:
    EnvelopeContext.for_transit("k", bytes(envelope.MAX_CONTEXT_FIELD_BYTES))
    with pytest.raises(errors.LimitExceeded, match="MAX_CONTEXT_FIELD_BYTES"):
        EnvelopeContext.for_transit("k", bytes(envelope.MAX_CONTEXT_FIELD_BYTES + 1))


def test_plaintext_size_is_bounded() -> None:
    with pytest.raises(errors.LimitExceeded, match="MAX_PLAINTEXT_BYTES"):
        envelope.seal(_kek(), bytes(envelope.MAX_PLAINTEXT_BYTES + 1), CTX)


def test_oversized_envelope_fails_before_any_unwrap() -> None:
    kek = _kek()
    sealed = envelope.seal(kek, b"v", CTX)
    padded = sealed + bytes(envelope.MAX_ENVELOPE_BYTES + 1 - len(sealed))
    with pytest.raises(errors.DecryptionFailed):
        envelope.parse_header(padded)


def test_key_id_in_header_must_be_printable_ascii() -> None:
    kek = _kek()
    sealed = bytearray(envelope.seal(kek, b"v", CTX))
    for bad in (0x20, 0x7F, 0x00, 0xC3):
        sealed[5] = bad
        with pytest.raises(errors.DecryptionFailed):
            envelope.parse_header(bytes(sealed))


def test_a_wrong_context_fails_just_like_a_wrong_byte() -> None:
    kek = _kek()
    sealed = envelope.seal(kek, b"v", CTX)
    messages = set()
    for attempt in (
        lambda: envelope.open_envelope(kek, sealed, EnvelopeContext.for_secret("default", "db/conn", 2)),
        lambda: envelope.open_envelope(kek, sealed[:-1] + bytes([sealed[-1] ^ 1]), CTX),
        lambda: envelope.open_envelope(kek, b"\x09" + sealed[1:], CTX),
        lambda: envelope.open_envelope(_kek("local:ff"), sealed, CTX),
    ):
        with pytest.raises(errors.DecryptionFailed) as info:
            attempt()
        messages.add((type(info.value), str(info.value), info.value.args))
    assert len(messages) == 1


# --- rewrap and shredding ---


def test_rewrap_after_rotate_moves_to_the_primary_and_keeps_the_payload() -> None:
    kek = _kek()
    sealed = envelope.seal(kek, b"payload", CTX)
    old = envelope.parse_header(sealed)
    assert kek.rotate() == 2
    moved = envelope.rewrap(kek, sealed, CTX)
    new = envelope.parse_header(moved)
    assert (old.key_version, new.key_version) == (1, 2)
    assert moved[new.payload_offset :] == sealed[old.payload_offset :]
    assert envelope.open_envelope(kek, moved, CTX).reveal() == b"payload"
    assert envelope.open_envelope(kek, sealed, CTX).reveal() == b"payload"
    assert envelope.rewrap(kek, moved, CTX) is moved


def test_rewrap_at_primary_returns_the_same_envelope_but_still_checks_it() -> None:
    kek = _kek()
    sealed = envelope.seal(kek, b"payload", CTX)
    assert envelope.rewrap(kek, sealed, CTX) == sealed
    with pytest.raises(errors.DecryptionFailed):
        envelope.rewrap(kek, sealed, EnvelopeContext.for_secret("default", "db/conn", 2))


def test_rewrap_binds_the_new_header() -> None:
    kek = _kek()
    sealed = envelope.seal(kek, b"payload", CTX)
    kek.rotate()
    moved = envelope.rewrap(kek, sealed, CTX)
    at = 2 + len(kek.key_id)
    downgraded = moved[:at] + (1).to_bytes(4, "big") + moved[at + 4 :]
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(kek, downgraded, CTX)


def test_rewrap_with_a_foreign_kek_fails() -> None:
    sealed = envelope.seal(_kek(), b"payload", CTX)
    with pytest.raises(errors.DecryptionFailed):
        envelope.rewrap(_kek("local:00000000000000bb"), sealed, CTX)


def test_destroying_a_kek_version_shreds_its_envelopes() -> None:
    kek = _kek()
    sealed_v1 = envelope.seal(kek, b"old", CTX)
    kek.rotate()
    sealed_v2 = envelope.seal(kek, b"new", CTX)
    survivor = Keyset(kek.key_id, [(2, 0.0, kek.material(2))])
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(survivor, sealed_v1, CTX)
    assert envelope.open_envelope(survivor, sealed_v2, CTX).reveal() == b"new"


def test_generate_data_key() -> None:
    assert len(envelope.generate_data_key()) == 32
    assert envelope.generate_data_key() != envelope.generate_data_key()
    fixed = hashlib.sha256(b"dk").digest()
    assert envelope.generate_data_key(lambda n: fixed[:n]).reveal() == fixed


# --- key-encryption keys that misbehave ---


class RotatingKek:
    """A KEK whose primary moves on while a wrap is in flight, as a remote one can."""

    def __init__(self, rotations_during_wrap: int, blob_padding: int = 0) -> None:
        self._inner = Keyset.generate("remote:kek")
        self._pending = rotations_during_wrap
        self._padding = blob_padding

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    def primary_version(self) -> int:
        return self._inner.primary_version()

    def versions(self) -> list[KeyVersionInfo]:
        return self._inner.versions()

    def wrap(self, data_key: SecretBytes, aad: bytes) -> WrappedKey:
        if self._pending:
            self._pending -= 1
            self._inner.rotate()
        wrapped = self._inner.wrap(data_key, aad)
        return WrappedKey(wrapped.key_id, wrapped.key_version, wrapped.blob + bytes(self._padding))

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> SecretBytes:
        return self._inner.unwrap(wrapped, aad)

    def rotate(self) -> int:
        return self._inner.rotate()


def test_a_rotation_during_wrap_is_retried() -> None:
    kek = RotatingKek(rotations_during_wrap=1)
    sealed = envelope.seal(kek, b"v", CTX)
    assert envelope.parse_header(sealed).key_version == 2
    assert envelope.open_envelope(kek, sealed, CTX).reveal() == b"v"


def test_a_kek_that_never_settles_is_a_keyring_error() -> None:
    with pytest.raises(errors.KeyringError, match="kept changing"):
        envelope.seal(RotatingKek(rotations_during_wrap=10), b"v", CTX)


def test_an_oversized_wrapped_key_is_refused_at_seal() -> None:
    with pytest.raises(errors.KeyringError, match="MAX_WRAPPED_KEY_BYTES"):
        envelope.seal(RotatingKek(0, blob_padding=envelope.MAX_WRAPPED_KEY_BYTES), b"v", CTX)


def test_a_kek_with_an_unusable_id_is_refused_at_seal() -> None:
    class BadId(RotatingKek):
        @property
        def key_id(self) -> str:
            return "caf\u00e9"

    with pytest.raises(errors.KeyringError, match="printable ASCII"):
        envelope.seal(BadId(0), b"v", CTX)
