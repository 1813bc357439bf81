"""Many wraps or unwraps in one call where a key-encryption key can batch them (Transit's `batch_input`), one
by one where it cannot; the cache and the chain use these to pass batches on to what they wrap."""

from __future__ import annotations

from collections.abc import Sequence

from secretsvc import errors
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyEncryptionKey, WrappedKey

UnwrapResult = SecretBytes | errors.DecryptionFailed


def unwrap_batch(kek: KeyEncryptionKey, items: Sequence[tuple[WrappedKey, bytes]]) -> list[UnwrapResult]:
    """Each item's data key, or the `DecryptionFailed` it raised; any other error ends the whole batch."""
    many = getattr(kek, "unwrap_many", None)
    if many is not None:
        out: list[UnwrapResult] = many(items)
        return out
    results: list[UnwrapResult] = []
    for wrapped, aad in items:
        try:
            results.append(kek.unwrap(wrapped, aad))
        except errors.DecryptionFailed as exc:
            results.append(exc)
    return results


def wrap_batch(kek: KeyEncryptionKey, items: Sequence[tuple[SecretBytes, bytes]]) -> list[WrappedKey]:
    many = getattr(kek, "wrap_many", None)
    if many is not None:
        out: list[WrappedKey] = many(items)
        return out
    return [kek.wrap(key, aad) for key, aad in items]
