"""Policies managed on the real server process: documents stored with `secretsvc policy put` take effect on
the next call, refused ones change nothing and name their line, policy files reload without a restart (on
an interval and on SIGHUP) and a broken edit keeps the policies in force, and `policy explain` asks the
server when no files are given."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.serverproc import ServerProcess

READERS = """\
version: 1
policies:
  - name: reader
    rules:
      - paths: ["app/**"]
        capabilities: [read]
        effect: allow
"""

NO_DB = """\
version: 1
policies:
  - name: no-db
    rules:
      - paths: ["app/db/*"]
        capabilities: [read]
        effect: deny
bindings:
  - identity: {kind: token, pattern: "ci"}
    policies: [no-db]
"""


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "readers.yaml").write_text(READERS)
    return directory


def _start(make_server: Callable[..., ServerProcess], policy_dir: Path, reload_seconds: str) -> ServerProcess:
    server = make_server(extra_args=("--policy-path", str(policy_dir), "--policy-reload-seconds", reload_seconds))
    server.start()
    stored = server.cli("put", "app/db/password", stdin=b"v1")
    assert stored.returncode == 0, stored.stderr
    return server


def _ci_token(server: ServerProcess) -> dict[str, str]:
    created = server.cli("token", "create", "ci", "--policy", "reader")
    assert created.returncode == 0, created.stderr
    return {**server.cli_env(), "SECRETSVC_TOKEN": created.stdout.decode().strip()}


def _reads(server: ServerProcess, env: dict[str, str]) -> bool:
    result = server.cli("get", "app/db/password", env=env)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


def _until(condition: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_stored_document_takes_effect_on_the_next_call_and_is_managed_by_name(
        make_server: Callable[..., ServerProcess], policy_dir: Path, tmp_path: Path) -> None:
    server = _start(make_server, policy_dir, "0")  # no polling: the API's own change must apply at once
    ci = _ci_token(server)
    assert _reads(server, ci)

    (tmp_path / "no-db.yaml").write_text(NO_DB)
    stored = server.cli("policy", "put", "no-db", str(tmp_path / "no-db.yaml"))
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.decode().startswith("stored no-db: revision 1")
    assert not _reads(server, ci)

    explained = server.cli("policy", "explain", "token:ci", "app/db/password", "read")
    assert explained.returncode == 1, explained.stderr
    lines = explained.stdout.decode().splitlines()
    assert lines[0] == "deny: token:ci may not read secret app/db/password"
    assert "  rule:    stored:no-db:5  policy 'no-db', rules[0], pattern 'app/db/*' (deny)" in lines
    assert any(line.startswith(f"  also matched: {policy_dir / 'readers.yaml'}:5") for line in lines)

    listed = server.cli("policy", "list", "--format", "json")
    documents = json.loads(listed.stdout)["documents"]
    assert [(d["origin"], d.get("in_force")) for d in documents] == [
        ("POLICY_DOCUMENT_ORIGIN_BUILTIN", True), ("POLICY_DOCUMENT_ORIGIN_FILE", True),
        ("POLICY_DOCUMENT_ORIGIN_STORED", True)]
    assert server.cli("policy", "get", "no-db").stdout.decode() == NO_DB

    conflict = server.cli("policy", "put", "no-db", str(tmp_path / "no-db.yaml"), "--expected-revision", "0")
    assert conflict.returncode == 1 and b"failed_precondition" in conflict.stderr

    deleted = server.cli("policy", "delete", "no-db")
    assert deleted.returncode == 0, deleted.stderr
    assert _reads(server, ci)
    assert server.cli("policy", "delete", "no-db").returncode == 1
    assert server.stop() == 0


def test_a_refused_document_names_its_line_and_changes_nothing(
        make_server: Callable[..., ServerProcess], policy_dir: Path, tmp_path: Path) -> None:
    server = _start(make_server, policy_dir, "0")
    ci = _ci_token(server)
    bad = tmp_path / "bad.yaml"
    bad.write_text(NO_DB.replace("effect: deny", "effect: maybe"))
    refused = server.cli("policy", "put", "bad", str(bad))
    assert refused.returncode == 2
    assert "stored:bad:7: policies[0] (no-db).rules[0].effect" in refused.stderr.decode()
    clash = tmp_path / "clash.yaml"
    clash.write_text(READERS)  # "reader" is already defined by the file
    refused = server.cli("policy", "put", "clash", str(clash))
    assert refused.returncode == 2 and "already defined at" in refused.stderr.decode()
    listed = json.loads(server.cli("policy", "list", "--format", "json").stdout)["documents"]
    assert len(listed) == 2
    assert _reads(server, ci)

    nobody = {**server.cli_env(),
              "SECRETSVC_TOKEN": server.cli("token", "create", "nobody").stdout.decode().strip()}
    denied = server.cli("policy", "put", "no-db", str(bad), env=nobody)
    assert denied.returncode == 1 and b"permission_denied" in denied.stderr
    failed = server.cli("policy", "explain", "token:ci", "app/db/password", "read", env=nobody)
    assert failed.returncode == 2  # a call that failed is not an answer: exit 1 would read as "denied"
    assert server.stop() == 0


def test_policy_files_reload_on_an_interval_and_a_broken_edit_keeps_the_policies_in_force(
        make_server: Callable[..., ServerProcess], policy_dir: Path) -> None:
    server = _start(make_server, policy_dir, "0.2")
    ci = _ci_token(server)
    (policy_dir / "no-db.yaml").write_text(NO_DB)
    assert _until(lambda: not _reads(server, ci))

    (policy_dir / "no-db.yaml").write_text(NO_DB.replace("effect: deny", "effect: maybe"))
    assert _until(lambda: "policy reload refused, the policies in force stay" in server.log())
    assert f"{policy_dir / 'no-db.yaml'}:7" in server.log()
    assert not _reads(server, ci)  # the deny that was in force still is

    reload = server.cli("policy", "reload")
    assert reload.returncode == 2 and b"the policies in force stay" in reload.stderr
    (policy_dir / "no-db.yaml").unlink()
    assert _until(lambda: _reads(server, ci))
    assert server.stop() == 0


def test_sighup_reloads_policy_files(make_server: Callable[..., ServerProcess], policy_dir: Path) -> None:
    server = _start(make_server, policy_dir, "0")
    ci = _ci_token(server)
    (policy_dir / "no-db.yaml").write_text(NO_DB)
    time.sleep(0.5)
    assert _reads(server, ci)  # no interval: nothing notices the file by itself
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGHUP)
    assert _until(lambda: not _reads(server, ci))
    assert "policies reloaded" in server.log()
    assert server.proc.poll() is None
    assert server.stop() == 0
