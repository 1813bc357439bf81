"""Named limits on everything a caller can send. Each is checked before any work is done."""

from __future__ import annotations

MAX_NAMESPACE_BYTES = 128
MAX_PATH_BYTES = 512
MAX_PATH_SEGMENT_BYTES = 128
MAX_PATH_SEGMENTS = 32
MAX_KEY_NAME_BYTES = 128
MAX_TOKEN_NAME_BYTES = 128
MAX_POLICY_NAME_BYTES = 128
MAX_POLICIES_PER_TOKEN = 64
# Policy documents stored over the API (each also within the policy package's MAX_POLICY_FILE_BYTES).
MAX_POLICY_DOCUMENT_NAME_BYTES = 128
MAX_STORED_POLICY_DOCUMENTS = 1000
# An identity, resource or capability as `explain` takes them in text.
MAX_EXPLAIN_ARGUMENT_BYTES = 2048
# A static token lives at most this long; 0 (the default) means it does not expire.
MAX_TOKEN_TTL_SECONDS = 10 * 366 * 24 * 3600

MAX_SECRET_VALUE_BYTES = 1024 * 1024
# GetSecrets: items in one call, and the values one response may carry (below the transport's message bound).
MAX_GET_SECRETS_ITEMS = 256
MAX_GET_SECRETS_RESPONSE_BYTES = 8 * 1024 * 1024
# WatchSecrets: secrets one watch names.
MAX_WATCH_REFS = 256
MAX_CUSTOM_METADATA_ENTRIES = 64
MAX_CUSTOM_METADATA_KEY_BYTES = 128
MAX_CUSTOM_METADATA_VALUE_BYTES = 1024

DEFAULT_MAX_VERSIONS = 10
# Version numbers are uint64 on the wire but signed 64-bit integers in the database (SQLite and PostgreSQL).
MAX_VERSION_NUMBER = 2**63 - 1
MAX_MAX_VERSIONS = 1000
MAX_VERSIONS_PER_REQUEST = 100

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

MAX_TRANSIT_PLAINTEXT_BYTES = 4 * 1024 * 1024
MAX_ASSOCIATED_DATA_BYTES = 64 * 1024
MAX_BATCH_ITEMS = 1000
MAX_BATCH_TOTAL_BYTES = 8 * 1024 * 1024

DEFAULT_REWRAP_BATCH = 256
MAX_REWRAP_BATCH = 10_000

# MatchValues: candidates in one call, the bytes of each, and of all of them (docs/policy.md, "match").
MAX_MATCH_CANDIDATES = 1000
MAX_MATCH_CANDIDATE_BYTES = 1024
MAX_MATCH_TOTAL_BYTES = 256 * 1024
# The start-up fingerprint backfill reads this many versions per batch.
FINGERPRINT_BACKFILL_BATCH = 256

MAX_REQUEST_ID_BYTES = 128
# The gRPC transport refuses messages larger than this before they reach a handler.
MAX_MESSAGE_BYTES = 12 * 1024 * 1024
