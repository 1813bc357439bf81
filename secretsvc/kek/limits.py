"""Named defaults and bounds of the remote key-encryption keys.

Apart from the backends, so the settings (`kek/settings.py`) can be read and checked without loading hvac or
python-pkcs11: a server on the local keyring, and the supervisor of worker processes, never need them.
"""

from __future__ import annotations

TRANSIT_TIMEOUT_SECONDS = 5.0  # default deadline of one Transit call, all its requests included
MAX_TRANSIT_TIMEOUT_SECONDS = 120.0
PKCS11_POOL_SIZE = 4  # default PKCS#11 sessions kept open
MAX_PKCS11_POOL_SIZE = 64
