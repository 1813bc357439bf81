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
from dataclasses import dataclass
from pathlib import Path

from secretsvc.audit.files import default_path as default_audit_path
from secretsvc.audit.keys import AuditKeys
from secretsvc.audit.writer import AuditLog, Durability
from secretsvc.auth.identify import CallerIdentifier
from secretsvc.auth.tokens import TokenAuthenticator
from secretsvc.config import ServerConfig
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.datadir import DataDir
from secretsvc.kek.local import LocalKeyring
from secretsvc.service import kekguard
from secretsvc.service.livepolicies import LivePolicies
from secretsvc.store.sqlite import SqliteStore

log = logging.getLogger("secretsvc.server")


@dataclass(frozen=True, slots=True)
class Backends:
    store: SqliteStore
    kek: LocalKeyring
    policies: LivePolicies  # the authorizer every use case asks

    def close(self) -> None:
        self.store.close()


@dataclass(frozen=True, slots=True)
class Authenticators:
    tokens: TokenAuthenticator  # static tokens; token management tells it what was revoked
    callers: CallerIdentifier  # picks the authenticator for each call's credentials


def open_authenticators(config: ServerConfig, store: SqliteStore) -> Authenticators:
    """Static tokens always; Kubernetes service-account tokens when configured; client certificates identify
    callers when they are required."""
    service_accounts = None
    if config.service_accounts is not None:
        from secretsvc.auth.serviceaccount_config import build_authenticator

        service_accounts = build_authenticator(config.service_accounts)
    tokens = TokenAuthenticator(store)
    return Authenticators(tokens, CallerIdentifier(tokens, service_accounts=service_accounts,
                                                   identifies_by_certificate=config.client_auth == "required"))


def open_audit(config: ServerConfig, datadir: DataDir) -> AuditLog:
    """The audit log: keys in the data directory (made on first start), the file where `audit_file` says."""
    keys = AuditKeys.load_or_create(datadir.path)
    return AuditLog.open(
        config.audit_file or default_audit_path(datadir.path), keys,
        checkpoint_every=config.audit_checkpoint_every, checkpoint_seconds=config.audit_checkpoint_seconds,
        rotate_bytes=config.audit_rotate_bytes, hmac_paths=config.audit_hmac_paths,
        durability=Durability(config.audit_durability), fail_closed=config.audit_fail_closed,
    )


def open_backends(datadir: DataDir, passphrase: SecretBytes | None, policy_paths: tuple[Path, ...] = ()
                  ) -> Backends:
    """Open the store, then the keyring it needs: refuse to start if stored data is wrapped by a key the
    keyring does not hold, or if the keyring file is missing while the database holds data."""
    store = SqliteStore(datadir.database)
    try:
        # The files together with the documents stored over the API (ConfigError naming file:line for any
        # problem); with neither, the built-in admin policy alone, so only callers holding it may do anything.
        policies = LivePolicies(policy_paths, store)
        database = str(datadir.database)
        keyring_file = datadir.keyring
        recorded = kekguard.recorded_kek_versions(store, now=time.time())
        if not os.path.lexists(keyring_file):
            kekguard.refuse_missing_keyring(recorded, str(keyring_file), database)
        keyring = LocalKeyring.open_or_create(keyring_file, passphrase)
        kekguard.check_keyring_opens(recorded, keyring, str(keyring_file), database)
        store.record_kek_version(keyring.key_id, keyring.primary_version(), now=time.time())
    except BaseException:
        store.close()
        raise
    return Backends(store=store, kek=keyring, policies=policies)
