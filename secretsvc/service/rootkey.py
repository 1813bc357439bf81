"""The root key-encryption key: inspect, rotate, and move every stored data key to its newest version."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from secretsvc.auth.principal import Principal
from secretsvc.crypto.envelope import EnvelopeContext, parse_header, rewrap_many
from secretsvc.errors import CorruptRecord, DecryptionFailed, LimitExceeded
from secretsvc.kek.base import KeyEncryptionKey, KeyVersionInfo
from secretsvc.service import limits
from secretsvc.service.access import ROOT_KEY, Authorizer, Capability, require
from secretsvc.service.clock import Clock
from secretsvc.store.base import EnvelopeRef, SecretStore, iter_all_envelopes

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RootKeyInfo:
    key_id: str
    primary_version: int
    versions: list[KeyVersionInfo]


@dataclass(frozen=True, slots=True)
class RewrapProgress:
    scanned: int
    rewrapped: int
    current: int
    skipped: int
    done: bool


def _context(ref: EnvelopeRef) -> EnvelopeContext:
    if ref.kind == "secret":
        return EnvelopeContext.for_secret(ref.namespace, ref.path, ref.version)
    if ref.kind == "fingerprint_key":
        return EnvelopeContext.for_fingerprint_key(ref.version)
    return EnvelopeContext.for_transit_key_material(ref.path, ref.version)


class RootKeyService:
    def __init__(self, store: SecretStore, kek: KeyEncryptionKey, authorizer: Authorizer,
                 clock: Clock = time.time) -> None:
        self._store = store
        self._kek = kek
        self._authz = authorizer
        self._clock = clock

    def info(self, caller: Principal) -> RootKeyInfo:
        require(self._authz, caller, ROOT_KEY, Capability.ADMIN)
        return self._info()

    def _info(self) -> RootKeyInfo:
        return RootKeyInfo(self._kek.key_id, self._kek.primary_version(), self._kek.versions())

    def rotate(self, caller: Principal) -> RootKeyInfo:
        require(self._authz, caller, ROOT_KEY, Capability.ADMIN)
        version = self._kek.rotate()
        # Recorded at once (and again at every start while it is primary), so a later start with a keyring
        # that lacks this version is refused (service/kekguard.py).
        self._store.record_kek_version(self._kek.key_id, version, now=self._clock())
        log.info("root key rotated", extra={"key_id": self._kek.key_id, "key_version": version})
        return self._info()

    def rewrap_stored(self, caller: Principal, batch_size: int = 0) -> Iterator[RewrapProgress]:
        """Rewrap every stored envelope not yet under the primary version; yields progress per batch.

        Each replacement is a compare-and-swap on the old bytes, so writes, destroys and other rewraps
        running at the same time are never undone; whatever lost such a race is counted as skipped.
        """
        require(self._authz, caller, ROOT_KEY, Capability.ADMIN)
        if not 0 <= batch_size <= limits.MAX_REWRAP_BATCH:
            raise LimitExceeded(f"batch_size must be 0..MAX_REWRAP_BATCH={limits.MAX_REWRAP_BATCH}")
        return self._rewrap_batches(batch_size or limits.DEFAULT_REWRAP_BATCH)

    def _rewrap_batches(self, batch: int) -> Iterator[RewrapProgress]:
        primary = self._kek.primary_version()
        scanned = rewrapped = current = skipped = 0
        pending: list[EnvelopeRef] = []
        for ref in iter_all_envelopes(self._store, batch):
            scanned += 1
            try:
                header = parse_header(ref.envelope)
            except DecryptionFailed:
                raise _corrupt(ref) from None
            if header.key_id == self._kek.key_id and header.key_version == primary:
                current += 1
            else:
                pending.append(ref)
            if scanned % batch == 0:
                moved, lost = self._rewrap(pending)
                pending, rewrapped, skipped = [], rewrapped + moved, skipped + lost
                yield RewrapProgress(scanned, rewrapped, current, skipped, done=False)
        moved, lost = self._rewrap(pending)
        rewrapped, skipped = rewrapped + moved, skipped + lost
        log.info("rewrap finished", extra={"scanned": scanned, "rewrapped": rewrapped, "skipped": skipped})
        yield RewrapProgress(scanned, rewrapped, current, skipped, done=True)

    def _rewrap(self, refs: list[EnvelopeRef]) -> tuple[int, int]:
        """Rewrap a batch (one batched unwrap and wrap where the KEK offers them, docs/kek.md) and store each
        result; returns (rewrapped, skipped because something else changed the envelope meanwhile)."""
        if not refs:
            return 0, 0
        rewrapped = skipped = 0
        results = rewrap_many(self._kek, [(ref.envelope, _context(ref)) for ref in refs])
        for ref, new in zip(refs, results, strict=True):
            if isinstance(new, DecryptionFailed):
                raise _corrupt(ref)
            if self._store.replace_envelope(ref, new):
                rewrapped += 1
            else:
                skipped += 1
        return rewrapped, skipped


def _corrupt(ref: EnvelopeRef) -> CorruptRecord:
    return CorruptRecord(
        f"stored {ref.kind} envelope {ref.namespace}/{ref.path} version {ref.version} failed to authenticate"
    )
