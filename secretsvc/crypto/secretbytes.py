"""`SecretBytes`: key material and plaintext that refuse to show themselves.

The value comes out only through `reveal()`, so every place that handles the raw bytes is greppable. The repr
and str are redacted, pickling is refused, and equality is constant-time.
"""

from __future__ import annotations

import hmac
from typing import NoReturn


class SecretBytes:
    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError("SecretBytes wraps bytes")
        self._value = bytes(value)

    def reveal(self) -> bytes:
        """The raw bytes. Call it only where the bytes must leave (to a cipher, to the wire)."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"SecretBytes(<{len(self._value)} bytes redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretBytes):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        # Hashing would let a dict or set leak equality timing; keys are never used as dict keys.
        raise TypeError("SecretBytes is unhashable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled")

    def __bool__(self) -> bool:
        return bool(self._value)
