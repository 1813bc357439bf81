"""Key-encryption-key providers behind one Protocol (`KeyEncryptionKey`).

Providers are imported on first use: `secretsvc.crypto.keyset` needs `kek.base`, and the local keyring needs
`crypto.keyset`, so an eager import here would make the two packages import each other half-initialized.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from secretsvc.kek.base import KeyEncryptionKey, KeyVersionInfo, WrappedKey

if TYPE_CHECKING:
    from secretsvc.kek.local import LocalKeyring

__all__ = ["KeyEncryptionKey", "KeyVersionInfo", "LocalKeyring", "WrappedKey"]


def __getattr__(name: str) -> Any:
    if name == "LocalKeyring":
        from secretsvc.kek.local import LocalKeyring

        return LocalKeyring
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
