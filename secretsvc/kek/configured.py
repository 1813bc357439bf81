"""Open the key-encryption key the configuration names: the backend, an earlier one still unwrapping while
data moves (`kek_previous`), and the data-key cache in front of the remote ones."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from secretsvc.kek.base import KeyEncryptionKey
from secretsvc.kek.cache import CachingKek, DataKeyCache
from secretsvc.kek.chain import KekChain
from secretsvc.kek.gate import StartGate
from secretsvc.kek.pkcs11 import Pkcs11Kek
from secretsvc.kek.settings import KekConfig
from secretsvc.kek.transit import TransitKek, TransitUnreachable

log = logging.getLogger(__name__)

RemoteKek = TransitKek | Pkcs11Kek
StartCheck = Callable[[KeyEncryptionKey, str], None]  # the key, and where it lives (for messages)


@dataclass(frozen=True, slots=True)
class OpenedKek:
    kek: KeyEncryptionKey  # what the service wraps and unwraps with
    cache: DataKeyCache | None  # None when only the local keyring runs (its unwrap costs no round trip)
    remote: tuple[RemoteKek, ...]  # the backends readiness checks
    gate: StartGate | None = None  # set when a key could not be reached at start: shut until checked

    @property
    def ready(self) -> bool:
        """Whether the start-up check has passed (at start, or since, once the key answered)."""
        return self.gate is None or self.gate.is_open()

    @property
    def probed(self) -> tuple[StartGate | RemoteKek, ...]:
        """What readiness asks: the gate first (which runs the deferred start-up check), then every backend."""
        return (self.gate, *self.remote) if self.gate is not None else self.remote

    def close(self) -> None:
        if self.cache is not None:
            self.cache.clear()
        _close_remote(self.remote)


def open_configured(config: KekConfig, open_local: Callable[[], KeyEncryptionKey], check: StartCheck) -> OpenedKek:
    """Open `config.backend` (and `config.previous`) and run `check` (the start-up check against the store) on
    the result; `open_local` opens the keyring when one is named. A misconfigured backend raises `KeyringError`
    (or `ConfigError`), as does a remote one that answers but refuses us. A Transit server that cannot be
    reached does not: the key is returned behind a shut `StartGate`, which runs `check` once Transit answers."""
    cache = None
    remote: list[RemoteKek] = []
    unreachable: list[str] = []
    first_reason: list[str] = []  # the error itself, as the gate will see it again while Transit is down

    def build(backend: str, previous: bool) -> KeyEncryptionKey:
        nonlocal cache
        member: RemoteKek
        if backend == "local":
            return open_local()
        if backend == "vault-transit":
            transit = (config.previous_transit if previous else None) or config.transit
            assert transit is not None  # from_settings checked it
            try:
                member = TransitKek.open(transit)
            except TransitUnreachable as exc:
                member = TransitKek.open_unchecked(transit)
                unreachable.append(f"{member.describe()}: {exc}")
                first_reason.append(str(exc))
        else:
            pkcs11 = (config.previous_pkcs11 if previous else None) or config.pkcs11
            assert pkcs11 is not None
            # A previous key holds data already: a label that finds nothing is a mistake, not a key to make.
            member = Pkcs11Kek.open(pkcs11, create=not previous)
        remote.append(member)
        if config.cache.max_entries == 0:
            return member
        cache = cache or DataKeyCache(config.cache)
        return CachingKek(member, cache)

    try:
        kek = build(config.backend, previous=False)
        if config.previous is not None:
            kek = KekChain(kek, [build(config.previous, previous=True)])
        where = " and ".join(m.describe() for m in remote)
        if not unreachable:
            check(kek, where)
            return OpenedKek(kek, cache, tuple(remote))
    except BaseException:
        _close_remote(remote)
        raise
    # One line while waiting; readiness logs again when the key answers (kek/probe.py).
    log.warning(
        "key-encryption key not reachable at start; serving NOT_SERVING, and UNAVAILABLE to calls that need it, "
        "until it answers",
        extra={"kek": "; ".join(unreachable)},
    )
    members = tuple(remote)

    def deferred(kek: KeyEncryptionKey) -> None:
        for member in members:
            member.check_reachable()  # reads the key afresh: missing or of the wrong type is refused here
        check(kek, where)

    gate = StartGate(kek, deferred, reason=first_reason[0] if first_reason else None)
    return OpenedKek(gate, cache, tuple(remote), gate)


def _close_remote(members: Sequence[RemoteKek]) -> None:
    for member in members:
        if isinstance(member, Pkcs11Kek):
            member.close()
