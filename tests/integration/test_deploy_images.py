"""The container image definitions under deploy/: their structure, and the agent image's dependency list.

No container engine runs here, so the images are not built. What can be checked without one is checked:
each Containerfile's stages, its non-root numeric USER and its ENTRYPOINT (so a typo is caught before a
build), that the manifests run the images as the users the images declare, and, for the agent image, which
is the package installed without its dependencies plus a short list (deploy/images/agent-requirements.txt),
that the real agent runs every mode and render format against a real TLS server with every other installed
distribution made unimportable.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest

from tests.integration.serverproc import ServerProcess, Stubs
from tests.integration.test_service_api import put
from tests.tlskit import credentials, make_pki

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
AGENT_REQUIREMENTS = DEPLOY / "images" / "agent-requirements.txt"
IMAGES = {  # Containerfile -> (the entrypoint, the numeric user the manifests must run it as)
    "Containerfile": (["secretsvc"], 10001),
    "Containerfile.webhook": (["injector", "webhook"], 65532),
    "Containerfile.agent": (["injector", "agent"], 65532),
}
SHM = Path("/dev/shm")
# grpc's __init__ probes for these extension packages inside try/except ImportError; absent, it goes on.
OPTIONAL_PROBES = ("grpc_health", "grpc_reflection", "grpc_tools")


# -- Containerfile structure ----------------------------------------------------------------------------------

@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_containerfile(text: str) -> list[Stage]:
    """Stages of a Containerfile: instructions with continuation lines joined, comments dropped. Raises
    ValueError on an instruction this project's files do not use (a typo such as `ENTRYPONT`)."""
    known = {"FROM", "RUN", "COPY", "ENV", "USER", "WORKDIR", "EXPOSE", "VOLUME", "ENTRYPOINT", "CMD", "ARG",
             "LABEL", "HEALTHCHECK", "STOPSIGNAL"}
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        raise ValueError("the file ends in a continuation line")
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword not in known:
            raise ValueError(f"unknown instruction {keyword!r}")
        if keyword == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.IGNORECASE)
            if m is None:
                raise ValueError(f"FROM {rest!r} is not IMAGE [AS NAME]")
            stages.append(Stage(m.group(1), m.group(2)))
        elif not stages:
            raise ValueError(f"{keyword} before the first FROM")
        else:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def check_image(text: str, entrypoint: list[str]) -> int:
    """The numeric user of the final stage, after checking the structure; AssertionError or ValueError if not."""
    stages = parse_containerfile(text)
    assert stages, "no FROM"
    names = [s.name for s in stages[:-1]]
    for stage in stages:
        assert re.fullmatch(r"[\w.-]+(/[\w.-]+)*:[\w.-]+", stage.base), f"base {stage.base} needs a tag"
        for keyword, rest in stage.instructions:
            m = re.search(r"--from=(\S+)", rest) if keyword == "COPY" else None
            if m:
                assert m.group(1) in names, f"COPY --from={m.group(1)}: no such stage"
    final = stages[-1].instructions
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage sets no USER: the image would run as root"
    m = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
    assert m, f"USER {users[-1]} must be numeric (runAsNonRoot can only verify a numeric user)"
    assert int(m.group(1)) != 0 and (m.group(2) is None or int(m.group(2)) != 0), "USER must not be root"
    last_user = max(i for i, (k, _) in enumerate(final) if k == "USER")
    assert not [k for k, _ in final[last_user:] if k == "RUN"], "RUN after USER would run as the app user"
    entrypoints = [rest for keyword, rest in final if keyword == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == entrypoint, "ENTRYPOINT must be the exec (JSON) form"
    for keyword, rest in final:
        if keyword == "CMD":
            assert isinstance(json.loads(rest), list), "CMD must be the exec (JSON) form"
    return int(m.group(1))


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_containerfile_structure(name: str) -> None:
    entrypoint, user = IMAGES[name]
    assert check_image((DEPLOY / name).read_text(), entrypoint) == user


def test_every_containerfile_is_checked() -> None:
    assert {p.name for p in DEPLOY.glob("Containerfile*")} == set(IMAGES)


@pytest.mark.parametrize("broken", [
    ("ENTRYPOINT [\"secretsvc\"]", "ENTRYPONT [\"secretsvc\"]"),
    ("USER 10001:10001", "USER secretsvc"),
    ("USER 10001:10001", "USER 0"),
    ("USER 10001:10001\n", ""),
    ("COPY --from=build", "COPY --from=builder"),
    ("ENTRYPOINT [\"secretsvc\"]", "ENTRYPOINT secretsvc"),
])
def test_the_structure_check_catches_mistakes(broken: tuple[str, str]) -> None:
    text = (DEPLOY / "Containerfile").read_text()
    assert broken[0] in text
    with pytest.raises((AssertionError, ValueError)):
        check_image(text.replace(broken[0], broken[1]), ["secretsvc"])


def test_the_service_image_serves_tls_by_default() -> None:
    final = parse_containerfile((DEPLOY / "Containerfile").read_text())[-1].instructions
    cmd = json.loads(next(rest for keyword, rest in final if keyword == "CMD"))
    assert "--tls-cert" in cmd and "--tls-key" in cmd
    assert not {"--allow-non-loopback", "--insecure-behind-tls-proxy"} & set(cmd)


def test_the_agent_requirements_match_pyproject() -> None:
    import tomllib

    declared = {re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0].lower(): d
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    for requirement in agent_requirements():
        name = re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower()
        assert declared.get(name) == requirement, f"{requirement}: pyproject.toml says {declared.get(name)}"


# -- the agent with only its listed dependencies --------------------------------------------------------------

def agent_requirements() -> list[str]:
    return [line.strip() for line in AGENT_REQUIREMENTS.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(names: list[str]) -> set[str]:
    """The distributions `names` pull in (extras and markers ignored, so the set errs on the large side)."""
    seen: set[str] = set()
    todo = [_canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" in req:
                continue
            m = re.match(r"[A-Za-z0-9._-]+", req)
            if m:
                todo.append(_canonical(m.group(0)))
    return seen


def blocked_modules() -> list[str]:
    """Top-level modules of every installed distribution the agent image does not have."""
    names = [re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0] for r in agent_requirements()]
    allowed = _closure(names) | {"secretsvc"}
    blocked = set()
    for module, dists in metadata.packages_distributions().items():
        if module in {"secretsvc", "injector"} or module in sys.stdlib_module_names:
            continue
        if not any(_canonical(d) in allowed for d in dists):
            blocked.add(module)
    return sorted(blocked)


GUARD = """
import importlib.abc, json, os, sys
BLOCKED = frozenset(json.loads(os.environ.pop("AGENT_IMAGE_BLOCKED")))
QUIET = frozenset(json.loads(os.environ.pop("AGENT_IMAGE_QUIET", "[]")))
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in QUIET:
            raise ModuleNotFoundError(name, name=name)
        if top in BLOCKED:
            sys.stderr.write(f"not in the agent image: {name}\\n")
            raise ModuleNotFoundError(f"not in the agent image: {name}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
from injector.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def target() -> Iterator[Path]:
    if not SHM.is_dir():
        pytest.skip("needs /dev/shm, a tmpfs: the agent writes only into one")
    directory = Path(tempfile.mkdtemp(prefix="agent-image-", dir=SHM))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    pki = make_pki(tmp_path / "pki")
    proc = ServerProcess(data_dir=tmp_path / "data",
                         extra_args=("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)),
                         credentials=credentials(pki.ca))
    proc.start()
    yield proc, pki.ca
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()


def _agent_env(plan: dict[str, object]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETSVC_")}
    env.update(AGENT_IMAGE_BLOCKED=json.dumps(blocked_modules()), AGENT_IMAGE_QUIET=json.dumps(OPTIONAL_PROBES),
               SECRETSVC_AGENT_PLAN=json.dumps(plan),
               PYTHONDONTWRITEBYTECODE="1")
    return env


def test_the_agent_runs_with_only_its_listed_dependencies(tls_server: tuple[ServerProcess, Path],
                                                          target: Path) -> None:
    server, ca = tls_server
    blocked = blocked_modules()
    assert {"kubernetes", "hyperscan", "grpc", "cryptography"} <= set(blocked)  # the guard has teeth
    stubs = Stubs(server)
    rng = random.Random(8)
    values = {path: rng.randbytes(12).hex().encode() for path in ("db/password", "api/key")}
    for path, value in values.items():
        put(stubs, path, value)
    items = {"DB": "app/db/password", "API": "app/api/key"}
    plan: dict[str, object] = {
        "version": 1, "service": {"addr": f"localhost:{server.port}", "ca_file": str(ca),
                                  "token_file": str(server.token_file)},
        "target_dir": str(target), "mode": "native-sidecar", "deadline_seconds": 30,
        "files": [
            {"name": "db-password", "secret": "app/db/password"},
            {"name": "app.env", "render": {"format": "env", "items": items}},
            {"name": "app.json", "render": {"format": "json", "items": items}},
            {"name": "app.yaml", "render": {"format": "yaml", "items": items}},
            {"name": "app.conf", "render": {"format": "template",
                                            "template": "db={{ secret('app/db/password') }}\n"}},
        ]}
    env = _agent_env(plan)
    agent = subprocess.Popen([sys.executable, "-c", GUARD, "agent"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (target / ".ready").exists():
            assert agent.poll() is None, agent.communicate()[1]
            assert time.monotonic() < deadline, "the agent did not write its files"
            time.sleep(0.05)
        ready = subprocess.run([sys.executable, "-c", GUARD, "agent", "--check-ready"], env=_agent_env(plan),
                               capture_output=True, text=True, timeout=60, check=False)
        assert ready.returncode == 0, ready.stderr
        assert (target / "db-password").read_bytes() == values["db/password"]
        assert json.loads((target / "app.json").read_text())["API"] == values["api/key"].decode()
        assert (target / "app.conf").read_text() == f"db={values['db/password'].decode()}\n"
        # A new version reaches the file through the watch: the sidecar's code path is importable too.
        put(stubs, "db/password", b"rotated-value-for-the-test")
        while (target / "db-password").read_bytes() != b"rotated-value-for-the-test":
            assert agent.poll() is None, agent.communicate()[1]
            assert time.monotonic() < deadline + 30, "the sidecar did not rewrite the file"
            time.sleep(0.05)
    finally:
        stubs.close()
        if agent.poll() is None:
            agent.terminate()
        _, stderr = agent.communicate(timeout=30)
    assert "not in the agent image" not in stderr, stderr


def test_the_guard_blocks(tmp_path: Path) -> None:
    """The same runner refuses a module outside the list, so the test above would see a missing dependency."""
    env = {**os.environ, "AGENT_IMAGE_BLOCKED": json.dumps(["yaml"])}
    script = GUARD.replace("from injector.cli import main", "import yaml")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode != 0 and "not in the agent image: yaml" in result.stderr
