"""Policy documents over the service layer: stored documents join the files, every change is checked before it
is written, reloads swap whole sets and keep the set in force when the documents stop loading together, and
`explain` answers from the set in force."""

from __future__ import annotations

import logging
import os
import textwrap
import time
from pathlib import Path

import pytest

from secretsvc.errors import ConfigError, InvalidArgument, LimitExceeded, NotFound, PermissionDenied, VersionConflict
from secretsvc.policy import limits as policy_limits
from secretsvc.service import limits
from secretsvc.service.livepolicies import LivePolicies, ReloadLoop
from secretsvc.service.policies import Origin, PolicyService
from secretsvc.store.sqlite import SqliteStore
from tests.unit.policy.support import secret, token
from tests.unit.service.support import ADMIN, ManualClock

READER = token("ci", "reader")


def _doc(text: str) -> bytes:
    return textwrap.dedent(text).encode()


READERS = _doc("""\
    version: 1
    policies:
      - name: reader
        rules:
          - paths: ["app/**"]
            capabilities: [read]
            effect: allow
    """)

DENY_DB = _doc("""\
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
    """)


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "readers.yaml").write_bytes(READERS)
    return directory


@pytest.fixture
def live(policy_dir: Path, store: SqliteStore) -> LivePolicies:
    return LivePolicies([policy_dir], store)


@pytest.fixture
def svc(store: SqliteStore, live: LivePolicies, clock: ManualClock) -> PolicyService:
    return PolicyService(store, live, live, clock)


def test_a_stored_document_takes_effect_at_once_and_its_removal_too(svc: PolicyService, live: LivePolicies) -> None:
    assert live.allows(READER, secret("app/db/password"), "read")
    record = svc.put(ADMIN, "no-db", DENY_DB, "yaml")
    assert record.revision == 1
    assert not live.allows(READER, secret("app/db/password"), "read")  # the explicit deny wins
    assert live.allows(READER, secret("app/web/key"), "read")
    assert svc.get(ADMIN, "no-db").content == DENY_DB
    assert svc.delete(ADMIN, "no-db") is True
    assert live.allows(READER, secret("app/db/password"), "read")
    assert svc.delete(ADMIN, "no-db") is False
    with pytest.raises(NotFound, match="no-db"):
        svc.get(ADMIN, "no-db")


def test_a_document_that_would_not_load_is_refused_naming_its_line_and_nothing_changes(
        svc: PolicyService, store: SqliteStore, live: LivePolicies) -> None:
    before = live.current
    bad = _doc("""\
        version: 1
        policies:
          - name: broken
            rules:
              - paths: ["app/**"]
                capabilities: [read, fly]
        """)
    with pytest.raises(InvalidArgument, match=r"stored:broken:6: .*fly"):
        svc.put(ADMIN, "broken", bad, "yaml")
    clash = READERS  # defines "reader" again, which the file already defines
    with pytest.raises(InvalidArgument, match=r"policy 'reader' is already defined at .*readers.yaml"):
        svc.put(ADMIN, "again", clash, "yaml")
    assert store.list_policy_documents() == []
    assert live.current is before


def test_a_delete_that_would_leave_a_binding_naming_nothing_is_refused(svc: PolicyService) -> None:
    svc.put(ADMIN, "defines", _doc("""\
        version: 1
        policies:
          - name: deployer
            rules: [{keys: ["deploy"], capabilities: [encrypt], effect: allow}]
        """), "yaml")
    svc.put(ADMIN, "binds", _doc("""\
        version: 1
        bindings:
          - identity: {kind: token, pattern: "ci"}
            policies: [deployer]
        """), "yaml")
    with pytest.raises(InvalidArgument, match="no document defines policy 'deployer'"):
        svc.delete(ADMIN, "defines")
    assert svc.delete(ADMIN, "binds") and svc.delete(ADMIN, "defines")


def test_revisions_guard_concurrent_editors(svc: PolicyService) -> None:
    svc.put(ADMIN, "no-db", DENY_DB, "yaml", expected_revision=0)
    with pytest.raises(VersionConflict):
        svc.put(ADMIN, "no-db", DENY_DB, "yaml", expected_revision=0)
    assert svc.put(ADMIN, "no-db", DENY_DB, "yaml", expected_revision=1).revision == 2
    with pytest.raises(VersionConflict):
        svc.delete(ADMIN, "no-db", expected_revision=1)


def test_json_documents_and_bad_names_formats_and_sizes(svc: PolicyService) -> None:
    as_json = (b'{"version": 1, "policies": [{"name": "j", "rules": '
               b'[{"keys": ["k"], "capabilities": ["encrypt"], "effect": "allow"}]}]}')
    assert svc.put(ADMIN, "j.json", as_json, "json").format == "json"
    with pytest.raises(InvalidArgument, match="policy document name"):
        svc.put(ADMIN, "../escape", as_json, "json")
    with pytest.raises(InvalidArgument, match="format"):
        svc.put(ADMIN, "x", as_json, "toml")
    with pytest.raises(LimitExceeded, match="MAX_POLICY_FILE_BYTES"):
        svc.put(ADMIN, "x", b"#" * (policy_limits.MAX_POLICY_FILE_BYTES + 1), "yaml")
    with pytest.raises(LimitExceeded, match="MAX_POLICY_DOCUMENT_NAME_BYTES"):
        svc.put(ADMIN, "n" * (limits.MAX_POLICY_DOCUMENT_NAME_BYTES + 1), as_json, "json")


def test_only_callers_with_admin_on_policies_may_do_anything(svc: PolicyService, store: SqliteStore) -> None:
    for attempt in (lambda: svc.put(READER, "no-db", DENY_DB, "yaml"), lambda: svc.get(READER, "no-db"),
                    lambda: svc.list(READER), lambda: svc.delete(READER, "no-db"), lambda: svc.reload(READER),
                    lambda: svc.explain(READER, "token:ci", "app/x", "read")):
        with pytest.raises(PermissionDenied, match="may not admin system policies"):
            attempt()
    assert store.list_policy_documents() == []


def test_list_names_the_builtin_the_files_and_the_stored_documents(svc: PolicyService, policy_dir: Path) -> None:
    svc.put(ADMIN, "no-db", DENY_DB, "yaml")
    listed = svc.list(ADMIN)
    assert [(i.origin, i.name, i.policies, i.in_force) for i in listed] == [
        (Origin.BUILTIN, "<builtin>", ("admin",), True),
        (Origin.FILE, str(policy_dir / "readers.yaml"), ("reader",), True),
        (Origin.STORED, "no-db", ("no-db",), True),
    ]
    assert listed[2].record is not None and listed[2].record.revision == 1


def test_explain_uses_the_policies_a_stored_token_carries(svc: PolicyService, store: SqliteStore,
                                                          clock: ManualClock) -> None:
    from secretsvc.auth.tokens import mint_token

    store.put_token(mint_token("ci", now=clock(), policies=("reader",)).record)
    svc.put(ADMIN, "no-db", DENY_DB, "yaml")
    denied = svc.explain(ADMIN, "token:ci", "app/db/password", "read")
    assert (denied.identity_known, denied.caller.policies, denied.decision.allowed) == (True, ("reader",), False)
    assert denied.decision.rule is not None and denied.decision.rule.location.source == "stored:no-db"
    assert len(denied.matched) == 2  # the file's allow and the stored deny
    unknown = svc.explain(ADMIN, "token:nobody", "app/web", "read")
    assert (unknown.identity_known, unknown.decision.allowed) == (False, False)
    with pytest.raises(InvalidArgument, match="capability"):
        svc.explain(ADMIN, "token:ci", "app/x", "fly")
    with pytest.raises(LimitExceeded, match="MAX_EXPLAIN_ARGUMENT_BYTES"):
        svc.explain(ADMIN, "token:" + "a" * limits.MAX_EXPLAIN_ARGUMENT_BYTES, "app/x", "read")


def _touch(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    later = time.time() + 5  # a different mtime even on coarse-grained file systems
    os.utime(path, (later, later))


def test_a_changed_file_is_reloaded_and_a_broken_one_keeps_the_set_in_force(
        live: LivePolicies, policy_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert live.reload().reloaded is False  # nothing changed
    _touch(policy_dir / "deny.yaml", DENY_DB)
    result = live.reload()
    assert (result.reloaded, result.files) == (True, 2)
    assert not live.allows(READER, secret("app/db/password"), "read")

    in_force = live.current
    _touch(policy_dir / "deny.yaml",
           b"version: 1\npolicies: [{name: x, rules: [{paths: [a/b], capabilities: [zz], effect: allow}]}]\n")
    with caplog.at_level(logging.ERROR, logger="secretsvc.policy"):
        refused = live.reload()
    assert refused.reloaded is False and refused.problems
    assert any("deny.yaml:2" in r.getMessage() and "the policies in force stay" in r.getMessage()
               for r in caplog.records)
    assert live.current is in_force
    assert live.reload().problems == ()  # reported once, not on every interval

    (policy_dir / "deny.yaml").unlink()
    assert live.reload().reloaded is True
    assert live.allows(READER, secret("app/db/password"), "read")


def test_another_server_sharing_the_store_sees_a_stored_change_on_reload(
        policy_dir: Path, db_path: Path, svc: PolicyService) -> None:
    other_store = SqliteStore(db_path)
    try:
        other = LivePolicies([policy_dir], other_store)
        svc.put(ADMIN, "no-db", DENY_DB, "yaml")
        assert other.allows(READER, secret("app/db/password"), "read")  # not yet
        assert other.reload().reloaded is True
        assert not other.allows(READER, secret("app/db/password"), "read")
    finally:
        other_store.close()


def test_a_start_where_files_and_stored_documents_clash_is_refused(
        policy_dir: Path, store: SqliteStore, svc: PolicyService) -> None:
    svc.put(ADMIN, "no-db", DENY_DB, "yaml")
    (policy_dir / "clash.yaml").write_bytes(DENY_DB)  # defines "no-db" too
    with pytest.raises(ConfigError, match=r"policy 'no-db' is already defined.*\n.*load together"):
        LivePolicies([policy_dir], store)


def test_the_reload_loop_reloads_when_woken(live: LivePolicies, policy_dir: Path) -> None:
    loop = ReloadLoop(live, interval=0)  # only when woken
    loop.start()
    try:
        _touch(policy_dir / "deny.yaml", DENY_DB)
        loop.wake()
        deadline = time.monotonic() + 10
        while live.allows(READER, secret("app/db/password"), "read") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not live.allows(READER, secret("app/db/password"), "read")
    finally:
        loop.stop()
