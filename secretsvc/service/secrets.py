"""The secret use cases: put, get, list, metadata, delete/undelete/destroy. No gRPC here.

Writes are optimistic: read the current version, seal the value for the next version (the version is part
of the envelope's associated data), then ask the store to insert it only if nothing moved. The key-encryption
key is never called inside a store transaction, so a slow remote KEK cannot hold the database's write lock.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from secretsvc.auth.principal import Principal
from secretsvc.crypto.envelope import EnvelopeContext, open_envelope, seal
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import (
    CorruptRecord,
    DecryptionFailed,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SecretsvcError,
    VersionConflict,
    VersionUnavailable,
)
from secretsvc.kek.base import KeyEncryptionKey
from secretsvc.service import limits
from secretsvc.service.access import Authorizer, Capability, Resource, require
from secretsvc.service.changes import ChangeFeed
from secretsvc.service.clock import Clock
from secretsvc.service.fingerprints import FingerprintKeys
from secretsvc.service.naming import check_namespace, check_path, check_prefix
from secretsvc.store.base import Fingerprint, ListPage, SecretMeta, SecretStore, VersionState

# Writers without check-and-set retry when another writer slips in between read and insert.
_MAX_PUT_ATTEMPTS = 8
# Puts without check-and-set to one secret take turns within this process. The store commits pending writes
# in groups, so racing writers would all read the same version, meet in one batch where only the first wins,
# and lose again together on every retry; taking turns leaves conflicts to writers in other processes.
# Striped, so the lock table stays bounded whatever the number of paths.
_PUT_LOCK_STRIPES = 256


@dataclass(frozen=True, slots=True)
class PutResult:
    version: int
    created_at: float
    pruned_versions: Sequence[int]
    capability: Capability  # what the put used: create (the secret was new) or update


@dataclass(frozen=True, slots=True)
class SecretValue:
    value: SecretBytes
    version: int
    created_at: float


def check_custom_metadata(entries: Mapping[str, str]) -> dict[str, str]:
    if len(entries) > limits.MAX_CUSTOM_METADATA_ENTRIES:
        raise LimitExceeded(
            f"custom metadata has more than MAX_CUSTOM_METADATA_ENTRIES={limits.MAX_CUSTOM_METADATA_ENTRIES} entries"
        )
    for key, value in entries.items():
        if not key or len(key.encode()) > limits.MAX_CUSTOM_METADATA_KEY_BYTES:
            raise LimitExceeded(
                f"custom metadata keys must be 1..MAX_CUSTOM_METADATA_KEY_BYTES="
                f"{limits.MAX_CUSTOM_METADATA_KEY_BYTES} bytes"
            )
        if len(value.encode()) > limits.MAX_CUSTOM_METADATA_VALUE_BYTES:
            raise LimitExceeded(
                f"custom metadata value for {key[:64]!r} is longer than "
                f"MAX_CUSTOM_METADATA_VALUE_BYTES={limits.MAX_CUSTOM_METADATA_VALUE_BYTES}"
            )
        if not key.isprintable() or not value.isprintable():
            raise InvalidArgument("custom metadata keys and values may not contain control characters")
    return dict(entries)


def _check_max_versions(max_versions: int) -> int:
    if not 0 <= max_versions <= limits.MAX_MAX_VERSIONS:
        raise LimitExceeded(f"max_versions must be 0..MAX_MAX_VERSIONS={limits.MAX_MAX_VERSIONS}")
    return max_versions


def _check_version(version: int) -> int:
    if not 1 <= version <= limits.MAX_VERSION_NUMBER:
        raise InvalidArgument(f"version must be 1..MAX_VERSION_NUMBER={limits.MAX_VERSION_NUMBER}, got {version}")
    return version


def _check_versions(versions: Sequence[int]) -> list[int]:
    if len(versions) > limits.MAX_VERSIONS_PER_REQUEST:
        raise LimitExceeded(f"more than MAX_VERSIONS_PER_REQUEST={limits.MAX_VERSIONS_PER_REQUEST} versions")
    for version in versions:
        _check_version(version)
    return sorted(set(versions))


@dataclass(frozen=True, slots=True)
class _WriteGrants:
    """Which of create and update a put may do; which one it needs is known only once the store says whether
    the secret exists."""

    caller: str
    resource: Resource
    create: bool
    update: bool

    def check(self, *, exists: bool) -> Capability:
        """The capability this put uses, or PermissionDenied naming it."""
        needed = Capability.UPDATE if exists else Capability.CREATE
        if not (self.update if exists else self.create):
            raise PermissionDenied(f"{self.caller} may not {needed.value} {self.resource}", capability=needed)
        return needed


class SecretService:
    def __init__(
        self,
        store: SecretStore,
        kek: KeyEncryptionKey,
        clock: Clock,
        authorizer: Authorizer,
        default_max_versions: int = limits.DEFAULT_MAX_VERSIONS,
        changes: ChangeFeed | None = None,
        fingerprints: FingerprintKeys | None = None,
    ) -> None:
        self._store = store
        self._kek = kek
        self._clock = clock
        self._authz = authorizer
        self._default_max_versions = default_max_versions
        self._changes = changes if changes is not None else ChangeFeed()  # tells watchers (service/watch.py)
        self._put_locks = tuple(threading.Lock() for _ in range(_PUT_LOCK_STRIPES))
        # Each version's keyed fingerprint, stored with it, for MatchValues (service/matching.py); without
        # it, versions are stored unfingerprinted and the start-up backfill fills them in.
        self._fingerprints = fingerprints

    def put(
        self,
        caller: Principal,
        namespace: str,
        path: str,
        value: SecretBytes,
        *,
        cas: int | None = None,
        custom_metadata: Mapping[str, str] | None = None,
        max_versions: int = 0,
    ) -> PutResult:
        check_namespace(namespace)
        check_path(path)
        if len(value) > limits.MAX_SECRET_VALUE_BYTES:
            raise LimitExceeded(f"secret value is larger than MAX_SECRET_VALUE_BYTES={limits.MAX_SECRET_VALUE_BYTES}")
        _check_max_versions(max_versions)
        if cas is not None and not 0 <= cas <= limits.MAX_VERSION_NUMBER:
            raise InvalidArgument(
                f"cas must be a version number 0..MAX_VERSION_NUMBER={limits.MAX_VERSION_NUMBER} "
                "(0: the secret must not exist)"
            )
        metadata = check_custom_metadata(custom_metadata) if custom_metadata is not None else None
        resource = Resource.secret(namespace, path)
        may_create = self._authz.allows(caller, resource, Capability.CREATE)
        may_update = self._authz.allows(caller, resource, Capability.UPDATE)
        grants = _WriteGrants(caller.display, resource, may_create, may_update)
        if not (may_create or may_update):
            # Refused either way; the store says which of the two the refusal (and its audit record) names.
            grants.check(exists=self._store.current_version(namespace, path) is not None)
        if cas is not None:
            return self._put(namespace, path, value, cas, metadata, max_versions, grants)
        with self._put_locks[hash((namespace, path)) % _PUT_LOCK_STRIPES]:
            return self._put(namespace, path, value, cas, metadata, max_versions, grants)

    def _put(self, namespace: str, path: str, value: SecretBytes, cas: int | None,
             metadata: Mapping[str, str] | None, max_versions: int, grants: _WriteGrants) -> PutResult:
        fingerprint: Fingerprint | None = None
        for _ in range(_MAX_PUT_ATTEMPTS):
            head = self._store.current_version(namespace, path)
            current = head.current_version if head else 0
            capability = grants.check(exists=head is not None)
            if fingerprint is None and self._fingerprints is not None:
                # After the check: a refused put does not make the fingerprint key or spend an HMAC.
                fingerprint = self._fingerprints.fingerprint(value)
            if cas is not None and cas != current:
                raise VersionConflict(
                    f"check-and-set failed for {namespace}/{path}: expected version {cas}, current is {current}"
                )
            version = current + 1
            envelope = seal(self._kek, value, EnvelopeContext.for_secret(namespace, path, version))
            keep = max_versions or (head.max_versions if head else 0) or self._default_max_versions
            now = self._clock()
            try:
                pruned = self._store.insert_version(
                    namespace, path, version, envelope,
                    expected_version=current, now=now, max_versions=keep, custom_metadata=metadata,
                    remember_max_versions=max_versions > 0, fingerprint=fingerprint,
                )
            except VersionConflict:
                if cas is not None:
                    raise
                continue
            self._changes.changed(namespace, path)
            return PutResult(version=version, created_at=now, pruned_versions=tuple(pruned), capability=capability)
        raise VersionConflict(f"{namespace}/{path} is changing too fast to write; retry")

    def get(self, caller: Principal, namespace: str, path: str, version: int | None = None) -> SecretValue:
        check_namespace(namespace)
        check_path(path)
        if version is not None:
            _check_version(version)
        require(self._authz, caller, Resource.secret(namespace, path), Capability.READ)
        record = self._store.read_version(namespace, path, version)
        if record.state is VersionState.DELETED:
            raise VersionUnavailable(
                f"version {record.version} of {namespace}/{path} is deleted (undelete it to read it again)"
            )
        if record.state is VersionState.DESTROYED or record.envelope is None:
            raise VersionUnavailable(f"version {record.version} of {namespace}/{path} was destroyed")
        try:
            value = open_envelope(
                self._kek, record.envelope, EnvelopeContext.for_secret(namespace, path, record.version)
            )
        except DecryptionFailed:
            # Either the row was altered at rest or the KEK that wrapped it is gone; both are data loss, not
            # a caller error, and the message must not hint which check failed.
            raise CorruptRecord(
                f"stored ciphertext of {namespace}/{path} version {record.version} failed to authenticate"
            ) from None
        return SecretValue(value=value, version=record.version, created_at=record.created_at)

    def get_many(self, caller: Principal, items: Sequence[tuple[str, str, int | None]]
                 ) -> list[SecretValue | SecretsvcError]:
        """Each (namespace, path, version) read as `get` would read it, in order: its value or the error it met.
        One item's failure does not fail the others. Values past MAX_GET_SECRETS_RESPONSE_BYTES in total are
        `ResourceExhausted` items, to be fetched in another call."""
        if len(items) > limits.MAX_GET_SECRETS_ITEMS:
            raise LimitExceeded(f"one call reads at most MAX_GET_SECRETS_ITEMS={limits.MAX_GET_SECRETS_ITEMS} secrets")
        results: list[SecretValue | SecretsvcError] = []
        budget = limits.MAX_GET_SECRETS_RESPONSE_BYTES
        for namespace, path, version in items:
            try:
                got = self.get(caller, namespace, path, version)
            except SecretsvcError as exc:
                results.append(exc)
                continue
            if len(got.value) > budget:
                results.append(ResourceExhausted(
                    f"{namespace}/{path}: the response would pass MAX_GET_SECRETS_RESPONSE_BYTES="
                    f"{limits.MAX_GET_SECRETS_RESPONSE_BYTES}; read it in another call"))
                continue
            budget -= len(got.value)
            results.append(got)
        return results

    def list_paths(self, caller: Principal, namespace: str, prefix: str = "", *, page_size: int = 0,
                   page_token: str = "") -> ListPage:
        """A page of the paths under `prefix` that the caller may list. Paths it may not list are left out, so
        a page can hold fewer than `page_size`; `next_page_token` still resumes after the whole page."""
        check_namespace(namespace)
        check_prefix(prefix)
        if page_size < 0 or page_size > limits.MAX_PAGE_SIZE:
            raise LimitExceeded(f"page_size must be 0..MAX_PAGE_SIZE={limits.MAX_PAGE_SIZE}")
        page = self._store.list_paths(
            namespace, prefix, page_size=page_size or limits.DEFAULT_PAGE_SIZE, page_token=page_token
        )
        shown = [p for p in page.paths
                 if self._authz.allows(caller, Resource.secret(namespace, p), Capability.LIST)]
        return page if len(shown) == len(page.paths) else replace(page, paths=shown)

    def metadata(self, caller: Principal, namespace: str, path: str) -> SecretMeta:
        check_namespace(namespace)
        check_path(path)
        require(self._authz, caller, Resource.secret(namespace, path), Capability.READ)
        return self._metadata(namespace, path)

    def _metadata(self, namespace: str, path: str) -> SecretMeta:
        meta = self._store.read_meta(namespace, path)
        if meta is None:
            raise NotFound(f"no secret at {namespace}/{path}")
        return self._effective(meta)

    def _effective(self, meta: SecretMeta) -> SecretMeta:
        """Metadata as callers should see it: a stored 0 means the server default, so show that number."""
        return meta if meta.max_versions else replace(meta, max_versions=self._default_max_versions)

    def update_metadata(
        self,
        caller: Principal,
        namespace: str,
        path: str,
        *,
        max_versions: int = 0,
        custom_metadata: Mapping[str, str] | None = None,
    ) -> SecretMeta:
        check_namespace(namespace)
        check_path(path)
        _check_max_versions(max_versions)
        metadata = check_custom_metadata(custom_metadata) if custom_metadata is not None else None
        require(self._authz, caller, Resource.secret(namespace, path), Capability.UPDATE)
        return self._effective(self._store.update_meta(
            namespace, path, now=self._clock(), max_versions=max_versions or None, custom_metadata=metadata
        ))

    def _versions_or_current(self, caller: Principal, namespace: str, path: str, versions: Sequence[int],
                             capability: Capability) -> list[int]:
        check_namespace(namespace)
        check_path(path)
        checked = _check_versions(versions)
        require(self._authz, caller, Resource.secret(namespace, path), capability)
        if checked:
            return checked
        return [self._metadata(namespace, path).current_version]

    def delete_versions(self, caller: Principal, namespace: str, path: str, versions: Sequence[int]) -> list[int]:
        chosen = self._versions_or_current(caller, namespace, path, versions, Capability.DELETE)
        done = self._store.set_versions_deleted(namespace, path, chosen, deleted=True, now=self._clock())
        self._changes.changed(namespace, path)
        return done

    def undelete_versions(self, caller: Principal, namespace: str, path: str, versions: Sequence[int]) -> list[int]:
        chosen = self._versions_or_current(caller, namespace, path, versions, Capability.DELETE)
        done = self._store.set_versions_deleted(namespace, path, chosen, deleted=False, now=self._clock())
        self._changes.changed(namespace, path)
        return done

    def destroy_versions(self, caller: Principal, namespace: str, path: str, versions: Sequence[int]) -> list[int]:
        chosen = self._versions_or_current(caller, namespace, path, versions, Capability.DESTROY)
        done = self._store.destroy_versions(namespace, path, chosen, now=self._clock())
        self._changes.changed(namespace, path)
        return done

    def delete_secret(self, caller: Principal, namespace: str, path: str) -> bool:
        """Remove the secret with every version: as final as destroying them, so it needs `destroy`."""
        check_namespace(namespace)
        check_path(path)
        require(self._authz, caller, Resource.secret(namespace, path), Capability.DESTROY)
        removed = self._store.delete_secret(namespace, path)
        self._changes.changed(namespace, path)
        return removed
