"""How `client.matching` splits candidates into requests the service accepts."""

from __future__ import annotations

import pytest

from secretsvc.client.matching import batches
from secretsvc.service import limits


def test_batches_respect_count_and_bytes() -> None:
    many = [b"abcdef"] * (2 * limits.MAX_MATCH_CANDIDATES + 5)
    spans = batches(many)
    assert [len(s) for s in spans] == [limits.MAX_MATCH_CANDIDATES, limits.MAX_MATCH_CANDIDATES, 5]
    big = [b"z" * limits.MAX_MATCH_CANDIDATE_BYTES] * 600
    spans = batches(big)
    assert all(sum(len(big[i]) for i in s) <= limits.MAX_MATCH_TOTAL_BYTES for s in spans)
    assert [i for s in spans for i in s] == list(range(600))
    assert batches([]) == []


@pytest.mark.parametrize("bad", [b"", b"q" * (limits.MAX_MATCH_CANDIDATE_BYTES + 1)])
def test_a_candidate_out_of_bounds_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError, match="MAX_MATCH_CANDIDATE_BYTES"):
        batches([b"abcdef", bad])
