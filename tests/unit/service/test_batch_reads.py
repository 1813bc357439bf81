"""GetSecrets and access reviews in the service layer: each item decided on its own, bounded, and the review
answering from the policies in force and the store's metadata without reading a value."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest

from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import (
    InvalidArgument,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    VersionUnavailable,
)
from secretsvc.kek.local import LocalKeyring
from secretsvc.service import limits
from secretsvc.service.accessreview import AccessReviewService
from secretsvc.service.livepolicies import LivePolicies
from secretsvc.service.secrets import SecretService, SecretValue
from secretsvc.store.sqlite import SqliteStore
from tests.unit.policy.support import sa, token
from tests.unit.service.support import ADMIN, ManualClock

POLICIES = textwrap.dedent("""\
    version: 1
    policies:
      - name: web
        rules:
          - paths: ["app/web/**"]
            capabilities: [read]
            effect: allow
          - paths: ["app/web/admin/*"]
            capabilities: [read]
            effect: deny
      - name: reviewer
        rules:
          - system: ["access-review"]
            capabilities: [admin]
            effect: allow
    bindings:
      - identity: {kind: serviceaccount, pattern: "app/web"}
        policies: [web]
    """)

WEB = sa("app", "web")
WEBHOOK = token("webhook", "reviewer")


@pytest.fixture
def live(tmp_path: Path, store: SqliteStore) -> LivePolicies:
    (tmp_path / "p.yaml").write_text(POLICIES)
    return LivePolicies([tmp_path / "p.yaml"], store)


@pytest.fixture
def svc(store: SqliteStore, keyring: LocalKeyring, clock: ManualClock, live: LivePolicies) -> SecretService:
    return SecretService(store, keyring, clock, live)


def _value(seed: int, size: int = 16) -> SecretBytes:
    return SecretBytes(random.Random(seed).randbytes(size))


def test_each_item_is_decided_on_its_own_in_order(svc: SecretService) -> None:
    svc.put(ADMIN, "app", "web/key", _value(1))
    svc.put(ADMIN, "app", "web/key", _value(2))
    svc.put(ADMIN, "app", "web/admin/root", _value(3))
    svc.put(ADMIN, "app", "web/old", _value(4))
    svc.delete_versions(ADMIN, "app", "web/old", [1])
    results = svc.get_many(WEB, [("app", "web/key", None), ("app", "web/key", 1), ("app", "web/admin/root", None),
                                 ("app", "web/none", None), ("app", "web/old", None), ("app", "bad//path", None)])
    assert isinstance(results[0], SecretValue) and results[0].value.reveal() == _value(2).reveal()
    assert isinstance(results[1], SecretValue) and results[1].version == 1
    assert [type(r) for r in results[2:]] == [PermissionDenied, NotFound, VersionUnavailable, InvalidArgument]


def test_the_batch_is_bounded_in_items_and_in_response_bytes(svc: SecretService) -> None:
    with pytest.raises(LimitExceeded, match="MAX_GET_SECRETS_ITEMS"):
        svc.get_many(ADMIN, [("app", f"p{i}", None) for i in range(limits.MAX_GET_SECRETS_ITEMS + 1)])
    big = limits.MAX_SECRET_VALUE_BYTES
    count = limits.MAX_GET_SECRETS_RESPONSE_BYTES // big + 1
    for i in range(count):
        svc.put(ADMIN, "app", f"big/{i}", _value(i, big))
    results = svc.get_many(ADMIN, [("app", f"big/{i}", None) for i in range(count)])
    assert all(isinstance(r, SecretValue) for r in results[:-1])
    assert isinstance(results[-1], ResourceExhausted) and "MAX_GET_SECRETS_RESPONSE_BYTES" in str(results[-1])


def test_an_access_review_answers_from_the_policies_in_force_and_the_metadata(
        svc: SecretService, store: SqliteStore, live: LivePolicies) -> None:
    reviews = AccessReviewService(store, live, live)
    svc.put(ADMIN, "app", "web/key", _value(1))
    svc.put(ADMIN, "app", "web/admin/root", _value(2))
    svc.put(ADMIN, "app", "web/gone", _value(3))
    svc.destroy_versions(ADMIN, "app", "web/gone", [1])
    answers = reviews.check(WEBHOOK, "sa:app/web", "", [
        ("app", "web/key", None), ("app", "web/key", 2), ("app", "web/admin/root", None),
        ("app", "db/password", None), ("app", "web/gone", None)])
    assert [(a.allowed, a.exists) for a in answers] == [
        (True, True), (True, False), (False, True), (False, False), (True, False)]
    assert answers[0].reason == "" and answers[0].rule is not None and answers[0].rule.endswith("p.yaml:5")
    assert answers[1].reason == "app/web/key has no version 2"
    assert "serviceaccount:app/web may not read app/web/admin/root: denied by the rule at" in answers[2].reason
    assert answers[3].reason.endswith("no policy grants it (deny by default)") and answers[3].rule is None
    assert answers[4].reason == "version 1 of app/web/gone was destroyed"


def test_only_holders_of_access_review_may_review_and_bad_input_is_refused(
        store: SqliteStore, live: LivePolicies) -> None:
    reviews = AccessReviewService(store, live, live)
    with pytest.raises(PermissionDenied, match="may not admin system access-review"):
        reviews.check(WEB, "sa:app/web", "read", [("app", "web/key", None)])
    with pytest.raises(InvalidArgument, match="capability"):
        reviews.check(WEBHOOK, "sa:app/web", "fly", [])
    with pytest.raises(InvalidArgument, match="identity"):
        reviews.check(WEBHOOK, "nobody", "read", [])
    with pytest.raises(InvalidArgument, match="path"):
        reviews.check(WEBHOOK, "sa:app/web", "read", [("app", "../x", None)])
    with pytest.raises(LimitExceeded):
        reviews.check(WEBHOOK, "sa:app/web", "read", [("app", "p", None)] * (limits.MAX_GET_SECRETS_ITEMS + 1))
