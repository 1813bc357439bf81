"""The storage interface: ciphertext persistence, free of any one database's habits.

The store keeps only envelopes (ciphertext), wrapped key material and metadata. It never sees plaintext and
never calls a key-encryption key, so its transactions stay short: the service seals an envelope for the
version it expects to write, then asks the store to insert it only if the secret is still at the version it
read (optimistic check-and-set). Every mutating method is one transaction; implementations must make
check-and-set atomic under concurrent writers in several processes (SQLite: BEGIN IMMEDIATE; PostgreSQL:
row locks).

Names: a secret is addressed by (namespace, path); both are validated by the service before they get here.
Versions count from 1; version 0 in `expected_version` means "the secret must not exist yet".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


class VersionState(Enum):
    ACTIVE = "active"
    DELETED = "deleted"  # soft-deleted: envelope kept, undelete restores it
    DESTROYED = "destroyed"  # envelope (and so its wrapped data key) erased: crypto-shredded


@dataclass(frozen=True, slots=True)
class VersionMeta:
    version: int
    state: VersionState
    created_at: float
    deleted_at: float | None
    destroyed_at: float | None


@dataclass(frozen=True, slots=True)
class SecretMeta:
    namespace: str
    path: str
    current_version: int  # highest version ever written; never goes down
    max_versions: int  # 0 = the service default
    created_at: float
    updated_at: float
    custom_metadata: Mapping[str, str] = field(default_factory=dict)
    versions: Sequence[VersionMeta] = ()  # kept versions, oldest first


@dataclass(frozen=True, slots=True)
class SecretHead:
    """What a writer needs before sealing the next version, without the list of versions."""

    current_version: int
    max_versions: int  # 0 = the service default


@dataclass(frozen=True, slots=True)
class StoredVersion:
    namespace: str
    path: str
    version: int
    state: VersionState
    envelope: bytes | None  # None once destroyed
    created_at: float

    def __repr__(self) -> str:
        size = "none" if self.envelope is None else f"{len(self.envelope)} bytes"
        return (f"StoredVersion({self.namespace!r}, {self.path!r}, v{self.version}, {self.state.value}, "
                f"envelope=<{size}>)")


@dataclass(frozen=True, slots=True)
class ListPage:
    paths: Sequence[str]
    next_page_token: str  # "" when there are no more


@dataclass(frozen=True, slots=True)
class EnvelopeRef:
    """One stored envelope, as handed out by the rewrap scan."""

    kind: str  # "secret" or "transit_key"
    namespace: str  # for transit keys: ""
    path: str  # for transit keys: the key name
    version: int
    envelope: bytes


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A keyed fingerprint of one version's value (crypto/fingerprint.py), and the key version it is under."""

    key_version: int
    digest: bytes

    def __repr__(self) -> str:
        return f"Fingerprint(key_version={self.key_version}, digest=<{len(self.digest)} bytes>)"


@dataclass(frozen=True, slots=True)
class FingerprintKeyRecord:
    version: int
    sealed_key: bytes  # an envelope sealed under the root KEK
    created_at: float

    def __repr__(self) -> str:
        return f"FingerprintKeyRecord(version={self.version}, sealed_key=<{len(self.sealed_key)} bytes>)"


@dataclass(frozen=True, slots=True)
class FingerprintHit:
    """A stored version whose fingerprint was asked about."""

    digest: bytes
    namespace: str
    path: str
    version: int
    state: VersionState  # active or deleted: destroyed versions keep no fingerprint
    current_version: int  # the secret's current version

    def __repr__(self) -> str:
        return f"FingerprintHit({self.namespace!r}, {self.path!r}, v{self.version}, {self.state.value})"


@dataclass(frozen=True, slots=True)
class TransitKeyVersion:
    version: int
    wrapped_material: bytes  # an envelope sealed under the root KEK
    created_at: float


@dataclass(frozen=True, slots=True)
class TransitKeyRecord:
    name: str
    created_at: float
    min_decryption_version: int
    versions: Sequence[TransitKeyVersion]  # oldest first

    @property
    def latest_version(self) -> int:
        return self.versions[-1].version if self.versions else 0


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: str  # public, non-secret identifier
    name: str
    token_hash: bytes  # never the token itself
    created_at: float
    policies: Sequence[str] = ()
    expires_at: float | None = None  # None: never


@dataclass(frozen=True, slots=True)
class PolicyDocumentRecord:
    """A policy document stored over the API. Its content is policy, not secret material."""

    name: str
    format: str  # "yaml" or "json"
    content: bytes
    revision: int  # 1 when first stored under this name, one more for each replacement
    updated_at: float


class SecretStore(Protocol):
    """Persistence for secrets, transit keys and tokens. Implementations: `SqliteStore`, later PostgreSQL."""

    # --- secrets -------------------------------------------------------------------------------------------
    def read_meta(self, namespace: str, path: str) -> SecretMeta | None:
        """The secret's metadata with its kept versions, or None if it does not exist."""
        ...

    def current_version(self, namespace: str, path: str) -> SecretHead | None:
        """The secret's current version and its own max_versions setting, or None if it does not exist.
        A narrow read for writers: `read_meta` also loads every kept version."""
        ...

    def insert_version(
        self,
        namespace: str,
        path: str,
        version: int,
        envelope: bytes,
        *,
        expected_version: int,
        now: float,
        max_versions: int,
        custom_metadata: Mapping[str, str] | None = None,
        remember_max_versions: bool = False,
        fingerprint: Fingerprint | None = None,
    ) -> list[int]:
        """Insert `version` (which must be expected_version + 1) if the secret's current version is still
        `expected_version` (0: must not exist), in one transaction. Versions beyond `max_versions` (oldest
        first) are removed with their envelopes; returns the removed version numbers. A `custom_metadata`
        other than None replaces the stored metadata; `remember_max_versions` stores `max_versions` as the
        secret's own setting (otherwise it stays as it was, 0 meaning the service default). A `fingerprint`
        is stored with the version, in the same transaction.
        Raises VersionConflict if the current version differs."""
        ...

    def read_version(self, namespace: str, path: str, version: int | None) -> StoredVersion:
        """One version (None: the current one). Raises NotFound if the secret or version does not exist."""
        ...

    def list_paths(self, namespace: str, prefix: str, *, page_size: int, page_token: str) -> ListPage:
        """Paths in `namespace` starting with `prefix`, in byte order, `page_size` at a time. The page token is
        opaque to callers; a malformed one raises InvalidArgument."""
        ...

    def set_versions_deleted(
        self, namespace: str, path: str, versions: Sequence[int], *, deleted: bool, now: float
    ) -> list[int]:
        """Soft-delete (or undelete) versions; destroyed versions are left alone. Returns the versions whose
        state changed. Raises NotFound if the secret does not exist."""
        ...

    def destroy_versions(self, namespace: str, path: str, versions: Sequence[int], *, now: float) -> list[int]:
        """Erase the envelopes (and fingerprints) of `versions` for good. Returns the versions destroyed by this
        call."""
        ...

    def delete_secret(self, namespace: str, path: str) -> bool:
        """Remove the secret, all its versions and envelopes. Returns False if it did not exist."""
        ...

    def update_meta(
        self,
        namespace: str,
        path: str,
        *,
        now: float,
        max_versions: int | None = None,
        custom_metadata: Mapping[str, str] | None = None,
    ) -> SecretMeta:
        """Change settings of an existing secret (None leaves a field alone). Lowering max_versions prunes.
        Raises NotFound."""
        ...

    # --- rewrap --------------------------------------------------------------------------------------------
    def scan_envelopes(self, *, after: tuple[str, str, str, int] | None, limit: int) -> list[EnvelopeRef]:
        """Stored envelopes (secret versions and transit key material) in a stable order, resuming after the
        (kind, namespace, path, version) key given; `limit` at a time. Destroyed versions are skipped."""
        ...

    def replace_envelope(self, ref: EnvelopeRef, new_envelope: bytes) -> bool:
        """Swap in a rewrapped envelope only if the stored one is still exactly `ref.envelope` (so a concurrent
        destroy or rewrap is never undone). Returns whether it was replaced."""
        ...

    # --- value fingerprints (MatchValues) ------------------------------------------------------------------
    def fingerprint_keys(self) -> list[FingerprintKeyRecord]:
        """Every stored fingerprint key version, oldest first (none until the first is added)."""
        ...

    def add_fingerprint_key(self, version: int, sealed_key: bytes, *, now: float) -> FingerprintKeyRecord:
        """Store fingerprint key `version` unless one is already stored under that number (another replica
        made it first); returns whichever is stored."""
        ...

    def find_fingerprints(self, digests: Sequence[bytes]) -> list[FingerprintHit]:
        """The stored versions whose fingerprint is one of `digests` (at most MAX_FINGERPRINT_LOOKUP)."""
        ...

    def versions_without_fingerprint(self, *, after: tuple[str, str, int] | None, limit: int) -> list[EnvelopeRef]:
        """Secret versions that hold an envelope but no fingerprint (written before fingerprints were kept),
        in (namespace, path, version) order after the key given; `limit` at a time. For the backfill."""
        ...

    def add_fingerprint(self, namespace: str, path: str, version: int, fingerprint: Fingerprint) -> bool:
        """Store a backfilled fingerprint if the version still holds its envelope (not destroyed or removed
        meanwhile) and has none yet. Returns whether it was stored."""
        ...

    # --- transit keys --------------------------------------------------------------------------------------
    def create_transit_key(self, name: str, wrapped_material: bytes, *, now: float) -> TransitKeyRecord:
        """Create a key at version 1. Raises AlreadyExists."""
        ...

    def read_transit_key(self, name: str) -> TransitKeyRecord | None:
        ...

    def add_transit_key_version(
        self, name: str, version: int, wrapped_material: bytes, *, now: float
    ) -> TransitKeyRecord:
        """Append `version` (must be latest + 1, else VersionConflict). Raises NotFound."""
        ...

    def set_transit_min_decryption_version(self, name: str, version: int) -> TransitKeyRecord:
        ...

    def list_transit_keys(self) -> list[str]:
        ...

    # --- tokens --------------------------------------------------------------------------------------------
    def put_token(self, record: TokenRecord) -> None:
        """Insert, or replace the record with the same token id. Names are unique: AlreadyExists if another
        token holds the name."""
        ...

    def find_token(self, token_id: str) -> TokenRecord | None:
        ...

    def list_tokens(self) -> list[TokenRecord]:
        """Every token record, by name."""
        ...

    def delete_token(self, name: str) -> TokenRecord | None:
        """Remove the token named `name`; returns what was removed, or None if there was none."""
        ...

    def count_tokens(self) -> int:
        ...

    # --- policy documents ----------------------------------------------------------------------------------
    def put_policy_document(self, name: str, fmt: str, content: bytes, *, expected_revision: int | None,
                            now: float) -> PolicyDocumentRecord:
        """Store or replace the document `name` and count a policy change. `expected_revision`: None for
        any, 0 for "must not exist", else the revision it must have (VersionConflict otherwise)."""
        ...

    def read_policy_document(self, name: str) -> PolicyDocumentRecord | None:
        ...

    def list_policy_documents(self) -> list[PolicyDocumentRecord]:
        """Every stored document, by name."""
        ...

    def delete_policy_document(self, name: str, *, expected_revision: int | None) -> bool:
        """Remove the document `name` (counting a policy change); returns whether there was one."""
        ...

    def policy_generation(self) -> int:
        """A number that changes whenever a stored policy document does: cheap to poll."""
        ...

    # --- key-encryption keys -------------------------------------------------------------------------------
    def record_kek_version(self, key_id: str, version: int, *, now: float) -> None:
        """Remember that `key_id` at `version` wraps (or is about to wrap) stored data. Idempotent."""
        ...

    def kek_versions(self) -> list[tuple[str, int]]:
        """Every (key id, version) recorded, sorted."""
        ...

    def holds_envelopes(self) -> bool:
        """Whether any secret version or transit key material is stored (destroyed versions do not count)."""
        ...

    # --- lifecycle -----------------------------------------------------------------------------------------
    def close(self) -> None:
        ...


def iter_all_envelopes(store: SecretStore, batch: int = 256) -> Iterator[EnvelopeRef]:
    """Every stored envelope, in batches, resuming by key so concurrent writes do not derail it."""
    after: tuple[str, str, str, int] | None = None
    while True:
        refs = store.scan_envelopes(after=after, limit=batch)
        yield from refs
        if len(refs) < batch:
            return
        last = refs[-1]
        after = (last.kind, last.namespace, last.path, last.version)
