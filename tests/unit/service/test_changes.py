"""The change relay: what another process changed reaches this one's parts. A secret wakes its watchers and
moves its change count (so watchers sharing a cached read read again); tokens and policies go to their
listeners; "everything may have changed" does all of it; one failing listener does not keep the change from
the others."""

from __future__ import annotations

import pytest

from secretsvc.service.changes import ChangeFeed, ChangeRelay


def test_a_secret_changed_elsewhere_wakes_its_watchers_only() -> None:
    feed = ChangeFeed()
    relay = ChangeRelay(feed)
    watching_a = feed.subscribe([("ns", "a")])
    watching_b = feed.subscribe([("ns", "b")])
    relay.secret_changed("ns", "a")
    assert watching_a.wait(0) == {("ns", "a")}
    assert watching_b.wait(0) == set()
    assert feed.count(("ns", "a")) == 1 and feed.count(("ns", "b")) == 0


def test_everything_may_have_changed_wakes_every_watcher_and_moves_every_count() -> None:
    feed = ChangeFeed()
    relay = ChangeRelay(feed)
    heard: list[str] = []
    relay.on_tokens(lambda: heard.append("tokens"))
    relay.on_policies(lambda: heard.append("policies"))
    first = feed.subscribe([("ns", "a"), ("ns", "b")])
    second = feed.subscribe([("ns", "b")])
    relay.everything_may_have_changed()
    assert first.wait(0) == {("ns", "a"), ("ns", "b")}
    assert second.wait(0) == {("ns", "b")}
    assert feed.count(("ns", "a")) == 1 and feed.count(("ns", "b")) == 1
    assert heard == ["tokens", "policies"]


def test_tokens_and_policies_reach_their_listeners_even_past_a_failing_one(caplog: pytest.LogCaptureFixture) -> None:
    relay = ChangeRelay(ChangeFeed())
    heard: list[str] = []

    def broken() -> None:
        raise RuntimeError("listener bug")

    relay.on_tokens(broken)
    relay.on_tokens(lambda: heard.append("tokens"))
    relay.on_policies(lambda: heard.append("policies"))
    relay.tokens_changed()
    relay.policies_changed()
    assert heard == ["tokens", "policies"]
    assert "a change listener failed" in caplog.text
