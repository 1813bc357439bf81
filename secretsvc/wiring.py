"""Build the server's backends from its configuration: the store, the key-encryption key, the policies in
force, the authenticators, the audit log.

This is the one place that decides which implementations run; today that is the embedded default (SQLite in
the data directory and the local keyring beside it). New backends (PostgreSQL, Vault Transit, PKCS#11) plug
in here, so the gRPC assembly in `rpc/server.py` does not change when they arrive.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from secretsvc.audit.files import default_path as default_audit_path
from secretsvc.audit.keys import AuditKeys
from secretsvc.audit.writer import AuditLog, Durability
from secretsvc.auth.identify import CallerIdentifier
from secretsvc.auth.tokens import TokenAuthenticator
from secretsvc.config import ServerConfig
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.datadir import DataDir
from secretsvc.kek.base import KeyEncryptionKey
from secretsvc.kek.local import LocalKeyring
from secretsvc.service import kekguard
from secretsvc.service.changes import ChangeFeed, ChangeRelay, ChangeSource
from secretsvc.service.livepolicies import LivePolicies
from secretsvc.store.base import SecretStore
from secretsvc.store.target import DEFAULT as DEFAULT_STORE
from secretsvc.store.target import StoreConfig, open_store

if TYPE_CHECKING:
    from secretsvc.kek.configured import OpenedKek
    from secretsvc.kek.settings import KekConfig

log = logging.getLogger("secretsvc.server")


@dataclass(frozen=True, slots=True)
class Backends:
    store: SecretStore
    kek: KeyEncryptionKey
    policies: LivePolicies  # the authorizer every use case asks
    remote_kek: OpenedKek | None = None  # Transit or PKCS#11 (docs/kek.md): readiness, cache metrics, close
    changes: ChangeFeed = field(default_factory=ChangeFeed)  # wakes watchers; fed by this process and others
    relay: ChangeRelay | None = None  # where other processes' changes arrive (tokens, policies, secrets)
    change_source: ChangeSource | None = None  # hears other processes' changes (PostgreSQL: LISTEN)

    def close(self) -> None:
        if self.change_source is not None:
            self.change_source.close()
        if self.remote_kek is not None:
            self.remote_kek.close()
        self.store.close()


@dataclass(frozen=True, slots=True)
class Authenticators:
    tokens: TokenAuthenticator  # static tokens; token management tells it what was revoked
    callers: CallerIdentifier  # picks the authenticator for each call's credentials


def open_authenticators(config: ServerConfig, store: SecretStore,
                        relay: ChangeRelay | None = None) -> Authenticators:
    """Static tokens always; Kubernetes service-account tokens when configured; client certificates identify
    callers when they are required. With `relay`, a token changed by another replica drops the cached
    verifications at once."""
    service_accounts = None
    if config.service_accounts is not None:
        from secretsvc.auth.serviceaccount_config import build_authenticator

        service_accounts = build_authenticator(config.service_accounts)
    tokens = TokenAuthenticator(store)
    if relay is not None:
        relay.on_tokens(tokens.forget_verified)
    return Authenticators(tokens, CallerIdentifier(tokens, service_accounts=service_accounts,
                                                   identifies_by_certificate=config.client_auth == "required"))


def open_audit(config: ServerConfig, datadir: DataDir, *, shared: bool = False,
               start_checkpoint: bool = True) -> AuditLog:
    """The audit log: keys in the data directory (made on first start), the file where `audit_file` says.
    `shared` and `start_checkpoint`: for worker processes writing one chain (`AuditLog.open`)."""
    keys = AuditKeys.load_or_create(datadir.path)
    return AuditLog.open(
        config.audit_file or default_audit_path(datadir.path), keys,
        checkpoint_every=config.audit_checkpoint_every, checkpoint_seconds=config.audit_checkpoint_seconds,
        rotate_bytes=config.audit_rotate_bytes, hmac_paths=config.audit_hmac_paths,
        durability=Durability(config.audit_durability), fail_closed=config.audit_fail_closed,
        shared=shared, start_checkpoint=start_checkpoint,
    )


def open_backends(datadir: DataDir, passphrase: SecretBytes | None, policy_paths: tuple[Path, ...] = (),
                  kek_config: KekConfig | None = None, store_config: StoreConfig | None = None) -> Backends:
    """Open the store, then the keyring it needs: refuse to start if stored data is wrapped by a key the
    keyring does not hold, or if the keyring file is missing while the database holds data. A remote
    key-encryption key (`kek_config`, docs/kek.md) is checked against the store the same way. The store is
    `store_config` (docs/storage.md), by default SQLite in the data directory."""
    store_config = store_config or DEFAULT_STORE
    store = open_store(store_config, datadir.database)
    log.info("store opened", extra={"store": store_config.describe()})
    try:
        # The files together with the documents stored over the API (ConfigError naming file:line for any
        # problem); with neither, the built-in admin policy alone, so only callers holding it may do anything.
        policies = LivePolicies(policy_paths, store)
        database = store_config.describe() if store_config.location else str(datadir.database)
        keyring_file = datadir.keyring
        recorded = kekguard.recorded_kek_versions(store, now=time.time())
        if kek_config is not None and (kek_config.backend != "local" or kek_config.previous is not None):
            opened = _open_configured_kek(kek_config, datadir, passphrase, recorded, store, database)
            return _with_changes(Backends(store=store, kek=opened.kek, policies=policies, remote_kek=opened),
                                 store_config)
        if not os.path.lexists(keyring_file):
            kekguard.refuse_missing_keyring(recorded, str(keyring_file), database)
        keyring = LocalKeyring.open_or_create(keyring_file, passphrase)
        kekguard.check_keyring_opens(recorded, keyring, str(keyring_file), database)
        store.record_kek_version(keyring.key_id, keyring.primary_version(), now=time.time())
        return _with_changes(Backends(store=store, kek=keyring, policies=policies), store_config)
    except BaseException:
        store.close()
        raise


def _with_changes(backends: Backends, store_config: StoreConfig) -> Backends:
    """Relay other processes' changes into this one: on PostgreSQL a listener connection per process (docs/
    server.md, "Replicas"); on SQLite this process makes every change, and its writes reach the feed directly."""
    feed = ChangeFeed()
    relay = ChangeRelay(feed)
    policies = backends.policies

    def reload_policies() -> None:
        policies.reload()

    relay.on_policies(reload_policies)
    source: ChangeSource | None = None
    if store_config.kind == "postgresql":
        from secretsvc.store.postgres import PostgresStore

        if isinstance(backends.store, PostgresStore):
            source = backends.store.change_listener()
            source.start(relay)
    return Backends(store=backends.store, kek=backends.kek, policies=policies, remote_kek=backends.remote_kek,
                    changes=feed, relay=relay, change_source=source)


def _open_configured_kek(kek_config: KekConfig, datadir: DataDir, passphrase: SecretBytes | None,
                         recorded: list[tuple[str, int]], store: SecretStore, database: str) -> OpenedKek:
    from secretsvc.kek.configured import open_configured

    def open_local() -> LocalKeyring:
        if not os.path.lexists(datadir.keyring):
            kekguard.refuse_missing_keyring(recorded, str(datadir.keyring), database)
        return LocalKeyring.open_or_create(datadir.keyring, passphrase)

    def check(kek: KeyEncryptionKey, where: str) -> None:
        # At start, or later (kek/gate.py) for a Transit server that was not up yet.
        now_recorded = kekguard.recorded_kek_versions(store, now=time.time())  # other replicas may have added some
        kekguard.check_keyring_opens(now_recorded, kek, where, database, store)
        store.record_kek_version(kek.key_id, kek.primary_version(), now=time.time())

    return open_configured(kek_config, open_local, check)
