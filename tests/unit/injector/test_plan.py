"""The agent's plan: written by the webhook, read by the agent; one format, bounded, with errors naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from injector.plan import (
    MAX_FILES,
    MAX_PLAN_BYTES,
    AgentMode,
    FileSpec,
    Plan,
    ReloadSpec,
    Render,
    RenderFormat,
    SecretRef,
    ServiceSpec,
    parse_mode,
    parse_plan,
)
from secretsvc.errors import InvalidArgument


def _plan(**overrides: Any) -> dict[str, Any]:
    plan: dict[str, Any] = {
        "version": 1,
        "service": {"addr": "secretsvc.secretsvc.svc:8290", "ca_file": "/tls/ca.pem", "token_file": "/token/token"},
        "target_dir": "/var/run/secrets/secretsvc",
        "mode": "init",
        "files": [
            {"name": "db-password", "mode": "0400", "uid": 1000, "gid": 1000, "secret": "payments/db/password"},
            {"name": "app.env", "mode": "0440", "render": {"format": "env", "items": {
                "DB_PASSWORD": "payments/db/password@3", "API_KEY": "payments/api"}}},
            {"name": "config.yaml", "render": {"format": "template",
                                               "template": "pw: {{ secret('payments/db/password') }}\n"}},
        ],
    }
    plan.update(overrides)
    return plan


def test_a_full_plan_reads_and_writes_back_the_same() -> None:
    plan = parse_plan(json.dumps(_plan(reload={"signal": "hup", "process": "nginx", "url": None})))
    assert plan.mode is AgentMode.INIT and plan.deadline_seconds == 120
    assert plan.files[0] == FileSpec("db-password", secret=SecretRef("payments", "db/password"), mode=0o400,
                                     uid=1000, gid=1000)
    assert plan.files[1].render is not None and plan.files[1].render.items["DB_PASSWORD"].version == 3
    assert plan.reload == ReloadSpec(signal="SIGHUP", process="nginx")
    assert [str(r) for r in plan.refs()] == ["payments/api", "payments/db/password", "payments/db/password@3"]
    assert parse_plan(plan.to_json()) == plan


@pytest.mark.parametrize(("change", "message"), [
    ({"version": 2}, "version must be 1"),
    ({"surprise": 1}, "unknown field"),
    ({"target_dir": "relative"}, "absolute path"),
    ({"target_dir": "/a/../etc"}, "without '..'"),
    ({"mode": "daemon"}, "mode must be one of"),
    ({"files": []}, "non-empty list"),
    ({"files": [{"name": "a", "secret": "ns/p"}] * 2}, "appear more than once"),
    ({"files": [{"name": "../etc/passwd", "secret": "ns/p"}]}, "may only hold"),
    ({"files": [{"name": ".hidden", "secret": "ns/p"}]}, "may not start with '.'"),
    ({"files": [{"name": "a", "secret": "ns/p", "mode": "0755"}]}, "executable"),
    ({"files": [{"name": "a", "secret": "ns/p", "mode": "0040"}]}, "owner read"),
    ({"files": [{"name": "a", "secret": "ns/p", "uid": -1}]}, "uid must be an integer"),
    ({"files": [{"name": "a", "secret": "ns/p", "uid": True}]}, "uid must be an integer"),
    ({"files": [{"name": "a"}]}, "exactly one of secret and render"),
    ({"files": [{"name": "a", "secret": "no-slash"}]}, "NAMESPACE/PATH"),
    ({"files": [{"name": "a", "secret": "ns/p@0"}]}, "version after '@'"),
    ({"files": [{"name": "a", "render": {"format": "toml", "items": {"A": "ns/p"}}}]}, "format must be one of"),
    ({"files": [{"name": "a", "render": {"format": "env", "items": {"1A": "ns/p"}}}]}, "variable name"),
    ({"files": [{"name": "a", "render": {"format": "env", "items": {}}}]}, "non-empty object"),
    ({"files": [{"name": "a", "render": {"format": "template", "template": "{{ secret(x) }}"}}]}, "literal"),
    ({"files": [{"name": "a", "render": {"format": "template", "template": "{% if %}"}}]}, "template line 1"),
    ({"files": [{"name": f"f{i}", "secret": "ns/p"} for i in range(MAX_FILES + 1)]}, "MAX_FILES"),
    ({"reload": {"signal": "SIGKILL", "process": "app"}}, "not a signal name"),
    ({"reload": {"signal": "SIGHUP"}}, "go together"),
    ({"reload": {"url": "http://10.0.0.1/reload"}}, "loopback"),
    ({"deadline_seconds": 0}, "deadline_seconds"),
    ({"service": {"addr": ""}}, "non-empty string"),
    ({"service": {"addr": "a\nb"}}, "control characters"),
])
def test_bad_plans_are_refused_naming_what_is_wrong(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_plan(json.dumps(_plan(**change)))


def test_size_and_json_are_bounded() -> None:
    with pytest.raises(InvalidArgument, match="MAX_PLAN_BYTES"):
        parse_plan(" " * (MAX_PLAN_BYTES + 1))
    with pytest.raises(InvalidArgument, match="not JSON"):
        parse_plan("[" * 100_000)
    with pytest.raises(InvalidArgument, match="must be an object"):
        parse_plan("[]")


def test_file_modes() -> None:
    assert (parse_mode("0400"), parse_mode("440"), parse_mode("0600")) == (0o400, 0o440, 0o600)
    for bad in ("400 ", "0o400", "1400", "4000", "rw"):
        with pytest.raises(InvalidArgument):
            parse_mode(bad)


_names = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,15}", fullmatch=True)
_refs = st.builds(SecretRef, _names, _names, st.one_of(st.none(), st.integers(1, 2**40)))
_files = st.builds(
    FileSpec, name=_names, secret=_refs, mode=st.sampled_from([0o400, 0o440, 0o600, 0o640]),
    uid=st.one_of(st.none(), st.integers(0, 65535)), gid=st.one_of(st.none(), st.integers(0, 65535)),
)
_env_files = st.builds(
    FileSpec, name=_names,
    render=st.builds(Render, st.sampled_from([RenderFormat.ENV, RenderFormat.JSON, RenderFormat.YAML]),
                     st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True), _refs, min_size=1,
                                     max_size=5)),
)


@settings(max_examples=200, deadline=None)
@given(files=st.lists(st.one_of(_files, _env_files), min_size=1, max_size=6, unique_by=lambda f: f.name),
       mode=st.sampled_from(list(AgentMode)))
def test_any_plan_round_trips(files: list[FileSpec], mode: AgentMode) -> None:
    plan = Plan(service=ServiceSpec("svc:8290", ca_file="/ca.pem"), target_dir="/run/s", files=tuple(files),
                mode=mode)
    assert parse_plan(plan.to_json()) == plan
