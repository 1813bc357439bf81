"""The MatchValues use case: which candidate strings equal which stored secret versions.

A leak scanner sends what it found in an image; the service fingerprints each candidate under every version
of its fingerprint key (service/fingerprints.py) and looks the fingerprints up. The answer names secret
versions, never values, and only those the caller holds `match` on: a candidate equal to a secret the caller
may not see is left out exactly like one that equals nothing, so the answer does not tell the two apart.

`match` is an oracle (a caller that holds it on a secret can test guesses of its value), which is why it is
its own capability, the batch is bounded, and every call is audited; grant it to scanners, not to readers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from secretsvc.auth.principal import Principal
from secretsvc.errors import InvalidArgument, LimitExceeded
from secretsvc.service import limits
from secretsvc.service.access import Authorizer, Capability, Resource
from secretsvc.service.fingerprints import FingerprintKeys
from secretsvc.store.base import SecretStore, VersionState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ValueMatch:
    candidate: int  # index into the request's candidates
    namespace: str
    path: str
    version: int
    current: bool  # the secret's current version
    state: VersionState  # ACTIVE or DELETED


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: Sequence[ValueMatch]
    complete: bool  # False while older versions may still lack a fingerprint (the backfill runs)
    secrets: Sequence[str]  # NAMESPACE/PATH of each secret reported, once each: for the audit log


def check_candidates(candidates: Sequence[bytes]) -> None:
    if len(candidates) > limits.MAX_MATCH_CANDIDATES:
        raise LimitExceeded(
            f"{len(candidates)} candidates in one call; at most MAX_MATCH_CANDIDATES={limits.MAX_MATCH_CANDIDATES}"
        )
    total = 0
    for index, candidate in enumerate(candidates):
        if not isinstance(candidate, bytes | bytearray):
            raise InvalidArgument(f"candidate {index} is not bytes")
        if not 1 <= len(candidate) <= limits.MAX_MATCH_CANDIDATE_BYTES:
            raise LimitExceeded(
                f"candidate {index} has {len(candidate)} bytes; each must have 1.."
                f"MAX_MATCH_CANDIDATE_BYTES={limits.MAX_MATCH_CANDIDATE_BYTES}"
            )
        total += len(candidate)
    if total > limits.MAX_MATCH_TOTAL_BYTES:
        raise LimitExceeded(
            f"candidates hold {total} bytes in all; at most MAX_MATCH_TOTAL_BYTES={limits.MAX_MATCH_TOTAL_BYTES}"
        )


class MatchService:
    def __init__(
        self,
        store: SecretStore,
        keys: FingerprintKeys,
        authorizer: Authorizer,
        backfilled: Callable[[], bool] = lambda: True,
    ) -> None:
        self._store = store
        self._keys = keys
        self._authz = authorizer
        self._backfilled = backfilled

    def match(self, caller: Principal, candidates: Sequence[bytes]) -> MatchResult:
        check_candidates(candidates)
        complete = self._backfilled()
        keys = self._keys.all()
        if not keys or not candidates:
            return MatchResult((), complete, ())
        by_digest: dict[bytes, list[int]] = {}
        for index, candidate in enumerate(candidates):
            for key in keys:
                by_digest.setdefault(key.fingerprint(bytes(candidate)), []).append(index)
        allowed: dict[tuple[str, str], bool] = {}
        found: list[ValueMatch] = []
        for hit in self._store.find_fingerprints(list(by_digest)):
            name = (hit.namespace, hit.path)
            if name not in allowed:
                allowed[name] = self._authz.allows(caller, Resource.secret(*name), Capability.MATCH)
            if not allowed[name]:
                continue
            found.extend(
                ValueMatch(index, hit.namespace, hit.path, hit.version, hit.version == hit.current_version, hit.state)
                for index in by_digest[hit.digest]
            )
        found.sort(key=lambda m: (m.candidate, m.namespace, m.path, m.version))
        unique = list(dict.fromkeys(found))  # a candidate listed under two key versions meets a version once
        secrets = sorted({f"{m.namespace}/{m.path}" for m in unique})
        # Sizes and outcomes only: never a candidate, nor which of them matched.
        log.info(
            "values matched",
            extra={
                "candidates": len(candidates),
                "matches": len(unique),
                "secrets": len(secrets),
                "complete": complete,
            },
        )
        return MatchResult(tuple(unique), complete, tuple(secrets))
