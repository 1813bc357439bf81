"""The worker-process helpers: who counts as a worker, and the listen address with the first worker's port."""

from __future__ import annotations

import os

from secretsvc.rpc.workers import ENV_INDEX, ENV_JOINS, ENV_SUPERVISOR, WorkerRole, with_port


def test_a_process_is_a_worker_only_when_its_parent_set_the_variables() -> None:
    env = {ENV_INDEX: "1", ENV_JOINS: "1", ENV_SUPERVISOR: str(os.getppid())}
    role = WorkerRole.from_env(env)
    assert role is not None and role.index == 1 and role.joins and role.ready_fd is None
    # The same variables from anyone else (set by hand, inherited) do not make a worker, which would skip
    # the data directory's lock.
    assert WorkerRole.from_env({**env, ENV_SUPERVISOR: str(os.getpid())}) is None
    assert WorkerRole.from_env({ENV_INDEX: "0"}) is None
    assert WorkerRole.from_env({}) is None


def test_with_port_replaces_only_the_port() -> None:
    assert with_port("127.0.0.1:0", 8290) == "127.0.0.1:8290"
    assert with_port("[::1]:0", 443) == "[::1]:443"
    assert with_port("localhost:1234", 5) == "localhost:5"
