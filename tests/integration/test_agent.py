"""`injector agent` as a pod runs it, against the real server process: files written whole into a real tmpfs
(/dev/shm) with their modes and `.version`/`.ready`, a refusal on a disk-backed target, the exit codes for a
denied secret and an unreachable service, and a sidecar that rewrites a file when a new version is put."""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.serverproc import ServerProcess, Stubs, free_port
from tests.integration.test_service_api import put

SHM = Path("/dev/shm")
pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="needs /dev/shm, a tmpfs")


@pytest.fixture
def target() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="agent-test-", dir=SHM))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _plan(server_addr: str, token_file: Path, target: Path, files: list[dict[str, object]], *,
          mode: str = "init", deadline: float = 20) -> str:
    return json.dumps({"version": 1, "service": {"addr": server_addr, "token_file": str(token_file)},
                       "target_dir": str(target), "mode": mode, "files": files, "deadline_seconds": deadline})


def _agent(plan: str, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "injector.cli", "agent", *extra],
                          env={**os.environ, "SECRETSVC_AGENT_PLAN": plan}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _values(server: ServerProcess) -> dict[str, bytes]:
    rng = random.Random(5)
    values = {p: rng.randbytes(16).hex().encode() for p in ("db/password", "api/key")}
    stubs = Stubs(server)
    for path, value in values.items():
        put(stubs, path, value)
    stubs.close()
    return values


def test_every_file_is_written_whole_with_its_mode(server: ServerProcess, target: Path) -> None:
    values = _values(server)
    plan = _plan(server.addr, server.token_file, target, [
        {"name": "db-password", "mode": "0440", "secret": "app/db/password"},
        {"name": "app.env", "render": {"format": "env", "items": {"DB": "app/db/password", "API": "app/api/key"}}},
    ])
    assert _agent(plan, "--check-ready").returncode == 1
    result = _agent(plan)
    assert result.returncode == 0, result.stderr
    assert (target / "db-password").read_bytes() == values["db/password"]
    assert stat.S_IMODE((target / "db-password").stat().st_mode) == 0o440
    assert stat.S_IMODE((target / "app.env").stat().st_mode) == 0o400
    assert (target / "app.env").read_text().splitlines() == [f"DB='{values['db/password'].decode()}'",
                                                              f"API='{values['api/key'].decode()}'"]
    assert json.loads((target / ".version").read_text()) == {"app/api/key": 1, "app/db/password": 1}
    assert _agent(plan, "--check-ready").returncode == 0
    assert not [p.name for p in target.iterdir() if ".tmp" in p.name]
    assert not any(v.decode() in result.stderr + result.stdout for v in values.values())


def test_a_disk_backed_target_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    _values(server)
    from injector.agent.files import RAMFS_MAGIC, TMPFS_MAGIC, filesystem_type

    if filesystem_type(tmp_path) in (TMPFS_MAGIC, RAMFS_MAGIC):
        pytest.skip("the test's temporary directory is itself a tmpfs")
    plan = _plan(server.addr, server.token_file, tmp_path, [{"name": "f", "secret": "app/db/password"}])
    result = _agent(plan)
    assert result.returncode == 3 and "is not a tmpfs" in result.stderr
    assert not (tmp_path / "f").exists()
    assert _agent(plan, "--unsafe-allow-disk").returncode == 0


def test_a_denied_or_missing_secret_is_permanent_and_named(server: ServerProcess, target: Path) -> None:
    _values(server)
    nobody = target.parent / f"{target.name}-token"
    nobody.write_text(server.cli("token", "create", "nobody").stdout.decode().strip())
    try:
        denied = _agent(_plan(server.addr, nobody, target, [{"name": "f", "secret": "app/db/password"}]))
        assert denied.returncode == 3
        assert "permission_denied: app/db/password" in denied.stderr
        missing = _agent(_plan(server.addr, server.token_file, target, [{"name": "f", "secret": "app/nope"}]))
        assert missing.returncode == 3 and "not_found: app/nope" in missing.stderr
        assert not (target / "f").exists()
    finally:
        nobody.unlink()


def test_an_unreachable_service_means_try_again_later(target: Path, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("not-a-token")
    started = time.monotonic()
    result = _agent(_plan(f"127.0.0.1:{free_port()}", token, target, [{"name": "f", "secret": "app/x"}],
                          deadline=3))
    assert result.returncode == 75 and "try again later" in result.stderr
    assert time.monotonic() - started < 30


def test_a_sidecar_rewrites_a_file_when_a_new_version_is_put(server: ServerProcess, target: Path) -> None:
    _values(server)
    plan = _plan(server.addr, server.token_file, target, [{"name": "f", "secret": "app/db/password"}],
                 mode="native-sidecar")
    agent = subprocess.Popen([sys.executable, "-m", "injector.cli", "agent"],
                             env={**os.environ, "SECRETSVC_AGENT_PLAN": plan}, stderr=subprocess.PIPE, text=True)
    try:
        _until((target / ".ready").exists)
        stubs = Stubs(server)
        put(stubs, "db/password", b"rotated")
        stubs.close()
        _until(lambda: (target / "f").read_bytes() == b"rotated")
        assert json.loads((target / ".version").read_text()) == {"app/db/password": 2}
    finally:
        agent.terminate()
        agent.wait(timeout=20)


def _until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
