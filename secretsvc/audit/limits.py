"""Named limits of the audit log: what the writer clips to, and what the verifier reads at most.

A record holds text the caller chose (the request id, a path that failed validation), so every text field is
clipped to a bound before it is written; the verifier, reading files that may have been tampered with, bounds
each line and refuses a longer one instead of reading it into memory.
"""

from __future__ import annotations

# Text fields are clipped to this many characters. JSON escapes a character into at most 12 bytes (a
# surrogate pair, `\ud83d\ude00`), so these bound an encoded record well under MAX_LINE_BYTES.
MAX_REQUEST_ID_CHARS = 128
MAX_PRINCIPAL_CHARS = 256
MAX_METHOD_CHARS = 256
MAX_RESOURCE_CHARS = 1024
# Enum-like fields (capability, resource kind, status code) are short identifiers, checked not clipped.
MAX_IDENTIFIER_CHARS = 32
# A call that took longer than a day is recorded as a day.
MAX_LATENCY_US = 24 * 3600 * 1_000_000

# The longest line the verifier (and the writer, scanning its tail at start-up) reads.
MAX_LINE_BYTES = 64 * 1024
# Sequence numbers stay within a signed 64-bit integer, like every other counter a database might hold.
MAX_SEQUENCE = 2**63 - 1
# Counters in a checkpoint (records dropped, bytes discarded) have the same bound.
MAX_COUNTER = 2**63 - 1
# Files one verification reads (a directory of rotated files, or arguments).
MAX_FILES = 100_000

# Writer settings: each named bound is what config validation should enforce too.
MIN_CHECKPOINT_EVERY = 1
MAX_CHECKPOINT_EVERY = 1_000_000
MIN_CHECKPOINT_SECONDS = 0.01
MAX_CHECKPOINT_SECONDS = 24 * 3600.0
MIN_ROTATE_BYTES = 4096
MAX_ROTATE_BYTES = 1 << 40
