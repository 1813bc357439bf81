"""Ciphertext persistence behind one Protocol (`SecretStore`): SQLite is the embedded default."""

from secretsvc.store.base import (
    EnvelopeRef,
    ListPage,
    SecretMeta,
    SecretStore,
    StoredVersion,
    TokenRecord,
    TransitKeyRecord,
    TransitKeyVersion,
    VersionMeta,
    VersionState,
)

__all__ = [
    "EnvelopeRef",
    "ListPage",
    "SecretMeta",
    "SecretStore",
    "StoredVersion",
    "TokenRecord",
    "TransitKeyRecord",
    "TransitKeyVersion",
    "VersionMeta",
    "VersionState",
]
