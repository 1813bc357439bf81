"""`StartGate`: a key-encryption key the server started without reaching, held shut until it has been checked.

Platforms start pods before Vault is up, so a Transit key that cannot be reached at start does not stop the
server: it starts, reports NOT_SERVING, and answers every call that needs the key with `KekUnavailable`
(UNAVAILABLE with a retry hint). The start-up check the server would have run (that the key exists and is
usable, and holds every version the store records, service/kekguard.py) runs on the first call or readiness
probe that finds the key reachable; only once it passes does the gate open. Until then nothing is wrapped,
so no data can land under a key that has not been checked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from secretsvc import errors
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyEncryptionKey, KeyVersionInfo, WrappedKey
from secretsvc.kek.batch import UnwrapResult, unwrap_batch, wrap_batch

log = logging.getLogger(__name__)

# The hint while the start-up check refuses the key (wrong key, versions missing): someone has to act first.
RETRY_AFTER_REFUSED_SECONDS = 30.0


class StartGate:
    """Implements `KeyEncryptionKey` over `inner`, raising `KekUnavailable` until `check(inner)` has passed.

    `check` raises `KekUnavailable` while the key still cannot be reached, and another `SecretsvcError` when it
    answers but the server must not use it; both keep the gate shut, and the next call or probe checks again.
    """

    __slots__ = ("_check", "_inner", "_lock", "_open", "_reason")

    def __init__(
        self, inner: KeyEncryptionKey, check: Callable[[KeyEncryptionKey], None], reason: str | None = None
    ) -> None:
        self._inner = inner
        self._check = check
        self._lock = threading.Lock()
        self._open = False
        # Why the gate is shut, as last logged (`reason`: what the caller logged at start); each new reason is
        # logged once, so a token Vault refuses once it is up is not lost among the calls' own log lines.
        self._reason = reason

    def is_open(self) -> bool:
        return self._open

    def ensure_open(self) -> None:
        if self.is_open():
            return
        with self._lock:  # one check at a time; the calls that waited find it done
            if self._open:
                return
            try:
                self._check(self._inner)
            except errors.KekUnavailable as exc:
                if str(exc) != self._reason:
                    self._reason = str(exc)
                    log.warning(
                        "key-encryption key still cannot be used; staying NOT_SERVING",
                        extra={"key_id": self._inner.key_id, "error": str(exc)},
                    )
                raise
            except errors.SecretsvcError as exc:
                if str(exc) != self._reason:
                    self._reason = str(exc)
                    log.error(
                        "key-encryption key reachable but refused by the start-up check; staying NOT_SERVING",
                        extra={"key_id": self._inner.key_id, "error": str(exc)},
                    )
                raise errors.KekUnavailable(
                    f"key-encryption key {self._inner.key_id} failed its start-up check: {exc}",
                    retry_after_seconds=RETRY_AFTER_REFUSED_SECONDS,
                ) from None
            self._open = True
            log.info("key-encryption key reached and checked; serving", extra={"key_id": self._inner.key_id})

    # -- readiness: the probe asks this like any remote key ------------------------------------------------

    def check_reachable(self) -> None:
        self.ensure_open()

    # -- KeyEncryptionKey, each behind the gate ----------------------------------------------------------

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    def primary_version(self) -> int:
        self.ensure_open()
        return self._inner.primary_version()

    def versions(self) -> list[KeyVersionInfo]:
        self.ensure_open()
        return self._inner.versions()

    def held_versions(self) -> list[tuple[str, int]]:
        self.ensure_open()
        held: Callable[[], list[tuple[str, int]]] | None = getattr(self._inner, "held_versions", None)
        if held is not None:
            return held()
        return [(self._inner.key_id, v.version) for v in self._inner.versions()]

    def unwrapper_for(self, key_id: str) -> KeyEncryptionKey | None:
        # Which key would unwrap needs no network; the unwrap itself comes back through the gate.
        find: Callable[[str], KeyEncryptionKey | None] | None = getattr(self._inner, "unwrapper_for", None)
        return find(key_id) if find is not None else None

    def wrap(self, data_key: SecretBytes, aad: bytes) -> WrappedKey:
        self.ensure_open()
        return self._inner.wrap(data_key, aad)

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> SecretBytes:
        self.ensure_open()
        return self._inner.unwrap(wrapped, aad)

    def rotate(self) -> int:
        self.ensure_open()
        return self._inner.rotate()

    def unwrap_many(self, items: Sequence[tuple[WrappedKey, bytes]]) -> list[UnwrapResult]:
        self.ensure_open()
        return unwrap_batch(self._inner, items)

    def wrap_many(self, items: Sequence[tuple[SecretBytes, bytes]]) -> list[WrappedKey]:
        self.ensure_open()
        return wrap_batch(self._inner, items)

    def __repr__(self) -> str:
        return f"StartGate({self._inner!r}, open={self.is_open()})"
