"""Bounds on open streaming calls, so streams can never take every worker thread.

gRPC's synchronous server runs each call on a thread from a fixed pool, and a streaming call keeps its thread
for as long as it stays open, idle or not. Without a bound, as many idle streams as there are workers stop
every other call, health checks included. Streams therefore draw a slot from here before they start:

- at most `max_total` streams at once, which the configuration keeps below the worker count, so unary calls
  and health checks always find a thread;
- at most `max_per_peer` from one network address (the port is ignored: one client host, many connections);
- at most `max_public` unauthenticated streams (health Watch), so callers without credentials can never hold
  more than that small share.

A call that finds no slot fails at once with `ResourceExhausted` rather than queueing.

Watches (`WatchSecrets`) have slots of their own, on threads beyond the workers (`rpc/authn.py`), counted per
caller identity rather than per address: pods behind one node or one mesh proxy share an address.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from secretsvc.errors import ResourceExhausted

PUBLIC_STREAM_SHARE = 4  # unauthenticated streams get 1/4 of the slots, at least one


def peer_address(peer: str) -> str:
    """The address part of a gRPC peer string: "ipv4:10.0.0.1:5123" -> "ipv4:10.0.0.1",
    "ipv6:[::1]:5123" -> "ipv6:[::1]". Unix sockets and anything unrecognised are kept whole."""
    if peer.startswith(("ipv4:", "ipv6:")):
        host, sep, port = peer.rpartition(":")
        if sep and port.isdigit() and host not in ("ipv4", "ipv6"):
            return host
    return peer


class StreamSlots:
    def __init__(self, *, max_total: int, max_per_peer: int, max_public: int | None = None,
                 settings: tuple[str, str] = ("max_streams", "max_streams_per_peer")) -> None:
        if max_total < 1 or max_per_peer < 1:
            raise ValueError("stream limits must be at least 1")
        self.max_total = max_total
        self.max_per_peer = max_per_peer
        self._settings = settings  # the configuration names of the two bounds, for messages
        self.max_public = max_public if max_public is not None else max(1, max_total // PUBLIC_STREAM_SHARE)
        self._lock = threading.Lock()
        self._total = 0
        self._public = 0
        self._per_peer: dict[str, int] = {}

    @property
    def open_streams(self) -> int:
        return self._total

    def acquire(self, peer: str, *, public: bool) -> Callable[[], None]:
        """Take a slot for a stream from `peer`; returns its release function, which may be called more than
        once (gRPC's termination callback and the handler's own cleanup both call it)."""
        address = peer_address(peer)
        with self._lock:
            if self._total >= self.max_total:
                raise ResourceExhausted(
                    f"the server holds its maximum of {self.max_total} open streams ({self._settings[0]}); "
                    "retry later"
                )
            if public and self._public >= self.max_public:
                raise ResourceExhausted(
                    f"the server holds its maximum of {self.max_public} unauthenticated streams; retry later"
                )
            held = self._per_peer.get(address, 0)
            if held >= self.max_per_peer:
                raise ResourceExhausted(
                    f"this client holds its maximum of {self.max_per_peer} open streams "
                    f"({self._settings[1]}); close one first"
                )
            self._total += 1
            self._public += public
            self._per_peer[address] = held + 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                self._total -= 1
                self._public -= public
                left = self._per_peer[address] - 1
                if left:
                    self._per_peer[address] = left
                else:
                    del self._per_peer[address]  # the dict holds only peers with streams open

        return release
