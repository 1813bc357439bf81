"""Where registry credentials come from: the CLI picks the docker config file, the library reads only that.

The library layer runs against the local fake registry with basic auth: a config in $HOME or $DOCKER_CONFIG
that the CLI did not hand over must not be read (the pull stays anonymous and is refused).
"""

from __future__ import annotations

import base64
import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.cli.scan_run import docker_config_path
from secretsvc.scan.sources import open_source
from secretsvc.scan.sources.registry import credentials_from_docker_config
from tests.unit.scan.sources.test_registry_client import FakeRegistry, two_platforms


def write_config(path: Path, host: str, user: str, password: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return path


def test_cli_takes_the_flag_as_given_even_when_missing(tmp_path: Path) -> None:
    given = tmp_path / "nope.json"
    assert docker_config_path(given, {"DOCKER_CONFIG": str(tmp_path)}, tmp_path) == given


def test_cli_prefers_docker_config_dir_then_home(tmp_path: Path) -> None:
    home, dc = tmp_path / "home", tmp_path / "dc"
    in_home = write_config(home / ".docker" / "config.json", "h", "u", "p")
    assert docker_config_path(None, {}, home) == in_home
    in_dc = write_config(dc / "config.json", "h", "u", "p")
    assert docker_config_path(None, {"DOCKER_CONFIG": str(dc)}, home) == in_dc
    # $DOCKER_CONFIG names the directory docker uses: without a config.json there, none (as docker does)
    assert docker_config_path(None, {"DOCKER_CONFIG": str(tmp_path / "empty")}, home) is None


def test_cli_passes_nothing_when_no_file_exists(tmp_path: Path) -> None:
    assert docker_config_path(None, {}, tmp_path) is None
    assert docker_config_path(None, {"DOCKER_CONFIG": ""}, tmp_path) is None
    assert docker_config_path(None, {}, None) is None
    (tmp_path / ".docker" / "config.json").mkdir(parents=True)  # a directory is not a config file
    assert docker_config_path(None, {}, tmp_path) is None


def test_library_reads_only_the_file_it_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    write_config(tmp_path / ".docker" / "config.json", "reg.example.org", "u", "p")
    write_config(tmp_path / "dc" / "config.json", "reg.example.org", "u", "p")
    assert credentials_from_docker_config("reg.example.org", None, 4096) is None
    given = write_config(tmp_path / "given.json", "reg.example.org", "v", "q")
    assert credentials_from_docker_config("reg.example.org", given, 4096) == ("v", "q")


@pytest.fixture
def basic_registry() -> Iterator[FakeRegistry]:
    blobs, tags, _ = two_platforms()
    srv = FakeRegistry("basic", blobs, tags, password="pw-" + str(random.Random(5).getrandbits(32)))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_a_pull_uses_the_environment_only_through_the_cli(
    basic_registry: FakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = basic_registry
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    write_config(tmp_path / ".docker" / "config.json", reg.host, "user", reg.password)
    ref = f"docker://{reg.host}/team/app:amd"
    with pytest.raises(errors.Unauthenticated), open_source(ref) as src:
        list(src.images())
    found = docker_config_path(None, {"HOME": str(tmp_path)}, tmp_path)
    with open_source(ref, docker_config=found) as src:
        assert [im.platform for im in src.images()] == ["linux/amd64"]
