"""The webhook's memory of access answers: a rollout's burst of identical pods makes one check, answers
expire, other service accounts and other secrets are asked for, and "could not ask" is never remembered."""

from __future__ import annotations

from collections.abc import Sequence

from injector.plan import SecretRef
from injector.webhook.access import AccessReport, CachedAccessChecker

DB = SecretRef("payments", "db/password")


class Service:
    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    def check(self, namespace: str, service_account: str, refs: Sequence[SecretRef], request_id: str) -> AccessReport:
        self.calls += 1
        if self.down:
            return AccessReport(unavailable="down")
        return AccessReport(problems=(f"{service_account} denied",))


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_answers_are_remembered_for_their_time_only() -> None:
    service, clock = Service(), Clock()
    cached = CachedAccessChecker(service, 5, monotonic=clock)
    for _ in range(10):
        assert cached.check("payments", "app", [DB], "r").problems == ("app denied",)
    assert service.calls == 1
    cached.check("payments", "other", [DB], "r")
    cached.check("payments", "app", [DB, SecretRef("payments", "api")], "r")
    assert service.calls == 3
    clock.now += 5
    cached.check("payments", "app", [DB], "r")
    assert service.calls == 4


def test_could_not_ask_is_never_remembered() -> None:
    service, clock = Service(), Clock()
    cached = CachedAccessChecker(service, 5, monotonic=clock)
    service.down = True
    assert cached.check("payments", "app", [DB], "r").unavailable == "down"
    service.down = False
    assert cached.check("payments", "app", [DB], "r").problems == ("app denied",)
    assert service.calls == 2


def test_the_memory_is_bounded() -> None:
    service, clock = Service(), Clock()
    cached = CachedAccessChecker(service, 5, monotonic=clock, max_entries=3)
    for i in range(10):
        cached.check("payments", f"sa{i}", [DB], "r")
    assert len(cached._answers) <= 3
