"""Static tokens against the real server process: the `token` commands scripts rely on, deny by default,
revocation on the next call, expiry, and tokens kept out of logs and listings."""

from __future__ import annotations

import json
import time

from tests.integration.serverproc import ServerProcess


def _as(server: ServerProcess, token: str) -> dict[str, str]:
    return {**server.cli_env(), "SECRETSVC_TOKEN": token}


def test_create_prints_the_token_alone_and_it_authenticates(server: ServerProcess) -> None:
    created = server.cli("token", "create", "deployer", "--policy", "admin")
    assert created.returncode == 0, created.stderr
    token = created.stdout.decode()
    assert token.endswith("\n") and token.count("\n") == 1 and token.startswith("svc_")
    token = token.strip()
    assert server.cli("put", "app/by-deployer", stdin=b"v", env=_as(server, token)).returncode == 0

    listed = server.cli("token", "list", "--format", "json")
    names = {t["name"]: t for t in json.loads(listed.stdout)["tokens"]}
    assert set(names) == {"admin", "deployer"}
    assert names["deployer"]["policies"] == ["admin"]
    assert token not in listed.stdout.decode()
    assert token not in server.log()


def test_a_token_without_policies_may_do_nothing(server: ServerProcess) -> None:
    created = server.cli("token", "create", "nobody")
    assert b"may do nothing" in created.stderr
    env = _as(server, created.stdout.decode().strip())
    denied = server.cli("get", "app/anything", env=env)
    assert denied.returncode == 1
    assert b"permission_denied" in denied.stderr and b"token:nobody may not read secret app/anything" in denied.stderr
    assert server.cli("token", "list", env=env).returncode == 1
    assert server.cli("token", "create", "escalate", "--policy", "admin", env=env).returncode == 1


def test_revocation_takes_effect_on_the_next_call(server: ServerProcess) -> None:
    token = server.cli("token", "create", "short-lived", "--policy", "admin").stdout.decode().strip()
    env = _as(server, token)
    assert server.cli("put", "app/r", stdin=b"v", env=env).returncode == 0  # verified and cached now
    revoked = server.cli("token", "revoke", "short-lived")
    assert revoked.returncode == 0, revoked.stderr
    after = server.cli("get", "app/r", env=env)
    assert after.returncode == 1 and b"unauthenticated" in after.stderr
    again = server.cli("token", "revoke", "short-lived")
    assert again.returncode == 1 and b"no token named 'short-lived'" in again.stderr


def test_a_token_stops_working_when_its_ttl_ends(server: ServerProcess) -> None:
    created = server.cli("token", "create", "brief", "--policy", "admin", "--ttl", "2s", "--format", "json")
    body = json.loads(created.stdout)
    assert "expireTime" in body["info"]
    env = _as(server, body["token"])
    assert server.cli("put", "app/t", stdin=b"v", env=env).returncode == 0
    time.sleep(2.2)
    expired = server.cli("get", "app/t", env=env)
    assert expired.returncode == 1 and b"unauthenticated" in expired.stderr


def test_names_are_unique_and_bad_requests_are_clear(server: ServerProcess) -> None:
    assert server.cli("token", "create", "dup").returncode == 0
    dup = server.cli("token", "create", "dup")
    assert dup.returncode == 1 and b"already_exists" in dup.stderr
    bad_ttl = server.cli("token", "create", "x", "--ttl", "soon")
    assert bad_ttl.returncode == 2 and b"not a duration" in bad_ttl.stderr
    bad_name = server.cli("token", "create", "has space")
    assert bad_name.returncode == 1 and b"invalid_argument" in bad_name.stderr
