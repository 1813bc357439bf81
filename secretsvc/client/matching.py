"""Asking the service which candidate values equal stored secret versions (`Matching.MatchValues`).

The scanner's side of known-secret matching (`secretsvc scan --match-stored`, scan/stored.py) calls this with
candidates it found; the answers name secret versions, never values. A batch larger than the service's bounds
is split here, so callers pass any number of candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from secretsvc.service import limits
from secretsvc.v1 import matching_pb2, matching_pb2_grpc, secrets_pb2


@dataclass(frozen=True, slots=True)
class StoredMatch:
    candidate: int  # index into the candidates given to `match_values`
    namespace: str
    path: str
    version: int
    current: bool
    deleted: bool


@dataclass(frozen=True, slots=True)
class MatchAnswer:
    matches: Sequence[StoredMatch]
    complete: bool  # False: the service had not yet fingerprinted every older version


def batches(
    candidates: Sequence[bytes],
    *,
    max_items: int = limits.MAX_MATCH_CANDIDATES,
    max_bytes: int = limits.MAX_MATCH_TOTAL_BYTES,
) -> list[range]:
    """Index ranges of `candidates` that each fit one request. A candidate longer than
    MAX_MATCH_CANDIDATE_BYTES is the caller's error (the service would refuse it)."""
    out: list[range] = []
    start = size = 0
    for index, candidate in enumerate(candidates):
        if not 1 <= len(candidate) <= limits.MAX_MATCH_CANDIDATE_BYTES:
            raise ValueError(
                f"candidate {index} has {len(candidate)} bytes; each must have 1.."
                f"MAX_MATCH_CANDIDATE_BYTES={limits.MAX_MATCH_CANDIDATE_BYTES}"
            )
        if index - start == max_items or size + len(candidate) > max_bytes:
            out.append(range(start, index))
            start, size = index, 0
        size += len(candidate)
    if start < len(candidates):
        out.append(range(start, len(candidates)))
    return out


def match_values(channel: grpc.Channel, candidates: Sequence[bytes]) -> MatchAnswer:
    """Every stored version (that the caller holds `match` on) equal to one of `candidates`, one request per
    batch. Raises grpc.RpcError as the calls do."""
    stub = matching_pb2_grpc.MatchingStub(channel)  # type: ignore[no-untyped-call]  # generated, unannotated
    found: list[StoredMatch] = []
    complete = True
    for span in batches(candidates):
        reply = stub.MatchValues(matching_pb2.MatchValuesRequest(candidates=[candidates[i] for i in span]))
        complete = complete and reply.complete
        for m in reply.matches:
            if m.candidate >= len(span):
                continue  # not an index this request sent: a confused server is not believed
            found.append(
                StoredMatch(
                    candidate=span.start + m.candidate,
                    namespace=m.ref.namespace,
                    path=m.ref.path,
                    version=m.version,
                    current=m.current,
                    deleted=m.state == secrets_pb2.VERSION_STATE_DELETED,
                )
            )
    return MatchAnswer(tuple(found), complete)
