"""Refuse to serve with a keyring that cannot open what the database holds.

A keyring file that is lost, or replaced by another one (a restore from the wrong backup, a new data
directory's keyring copied over), would otherwise be recreated or used silently: every stored secret then
answers DATA_LOSS, new writes go under the new key, and restoring the right file later makes those new writes
unreadable in turn. So the store records each key-encryption key version when it is first used
(`record_kek_version`), and the server checks that record against the keyring before it serves.
"""

from __future__ import annotations

from collections.abc import Iterable

from secretsvc.crypto.envelope import parse_header
from secretsvc.errors import DecryptionFailed, KeyringError
from secretsvc.kek.base import KeyEncryptionKey
from secretsvc.store.base import SecretStore, iter_all_envelopes

RECOVERY_HINT = (
    "Restore the keyring file that wrapped this data from your backup and start again (docs/keyring.md, "
    "'Backups and a lost keyring'). Without it the stored data cannot be decrypted by anyone."
)


def recorded_kek_versions(store: SecretStore, *, now: float) -> list[tuple[str, int]]:
    """The (key id, version) pairs that wrap stored data, as recorded in the store.

    A database written before versions were recorded has envelopes but no record: the pairs are then read
    from the envelope headers once, and recorded.
    """
    recorded = store.kek_versions()
    if recorded or not store.holds_envelopes():
        return recorded
    found: set[tuple[str, int]] = set()
    for ref in iter_all_envelopes(store):
        try:
            header = parse_header(ref.envelope)
        except DecryptionFailed:
            continue  # a damaged record is reported when it is read, not here
        found.add((header.key_id, header.key_version))
    for key_id, version in sorted(found):
        store.record_kek_version(key_id, version, now=now)
    return sorted(found)


def _describe(pairs: Iterable[tuple[str, int]]) -> str:
    by_id: dict[str, list[int]] = {}
    for key_id, version in pairs:
        by_id.setdefault(key_id, []).append(version)
    return "; ".join(
        f"{key_id} version{'s' if len(vs) > 1 else ''} {', '.join(str(v) for v in sorted(vs))}"
        for key_id, vs in sorted(by_id.items())
    )


def refuse_missing_keyring(recorded: list[tuple[str, int]], keyring_location: str, database: str) -> None:
    """Raise if stored data needs a keyring whose file is missing; return if there is nothing to lose."""
    if recorded:
        raise KeyringError(
            f"the keyring file {keyring_location} is missing, but the database {database} holds data wrapped by "
            f"key-encryption key {_describe(recorded)}. Refusing to create a new keyring over it. {RECOVERY_HINT}"
        )


def check_keyring_opens(recorded: list[tuple[str, int]], kek: KeyEncryptionKey, keyring_location: str,
                        database: str, store: SecretStore | None = None) -> None:
    """Raise unless `kek` holds every recorded key id and version. Given the `store`, a recorded pair that no
    stored envelope uses any more (all moved to another backend by rewrap) is no reason to refuse."""
    held = getattr(kek, "held_versions", None)  # a chain (kek/chain.py) holds its earlier keys' versions too
    have = set(held()) if held is not None else {(kek.key_id, v.version) for v in kek.versions()}
    missing = [pair for pair in recorded if pair not in have]
    if missing and store is not None:
        missing = sorted(set(missing) & _used_pairs(store))
    if missing:
        raise KeyringError(
            f"the database {database} holds data wrapped by key-encryption key {_describe(missing)}, which the "
            f"keyring file {keyring_location} does not hold (it holds {_describe(sorted(have))}). {RECOVERY_HINT}"
        )


def _used_pairs(store: SecretStore) -> set[tuple[str, int]]:
    used: set[tuple[str, int]] = set()
    for ref in iter_all_envelopes(store):
        try:
            header = parse_header(ref.envelope)
        except DecryptionFailed:
            continue
        used.add((header.key_id, header.key_version))
    return used
