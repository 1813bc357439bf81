"""Open the key-encryption key the configuration names: the backend, an earlier one still unwrapping while
data moves (`kek_previous`), and the data-key cache in front of the remote ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from secretsvc.kek.base import KeyEncryptionKey
from secretsvc.kek.cache import CachingKek, DataKeyCache
from secretsvc.kek.chain import KekChain
from secretsvc.kek.pkcs11 import Pkcs11Kek
from secretsvc.kek.settings import KekConfig
from secretsvc.kek.transit import TransitKek

RemoteKek = TransitKek | Pkcs11Kek


@dataclass(frozen=True, slots=True)
class OpenedKek:
    kek: KeyEncryptionKey  # what the service wraps and unwraps with
    cache: DataKeyCache | None  # None when only the local keyring runs (its unwrap costs no round trip)
    remote: tuple[RemoteKek, ...]  # the backends readiness checks

    def close(self) -> None:
        if self.cache is not None:
            self.cache.clear()
        _close_remote(self.remote)


def open_configured(config: KekConfig, open_local: Callable[[], KeyEncryptionKey]) -> OpenedKek:
    """Open `config.backend` (and `config.previous`); `open_local` opens the keyring when one is named. A remote
    backend that cannot be reached raises `KekUnavailable`, a misconfigured one `KeyringError`."""
    cache = None
    remote: list[RemoteKek] = []

    def build(backend: str) -> KeyEncryptionKey:
        nonlocal cache
        member: RemoteKek
        if backend == "local":
            return open_local()
        if backend == "vault-transit":
            assert config.transit is not None  # from_settings checked it
            member = TransitKek.open(config.transit)
        else:
            assert config.pkcs11 is not None
            member = Pkcs11Kek.open(config.pkcs11)
        remote.append(member)
        if config.cache.max_entries == 0:
            return member
        cache = cache or DataKeyCache(config.cache)
        return CachingKek(member, cache)

    try:
        kek = build(config.backend)
        if config.previous is not None:
            kek = KekChain(kek, [build(config.previous)])
    except BaseException:
        _close_remote(remote)
        raise
    return OpenedKek(kek, cache, tuple(remote))


def _close_remote(members: Sequence[RemoteKek]) -> None:
    for member in members:
        if isinstance(member, Pkcs11Kek):
            member.close()
