"""Encryption as a service on named keys.

Each named key is a set of versions of 256-bit key material, stored sealed under the root KEK. A ciphertext
is an ordinary envelope (see docs/envelope-format.md) whose data key is wrapped by the named key's newest
version, with the caller's associated data bound into its context. Unwrapped key material is cached per name
for a short time, bounded in count, so a busy key costs one store read per TTL rather than one per call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from secretsvc.auth.principal import Principal
from secretsvc.crypto.aead import random_key
from secretsvc.crypto.envelope import (
    EnvelopeContext,
    generate_data_key,
    open_envelope,
    parse_header,
    rewrap,
    seal,
)
from secretsvc.crypto.keyset import Keyset
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import (
    CorruptRecord,
    DecryptionFailed,
    FailedPrecondition,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    SecretsvcError,
    VersionConflict,
)
from secretsvc.kek.base import KeyEncryptionKey
from secretsvc.service import limits
from secretsvc.service.access import Authorizer, Capability, Resource, require
from secretsvc.service.clock import Clock
from secretsvc.service.naming import check_key_name
from secretsvc.store.base import SecretStore, TransitKeyRecord

KEY_CACHE_TTL_SECONDS = 5.0
KEY_CACHE_MAX_KEYS = 1024
KEY_REFRESH_MIN_SECONDS = 0.5


def transit_key_id(name: str) -> str:
    return f"transit:{name}"


@dataclass(frozen=True, slots=True)
class Ciphertext:
    ciphertext: bytes
    key_version: int


@dataclass(frozen=True, slots=True)
class DataKey:
    plaintext: SecretBytes | None
    ciphertext: bytes
    key_version: int


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """One item of a batch: a value or the error it met (a batch never fails whole for one bad item)."""

    value: bytes | SecretBytes | None
    key_version: int
    error: SecretsvcError | None


@dataclass(slots=True)
class _CachedKey:
    record: TransitKeyRecord
    keyset: Keyset
    loaded_at: float


def _check_sizes(plaintext_len: int, aad_len: int) -> None:
    if plaintext_len > limits.MAX_TRANSIT_PLAINTEXT_BYTES:
        raise LimitExceeded(
            f"plaintext is larger than MAX_TRANSIT_PLAINTEXT_BYTES={limits.MAX_TRANSIT_PLAINTEXT_BYTES}"
        )
    if aad_len > limits.MAX_ASSOCIATED_DATA_BYTES:
        raise LimitExceeded(
            f"associated data is larger than MAX_ASSOCIATED_DATA_BYTES={limits.MAX_ASSOCIATED_DATA_BYTES}"
        )


def _check_batch(sizes: Sequence[int]) -> None:
    if not sizes:
        raise InvalidArgument("a batch needs at least one item")
    if len(sizes) > limits.MAX_BATCH_ITEMS:
        raise LimitExceeded(f"a batch holds at most MAX_BATCH_ITEMS={limits.MAX_BATCH_ITEMS} items")
    if sum(sizes) > limits.MAX_BATCH_TOTAL_BYTES:
        raise LimitExceeded(f"a batch holds at most MAX_BATCH_TOTAL_BYTES={limits.MAX_BATCH_TOTAL_BYTES} bytes")


class TransitService:
    def __init__(self, store: SecretStore, root_kek: KeyEncryptionKey, clock: Clock, authorizer: Authorizer) -> None:
        self._store = store
        self._root = root_kek
        self._clock = clock
        self._authz = authorizer
        self._cache: OrderedDict[str, _CachedKey] = OrderedDict()
        self._lock = threading.Lock()

    # --- key management --------------------------------------------------------------------------------
    def _allow(self, caller: Principal, name: str, capability: Capability) -> None:
        check_key_name(name)
        require(self._authz, caller, Resource.transit_key(name), capability)

    def create_key(self, caller: Principal, name: str) -> TransitKeyRecord:
        self._allow(caller, name, Capability.CREATE)
        material = random_key()
        wrapped = seal(self._root, material, EnvelopeContext.for_transit_key_material(name, 1))
        return self._store.create_transit_key(name, wrapped, now=self._clock())

    def key_info(self, caller: Principal, name: str) -> TransitKeyRecord:
        self._allow(caller, name, Capability.READ)
        return self._record(name)

    def _record(self, name: str) -> TransitKeyRecord:
        record = self._store.read_transit_key(name)
        if record is None:
            raise NotFound(f"no transit key named {name!r}")
        return record

    def list_keys(self, caller: Principal) -> list[str]:
        """The names of the keys the caller may list."""
        return [name for name in self._store.list_transit_keys()
                if self._authz.allows(caller, Resource.transit_key(name), Capability.LIST)]

    def rotate_key(self, caller: Principal, name: str) -> TransitKeyRecord:
        self._allow(caller, name, Capability.ROTATE)
        for _ in range(3):
            record = self._record(name)
            version = record.latest_version + 1
            wrapped = seal(self._root, random_key(), EnvelopeContext.for_transit_key_material(name, version))
            try:
                updated = self._store.add_transit_key_version(name, version, wrapped, now=self._clock())
            except VersionConflict:
                continue  # another rotation won the race; rotate on top of it
            self._forget(name)
            return updated
        raise VersionConflict(f"transit key {name!r} is being rotated concurrently; retry")

    def set_min_decryption_version(self, caller: Principal, name: str, version: int) -> TransitKeyRecord:
        self._allow(caller, name, Capability.UPDATE)
        record = self._record(name)
        if not 1 <= version <= record.latest_version:
            raise InvalidArgument(
                f"min_decryption_version must be between 1 and the latest version ({record.latest_version})"
            )
        updated = self._store.set_transit_min_decryption_version(name, version)
        self._forget(name)
        return updated

    # --- cryptographic operations ----------------------------------------------------------------------
    def encrypt(self, caller: Principal, name: str, plaintext: bytes | SecretBytes,
                associated_data: bytes = b"") -> Ciphertext:
        self._allow(caller, name, Capability.ENCRYPT)
        return self._encrypt(name, plaintext, associated_data)

    def _encrypt(self, name: str, plaintext: bytes | SecretBytes, associated_data: bytes) -> Ciphertext:
        _check_sizes(len(plaintext), len(associated_data))
        cached = self._load(name)
        context = EnvelopeContext.for_transit(name, associated_data)
        return Ciphertext(seal(cached.keyset, plaintext, context), cached.keyset.primary_version())

    def decrypt(self, caller: Principal, name: str, ciphertext: bytes, associated_data: bytes = b"") -> SecretBytes:
        self._allow(caller, name, Capability.DECRYPT)
        return self._decrypt(name, ciphertext, associated_data)

    def _decrypt(self, name: str, ciphertext: bytes, associated_data: bytes) -> SecretBytes:
        _check_sizes(0, len(associated_data))
        keyset = self._keyset_for(name, ciphertext)
        return open_envelope(keyset, ciphertext, EnvelopeContext.for_transit(name, associated_data))

    def generate_data_key(self, caller: Principal, name: str, associated_data: bytes = b"", *,
                          include_plaintext: bool) -> DataKey:
        self._allow(caller, name, Capability.ENCRYPT)
        data_key = generate_data_key()
        sealed = self._encrypt(name, data_key, associated_data)
        return DataKey(data_key if include_plaintext else None, sealed.ciphertext, sealed.key_version)

    def rewrap(self, caller: Principal, name: str, ciphertext: bytes, associated_data: bytes = b"") -> Ciphertext:
        self._allow(caller, name, Capability.REWRAP)
        _check_sizes(0, len(associated_data))
        keyset = self._keyset_for(name, ciphertext)
        context = EnvelopeContext.for_transit(name, associated_data)
        # Rewrap alone checks only the wrapped data key; opening first means a damaged payload is refused
        # here instead of being handed back under a fresh header that looks good.
        open_envelope(keyset, ciphertext, context)
        rewrapped = rewrap(keyset, ciphertext, context)
        return Ciphertext(rewrapped, keyset.primary_version())

    def encrypt_batch(self, caller: Principal, name: str, items: Sequence[tuple[bytes, bytes]]) -> list[ItemOutcome]:
        self._allow(caller, name, Capability.ENCRYPT)
        _check_batch([len(p) + len(a) for p, a in items])
        outcomes = []
        for plaintext, aad in items:
            try:
                sealed = self._encrypt(name, plaintext, aad)
            except (InvalidArgument, DecryptionFailed, FailedPrecondition) as exc:
                outcomes.append(ItemOutcome(None, 0, exc))
            else:
                outcomes.append(ItemOutcome(sealed.ciphertext, sealed.key_version, None))
        return outcomes

    def decrypt_batch(self, caller: Principal, name: str, items: Sequence[tuple[bytes, bytes]]) -> list[ItemOutcome]:
        self._allow(caller, name, Capability.DECRYPT)
        _check_batch([len(c) + len(a) for c, a in items])
        outcomes = []
        for ciphertext, aad in items:
            try:
                outcomes.append(ItemOutcome(self._decrypt(name, ciphertext, aad), 0, None))
            except (InvalidArgument, DecryptionFailed, FailedPrecondition) as exc:
                outcomes.append(ItemOutcome(None, 0, exc))
        return outcomes

    # --- key material ----------------------------------------------------------------------------------
    def _keyset_for(self, name: str, ciphertext: bytes) -> Keyset:
        """The keyset that can open `ciphertext`, after checking it names this key at an allowed version."""
        header = parse_header(ciphertext)
        if header.key_id != transit_key_id(name):
            raise DecryptionFailed()
        cached = self._load(name)
        if (header.key_version > cached.record.latest_version
                and self._clock() - cached.loaded_at >= KEY_REFRESH_MIN_SECONDS):
            # Another replica may have rotated since we cached the key; look once more before failing. Not
            # more often than KEY_REFRESH_MIN_SECONDS, so forged version numbers cannot force a reload per call.
            self._forget(name)
            cached = self._load(name)
        if header.key_version < cached.record.min_decryption_version:
            raise FailedPrecondition(
                f"ciphertext is from version {header.key_version} of key {name!r}, below its "
                f"min_decryption_version {cached.record.min_decryption_version}"
            )
        return cached.keyset

    def _forget(self, name: str) -> None:
        with self._lock:
            self._cache.pop(name, None)

    def _load(self, name: str) -> _CachedKey:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and now - cached.loaded_at < KEY_CACHE_TTL_SECONDS:
                self._cache.move_to_end(name)
                return cached
        record = self._record(name)
        versions = []
        for v in record.versions:
            try:
                material = open_envelope(
                    self._root, v.wrapped_material, EnvelopeContext.for_transit_key_material(name, v.version)
                )
            except DecryptionFailed:
                raise CorruptRecord(
                    f"stored material of transit key {name!r} version {v.version} failed to authenticate"
                ) from None
            versions.append((v.version, v.created_at, material))
        cached = _CachedKey(record=record, keyset=Keyset(transit_key_id(name), versions), loaded_at=now)
        with self._lock:
            self._cache[name] = cached
            self._cache.move_to_end(name)
            while len(self._cache) > KEY_CACHE_MAX_KEYS:
                self._cache.popitem(last=False)
        return cached
