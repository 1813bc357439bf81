"""How large a serialized request each method accepts, checked before the body is parsed.

The transport refuses anything above `limits.MAX_MESSAGE_BYTES` (the largest legitimate request, a full
transit batch). Most methods need far less, and parsing is where a hostile body costs CPU and memory (millions
of empty repeated items), so each method gets a bound near its real need, and a body is parsed only after the
caller has authenticated and the body fits. Methods that anyone may call (health) get the smallest bound.
"""

from __future__ import annotations

from secretsvc.policy import limits as policy_limits
from secretsvc.service import limits

KIB = 1024

# Names, versions, page tokens, custom metadata (at most 64 entries of 128 + 1024 bytes) and a request id.
SMALL_REQUEST_BYTES = 128 * KIB
# Requests anyone may send: a service name to health-check.
PUBLIC_REQUEST_BYTES = 4 * KIB
# Room beside a large payload for names, associated data, envelope headers and framing.
_ENVELOPE_SLACK = limits.MAX_ASSOCIATED_DATA_BYTES + 64 * KIB
_PER_BATCH_ITEM_OVERHEAD = 1 * KIB  # framing and a ciphertext header per item

_LARGE: dict[str, int] = {
    "/secretsvc.v1.Policies/PutPolicyDocument": policy_limits.MAX_POLICY_FILE_BYTES + SMALL_REQUEST_BYTES,
    # Each item: a namespace and a path at their longest, a version and framing.
    "/secretsvc.v1.Secrets/GetSecrets": limits.MAX_GET_SECRETS_ITEMS * KIB + SMALL_REQUEST_BYTES,
    "/secretsvc.v1.Access/CheckAccess": limits.MAX_GET_SECRETS_ITEMS * KIB + SMALL_REQUEST_BYTES,
    # Each candidate: its bytes (counted in MAX_MATCH_TOTAL_BYTES) and a few bytes of framing. A body past
    # this is refused before parsing; within it, the service names the exact limit a batch passes.
    "/secretsvc.v1.Matching/MatchValues": (
        limits.MAX_MATCH_TOTAL_BYTES + limits.MAX_MATCH_CANDIDATES * 8 + SMALL_REQUEST_BYTES
    ),
    "/secretsvc.v1.Secrets/WatchSecrets": limits.MAX_WATCH_REFS * KIB + SMALL_REQUEST_BYTES,
    "/secretsvc.v1.Secrets/PutSecret": limits.MAX_SECRET_VALUE_BYTES + SMALL_REQUEST_BYTES,
    "/secretsvc.v1.Transit/Encrypt": limits.MAX_TRANSIT_PLAINTEXT_BYTES + _ENVELOPE_SLACK,
    "/secretsvc.v1.Transit/Decrypt": limits.MAX_TRANSIT_PLAINTEXT_BYTES + _ENVELOPE_SLACK,
    "/secretsvc.v1.Transit/Rewrap": limits.MAX_TRANSIT_PLAINTEXT_BYTES + _ENVELOPE_SLACK,
    "/secretsvc.v1.Transit/EncryptBatch": (
        limits.MAX_BATCH_TOTAL_BYTES + limits.MAX_BATCH_ITEMS * _PER_BATCH_ITEM_OVERHEAD + SMALL_REQUEST_BYTES
    ),
    "/secretsvc.v1.Transit/DecryptBatch": (
        limits.MAX_BATCH_TOTAL_BYTES + limits.MAX_BATCH_ITEMS * _PER_BATCH_ITEM_OVERHEAD + SMALL_REQUEST_BYTES
    ),
}


def max_request_bytes(method: str, *, public: bool) -> int:
    """The bound for one request message of `method` (for a streaming request: for each message)."""
    if public:
        return PUBLIC_REQUEST_BYTES
    return min(_LARGE.get(method, SMALL_REQUEST_BYTES), limits.MAX_MESSAGE_BYTES)
