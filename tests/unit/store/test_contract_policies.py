"""Store contract: policy documents stored over the API, their revisions, and the change counter replicas poll."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest

from secretsvc.errors import CorruptRecord, InvalidArgument, VersionConflict
from secretsvc.store.base import SecretStore
from secretsvc.store.postgres import PostgresStore
from secretsvc.store.sqlite import SqliteStore

DOC = b"version: 1\npolicies: []\n"
OTHER = b'{"version": 1, "policies": []}'


def test_put_read_list_and_delete(store: SecretStore) -> None:
    start = store.policy_generation()
    first = store.put_policy_document("team-a", "yaml", DOC, expected_revision=None, now=10.0)
    assert (first.name, first.format, first.content, first.revision, first.updated_at) == (
        "team-a", "yaml", DOC, 1, 10.0)
    store.put_policy_document("b", "json", OTHER, expected_revision=0, now=11.0)
    assert [r.name for r in store.list_policy_documents()] == ["b", "team-a"]
    assert store.read_policy_document("team-a") == first
    assert store.read_policy_document("missing") is None

    replaced = store.put_policy_document("team-a", "json", OTHER, expected_revision=1, now=12.0)
    assert (replaced.revision, replaced.format, replaced.content) == (2, "json", OTHER)
    assert store.read_policy_document("team-a") == replaced
    assert store.policy_generation() == start + 3

    assert store.delete_policy_document("team-a", expected_revision=None) is True
    assert store.delete_policy_document("team-a", expected_revision=None) is False
    assert store.policy_generation() == start + 4  # a delete of nothing changes nothing
    assert [r.name for r in store.list_policy_documents()] == ["b"]


def test_revisions_are_checked_and_a_refused_change_counts_nothing(store: SecretStore) -> None:
    store.put_policy_document("a", "yaml", DOC, expected_revision=0, now=1.0)
    generation = store.policy_generation()
    with pytest.raises(VersionConflict, match="expected no such document, found revision 1"):
        store.put_policy_document("a", "yaml", DOC, expected_revision=0, now=2.0)
    with pytest.raises(VersionConflict, match="expected revision 5, found revision 1"):
        store.put_policy_document("a", "yaml", DOC, expected_revision=5, now=2.0)
    with pytest.raises(VersionConflict, match="expected revision 1, found no such document"):
        store.delete_policy_document("nope", expected_revision=1)
    with pytest.raises(VersionConflict):
        store.delete_policy_document("a", expected_revision=2)
    assert store.policy_generation() == generation
    assert store.read_policy_document("a") is not None


@pytest.mark.parametrize(("name", "fmt", "content", "expected"), [
    ("", "yaml", DOC, None),
    ("a", "toml", DOC, None),
    ("a", "yaml", "text", None),
    ("a", "yaml", DOC, -1),
    ("a", "yaml", DOC, True),
])
def test_bad_arguments_are_refused(store: SecretStore, name: str, fmt: str, content: object,
                                   expected: object) -> None:
    with pytest.raises(InvalidArgument):
        store.put_policy_document(name, fmt, content, expected_revision=expected, now=1.0)  # type: ignore[arg-type]
    assert store.list_policy_documents() == []


def test_another_handle_sees_the_change_counter_move(store_factory: Callable[[], SecretStore]) -> None:
    writer, reader = store_factory(), store_factory()
    try:
        before = reader.policy_generation()
        writer.put_policy_document("a", "yaml", DOC, expected_revision=None, now=1.0)
        assert reader.policy_generation() == before + 1
        assert reader.read_policy_document("a") is not None
    finally:
        writer.close()
        reader.close()


def test_a_damaged_row_is_data_loss_not_a_crash(store: SecretStore) -> None:
    store.put_policy_document("a", "yaml", DOC, expected_revision=None, now=1.0)
    if isinstance(store, SqliteStore):
        conn = sqlite3.connect(store.path)
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE policy_documents SET revision = 'x'")
        conn.commit()
        conn.close()
        with pytest.raises(CorruptRecord):
            store.list_policy_documents()
        return
    # PostgreSQL's types forbid a text revision; a second generation row is damage it allows.
    assert isinstance(store, PostgresStore)
    store._write("damage", lambda conn: conn.execute("INSERT INTO policy_generation (generation) VALUES (7)"))
    with pytest.raises(CorruptRecord):
        store.policy_generation()
