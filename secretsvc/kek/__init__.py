"""Key-encryption-key providers behind one Protocol (`KeyEncryptionKey`)."""

from secretsvc.kek.base import KeyEncryptionKey, KeyVersionInfo, WrappedKey

__all__ = ["KeyEncryptionKey", "KeyVersionInfo", "WrappedKey"]
