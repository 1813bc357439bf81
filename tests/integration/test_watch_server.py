"""WatchSecrets on the real server process: changes arrive as they happen, watches run beside the workers so
unary calls keep being served however many are open, the watch bounds hold, a cancelled watch frees its slot,
and a policy change that takes read away ends the stream."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from secretsvc.v1 import secrets_pb2
from tests.integration.serverproc import ServerProcess, Stubs
from tests.integration.test_service_api import get, put

READERS = """\
version: 1
policies:
  - name: reader
    rules:
      - paths: ["app/**"]
        capabilities: [read]
        effect: allow
"""
NO_A = """\
version: 1
policies:
  - name: no-a
    rules:
      - paths: ["app/a"]
        capabilities: [read]
        effect: deny
bindings:
  - identity: {kind: token, pattern: "watcher"}
    policies: [no-a]
"""


def _refs(*paths: str) -> list[secrets_pb2.SecretRef]:
    return [secrets_pb2.SecretRef(namespace="app", path=p) for p in paths]


def _watch(stubs: Stubs, *paths: str, metadata: object = None) -> Iterator[secrets_pb2.WatchSecretsResponse]:
    md = stubs.md if metadata is None else metadata
    stream: Iterator[secrets_pb2.WatchSecretsResponse] = stubs.secrets.WatchSecrets(
        secrets_pb2.WatchSecretsRequest(refs=_refs(*paths)), metadata=md)
    return stream


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_changes_arrive_as_they_happen(server: ServerProcess) -> None:
    stubs = Stubs(server)
    put(stubs, "a", b"v1")
    stream = _watch(stubs, "a", "b")
    first = next(stream)
    assert first.synced and [(c.ref.path, c.exists, c.current_version) for c in first.changes] == [
        ("a", True, 1), ("b", False, 0)]
    started = time.monotonic()
    put(stubs, "b", b"v1")
    change = next(stream)
    assert time.monotonic() - started < 2
    assert [(c.ref.path, c.current_version, c.state) for c in change.changes] == [
        ("b", 1, secrets_pb2.VERSION_STATE_ACTIVE)]
    stream.cancel()  # type: ignore[attr-defined]
    stubs.close()


def test_unary_calls_are_served_while_more_watches_are_open_than_there_are_workers(
        make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(extra_args=("--workers", "4", "--max-watches-per-caller", "100")).start()
    stubs = Stubs(server)
    put(stubs, "a", b"v1")
    streams = [_watch(stubs, "a") for _ in range(40)]
    for stream in streams:
        assert next(stream).synced
    started = time.monotonic()
    for _ in range(20):
        assert get(stubs, "a").value == b"v1"
    assert time.monotonic() - started < 10

    received: queue.Queue[int] = queue.Queue()

    def drain(stream: Iterator[secrets_pb2.WatchSecretsResponse]) -> None:
        received.put(next(stream).changes[0].current_version)

    threads = [threading.Thread(target=drain, args=(s,), daemon=True) for s in streams]
    for t in threads:
        t.start()
    put(stubs, "a", b"v2")
    assert sorted(received.get(timeout=10) for _ in streams) == [2] * 40  # all 40 told
    for stream in streams:
        stream.cancel()  # type: ignore[attr-defined]
    stubs.close()


def test_watch_bounds_hold_and_a_cancelled_watch_frees_its_slot(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(extra_args=("--max-watches", "2", "--max-watches-per-caller", "1")).start()
    stubs = Stubs(server)
    first = _watch(stubs, "a")
    next(first)
    same_caller = _watch(stubs, "a")
    assert _code(lambda: next(same_caller)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    other = (("authorization", "Bearer " + server.cli("token", "create", "other", "--policy", "admin")
              .stdout.decode().strip()),)
    second = _watch(stubs, "a", metadata=other)
    next(second)
    third_token = (("authorization", "Bearer " + server.cli("token", "create", "third", "--policy", "admin")
                    .stdout.decode().strip()),)
    refused = _watch(stubs, "a", metadata=third_token)
    with pytest.raises(grpc.RpcError) as full:
        next(refused)
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_watches" in (full.value.details() or "")
    first.cancel()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while True:
        again = _watch(stubs, "a", metadata=third_token)
        if _code(lambda stream=again: next(stream)) == grpc.StatusCode.OK:  # type: ignore[misc]
            break
        assert time.monotonic() < deadline, "a cancelled watch did not free its slot"
        time.sleep(0.2)
    again.cancel()  # type: ignore[attr-defined]
    second.cancel()  # type: ignore[attr-defined]
    assert _code(lambda: next(stubs.secrets.WatchSecrets(secrets_pb2.WatchSecretsRequest(refs=_refs("a"))))) \
        == grpc.StatusCode.UNAUTHENTICATED
    stubs.close()


def test_a_policy_change_that_takes_read_away_ends_the_watch(make_server: Callable[..., ServerProcess],
                                                             tmp_path: Path) -> None:
    (tmp_path / "readers.yaml").write_text(READERS)
    server = make_server(extra_args=("--policy-path", str(tmp_path / "readers.yaml"))).start()
    stubs = Stubs(server)
    put(stubs, "a", b"v1")
    token = server.cli("token", "create", "watcher", "--policy", "reader").stdout.decode().strip()
    watcher = (("authorization", f"Bearer {token}"),)
    assert _code(lambda: next(_watch(stubs, "db/x", metadata=(("authorization", "Bearer " + server.cli(
        "token", "create", "nobody").stdout.decode().strip()),)))) == grpc.StatusCode.PERMISSION_DENIED
    stream = _watch(stubs, "a", metadata=watcher)
    assert next(stream).synced
    (tmp_path / "no-a.yaml").write_text(NO_A)
    assert server.cli("policy", "put", "no-a", str(tmp_path / "no-a.yaml")).returncode == 0
    with pytest.raises(grpc.RpcError) as ended:
        next(stream)
    assert ended.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "token:watcher may not read secret app/a" in (ended.value.details() or "")
    stubs.close()


def test_watching_can_be_turned_off_and_a_watch_then_fails_for_good(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(extra_args=("--max-watches", "0")).start()
    stubs = Stubs(server)
    with pytest.raises(grpc.RpcError) as off:
        next(_watch(stubs, "a"))
    assert off.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "max_watches = 0" in (off.value.details() or "")
    put(stubs, "a", b"v1")
    assert get(stubs, "a").value == b"v1"  # unary calls are untouched
    stubs.close()
