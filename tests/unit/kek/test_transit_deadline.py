"""One deadline per Transit call, against a real slow server: a loopback HTTP server that accepts, answers a
status line, then drips one header byte at a time, each well within requests' per-operation timeout. Without
an overall deadline such a server holds a call for as long as it drips; with it the call fails as
`KekUnavailable` (UNAVAILABLE with a retry hint) within the configured timeout plus a small margin."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import time
from collections.abc import Iterator

import hvac
import pytest

from secretsvc import errors
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import WrappedKey
from secretsvc.kek.deadline import DeadlineRunner
from secretsvc.kek.transit import RETRY_AFTER_UNREACHABLE, TransitKek, TransitSettings
from secretsvc.kek.vaultauth import TokenLogin

TIMEOUT = 0.6  # vault_timeout_seconds: requests' per-operation timeout and the call's deadline
DRIP_EVERY = 0.15  # well inside TIMEOUT, so requests' own timeout never fires
DRIP_FOR = 2.5  # how long the server keeps one connection dripping before it closes it
MARGIN = 0.4
AAD = b"secretsvc.dek.v1|deadline-test"


class DripServer:
    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            with contextlib.suppress(OSError):
                conn.recv(65536)  # the request; its content does not matter
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                ends = time.monotonic() + DRIP_FOR
                while time.monotonic() < ends and not self._stop.is_set():
                    conn.sendall(b"a")
                    time.sleep(DRIP_EVERY)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def drip() -> Iterator[DripServer]:
    server = DripServer()
    try:
        yield server
    finally:
        server.close()


def _kek(server: DripServer) -> TransitKek:
    login = TokenLogin(token=SecretBytes(os.urandom(16).hex().encode()))
    # Built directly: `open` would read the key, which is what the first test times.
    return TransitKek(TransitSettings(server.addr, "slow-root", login, timeout_seconds=TIMEOUT))


def test_the_drip_server_defeats_a_per_operation_timeout(drip: DripServer) -> None:
    # The premise of the other tests: requests alone, with the same timeout, is held for the whole drip.
    client = hvac.Client(url=drip.addr, timeout=TIMEOUT)
    started = time.monotonic()
    with contextlib.suppress(Exception):
        client.adapter.get("/v1/sys/health")
    assert time.monotonic() - started >= DRIP_FOR - DRIP_EVERY


@pytest.mark.parametrize("op", ["wrap", "unwrap", "unwrap_many", "check_reachable"])
def test_each_call_fails_as_unavailable_within_its_deadline(drip: DripServer, op: str) -> None:
    kek = _kek(drip)
    key = SecretBytes(os.urandom(32))
    wrapped = WrappedKey(kek.key_id, 1, b"vault:v1:" + b"QUFB" * 20)
    calls = {
        "wrap": lambda: kek.wrap(key, AAD),
        "unwrap": lambda: kek.unwrap(wrapped, AAD),
        "unwrap_many": lambda: kek.unwrap_many([(wrapped, AAD)]),
        "check_reachable": kek.check_reachable,
    }
    started = time.monotonic()
    with pytest.raises(errors.KekUnavailable) as info:
        calls[op]()
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + MARGIN, f"{op} held the caller {elapsed:.2f}s"
    assert info.value.retry_after_seconds == RETRY_AFTER_UNREACHABLE
    assert "no answer within" in str(info.value)
    assert drip.connections >= 1  # it did reach the server, and was held there


def test_abandoned_requests_end_when_the_server_stops_dripping(drip: DripServer) -> None:
    kek = _kek(drip)
    with pytest.raises(errors.KekUnavailable):
        kek.check_reachable()
    assert kek.requests_out == 1  # abandoned by the caller, still held by the server
    deadline = time.monotonic() + DRIP_FOR + 3 * TIMEOUT
    while kek.requests_out:
        assert time.monotonic() < deadline, "an abandoned request outlived the server's drip"
        time.sleep(0.05)


def test_runner_passes_values_and_errors_through_and_reuses_its_threads() -> None:
    runner = DeadlineRunner(2, name="reuse-test")
    for _ in range(20):
        assert runner.run(lambda: 41 + 1, time.monotonic() + 5, TimeoutError) == 42
    assert runner.busy == 0
    assert sum(t.name == "reuse-test" for t in threading.enumerate()) == 1

    def fail() -> int:
        raise errors.DecryptionFailed()

    with pytest.raises(errors.DecryptionFailed):
        runner.run(fail, time.monotonic() + 5, TimeoutError)


def test_runner_with_every_thread_held_fails_at_the_deadline_without_starting_more() -> None:
    runner = DeadlineRunner(1)
    release = threading.Event()
    with pytest.raises(TimeoutError):
        runner.run(lambda: release.wait(10), time.monotonic() + 0.1, TimeoutError)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        runner.run(lambda: 1, time.monotonic() + 0.2, TimeoutError)
    assert 0.15 <= time.monotonic() - started < 0.2 + MARGIN  # waited for a slot, then gave up on time
    release.set()
    deadline = time.monotonic() + 5
    while True:  # the slot comes back once the held call ends
        with contextlib.suppress(TimeoutError):
            assert runner.run(lambda: 7, time.monotonic() + 0.5, TimeoutError) == 7
            break
        assert time.monotonic() < deadline


def test_runner_never_has_more_threads_than_slots() -> None:
    runner = DeadlineRunner(3, name="bound-test")
    results: list[int] = []

    def slow(i: int) -> int:
        time.sleep(0.05)
        return i

    def caller(i: int) -> None:
        results.append(runner.run(functools.partial(slow, i), time.monotonic() + 5, TimeoutError))

    callers = [threading.Thread(target=caller, args=(i,)) for i in range(12)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert sorted(results) == list(range(12))  # every call ran, three at a time
    assert sum(t.name == "bound-test" for t in threading.enumerate()) <= 3
