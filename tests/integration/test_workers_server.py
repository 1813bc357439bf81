"""`serve --processes 2` on the real server: both worker processes take connections on one port, a
check-and-set has one winner across them, a write on one reaches a watcher on the other, a revoked token stops
working everywhere, a killed worker is started again, and the audit log they share verifies as one chain."""

from __future__ import annotations

import contextlib
import os
import queue
import random
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from secretsvc.rpc.workers import auto_processes
from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc
from tests.integration.serverproc import ServerProcess, Stubs, cli_command
from tests.integration.test_service_api import get, put, ref
from tests.pgkit import PgServer

# New connections are spread over the workers by a hash of their addresses: with this many, the chance that
# every one lands on the same worker of two is 2**-15.
CHANNELS = 16


def _start_workers(make_server: Callable[..., ServerProcess], *extra: str) -> ServerProcess:
    server = make_server(extra_args=("--processes", "2", "--max-watches-per-caller", str(CHANNELS), *extra)).start()
    _wait_all_started(server)
    return server


@pytest.fixture
def workers(make_server: Callable[..., ServerProcess]) -> Iterator[ServerProcess]:
    yield _start_workers(make_server)


def _wait_all_started(server: ServerProcess) -> None:
    """The first worker answers health checks before the others start; the supervisor says when all serve."""
    deadline = time.monotonic() + 30
    while "2 worker processes" not in server.log():
        assert time.monotonic() < deadline, server.log()
        assert server.proc is not None and server.proc.poll() is None, server.log()
        time.sleep(0.05)


class _OwnConnection(Stubs):
    """Stubs on a TCP connection of their own: gRPC otherwise shares one connection among a process's
    channels to the same address, and one connection reaches one worker."""

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(server)
        self.channel.close()
        self.channel = grpc.insecure_channel(server.addr, options=[("grpc.use_local_subchannel_pool", 1)])
        self.secrets = secrets_pb2_grpc.SecretsStub(self.channel)


def _many(server: ServerProcess) -> list[Stubs]:
    return [_OwnConnection(server) for _ in range(CHANNELS)]


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _metrics(server: ServerProcess) -> str:
    """The supervisor's /metrics: every worker's, each sample labelled with its worker."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _served_by_worker(server: ServerProcess) -> dict[str, float]:
    served: dict[str, float] = {}
    for labels, value in re.findall(r'^secretsvc_rpc_requests_total\{([^}]*)\} (\S+)$', _metrics(server), re.M):
        worker = re.search(r'worker="(\d+)"', labels)
        assert worker is not None, labels
        served[worker.group(1)] = served.get(worker.group(1), 0.0) + float(value)
    return served


def _worker_up(server: ServerProcess) -> dict[str, float]:
    found = re.findall(r'^secretsvc_worker_up\{worker="(\d+)"\} (\S+)$', _metrics(server), re.M)
    return {worker: float(value) for worker, value in found}


def _race(channels: list[Stubs], call: Callable[[Stubs], int]) -> list[object]:
    """`call` on every channel at once: each one's result, or its status code."""
    barrier = threading.Barrier(len(channels))
    outcomes: list[object] = []

    def attempt(stubs: Stubs) -> None:
        barrier.wait()
        try:
            outcomes.append(call(stubs))
        except grpc.RpcError as exc:
            outcomes.append(exc.code())

    threads = [threading.Thread(target=attempt, args=(s,)) for s in channels]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def _verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command("audit", "verify", str(data_dir / "audit"), "--public-key", str(data_dir / "audit-signing.pub")),
        capture_output=True, timeout=60, check=False, text=True,
    )


def test_both_workers_serve_and_a_check_and_set_has_one_winner(workers: ServerProcess) -> None:
    _check_and_set_race(workers)


def test_workers_on_postgresql_race_check_and_set_and_hear_each_others_writes(
    pg_server: PgServer, pg_database: str, make_server: Callable[..., ServerProcess]
) -> None:
    workers = _start_workers(make_server, "--store", pg_server.url(pg_database), "--store-password-file",
                             str(pg_server.password_file()))
    _watchers_hear_a_write(workers)
    _check_and_set_race(workers)


def _check_and_set_race(workers: ServerProcess) -> None:
    assert workers.proc is not None and len(_children(workers.proc.pid)) == 2
    rng = random.Random(81)
    channels = _many(workers)
    first = put(channels[0], "cas", rng.randbytes(16))
    for round_ in range(5):
        expected = first.version + round_
        outcomes = _race(channels, lambda stubs, exp=expected: put(stubs, "cas", rng.randbytes(16), cas=exp).version)
        wins = [o for o in outcomes if isinstance(o, int)]
        assert wins == [expected + 1], outcomes
        assert all(o == grpc.StatusCode.FAILED_PRECONDITION for o in outcomes if not isinstance(o, int)), outcomes
    assert get(channels[0], "cas").version == first.version + 5
    # Both workers took some of the calls, and the supervisor's one /metrics shows each worker's counters.
    served = _served_by_worker(workers)
    assert set(served) == {"0", "1"} and min(served.values()) > 0, (served, workers.log())
    assert _worker_up(workers) == {"0": 1.0, "1": 1.0}
    for s in channels:
        s.close()
    assert workers.stop() == 0
    verified = _verify(workers.data_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_write_on_one_worker_reaches_watchers_on_every_worker(workers: ServerProcess) -> None:
    _watchers_hear_a_write(workers)


def _watchers_hear_a_write(workers: ServerProcess) -> None:
    channels = _many(workers)
    put(channels[0], "watched", b"v1")
    arrived: queue.Queue[tuple[int, int]] = queue.Queue()
    streams = []
    for n, stubs in enumerate(channels):
        stream = stubs.secrets.WatchSecrets(secrets_pb2.WatchSecretsRequest(refs=[ref("watched")]), metadata=stubs.md)
        streams.append(stream)
        assert next(stream).synced

        def drain(stream: Iterator[secrets_pb2.WatchSecretsResponse] = stream, n: int = n) -> None:
            try:
                for message in stream:
                    for change in message.changes:
                        arrived.put((n, change.current_version))
            except grpc.RpcError:
                pass

        threading.Thread(target=drain, daemon=True).start()
    writer = _OwnConnection(workers)
    version = put(writer, "watched", b"v2").version
    seen: set[int] = set()
    deadline = time.monotonic() + 10
    while len(seen) < CHANNELS and time.monotonic() < deadline:
        try:
            n, got = arrived.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if got == version:
            seen.add(n)
    assert seen == set(range(CHANNELS))
    for stream in streams:
        stream.cancel()  # type: ignore[attr-defined]
    for s in [*channels, writer]:
        s.close()


def test_a_revoked_token_stops_working_on_every_worker(workers: ServerProcess) -> None:
    created = workers.cli("token", "create", "short-lived", "--policy", "admin")
    assert created.returncode == 0, created.stderr
    token = created.stdout.decode().strip()
    channels = _many(workers)
    md = (("authorization", f"Bearer {token}"),)
    for stubs in channels:  # every worker has verified (and cached) the token
        stubs.secrets.ListSecrets(secrets_pb2.ListSecretsRequest(namespace="app"), metadata=md)
    revoked = workers.cli("token", "revoke", "short-lived")
    assert revoked.returncode == 0, revoked.stderr
    # Well within the 30 s a cached verification would otherwise live (TOKEN_CACHE_TTL_SECONDS).
    deadline = time.monotonic() + 10
    for stubs in channels:
        while True:
            try:
                stubs.secrets.ListSecrets(secrets_pb2.ListSecretsRequest(namespace="app"), metadata=md)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                break
            assert time.monotonic() < deadline, "a worker still accepts the revoked token"
            time.sleep(0.05)
    for s in channels:
        s.close()


def test_a_killed_worker_is_started_again_and_the_log_still_verifies(workers: ServerProcess) -> None:
    assert workers.proc is not None
    before = _children(workers.proc.pid)
    stubs = Stubs(workers)
    put(stubs, "before", b"x")
    os.kill(before[1], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = _children(workers.proc.pid)
        if len(now) == 2 and before[1] not in now:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the killed worker was not started again:\n{workers.log()}")
    workers.wait_ready()
    channels = _many(workers)
    for n, s in enumerate(channels):
        put(s, f"after-{n}", b"y")
        s.close()
    stubs.close()
    # The started-again worker is scraped on its new private port; the restart is counted.
    deadline = time.monotonic() + 20
    while _worker_up(workers) != {"0": 1.0, "1": 1.0} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _worker_up(workers) == {"0": 1.0, "1": 1.0}
    assert re.search(r"^secretsvc_worker_restarts_total 1\.0$", _metrics(workers), re.M), _metrics(workers)
    assert workers.stop() == 0
    verified = _verify(workers.data_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_workers_that_keep_dying_stop_the_server_with_an_error(workers: ServerProcess) -> None:
    assert workers.proc is not None
    killed: set[int] = set()
    deadline = time.monotonic() + 60
    while workers.proc.poll() is None and time.monotonic() < deadline:
        for pid in _children(workers.proc.pid):
            if pid not in killed:
                killed.add(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    assert workers.proc.wait(timeout=30) == 1
    assert "worker processes keep exiting" in workers.log()
    assert len(killed) > 5


def test_a_bad_process_count_is_a_configuration_error(tmp_path: Path) -> None:
    for value in ("many", "65", "-1"):
        result = subprocess.run(cli_command("serve", "--data-dir", str(tmp_path / "data"), "--processes", value),
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2, result.stderr
        assert "processes must be" in result.stderr


@pytest.mark.skipif(auto_processes() < 2, reason="the default is one process on a single core with little memory")
def test_by_default_the_server_runs_its_workers_per_usable_core(make_server: Callable[..., ServerProcess]) -> None:
    workers = auto_processes()  # one per usable core, within the cgroup's limits
    server = make_server(unset_env=("SECRETSVC_PROCESSES",)).start()
    deadline = time.monotonic() + 30
    while f"{workers} worker processes" not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    assert server.proc is not None and len(_children(server.proc.pid)) == workers
    channels = _many(server)
    for n, stubs in enumerate(channels):
        put(stubs, f"default-{n}", b"z")
        stubs.close()
    # Every worker is scraped; the puts were spread over several of them (connections land by a hash).
    assert _worker_up(server) == {str(i): 1.0 for i in range(workers)}
    served = _served_by_worker(server)
    assert len(served) >= 2 and set(served) <= {str(i) for i in range(workers)}, served
    assert server.stop() == 0
