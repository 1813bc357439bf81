"""`KekChain`: the configured key-encryption key, plus earlier ones that still unwrap while data keys move.

Moving stored data from one backend to another (the local keyring to Transit, Transit to an HSM) happens
online: the new backend wraps every new data key, the previous one still unwraps what it wrapped, found by
the key id in each envelope's header, and `root-key rewrap` moves each stored data key to the new backend.
Once nothing is left under the previous key id, the previous backend can be dropped from the configuration.
"""

from __future__ import annotations

from collections.abc import Sequence

from secretsvc import errors
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyEncryptionKey, KeyVersionInfo, WrappedKey
from secretsvc.kek.batch import UnwrapResult, unwrap_batch, wrap_batch


class KekChain:
    """Wraps and rotates with `primary`; unwraps with whichever member holds the wrapped key's id."""

    __slots__ = ("_by_id", "_previous", "_primary")

    def __init__(self, primary: KeyEncryptionKey, previous: Sequence[KeyEncryptionKey]) -> None:
        members = [primary, *previous]
        ids = [m.key_id for m in members]
        if len(set(ids)) != len(ids):
            raise errors.ConfigError(f"key-encryption keys in a chain need distinct key ids, got {ids}")
        self._primary = primary
        self._previous = tuple(previous)
        self._by_id = {m.key_id: m for m in members}

    @property
    def key_id(self) -> str:
        return self._primary.key_id

    @property
    def members(self) -> tuple[KeyEncryptionKey, ...]:
        return (self._primary, *self._previous)

    def primary_version(self) -> int:
        return self._primary.primary_version()

    def versions(self) -> list[KeyVersionInfo]:
        return self._primary.versions()

    def held_versions(self) -> list[tuple[str, int]]:
        """Every (key id, version) some member can unwrap: what the start-up check compares with the store."""
        return [(m.key_id, v.version) for m in self.members for v in m.versions()]

    def unwrapper_for(self, key_id: str) -> KeyEncryptionKey | None:
        return self._by_id.get(key_id)

    def wrap(self, data_key: SecretBytes, aad: bytes) -> WrappedKey:
        return self._primary.wrap(data_key, aad)

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> SecretBytes:
        member = self._by_id.get(wrapped.key_id)
        if member is None:
            raise errors.DecryptionFailed()
        return member.unwrap(wrapped, aad)

    def rotate(self) -> int:
        return self._primary.rotate()

    def unwrap_many(self, items: Sequence[tuple[WrappedKey, bytes]]) -> list[UnwrapResult]:
        """One batch per member, for the items under its key id."""
        results: list[UnwrapResult] = [errors.DecryptionFailed() for _ in items]
        groups: dict[str, list[int]] = {}
        for i, (wrapped, _) in enumerate(items):
            if wrapped.key_id in self._by_id:
                groups.setdefault(wrapped.key_id, []).append(i)
        for key_id, indexes in groups.items():
            out = unwrap_batch(self._by_id[key_id], [items[i] for i in indexes])
            for i, key in zip(indexes, out, strict=True):
                results[i] = key
        return results

    def wrap_many(self, items: Sequence[tuple[SecretBytes, bytes]]) -> list[WrappedKey]:
        return wrap_batch(self._primary, items)

    def __repr__(self) -> str:
        return f"KekChain(primary={self._primary!r}, previous={list(self._previous)!r})"
