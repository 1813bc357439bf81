"""The fingerprint key and the fingerprints of stored values: made on every put, backfilled for older versions.

`FingerprintKeys` holds the service's fingerprint key (crypto/fingerprint.py): sealed under the root KEK in
the store, made on the first put that needs it, unsealed once per process and kept in memory. Only the
newest version fingerprints new values; every stored version is tried when matching, so a later rotation
can add a version without recomputing what is stored.

`FingerprintBackfill` computes the fingerprints of versions written before the service kept them. The
server runs it once in the background at start. It is resumable by construction: each pass asks the store
only for versions that still have no fingerprint, so a restart carries on where the last one stopped, and
a version destroyed meanwhile is skipped (the store stores a fingerprint only beside a kept envelope).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from secretsvc.crypto.envelope import EnvelopeContext, open_envelope
from secretsvc.crypto.fingerprint import FingerprintKey, new_sealed_key, open_key
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import CorruptRecord, DecryptionFailed, SecretsvcError
from secretsvc.kek.base import KeyEncryptionKey
from secretsvc.service import limits
from secretsvc.service.clock import Clock
from secretsvc.store.base import Fingerprint, SecretStore

log = logging.getLogger(__name__)


class FingerprintKeys:
    """The fingerprint key versions of one store, unsealed on first use. Thread-safe."""

    def __init__(self, store: SecretStore, kek: KeyEncryptionKey, clock: Clock) -> None:
        self._store = store
        self._kek = kek
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: tuple[FingerprintKey, ...] = ()

    def all(self) -> tuple[FingerprintKey, ...]:
        """Every stored key version, oldest first; empty while none has been made (nothing is fingerprinted)."""
        with self._lock:
            if not self._keys:
                self._keys = self._load()
            return self._keys

    def primary(self) -> FingerprintKey:
        """The newest key version, made (and stored, sealed) if there is none yet."""
        with self._lock:
            if not self._keys:
                self._keys = self._load()
            if not self._keys:
                # Several replicas may race here: the store keeps the first key stored as version 1, and
                # every replica then uses that one.
                record = self._store.add_fingerprint_key(1, new_sealed_key(self._kek, 1), now=self._clock())
                self._keys = (self._open(record.version, record.sealed_key),)
                log.info("fingerprint key made", extra={"fingerprint_key_version": record.version})
            return self._keys[-1]

    def fingerprint(self, value: SecretBytes) -> Fingerprint:
        key = self.primary()
        return Fingerprint(key.version, key.fingerprint(value.reveal()))

    def _load(self) -> tuple[FingerprintKey, ...]:
        return tuple(self._open(r.version, r.sealed_key) for r in self._store.fingerprint_keys())

    def _open(self, version: int, sealed: bytes) -> FingerprintKey:
        try:
            return open_key(self._kek, version, sealed)
        except DecryptionFailed:
            raise CorruptRecord(f"the stored fingerprint key version {version} failed to authenticate") from None


@dataclass(frozen=True, slots=True)
class BackfillResult:
    scanned: int
    added: int
    skipped: int  # destroyed or removed meanwhile, or unreadable (logged)


class FingerprintBackfill:
    """Fingerprints of versions stored before fingerprints were kept. `done` is set once a pass has finished."""

    def __init__(self, store: SecretStore, kek: KeyEncryptionKey, keys: FingerprintKeys) -> None:
        self._store = store
        self._kek = kek
        self._keys = keys
        self.done = threading.Event()

    def run(
        self, batch: int = limits.FINGERPRINT_BACKFILL_BATCH, stop: threading.Event | None = None
    ) -> BackfillResult:
        """One pass over every version without a fingerprint. Stops early (without setting `done`) when
        `stop` is set; the next pass, in this process or after a restart, picks up what is left."""
        scanned = added = skipped = 0
        after: tuple[str, str, int] | None = None
        while stop is None or not stop.is_set():
            refs = self._store.versions_without_fingerprint(after=after, limit=batch)
            for ref in refs:
                scanned += 1
                if self._fill(ref.namespace, ref.path, ref.version, ref.envelope):
                    added += 1
                else:
                    skipped += 1
            if len(refs) < batch:
                self.done.set()
                break
            last = refs[-1]
            after = (last.namespace, last.path, last.version)
        if scanned:
            log.info(
                "fingerprint backfill pass ended",
                extra={"scanned": scanned, "added": added, "skipped": skipped, "finished": self.done.is_set()},
            )
        return BackfillResult(scanned, added, skipped)

    def _fill(self, namespace: str, path: str, version: int, envelope: bytes) -> bool:
        try:
            value = open_envelope(self._kek, envelope, EnvelopeContext.for_secret(namespace, path, version))
        except DecryptionFailed:
            # Reported as DATA_LOSS when the version is read; here it only cannot be matched.
            log.warning(
                "fingerprint backfill: a stored version failed to authenticate",
                extra={"namespace": namespace, "path": path, "version": version},
            )
            return False
        return self._store.add_fingerprint(namespace, path, version, self._keys.fingerprint(value))

    def start(self, stop: threading.Event) -> threading.Thread:
        """Run one pass on a daemon thread (the server's start-up backfill)."""

        def pass_once() -> None:
            try:
                self.run(stop=stop)
            except SecretsvcError as exc:
                log.error("fingerprint backfill stopped; it resumes at the next start", extra={"error": str(exc)})

        thread = threading.Thread(target=pass_once, name="fingerprint-backfill", daemon=True)
        thread.start()
        return thread
