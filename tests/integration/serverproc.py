"""Start a real `secretsvc serve` in a separate process on a free loopback port, and talk to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from secretsvc.v1 import admin_pb2_grpc, secrets_pb2_grpc, transit_pb2_grpc

START_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "secretsvc.cli", *args]


@dataclass
class ServerProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    unset_env: tuple[str, ...] = ()  # variables of the test's environment the server must not see
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # For a server started with --tls-cert: how the test's own channels (readiness, stubs) connect.
    credentials: grpc.ChannelCredentials | None = None
    # A command the server runs under, e.g. `unshare ... sh -c '... exec "$@"' sh`.
    wrapper: tuple[str, ...] = ()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def token_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.admin-token"

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    def start(self, wait: bool = True) -> ServerProcess:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.server.log"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*self.wrapper, *cli_command("serve", "--data-dir", str(self.data_dir), "--listen", self.addr,
                        "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
                        "--admin-token-file", str(self.token_file), *self.extra_args)],
            stdout=log, stderr=subprocess.STDOUT,
            env={k: v for k, v in {**os.environ, **self.env}.items() if k not in self.unset_env},
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def health(self, timeout: float = 1.0) -> int | None:
        """The server's overall health status now, or None when it does not answer (not listening yet)."""
        # A fresh channel each time: a channel that failed once backs off for a second or more.
        with self.channel() as channel:
            try:
                status: int = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                         timeout=timeout).status
                return status
            except grpc.RpcError:
                return None

    def wait_health(self, want: int, seconds: float = START_TIMEOUT_SECONDS) -> None:
        """Wait until health says `want`; fails at once if the server exits."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if self.health() == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"health did not become {want} within {seconds} s:\n{self.log()}")

    def wait_ready(self) -> None:
        self.wait_health(health_pb2.HealthCheckResponse.SERVING)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        return code

    def channel(self) -> grpc.Channel:
        if self.credentials is not None:
            return grpc.secure_channel(self.addr, self.credentials)
        return grpc.insecure_channel(self.addr)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    def cli_env(self) -> dict[str, str]:
        return {**os.environ, "SECRETSVC_ADDR": self.addr, "SECRETSVC_TOKEN": self.token}

    def cli(self, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(cli_command(*args), input=stdin, capture_output=True,
                              env=env if env is not None else self.cli_env(), timeout=timeout, check=False)


class Stubs:
    def __init__(self, server: ServerProcess) -> None:
        self.channel = server.channel()
        self.md = server.metadata()
        self.secrets = secrets_pb2_grpc.SecretsStub(self.channel)
        self.transit = transit_pb2_grpc.TransitStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def close(self) -> None:
        self.channel.close()
