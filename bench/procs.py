"""The two server processes the benchmark compares: `secretsvc serve` and the echo server.

Both run as separate processes on free loopback ports, log to files in the run's temporary directory, and
are stopped with SIGTERM. CPU time is read from /proc so the benchmark can say how much server CPU one call
costs, which separates "the server is slow" from "the client could not push harder".
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
MAX_TOKEN_FILE_BYTES = 4096
MAX_LOG_TAIL_BYTES = 4096
BENCH_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ProcUsage:
    """A process's resource use so far (all threads): CPU seconds and minor page faults."""

    user_s: float
    sys_s: float
    minor_faults: int

    def minus(self, earlier: ProcUsage) -> ProcUsage:
        return ProcUsage(self.user_s - earlier.user_s, self.sys_s - earlier.sys_s,
                         self.minor_faults - earlier.minor_faults)


def usage(pid: int) -> ProcUsage:
    """Read /proc/PID/stat (see proc(5): minflt, utime and stime are fields 10, 14 and 15)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may hold spaces; the fields after it start at field 3.
    fields = raw[raw.rindex(")") + 2:].split()
    tick = os.sysconf("SC_CLK_TCK")
    return ProcUsage(user_s=int(fields[11]) / tick, sys_s=int(fields[12]) / tick, minor_faults=int(fields[7]))


@dataclass
class ServerProc:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(max(0, self.log_path.stat().st_size - MAX_LOG_TAIL_BYTES))
            return f.read().decode(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")


def _spawn(name: str, argv: list[str], workdir: Path, port: int, env: dict[str, str]) -> ServerProc:
    log_path = workdir / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=BENCH_DIR.parent,
                                env={**os.environ, **env})
    return ServerProc(name=name, proc=proc, port=port, log_path=log_path)


def _open(target: str, ca_file: Path | None, client_cert: tuple[Path, Path] | None) -> grpc.Channel:
    if ca_file is None:
        return grpc.insecure_channel(target)
    cert, key = (p.read_bytes() for p in client_cert) if client_cert else (None, None)
    credentials = grpc.ssl_channel_credentials(ca_file.read_bytes(), key, cert)
    return grpc.secure_channel(target, credentials, options=[("grpc.ssl_target_name_override", "localhost")])


def _wait_channel(server: ServerProc, *, health: bool, ca_file: Path | None = None,
                  client_cert: tuple[Path, Path] | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with _open(server.target, ca_file, client_cert) as channel:
        while time.monotonic() < deadline:
            server.check_alive()
            try:
                if health:
                    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if status.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                else:
                    ready = grpc.channel_ready_future(channel)
                    try:
                        ready.result(timeout=1)
                        return
                    finally:
                        # A pending future keeps polling and complains once the channel closes.
                        ready.cancel()
            except (grpc.RpcError, grpc.FutureTimeoutError):
                pass
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.name} did not become ready in {START_TIMEOUT_S} s:\n{server.log_tail()}")


def start_echo(workdir: Path, workers: int, env: dict[str, str]) -> ServerProc:
    port = free_port()
    server = _spawn("echo", [sys.executable, str(BENCH_DIR / "echo_server.py"), "--listen",
                             f"127.0.0.1:{port}", "--workers", str(workers)], workdir, port, env)
    _wait_channel(server, health=False)
    return server


def start_secretsvc(workdir: Path, workers: int, env: dict[str, str], *, ca_file: Path | None = None,
                    client_cert: tuple[Path, Path] | None = None,
                    extra_args: Sequence[str] = ()) -> tuple[ServerProc, str]:
    """Start `secretsvc serve` on a fresh data directory; returns the server and its admin token.
    `extra_args` are more `serve` flags. With TLS configured (in `env` or `extra_args`), `ca_file` (and
    `client_cert`, for mutual TLS) let the readiness check connect.

    One process unless `extra_args` says `--processes`: these benchmarks read the CPU and memory of the process
    they started, and compare it with one-process peers (the echo server); a supervisor's own figures would
    leave out its workers'."""
    if "--processes" not in extra_args:
        extra_args = ["--processes", "1", *extra_args]
    port = free_port()
    token_file = workdir / "admin-token"
    argv = [sys.executable, "-m", "secretsvc.cli", "serve", "--data-dir", str(workdir / "data"),
            "--listen", f"127.0.0.1:{port}", "--metrics-listen", "", "--admin-token-file", str(token_file),
            "--log-level", "warning", "--workers", str(workers), *extra_args]
    server = _spawn("secretsvc", argv, workdir, port, env)
    _wait_channel(server, health=True, ca_file=ca_file, client_cert=client_cert)
    with token_file.open("rb") as f:
        raw = f.read(MAX_TOKEN_FILE_BYTES + 1)
    if len(raw) > MAX_TOKEN_FILE_BYTES or not raw.strip():
        server.stop()
        raise RuntimeError(f"admin token file {token_file} is empty or longer than {MAX_TOKEN_FILE_BYTES} bytes")
    return server, raw.decode().strip()
