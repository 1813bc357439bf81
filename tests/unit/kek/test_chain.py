"""`KekChain`: the new key wraps, earlier keys still unwrap by key id, and rewrap moves envelopes to the new
key; the start-up check accepts a recorded key that no stored envelope uses any more."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.crypto import envelope
from secretsvc.crypto.keyset import Keyset
from secretsvc.kek.chain import KekChain
from secretsvc.service import kekguard
from secretsvc.store.base import iter_all_envelopes
from secretsvc.store.sqlite import SqliteStore

CTX = envelope.EnvelopeContext.for_secret("ns", "p", 1)


def test_the_primary_wraps_and_earlier_keys_still_unwrap() -> None:
    old, new = Keyset.generate("local:old"), Keyset.generate("vault-transit:transit/new")
    sealed_old = envelope.seal(old, b"before", CTX)
    chain = KekChain(new, [old])
    assert chain.key_id == new.key_id
    assert envelope.open_envelope(chain, sealed_old, CTX).reveal() == b"before"
    sealed_new = envelope.seal(chain, b"after", CTX)
    assert envelope.parse_header(sealed_new).key_id == new.key_id
    assert envelope.open_envelope(new, sealed_new, CTX).reveal() == b"after"
    assert sorted(chain.held_versions()) == [(old.key_id, 1), (new.key_id, 1)]


def test_rewrap_moves_an_envelope_from_an_earlier_key_to_the_primary() -> None:
    old, new = Keyset.generate("local:old"), Keyset.generate("pkcs11:tok/new")
    sealed = envelope.seal(old, b"value", CTX)
    chain = KekChain(new, [old])
    moved = envelope.rewrap(chain, sealed, CTX)
    assert envelope.parse_header(moved).key_id == new.key_id
    assert envelope.open_envelope(new, moved, CTX).reveal() == b"value"  # the old key is no longer needed
    assert envelope.rewrap(chain, moved, CTX) == moved  # already under the primary: unchanged


def test_unknown_key_ids_and_tampering_still_fail() -> None:
    old, new, other = Keyset.generate("a:old"), Keyset.generate("b:new"), Keyset.generate("c:other")
    chain = KekChain(new, [old])
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(chain, envelope.seal(other, b"x", CTX), CTX)
    sealed = bytearray(envelope.seal(old, b"x", CTX))
    sealed[-1] ^= 1
    with pytest.raises(errors.DecryptionFailed):
        envelope.open_envelope(chain, bytes(sealed), CTX)


def test_members_need_distinct_key_ids() -> None:
    with pytest.raises(errors.ConfigError):
        KekChain(Keyset.generate("same:id"), [Keyset.generate("same:id")])


def test_the_start_up_check_ignores_recorded_keys_no_envelope_uses(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    try:
        old, new = Keyset.generate("local:old"), Keyset.generate("vault-transit:transit/new")
        sealed = envelope.seal(old, b"v", CTX)
        store.insert_version("ns", "p", 1, sealed, expected_version=0, now=1.0, max_versions=10)
        store.record_kek_version(old.key_id, 1, now=1.0)
        recorded = kekguard.recorded_kek_versions(store, now=2.0)
        # Data still under the old key: refused without it, accepted with it in a chain.
        with pytest.raises(errors.KeyringError, match="local:old"):
            kekguard.check_keyring_opens(recorded, new, "Transit", "db", store)
        kekguard.check_keyring_opens(recorded, KekChain(new, [old]), "Transit", "db", store)
        # Moved: the record of the old key stays, but nothing uses it, so the new key alone is enough.
        (ref,) = list(iter_all_envelopes(store))
        assert store.replace_envelope(ref, envelope.rewrap(KekChain(new, [old]), ref.envelope, CTX))
        kekguard.check_keyring_opens(recorded, new, "Transit", "db", store)
    finally:
        store.close()
