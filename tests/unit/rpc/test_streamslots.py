"""Stream slots: the bounds that keep open streams from holding every worker thread."""

from __future__ import annotations

import pytest

from secretsvc.errors import ResourceExhausted
from secretsvc.rpc.streamslots import StreamSlots, peer_address


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:10.0.0.1:5123", "ipv4:10.0.0.1"),
        ("ipv6:[::1]:5123", "ipv6:[::1]"),
        ("ipv6:[fe80::1%eth0]:80", "ipv6:[fe80::1%eth0]"),
        ("unix:/run/secretsvc.sock", "unix:/run/secretsvc.sock"),
        ("ipv4:", "ipv4:"),
        ("", ""),
    ],
)
def test_peer_address_drops_only_the_port(peer: str, address: str) -> None:
    assert peer_address(peer) == address


def test_the_total_is_shared_by_every_peer() -> None:
    slots = StreamSlots(max_total=3, max_per_peer=2)
    held = [slots.acquire(f"ipv4:10.0.0.{i}:1", public=False) for i in range(3)]
    with pytest.raises(ResourceExhausted, match="max_streams"):
        slots.acquire("ipv4:10.0.0.9:1", public=False)
    held[0]()
    slots.acquire("ipv4:10.0.0.9:1", public=False)
    assert slots.open_streams == 3


def test_one_peer_is_bounded_whatever_its_ports() -> None:
    slots = StreamSlots(max_total=10, max_per_peer=2)
    slots.acquire("ipv4:10.0.0.1:1000", public=False)
    slots.acquire("ipv4:10.0.0.1:1001", public=False)
    with pytest.raises(ResourceExhausted, match="max_streams_per_peer"):
        slots.acquire("ipv4:10.0.0.1:1002", public=False)
    slots.acquire("ipv4:10.0.0.2:1000", public=False)


def test_unauthenticated_streams_get_a_small_share() -> None:
    slots = StreamSlots(max_total=8, max_per_peer=8)
    assert slots.max_public == 2
    slots.acquire("ipv4:10.0.0.1:1", public=True)
    slots.acquire("ipv4:10.0.0.2:1", public=True)
    with pytest.raises(ResourceExhausted, match="unauthenticated"):
        slots.acquire("ipv4:10.0.0.3:1", public=True)
    # Authenticated callers still find room.
    for i in range(6):
        slots.acquire(f"ipv4:10.0.1.{i}:1", public=False)
    assert slots.open_streams == 8


def test_release_is_idempotent_and_forgets_idle_peers() -> None:
    slots = StreamSlots(max_total=2, max_per_peer=1, max_public=1)
    release = slots.acquire("ipv4:10.0.0.1:1", public=True)
    release()
    release()  # gRPC's termination callback and the handler's cleanup both call it
    assert slots.open_streams == 0
    assert slots._per_peer == {}
    slots.acquire("ipv4:10.0.0.1:1", public=True)
    slots.acquire("ipv4:10.0.0.2:1", public=False)
    assert slots.open_streams == 2


def test_limits_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StreamSlots(max_total=0, max_per_peer=1)
