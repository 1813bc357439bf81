"""`injector agent` at a pod's boundaries: the real agent process against a real `secretsvc serve` process,
writing into a real tmpfs.

What a pod relies on and is checked here: files written into a tmpfs mounted in the agent's own private mount
namespace (as an emptyDir with medium Memory is) with their content, mode and owner, and nothing reaching the
disk directory beneath it; files the app's user can read as its owners say; a file replaced whole while a
reader reads it in a tight loop; a rotation through the watch rewriting files and `.version`; a watch that
loses its server and catches up on the versions put meanwhile; the reload hooks (a signal to a process found
by name, an HTTP POST on loopback) sent after the new files are in place; `--check-ready` as a native
sidecar's startup probe; and the exit codes for a bad plan (2) and a refusal (3) that test_agent.py leaves.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.serverproc import ServerProcess, Stubs
from tests.integration.test_agent import SHM, _agent, _plan
from tests.integration.test_service_api import put

pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="needs /dev/shm, a tmpfs")

APP_UID, APP_GID = 1234, 2345  # the app container's user: not the agent's (root here)
WAIT_SECONDS = 15.0  # for anything the agent does on its own: a first round, a rewrite after a put
RECONNECT_SECONDS = 30.0  # after the service was away: the agent's pause doubles with each refused connection


class AgentProcess:
    """A running `injector agent`, its output in a file so that a long-lived agent never blocks on a pipe."""

    def __init__(self, plan: str, log_path: Path, wrapper: Sequence[str] = ()) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen([*wrapper, sys.executable, "-m", "injector.cli", "agent"],
                                         env={**os.environ, "SECRETSVC_AGENT_PLAN": plan},
                                         stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str, seconds: float = WAIT_SECONDS, *,
                 pause: float = 0.02) -> float:
        """Seconds until `condition` held; fails, with the agent's log, if the agent exits or time runs out.
        `pause` 0 polls without a break, to catch a state that lasts only between two writes."""
        started = time.monotonic()
        while not condition():
            code = self.proc.poll()
            if code is not None:
                pytest.fail(f"{what}: the agent exited with {code} first; its log:\n{self.log()[-4000:]}")
            if time.monotonic() - started > seconds:
                pytest.fail(f"{what}: not within {seconds} s; the agent's log:\n{self.log()[-4000:]}")
            if pause:
                time.sleep(pause)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """Starts agents that are stopped after the test, however it ends."""
    started: list[AgentProcess] = []

    def start(plan: str, *, wrapper: Sequence[str] = ()) -> AgentProcess:
        agent = AgentProcess(plan, tmp_path / f"agent-{len(started)}.log", wrapper)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """A directory on /dev/shm (a tmpfs) that the app's user may enter, as a pod's emptyDir."""
    directory = Path(tempfile.mkdtemp(prefix="agent-pod-test-", dir=SHM))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _pod_plan(server: ServerProcess, target: Path, files: list[dict[str, object]], *, mode: str = "native-sidecar",
              reload: dict[str, str] | None = None, deadline: float = 20) -> str:
    plan = json.loads(_plan(server.addr, server.token_file, target, files, mode=mode, deadline=deadline))
    if reload is not None:
        plan["reload"] = reload
    return json.dumps(plan)


def _put(server: ServerProcess, values: dict[str, bytes]) -> None:
    """Put each PATH -> value under the namespace `app`, in order."""
    stubs = Stubs(server)
    try:
        for path, value in values.items():
            put(stubs, path, value)
    finally:
        stubs.close()


def _value(rng: random.Random, size: int = 24) -> bytes:
    return rng.randbytes(size).hex().encode()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _holds(path: Path, data: bytes) -> Callable[[], bool]:
    return lambda: _read(path) == data


def _versions(target: Path) -> dict[str, int] | None:
    text = _read(target / ".version")
    return None if text is None else dict(json.loads(text))


def _no_value_in(text: str, values: Sequence[bytes]) -> None:
    leaked = [i for i, v in enumerate(values) if v.decode() in text]
    assert not leaked, f"the agent's output holds value(s) {leaked}"


# -- a real tmpfs in the agent's own mount namespace -------------------------------------------------------

def _unshare_mount_allowed() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True,
                           timeout=10, check=False)
    return probe.returncode == 0


def _mount_of(pid: int | str, mount_point: Path) -> tuple[str, str] | None:
    """(file system type, super-block options) of the mount at `mount_point` as process `pid` sees it."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        if before.split()[4] == str(mount_point):
            fstype, _source, options = after.split(maxsplit=2)
            return fstype, options
    return None


def test_files_go_into_a_private_tmpfs_and_never_to_the_disk_beneath(
        server: ServerProcess, start_agent: Callable[..., AgentProcess], tmp_path: Path) -> None:
    if not _unshare_mount_allowed():
        pytest.skip("`unshare --mount` is not permitted here (needs root or CAP_SYS_ADMIN), so no private tmpfs")
    rng = random.Random(11)
    values = {"db/password": _value(rng), "api/key": _value(rng)}
    _put(server, values)
    mount = tmp_path / "pod-volume"  # on the test's disk outside the namespace
    mount.mkdir()
    script = f'mount -t tmpfs -o size=4m,mode=0755 tmpfs {shlex.quote(str(mount))} && exec "$@"'
    plan = _pod_plan(server, mount, [
        {"name": "db-password", "mode": "0440", "uid": APP_UID, "gid": APP_GID, "secret": "app/db/password"},
        {"name": "app.env", "render": {"format": "env", "items": {"DB": "app/db/password", "API": "app/api/key"}}},
    ])
    agent = start_agent(plan, wrapper=("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"))
    # unshare and sh exec, so the agent keeps the pid; its root shows its namespace's mounts.
    inside = Path(f"/proc/{agent.pid}/root") / mount.relative_to("/")
    agent.wait_for((inside / ".ready").exists, "the first round in the private tmpfs")

    fstype, options = _mount_of(agent.pid, mount) or ("(not mounted)", "")
    assert fstype == "tmpfs" and "size=4096k" in options.split(","), (fstype, options)
    db = (inside / "db-password").stat()
    assert (inside / "db-password").read_bytes() == values["db/password"]
    assert (stat.S_IMODE(db.st_mode), db.st_uid, db.st_gid) == (0o440, APP_UID, APP_GID)
    env = (inside / "app.env").stat()
    assert (inside / "app.env").read_text().splitlines() == [f"DB='{values['db/password'].decode()}'",
                                                              f"API='{values['api/key'].decode()}'"]
    assert (stat.S_IMODE(env.st_mode), env.st_uid, env.st_gid) == (0o400, os.geteuid(), os.getegid())
    assert _versions(inside) == {"app/api/key": 1, "app/db/password": 1}
    assert sorted(p.name for p in inside.iterdir()) == [".ready", ".version", "app.env", "db-password"]

    # The host, outside the namespace, sees neither the mount nor anything written beneath it.
    assert _mount_of("self", mount) is None
    assert list(mount.iterdir()) == []
    assert os.stat(inside).st_dev != mount.stat().st_dev
    agent.stop()
    assert list(mount.iterdir()) == []
    _no_value_in(agent.log(), list(values.values()))


# -- owners ------------------------------------------------------------------------------------------------

def _read_as_app(path: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["cat", str(path)], user=APP_UID, group=APP_GID, extra_groups=[], cwd="/",
                          capture_output=True, timeout=10, check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="files for another owner need root (CAP_CHOWN)")
def test_each_file_gets_its_owner_and_the_app_reads_what_they_allow(server: ServerProcess, shm_dir: Path) -> None:
    rng = random.Random(12)
    values = {"db/password": _value(rng), "api/key": _value(rng), "agent/only": _value(rng)}
    _put(server, values)
    plan = _pod_plan(server, shm_dir, [
        {"name": "owned", "mode": "0400", "uid": APP_UID, "gid": APP_GID, "secret": "app/db/password"},
        {"name": "group-only", "mode": "0440", "gid": APP_GID,
         "render": {"format": "json", "items": {"key": "app/api/key"}}},
        {"name": "agent-only", "mode": "0400", "secret": "app/agent/only"},
    ], mode="init")
    result = _agent(plan)
    assert result.returncode == 0, result.stderr

    owners = {name: (stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid)
              for name in ("owned", "group-only", "agent-only") for s in [(shm_dir / name).stat()]}
    assert owners == {"owned": (0o400, APP_UID, APP_GID), "group-only": (0o440, os.geteuid(), APP_GID),
                      "agent-only": (0o400, os.geteuid(), os.getegid())}
    assert _versions(shm_dir) == {"app/agent/only": 1, "app/api/key": 1, "app/db/password": 1}
    assert (shm_dir / ".ready").is_file() and (shm_dir / ".ready").read_bytes() == b""

    # The app's own user, without root: its files and .version open, the agent's own file does not.
    assert _read_as_app(shm_dir / "owned").stdout == values["db/password"]
    assert json.loads(_read_as_app(shm_dir / "group-only").stdout) == {"key": values["api/key"].decode()}
    assert json.loads(_read_as_app(shm_dir / ".version").stdout) == _versions(shm_dir)
    denied = _read_as_app(shm_dir / "agent-only")
    assert denied.returncode != 0 and b"Permission denied" in denied.stderr and not denied.stdout


# -- atomic replacement ------------------------------------------------------------------------------------

def test_a_reader_never_sees_an_empty_partial_or_mixed_file(
        server: ServerProcess, start_agent: Callable[..., AgentProcess], shm_dir: Path) -> None:
    rng = random.Random(13)
    # Distinct lengths, so a file cut short or made of two versions equals none of them; a few KiB each, so
    # a writer that is not atomic is caught mid-write.
    values = [_value(rng, 1024 + 97 * i) for i in range(40)]
    _put(server, {"rotating": values[0]})
    agent = start_agent(_pod_plan(server, shm_dir, [{"name": "f", "mode": "0440", "secret": "app/rotating"}]))
    path = shm_dir / "f"
    agent.wait_for((shm_dir / ".ready").exists, "the first round")

    allowed = set(values)
    seen: dict[bytes, int] = {}
    wrong: list[str] = []
    done = threading.Event()

    def read_in_a_loop() -> None:
        while not done.is_set():
            try:
                with path.open("rb") as handle:
                    data = handle.read()
            except OSError as exc:  # the name must never be missing: a rename replaces it in one step
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if data in allowed:
                    seen[data] = seen.get(data, 0) + 1
                    continue
                problem = f"{len(data)} bytes equal to no version put"
            if len(wrong) < 5:
                wrong.append(problem)

    reader = threading.Thread(target=read_in_a_loop, daemon=True)
    reader.start()
    try:
        stubs = Stubs(server)
        try:
            for value in values[1:]:
                put(stubs, "rotating", value)
                agent.wait_for(_holds(path, value), "a rewrite after a put")
        finally:
            stubs.close()
    finally:
        done.set()
        reader.join(timeout=10)
    assert not reader.is_alive()
    assert not wrong, wrong
    assert len(seen) > 1, f"the reader saw only {len(seen)} version(s) in {sum(seen.values())} reads"
    assert _versions(shm_dir) == {"app/rotating": len(values)}
    assert not [p.name for p in shm_dir.iterdir() if p.name.endswith(".tmp")]
    _no_value_in(agent.log(), values)


# -- rotation through the watch ----------------------------------------------------------------------------

def test_a_rotation_rewrites_files_and_version_within_seconds(
        server: ServerProcess, start_agent: Callable[..., AgentProcess], shm_dir: Path) -> None:
    rng = random.Random(14)
    first = {"db/password": _value(rng), "api/key": _value(rng)}
    _put(server, first)
    agent = start_agent(_pod_plan(server, shm_dir, [
        {"name": "db-password", "secret": "app/db/password"},
        {"name": "db-password-v1", "secret": "app/db/password@1"},
        {"name": "config.json", "render": {"format": "json",
                                           "items": {"db": "app/db/password", "api": "app/api/key"}}},
    ]))
    agent.wait_for((shm_dir / ".ready").exists, "the first round")
    assert _versions(shm_dir) == {"app/api/key": 1, "app/db/password": 1, "app/db/password@1": 1}

    # .version is written after the files: the moment it names version 2, every file holds it. Watched
    # without a pause, so a .version written first is seen before the files catch up.
    files_when_versioned: dict[str, bytes | None] = {}

    def versioned() -> bool:
        if (_versions(shm_dir) or {}).get("app/db/password") != 2:
            return False
        files_when_versioned.update((n, _read(shm_dir / n)) for n in ("db-password", "db-password-v1", "config.json"))
        return True

    rotated = _value(rng)
    _put(server, {"db/password": rotated})
    took = agent.wait_for(versioned, "version 2 in .version", pause=0)
    assert took < 5, f"the rewrite took {took:.1f} s"
    assert files_when_versioned["db-password"] == rotated
    assert files_when_versioned["db-password-v1"] == first["db/password"]  # pinned, so unchanged
    assert json.loads(files_when_versioned["config.json"] or b"null") == {"db": rotated.decode(),
                                                                           "api": first["api/key"].decode()}
    assert _versions(shm_dir) == {"app/api/key": 1, "app/db/password": 2, "app/db/password@1": 1}

    api = _value(rng)
    _put(server, {"api/key": api})
    agent.wait_for(lambda: (_versions(shm_dir) or {}).get("app/api/key") == 2, "api/key version 2 in .version")
    assert json.loads((shm_dir / "config.json").read_bytes()) == {"db": rotated.decode(), "api": api.decode()}
    assert agent.proc.poll() is None
    _no_value_in(agent.log(), [*first.values(), rotated, api])


# -- a watch that loses its server -------------------------------------------------------------------------

def test_a_dropped_watch_reconnects_and_catches_up(
        server: ServerProcess, start_agent: Callable[..., AgentProcess], shm_dir: Path) -> None:
    rng = random.Random(15)
    v1, v2, v3 = _value(rng), _value(rng), _value(rng)
    _put(server, {"db/password": v1})
    agent = start_agent(_pod_plan(server, shm_dir, [{"name": "f", "secret": "app/db/password"}], deadline=60))
    agent.wait_for((shm_dir / ".ready").exists, "the first round")

    server.stop()
    # Version 2 is put while the agent cannot reach any server: through a server on another port, sharing
    # the data directory, that is gone again before the agent's server returns.
    elsewhere = ServerProcess(data_dir=server.data_dir)
    try:
        elsewhere.start()
        _put(elsewhere, {"db/password": v2})
    finally:
        if elsewhere.proc is not None and elsewhere.proc.poll() is None:
            elsewhere.stop()
    assert agent.proc.poll() is None, agent.log()
    assert (shm_dir / "f").read_bytes() == v1 and _versions(shm_dir) == {"app/db/password": 1}

    server.start()  # the same address and data directory
    agent.wait_for(lambda: _read(shm_dir / "f") == v2, "version 2, put while disconnected, after the reconnect",
                   RECONNECT_SECONDS)
    agent.wait_for(lambda: _versions(shm_dir) == {"app/db/password": 2}, ".version naming version 2")
    _put(server, {"db/password": v3})  # and the new stream carries later changes too
    agent.wait_for(lambda: _read(shm_dir / "f") == v3, "version 3 through the new stream")
    agent.wait_for(lambda: _versions(shm_dir) == {"app/db/password": 3}, ".version naming version 3")
    _no_value_in(agent.log(), [v1, v2, v3])


# -- reload hooks ------------------------------------------------------------------------------------------

# An app that names itself (its comm, as the agent looks for it) and, on SIGUSR1, records what its secret
# file held at that moment.
_SIGNALLED_APP = """
import ctypes, signal, sys, time
from pathlib import Path

name, secret_file, record, ready = sys.argv[1:5]
PR_SET_NAME = 15
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, name.encode(), 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_NAME) failed")

def on_reload(signum, frame):
    with open(record, "ab") as out:
        out.write(Path(secret_file).read_bytes() + b"\\n")

signal.signal(signal.SIGUSR1, on_reload)
Path(ready).touch()
while True:
    time.sleep(60)
"""


def test_a_rotation_signals_the_app_after_its_files_are_rewritten(
        server: ServerProcess, start_agent: Callable[..., AgentProcess], shm_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(16)
    v1, v2, v3 = _value(rng), _value(rng), _value(rng)
    _put(server, {"db/password": v1})
    name = f"app{os.getpid()}"[:15]  # unique per test worker: the agent signals every process of that name
    record, ready = tmp_path / "signals", tmp_path / "app-ready"
    script = tmp_path / "app.py"
    script.write_text(_SIGNALLED_APP)
    app = subprocess.Popen([sys.executable, str(script), name, str(shm_dir / "f"), str(record), str(ready)])
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not ready.exists():
            assert app.poll() is None, f"the app exited with {app.returncode}"
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.02)
        assert Path(f"/proc/{app.pid}/comm").read_text().strip() == name
        agent = start_agent(_pod_plan(server, shm_dir, [{"name": "f", "secret": "app/db/password"}],
                                      reload={"signal": "SIGUSR1", "process": name}))
        agent.wait_for((shm_dir / ".ready").exists, "the first round")
        assert not record.exists(), "the first round signalled the app"

        _put(server, {"db/password": v2})
        agent.wait_for(lambda: (_read(record) or b"").count(b"\n") >= 1, "the app signalled after a rotation")
        _put(server, {"db/password": v3})
        agent.wait_for(lambda: (_read(record) or b"").count(b"\n") >= 2, "the app signalled after a second one")
        assert app.poll() is None, "the app died of the signal"
        # Each signal came after the file was rewritten: the app read the version just put.
        assert (_read(record) or b"").splitlines() == [v2, v3]
    finally:
        app.kill()
        app.wait(timeout=10)


def test_a_rotation_posts_to_the_reload_url_after_its_files_are_rewritten(
        server: ServerProcess, start_agent: Callable[..., AgentProcess], shm_dir: Path) -> None:
    rng = random.Random(17)
    v1, v2 = _value(rng), _value(rng)
    _put(server, {"db/password": v1})
    posts: list[tuple[str, bytes | None]] = []  # (path, the secret file's content when the POST arrived)

    class Reload(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append((self.path, _read(shm_dir / "f")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Reload)
    serving = threading.Thread(target=http.serve_forever, daemon=True)
    serving.start()
    try:
        url = f"http://127.0.0.1:{http.server_address[1]}/-/reload"
        agent = start_agent(_pod_plan(server, shm_dir, [{"name": "f", "secret": "app/db/password"}],
                                      reload={"url": url}))
        agent.wait_for((shm_dir / ".ready").exists, "the first round")
        assert posts == [], "the first round posted a reload"
        _put(server, {"db/password": v2})
        agent.wait_for(lambda: len(posts) >= 1, "a reload POST after a rotation")
        assert posts == [("/-/reload", v2)]
    finally:
        http.shutdown()
        http.server_close()


# -- the startup probe -------------------------------------------------------------------------------------

def test_check_ready_fails_until_the_first_round_is_written(
        server: ServerProcess, start_agent: Callable[..., AgentProcess], shm_dir: Path) -> None:
    rng = random.Random(18)
    value = _value(rng)
    _put(server, {"db/password": value})
    server.stop()  # the pod starts while the service is away: the agent retries, the probe keeps failing
    plan = _pod_plan(server, shm_dir, [{"name": "f", "secret": "app/db/password"}], deadline=60)
    agent = start_agent(plan)
    for _ in range(2):
        probe = _agent(plan, "--check-ready")
        assert probe.returncode == 1, probe.stderr
        assert agent.proc.poll() is None, agent.log()
        assert list(shm_dir.iterdir()) == []
    server.start()
    agent.wait_for((shm_dir / ".ready").exists, "the first round once the service is back",
                   RECONNECT_SECONDS)
    probe = _agent(plan, "--check-ready")
    assert probe.returncode == 0, probe.stderr
    assert (shm_dir / "f").read_bytes() == value  # ready means written
    assert agent.proc.poll() is None  # and the native sidecar keeps running


# -- exit codes --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ({"mode": "daemon"}, "plan: mode must be one of"),
    ({"files": [{"name": "f", "mode": "0755", "secret": "app/x"}]}, "file mode 0755 makes the file executable"),
    ({"files": [{"name": "f", "secret": "app/x", "owner": "root"}]}, "files[0] has unknown field(s) 'owner'"),
    ({"reload": {"url": "http://example.org/reload"}}, "reload.url must be an http:// URL on the pod's loopback"),
    ({"deadline_seconds": 0}, "deadline_seconds must be a number"),
])
def test_a_plan_that_does_not_parse_is_a_usage_error(shm_dir: Path, change: dict[str, object], message: str) -> None:
    plan = {"version": 1, "service": {"addr": "127.0.0.1:1"}, "target_dir": str(shm_dir), "mode": "init",
            "files": [{"name": "f", "secret": "app/x"}], **change}
    result = _agent(json.dumps(plan))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert list(shm_dir.iterdir()) == []


def test_no_plan_or_an_unreadable_plan_file_is_a_usage_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRETSVC_AGENT_PLAN"}
    command = [sys.executable, "-m", "injector.cli", "agent"]
    none = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert none.returncode == 2 and "no plan" in none.stderr, none.stderr
    missing = subprocess.run([*command, "--plan-file", str(tmp_path / "absent.json")], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2 and "absent.json" in missing.stderr, missing.stderr


def test_a_template_naming_a_missing_secret_is_refused_before_any_file(server: ServerProcess, shm_dir: Path) -> None:
    rng = random.Random(19)
    _put(server, {"db/password": _value(rng)})
    plan = _pod_plan(server, shm_dir, [
        {"name": "db-password", "secret": "app/db/password"},
        {"name": "config.yaml", "render": {"format": "template", "template":
                                            "db: {{ secret('app/db/password') }}\napi: {{ secret('app/nope') }}\n"}},
    ], mode="init")
    result = _agent(plan)
    assert result.returncode == 3, result.stderr
    assert "not_found: app/nope" in result.stderr
    assert list(shm_dir.iterdir()) == []  # one GetSecrets for the whole plan: nothing is written
    assert _agent(plan, "--check-ready").returncode == 1


def test_a_file_that_cannot_be_rendered_is_refused_and_never_ready(server: ServerProcess, shm_dir: Path) -> None:
    rng = random.Random(20)
    binary = b"\xff\xfe" + rng.randbytes(30)  # not UTF-8, so it cannot go into a template
    _put(server, {"db/password": _value(rng), "tls/key": binary})
    plan = _pod_plan(server, shm_dir, [
        {"name": "config.txt", "render": {"format": "template", "template": "{{ secret('app/tls/key') }}"}},
    ], mode="init")
    result = _agent(plan)
    assert result.returncode == 3, result.stderr
    assert "config.txt" in result.stderr and "not UTF-8" in result.stderr
    assert not (shm_dir / ".ready").exists() and not (shm_dir / "config.txt").exists()
    assert _agent(plan, "--check-ready").returncode == 1
