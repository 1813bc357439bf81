"""`serve --processes N|auto`: N worker processes, each a whole gRPC server on the same port (SO_REUSEPORT).

The supervisor holds the data directory's lock for all of them, starts the first worker alone (it makes the
keyring, the database and the first admin token on a first start, and picks the port when the address says
port 0), then the others on that port. The kernel spreads new connections over the listening workers. A
worker that dies is started again; more than MAX_RESTARTS deaths within RESTART_WINDOW_SECONDS stop the server
with a non-zero status. SIGTERM and SIGINT are passed to every worker, which drain as a single server does;
SIGHUP is passed on (policy reload). The supervisor serves `metrics_listen` itself: every worker's metrics,
merged with a worker label (`rpc/workermetrics.py`). What the workers share across processes, and what stays
per worker, is in docs/server.md ("Worker processes").
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from secretsvc.config import MAX_PROCESSES, ServerConfig
from secretsvc.datadir import DataDir
from secretsvc.errors import ConfigError
from secretsvc.netaddr import parse_host_port

log = logging.getLogger("secretsvc.server")

# Set by the supervisor in a worker's environment; the worker takes its role from them (`WorkerRole.from_env`).
ENV_INDEX = "SECRETSVC_WORKER_INDEX"
ENV_JOINS = "SECRETSVC_WORKER_JOINS"
ENV_READY_FD = "SECRETSVC_WORKER_READY_FD"
ENV_SUPERVISOR = "SECRETSVC_WORKER_OF"  # the supervisor's pid: a worker is a child of the supervisor that set it
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
# How long the first worker may take to start (it may create the keyring and migrate the database).
FIRST_START_SECONDS = 120.0
# Beyond the drain grace, how long a stopping worker has to close before it is killed.
STOP_MARGIN_SECONDS = 15.0
_READY_LINE_MAX = 64


@dataclass(frozen=True, slots=True)
class WorkerRole:
    index: int
    joins: bool  # started beside a running worker: its audit log is already open, no start checkpoint
    ready_fd: int | None  # where to say "ready PORT METRICS_PORT" once serving
    parent: int  # the supervisor's pid: a worker whose supervisor is gone stops

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ[str]) -> WorkerRole | None:
        # Only a process the supervisor started is a worker: the variables alone (set by hand, or inherited
        # by a server started from a worker's environment) must not skip the data directory's lock.
        if ENV_INDEX not in environ or environ.get(ENV_SUPERVISOR) != str(os.getppid()):
            return None
        ready = environ.get(ENV_READY_FD)
        return cls(index=int(environ[ENV_INDEX]), joins=environ.get(ENV_JOINS) == "1",
                   ready_fd=int(ready) if ready else None, parent=os.getppid())

    def announce(self, port: int, metrics_port: int = 0) -> None:
        """Tell the supervisor this worker serves `port`, and its own metrics on loopback `metrics_port`."""
        if self.ready_fd is None:
            return
        try:
            os.write(self.ready_fd, f"ready {port} {metrics_port}\n".encode("ascii"))
        finally:
            os.close(self.ready_fd)


# What `auto` sets aside for each worker out of a cgroup memory limit: an idle worker holds 65-85 MB, and
# large calls (1 MiB values on every thread) take it past 150 MB. Without this, a pod with a memory limit but
# no CPU limit (a common setting) would start a worker per node core and be killed for memory.
WORKER_MEMORY_BYTES = 256 * 1024 * 1024
CGROUP_ROOT = "/sys/fs/cgroup"
_UNLIMITED_BYTES = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63


def auto_processes(*, cgroup_root: str = CGROUP_ROOT) -> int:
    """How many workers `--processes auto` (the default) starts: one per usable core, and no more than the
    cgroup's memory limit holds at WORKER_MEMORY_BYTES each."""
    # One per core, not two: two served more at 16 connections on 2 cores (the kernel's connection hash leaves
    # one worker of a pair busier, and the scheduler evens out two per core: 2,244-2,455 reads/s against
    # 1,857-1,947), the same at 1 and 64, but cost CPU per call where processes already outnumber the cores
    # (three PostgreSQL replicas on one host: +18-23% CPU per read) and double memory and database
    # connections. docs/performance.md has the runs; `--processes` sets more where connections are few.
    processes = usable_cores(cgroup_root=cgroup_root)
    memory = _cgroup_memory_limit(cgroup_root)
    if memory is not None:
        processes = min(processes, max(1, memory // WORKER_MEMORY_BYTES))
    return min(processes, MAX_PROCESSES)


def _cgroup_memory_limit(root: str) -> int | None:
    """Bytes allowed by the cgroup (v2 `memory.max`, else v1 `memory.limit_in_bytes`), or None when unlimited."""
    for name in ("memory.max", os.path.join("memory", "memory.limit_in_bytes")):
        try:
            with open(os.path.join(root, name), encoding="ascii") as f:
                text = f.read(32).strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            limit = int(text)
        except ValueError:
            return None
        return None if limit <= 0 or limit >= _UNLIMITED_BYTES else limit
    return None


def usable_cores(*, cgroup_root: str = CGROUP_ROOT) -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (a container's CPU limit,
    which affinity does not show: a pod limited to 2 CPUs on a 64-core node sees 64 in its affinity)."""
    cores = len(os.sched_getaffinity(0))
    quota = _cgroup_cpu_quota(cgroup_root)
    return max(1, min(cores, math.ceil(quota))) if quota is not None else cores


def _cgroup_cpu_quota(root: str) -> float | None:
    """CPUs allowed by the cgroup (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), or None when unlimited or unknown."""
    try:
        with open(os.path.join(root, "cpu.max"), encoding="ascii") as f:
            quota, _, period = f.read(64).strip().partition(" ")
        return None if quota == "max" else int(quota) / int(period or "100000")
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us"), encoding="ascii") as f:
            quota_us = int(f.read(32).strip())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us"), encoding="ascii") as f:
            period_us = int(f.read(32).strip())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def with_port(listen: str, port: int) -> str:
    """`listen` (HOST:PORT or [V6]:PORT) with its port replaced."""
    host, _, _ = listen.rpartition(":")
    return f"{host}:{port}"


class Supervisor:
    def __init__(self, config: ServerConfig, processes: int, argv: Sequence[str]) -> None:
        self._config = config
        self._processes = processes
        self._argv = list(argv)  # this command's arguments: each worker parses them as the supervisor did
        self._stop = threading.Event()
        self._workers: dict[int, subprocess.Popen[bytes]] = {}  # index -> process
        self._deaths: list[float] = []
        self._restarts = 0
        self._listen = config.listen
        self._metrics_ports: dict[int, int] = {}  # index -> the worker's private metrics port
        self._ports_lock = threading.Lock()

    def run(self) -> int:
        datadir = DataDir.open(self._config.data_dir)  # one lock for all workers; they do not take it again
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        metrics = None
        try:
            metrics = self._serve_metrics()
            return self._run()
        finally:
            if metrics is not None:
                metrics.shutdown()
            self._stop_all()
            for number, handler in previous.items():
                signal.signal(number, handler)
            datadir.release()

    def _serve_metrics(self) -> Any:
        """Serve every worker's metrics on metrics_listen (None when it is off)."""
        if not self._config.metrics_listen:
            return None
        from prometheus_client import start_http_server

        from secretsvc.rpc.workermetrics import supervisor_registry

        host, port = parse_host_port(self._config.metrics_listen, setting="metrics_listen")
        registry = supervisor_registry(self._worker_metrics_ports, lambda: self._restarts)
        try:
            httpd, _ = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {self._config.metrics_listen}: {exc.strerror}") from None
        return httpd

    def _worker_metrics_ports(self) -> dict[int, int]:
        with self._ports_lock:
            return dict(self._metrics_ports)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            for proc in self._workers.values():
                _send(proc, signal.SIGHUP)
            return
        self._stop.set()

    def _run(self) -> int:
        port = self._start_ready(0, joins=False, listen=self._listen, timeout=FIRST_START_SECONDS)
        if port is None:
            return 1
        self._listen = with_port(self._config.listen, port)
        for index in range(1, self._processes):
            if self._start_ready(index, joins=True, listen=self._listen, timeout=FIRST_START_SECONDS) is None:
                return 1
        print(f"secretsvc: listening on {self._listen} ({self._processes} worker processes, data dir "
              f"{self._config.data_dir})", file=sys.stderr, flush=True)
        while not self._stop.wait(0.2):
            for index, proc in list(self._workers.items()):
                code = proc.poll()
                if code is None:
                    continue
                now = time.monotonic()
                self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW_SECONDS] + [now]
                log.error("worker process exited; starting it again",
                          extra={"worker": index, "pid": proc.pid, "status": code})
                if len(self._deaths) > MAX_RESTARTS:
                    print(f"secretsvc: worker processes keep exiting ({len(self._deaths)} in "
                          f"{RESTART_WINDOW_SECONDS:.0f} s); stopping", file=sys.stderr, flush=True)
                    return 1
                self._restarts += 1
                with self._ports_lock:
                    self._metrics_ports.pop(index, None)
                again, read_fd = self._spawn_announcing(index, joins=False, listen=self._listen)
                # Spawned here, so the loop never sees the dead process twice; its ready line (with its new
                # metrics port) is awaited aside, without holding up the watch over the others.
                threading.Thread(target=self._await_ready, args=(index, again, read_fd, FIRST_START_SECONDS),
                                 name=f"worker-{index}-start", daemon=True).start()
        return 0

    def _start_ready(self, index: int, *, joins: bool, listen: str, timeout: float) -> int | None:
        """Start worker `index` and wait until it serves; its port, or None if it exited first."""
        proc, read_fd = self._spawn_announcing(index, joins=joins, listen=listen)
        return self._await_ready(index, proc, read_fd, timeout)

    def _spawn_announcing(self, index: int, *, joins: bool, listen: str) -> tuple[subprocess.Popen[bytes], int]:
        read_fd, write_fd = os.pipe()
        try:
            proc = self._spawn(index, joins=joins, listen=listen, ready_fd=write_fd)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return proc, read_fd

    def _await_ready(self, index: int, proc: subprocess.Popen[bytes], read_fd: int, timeout: float) -> int | None:
        """Read the worker's "ready PORT METRICS_PORT" line; its port, or None if it exited (or hung) first."""
        line = b""
        deadline = time.monotonic() + timeout
        with os.fdopen(read_fd, "rb", buffering=0) as ready:
            while not line.endswith(b"\n") and len(line) < _READY_LINE_MAX and time.monotonic() < deadline:
                chunk = ready.read(1)
                if not chunk:  # the worker closed the pipe: exited, or ready already said
                    break
                line += chunk
        words = line.split()
        if len(words) != 3 or words[0] != b"ready" or not (words[1].isdigit() and words[2].isdigit()):
            code = proc.wait()
            print(f"secretsvc: worker process {index} did not start (status {code})", file=sys.stderr, flush=True)
            return None
        if int(words[2]):
            with self._ports_lock:
                self._metrics_ports[index] = int(words[2])
        return int(words[1])

    def _spawn(self, index: int, *, joins: bool, listen: str, ready_fd: int | None) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env[ENV_INDEX] = str(index)
        env[ENV_JOINS] = "1" if joins else "0"
        env[ENV_SUPERVISOR] = str(os.getpid())
        env.pop(ENV_READY_FD, None)
        if ready_fd is not None:
            env[ENV_READY_FD] = str(ready_fd)
        # The later --listen wins over the first: every worker binds the port the first one got.
        command = [sys.executable, "-c", "import sys; from secretsvc.cli import main; sys.exit(main())",
                   *self._argv, "--listen", listen]
        proc = subprocess.Popen(command, env=env, pass_fds=() if ready_fd is None else (ready_fd,))
        self._workers[index] = proc
        return proc

    def _stop_all(self) -> None:
        for proc in self._workers.values():
            _send(proc, signal.SIGTERM)
        deadline = time.monotonic() + self._config.shutdown_grace_seconds + STOP_MARGIN_SECONDS
        for index, proc in self._workers.items():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker process did not stop in time; killing it", extra={"worker": index})
                proc.kill()
                proc.wait()
        self._workers.clear()


def _send(proc: subprocess.Popen[bytes], signum: int) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)
