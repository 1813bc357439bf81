"""The client library's reconnecting watch against the real server: a restart of the server is ridden out,
a version written while the client was cut off is caught up by the next `synced` batch, `close()` from another
thread ends the iteration, and a permanent refusal is raised rather than retried."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import grpc
import pytest

from secretsvc.client import ClientSettings, StaticToken, open_channel
from secretsvc.client.watch import SecretWatch, WatchBatch
from tests.integration.serverproc import ServerProcess, Stubs
from tests.integration.test_service_api import put


def _channel(server: ServerProcess) -> grpc.Channel:
    return open_channel(ClientSettings.from_environment({}, addr=server.addr), StaticToken(server.token))


def test_a_restart_is_ridden_out_and_missed_versions_are_caught_up(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server().start()
    stubs = Stubs(server)
    put(stubs, "a", b"v1")
    stubs.close()
    batches: queue.Queue[WatchBatch] = queue.Queue()
    retries: list[float] = []
    channel = _channel(server)
    watch = SecretWatch(channel, [("app", "a")], on_retry=lambda error, delay: retries.append(delay),
                        uniform=lambda: 0.1)
    reader = threading.Thread(target=lambda: [batches.put(b) for b in watch], daemon=True)
    reader.start()
    first = batches.get(timeout=10)
    assert first.synced and first.changes[0].current_version == 1

    assert server.stop() == 0
    restarted = make_server(port=server.port).start()  # the same data directory and port
    stubs = Stubs(restarted)
    put(stubs, "a", b"v2")  # written while the watch may still be reconnecting
    caught_up = batches.get(timeout=30)
    while caught_up.changes[0].current_version < 2:
        caught_up = batches.get(timeout=30)
    assert caught_up.changes[0].current_version == 2 and retries
    watch.close()
    reader.join(timeout=10)
    assert not reader.is_alive()
    stubs.close()
    channel.close()


def test_a_permanent_refusal_is_raised(server: ServerProcess) -> None:
    nobody = server.cli("token", "create", "nobody").stdout.decode().strip()
    channel = open_channel(ClientSettings.from_environment({}, addr=server.addr), StaticToken(nobody))
    with pytest.raises(grpc.RpcError) as refused:
        list(SecretWatch(channel, [("app", "a")]))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    channel.close()
