"""The worker-process helpers: who counts as a worker, the listen address with the first worker's port, and how
many workers the default starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secretsvc.cli.serve import worker_count
from secretsvc.config import MAX_PROCESSES, load_config
from secretsvc.errors import ConfigError
from secretsvc.rpc.workers import (
    ENV_INDEX,
    ENV_JOINS,
    ENV_SUPERVISOR,
    WORKER_MEMORY_BYTES,
    WorkerRole,
    auto_processes,
    usable_cores,
    with_port,
)


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


def _cgroup(root: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return str(root)


@pytest.mark.parametrize(("files", "limit"), [
    ({"cpu.max": "max 100000\n"}, None),  # cgroup v2, no limit
    ({"cpu.max": "100000 100000\n"}, 1),
    ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: a second process still has half a core to use
    ({"cpu.max": "50000 100000\n"}, 1),  # below one CPU: still one process
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"cpu.max": "garbage\n"}, None),
    ({}, None),  # no cgroup files at all
])
def test_usable_cores_is_the_affinity_capped_by_a_cgroup_cpu_limit(tmp_path: Path, files: dict[str, str],
                                                                   limit: int | None) -> None:
    affinity = len(os.sched_getaffinity(0))
    got = usable_cores(cgroup_root=_cgroup(tmp_path, files))
    assert got == (affinity if limit is None else min(affinity, limit))


@pytest.mark.parametrize(("files", "workers"), [
    ({"memory.max": "max\n"}, None),  # no memory limit: the cores decide
    ({"memory.max": f"{WORKER_MEMORY_BYTES}\n"}, 1),
    ({"memory.max": f"{WORKER_MEMORY_BYTES - 1}\n"}, 1),  # below one worker's share: still one
    ({"memory.max": f"{2 * WORKER_MEMORY_BYTES + 5}\n"}, 2),
    ({"memory/memory.limit_in_bytes": f"{WORKER_MEMORY_BYTES}\n"}, 1),  # cgroup v1
    ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, None),  # v1's "no limit"
    ({"memory.max": "lots\n"}, None),
])
def test_auto_processes_fit_the_cgroup_memory_limit(tmp_path: Path, files: dict[str, str],
                                                    workers: int | None) -> None:
    wanted = usable_cores(cgroup_root=str(tmp_path))
    got = auto_processes(cgroup_root=_cgroup(tmp_path, files))
    assert got == (wanted if workers is None else min(wanted, workers))


def test_processes_default_to_one_per_usable_core_and_accept_numbers_and_auto(tmp_path: Path) -> None:
    def count(flags: dict[str, object], environ: dict[str, str], config_file: Path | None = None) -> int:
        return worker_count(load_config({"data_dir": tmp_path, **flags}, environ, config_file))

    cores = auto_processes()
    assert count({}, {}) == cores
    assert count({"processes": "auto"}, {}) == count({"processes": "0"}, {}) == cores
    assert count({}, {"SECRETSVC_PROCESSES": "3"}) == 3
    assert count({"processes": "2"}, {"SECRETSVC_PROCESSES": "3"}) == 2  # the flag wins
    config_file = tmp_path / "secretsvc.toml"
    config_file.write_text("[server]\nprocesses = 4\n")
    assert count({}, {}, config_file) == 4
    assert count({}, {"SECRETSVC_PROCESSES": "3"}, config_file) == 3  # the environment beats the file
    for bad in ("many", "-1", str(MAX_PROCESSES + 1)):
        with pytest.raises(ConfigError, match="processes must be"):
            count({"processes": bad}, {})
