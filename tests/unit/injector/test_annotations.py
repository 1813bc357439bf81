"""The webhook's annotation parser: every annotation under the prefix read and checked, misspellings refused with
the closest known name, every problem reported at once, and no input that makes it raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from injector.plan import AgentMode, RenderFormat, SecretRef
from injector.webhook.annotations import (
    MAX_ANNOTATIONS,
    MAX_VALUE_BYTES,
    parse_annotations,
    parse_quantity,
    suggest,
)

P = "secretsvc.io/"


def parse(**values: str) -> tuple[object, tuple[str, ...], tuple[str, ...]]:
    parsed = parse_annotations({P + k.replace("_", "-"): v for k, v in values.items()}, P)
    return parsed.value, parsed.problems, parsed.notes


def problems_of(annotations: dict[str, object]) -> tuple[str, ...]:
    return parse_annotations({P + k: v for k, v in annotations.items()}, P).problems


def test_a_full_set_of_annotations_reads_into_one_request() -> None:
    parsed = parse_annotations({
        P + "inject": "true",
        P + "secret-db-password": "payments/db/password@3",
        P + "template-app.env": "# the app's settings\nDB_PASSWORD=payments/db/password\n\nAPI_KEY = payments/api\n",
        P + "format-app.env": "env",
        P + "template-config.yaml": "password: {{ secret('payments/db/password') }}\n",
        P + "mode-app.env": "0440",
        P + "owner-app.env": "1000:3000",
        P + "agent-mode": "native-sidecar",
        P + "mount-path": "/etc/app/secrets/",
        P + "containers": "app, worker",
        P + "tmpfs-size": "2Mi",
        P + "agent-cpu-request": "5m",
        P + "agent-memory-limit": "48Mi",
        P + "reload-url": "http://127.0.0.1:8080/-/reload",
        P + "agent-deadline-seconds": "60",
        "app.kubernetes.io/name": "api",  # not ours: ignored
    }, P)
    assert parsed.problems == () and parsed.notes == ()
    v = parsed.value
    assert v.inject and v.agent_mode is AgentMode.NATIVE_SIDECAR and v.mount_path == "/etc/app/secrets"
    assert v.containers == ("app", "worker") and v.tmpfs_size == "2Mi" and v.deadline_seconds == 60
    assert v.resources.cpu_request == "5m" and v.resources.memory_limit == "48Mi" and v.resources.cpu_limit is None
    assert v.reload.url == "http://127.0.0.1:8080/-/reload"
    files = {f.name: f for f in v.files}
    assert sorted(files) == ["app.env", "config.yaml", "db-password"]
    assert files["db-password"].secret == SecretRef("payments", "db/password", 3)
    env = files["app.env"]
    assert env.render is not None and env.render.format is RenderFormat.ENV
    assert dict(env.render.items) == {"DB_PASSWORD": SecretRef("payments", "db/password"),
                                      "API_KEY": SecretRef("payments", "api")}
    assert (env.mode, env.uid, env.gid) == (0o440, 1000, 3000)
    template = files["config.yaml"]
    assert template.render is not None and template.render.format is RenderFormat.TEMPLATE
    assert template.render.refs() == (SecretRef("payments", "db/password"),)


def test_a_pod_without_our_annotations_is_nothing_to_us() -> None:
    parsed = parse_annotations({"example.com/inject": "true"}, P)
    assert not parsed.value.present and parsed.problems == () and parsed.notes == ()


@pytest.mark.parametrize(("written", "meant"), [
    ("injct", "inject"), ("Inject", "inject"), ("injection", "inject"), ("secrets-db", "secret-db"),
    ("secert-db", "secret-db"), ("templte-app.env", "template-app.env"), ("fromat-app.env", "format-app.env"),
    ("agent_mode", "agent-mode"), ("agentmode", "agent-mode"), ("mount-pth", "mount-path"),
    ("mountPath", "mount-path"), ("container", "containers"), ("tmpfs-sise", "tmpfs-size"),
    ("owners-db", "owner-db"), ("reload-signl", "reload-signal"), ("agent-cpu-requests", "agent-cpu-request"),
])
def test_a_misspelled_annotation_is_refused_naming_the_closest_known_one(written: str, meant: str) -> None:
    assert suggest(written) == meant
    problems = problems_of({"inject": "true", "secret-db": "payments/db", written: "x"})
    assert any(f"{P}{written}: unknown annotation; did you mean {P}{meant}?" in p for p in problems), problems


def test_an_unknown_annotation_far_from_any_lists_the_known_ones() -> None:
    (problem,) = problems_of({"inject": "true", "secret-db": "payments/db", "zzzzzz": "1"})
    assert "unknown annotation; known: inject, status" in problem and "secret-NAME" in problem


def test_a_prefix_that_looks_misspelled_gets_a_warning_not_a_refusal() -> None:
    parsed = parse_annotations({"secretsvc.i0/inject": "true", "secretsvc/secret-db": "payments/db"}, P)
    assert parsed.problems == ()
    assert any("'secretsvc.i0/inject' is ignored" in n and f"did you mean {P}inject" in n for n in parsed.notes)
    assert any(f"did you mean {P}secret-db" in n for n in parsed.notes)


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({"inject": "yes", "agent-mode": "daemon", "secret-db": "nopath", "mode-db": "0777",
                            "tmpfs-size": "lots"})
    assert len(problems) == 5
    text = "\n".join(problems)
    assert 'inject: must be "true" or "false"' in text
    assert "agent-mode: must be one of init, sidecar, native-sidecar" in text
    assert "secret-db" in text and "mode 0777 makes the file executable" in text
    assert "tmpfs-size: tmpfs size 'lots' is not a quantity" in text


@pytest.mark.parametrize(("annotations", "expected"), [
    ({"secret-db": "payments"}, "secret-db"),
    ({"secret-db": "payments/db@0"}, "the version after '@' must be a number from 1"),
    ({"secret-db": "payments/db@x"}, "the version after '@'"),
    ({"secret-.hidden": "payments/db"}, "may not start with '.'"),
    ({"secret-db": "payments/db", "template-db": "x={{ secret('payments/db') }}"}, "each file has one source"),
    ({"secret-db": "payments/db", "format-db": "env"}, "a format applies to"),
    ({"secret-db": "payments/db", "mode-other": "0400"}, "there is no file other"),
    ({"secret-db": "payments/db", "owner-db": "root"}, "must be UID or UID:GID"),
    ({"secret-db": "payments/db", "owner-db": "1000:"}, "must be UID or UID:GID"),
    ({"secret-db": "payments/db", "owner-db": "99999999999"}, "must be UID or UID:GID"),
    ({"secret-db": "payments/db", "mode-db": "0200"}, "does not let the owner read"),
    ({"secret-db": "payments/db", "mode-db": "rw"}, "three octal digits"),
    ({"template-a": "{{ secret('payments/db') "}, "template line 1"),
    ({"template-a": "{{ secret(name) }}"}, "secret() takes one literal string"),
    ({"template-a": "{% set s = secret %}{{ s('payments/db') }}"}, "use secret only as secret("),
    ({"template-a": "A=payments/db"}, "set the format annotation to env, json or yaml"),
    ({"template-a": "A=payments/db", "format-a": "toml"}, "must be one of env, json, yaml, template"),
    ({"template-a": "A payments/db", "format-a": "env"}, "line 1: expected KEY=NAMESPACE/PATH"),
    ({"template-a": "A=payments/db\nA=payments/x", "format-a": "json"}, "line 2: key A appears twice"),
    ({"template-a": "1A=payments/db", "format-a": "yaml"}, "must be a variable name"),
    ({"template-a": "A=payments", "format-a": "env"}, "line 1:"),
    ({"template-a": "# nothing\n", "format-a": "env"}, "no items"),
    ({"secret-db": "payments/db", "mount-path": "relative/dir"}, "must be an absolute path"),
    ({"secret-db": "payments/db", "mount-path": "/var/run/../etc"}, "without '.', '..'"),
    ({"secret-db": "payments/db", "mount-path": "/etc"}, "would hide the image's own /etc"),
    ({"secret-db": "payments/db", "mount-path": "/"}, "would hide"),
    ({"secret-db": "payments/db", "containers": "App"}, "not a container name: 'App'"),
    ({"secret-db": "payments/db", "containers": "app,app"}, "names a container twice"),
    ({"secret-db": "payments/db", "containers": " , "}, "comma-separated list"),
    ({"secret-db": "payments/db", "tmpfs-size": "2Gi"}, "at most"),
    ({"secret-db": "payments/db", "tmpfs-size": "1Ki"}, "at least 64Ki"),
    ({"secret-db": "payments/db", "agent-cpu-request": "lots"}, "not a quantity"),
    ({"secret-db": "payments/db", "agent-cpu-limit": "64"}, "at most 4"),
    ({"secret-db": "payments/db", "agent-memory-request": "-16Mi"}, "not a quantity"),
    ({"secret-db": "payments/db", "agent-deadline-seconds": "0"}, "whole number of seconds"),
    ({"secret-db": "payments/db", "agent-deadline-seconds": "99999"}, "whole number of seconds"),
    ({"secret-db": "payments/db", "reload-url": "http://127.0.0.1/"}, "reloading needs secretsvc.io/agent-mode"),
    ({"secret-db": "payments/db", "agent-mode": "sidecar", "reload-url": "http://example.com/"}, "pod's loopback"),
    ({"secret-db": "payments/db", "agent-mode": "sidecar", "reload-signal": "HUP"},
     "reload-process: is needed with secretsvc.io/reload-signal"),
    ({"secret-db": "payments/db", "agent-mode": "sidecar", "reload-signal": "SIGNOPE", "reload-process": "nginx"},
     "not a signal name"),
    ({"secret-db": "payments/db", "agent-mode": "sidecar", "reload-signal": "KILL", "reload-process": "nginx"},
     "not a signal name"),
    ({"secret-db": "payments/db", "agent-mode": "sidecar", "reload-signal": "HUP", "reload-process": "a b"},
     "must be a process name"),
    ({"secret-db": "x" * (MAX_VALUE_BYTES + 1)}, f"longer than {MAX_VALUE_BYTES} bytes"),
    ({"secret-db": 42}, "the value must be a string"),
    ({}, "no file is requested"),
])
def test_bad_values_are_refused_saying_what_is_wrong(annotations: dict[str, object], expected: str) -> None:
    problems = problems_of({"inject": "true", **annotations})
    assert any(expected in p for p in problems), problems


def test_too_many_annotations_are_refused_before_any_is_read() -> None:
    many = {f"secret-f{i}": "payments/db" for i in range(MAX_ANNOTATIONS + 1)}
    (problem,) = problems_of(many)
    assert f"MAX_ANNOTATIONS={MAX_ANNOTATIONS}" in problem


def test_more_files_than_a_plan_holds_are_refused() -> None:
    problems = problems_of({"inject": "true", **{f"secret-f{i}": "payments/db" for i in range(65)}})
    assert any("MAX_FILES=64" in p for p in problems)


def test_annotations_without_inject_are_checked_and_noted() -> None:
    parsed = parse_annotations({P + "secret-db": "payments/db"}, P)
    assert parsed.problems == () and not parsed.value.inject
    assert any(f'until {P}inject: "true"' in n for n in parsed.notes)
    assert parse_annotations({P + "secret-db": "payments"}, P).problems  # a bad value is refused all the same


def test_inject_false_is_read_and_the_status_annotation_is_known() -> None:
    value, problems, notes = parse(inject="False", status="injected")
    assert problems == () and notes == () and not value.inject  # type: ignore[attr-defined]


def test_another_prefix_can_be_configured() -> None:
    parsed = parse_annotations({"vault.example/inject": "true", "vault.example/secret-db": "payments/db",
                                P + "inject": "true"}, "vault.example/")
    assert parsed.problems == () and [f.name for f in parsed.value.files] == ["db"]


@pytest.mark.parametrize(("text", "value"), [("10m", "0.010"), ("0.5", "0.5"), ("16Mi", str(16 * 2**20)),
                                             ("1G", str(10**9)), ("2", "2")])
def test_quantities(text: str, value: str) -> None:
    assert parse_quantity(text, what="q", maximum=2**40) == __import__("decimal").Decimal(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(
    st.one_of(st.sampled_from([P + n for n in ("inject", "secret-a", "template-a", "format-a", "mode-a", "owner-a",
                                               "agent-mode", "mount-path", "containers", "tmpfs-size",
                                               "reload-signal", "reload-url", "agent-cpu-request")]),
              st.text(max_size=30).map(lambda s: P + s), st.text(max_size=30)),
    st.one_of(st.text(max_size=80), st.integers(), st.none()), max_size=12))
def test_no_input_makes_the_parser_raise(annotations: dict[str, object]) -> None:
    parsed = parse_annotations(annotations, P)
    assert all(isinstance(p, str) and p for p in parsed.problems)
