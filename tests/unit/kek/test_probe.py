"""Readiness for remote key-encryption keys: the probe reports each change of reachability once."""

from __future__ import annotations

import time

from secretsvc import errors
from secretsvc.kek.probe import KekProbe


class FlakyKek:
    key_id = "vault-transit:transit/k"

    def __init__(self) -> None:
        self.up = True
        self.checks = 0

    def check_reachable(self) -> None:
        self.checks += 1
        if not self.up:
            raise errors.KekUnavailable("Vault Transit at http://127.0.0.1:1 got no answer")


def test_changes_are_reported_once_each() -> None:
    kek = FlakyKek()
    seen: list[bool] = []
    probe = KekProbe([kek], seen.append, interval=60)
    assert probe.check_now() and seen == []  # reachable at start: nothing to report
    kek.up = False
    assert not probe.check_now() and not probe.check_now()
    assert seen == [False]
    kek.up = True
    assert probe.check_now()
    assert seen == [False, True]


def test_the_thread_checks_every_interval_and_stops() -> None:
    kek = FlakyKek()
    seen: list[bool] = []
    probe = KekProbe([kek], seen.append, interval=0.02)
    kek.up = False
    probe.start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    probe.stop()
    assert seen == [False]
    checks = kek.checks
    time.sleep(0.1)
    assert kek.checks == checks  # stopped


def test_a_probe_without_remote_keks_starts_no_thread() -> None:
    probe = KekProbe([], lambda ok: None, interval=0.01)
    probe.start()
    probe.stop()
    assert probe.check_now()


def test_a_probe_that_starts_unreachable_reports_only_when_the_key_answers() -> None:
    kek = FlakyKek()
    kek.up = False
    seen: list[bool] = []
    probe = KekProbe([kek], seen.append, interval=60, reachable=False)  # the server started without the key
    assert not probe.check_now() and seen == []  # already NOT_SERVING: nothing new to report
    kek.up = True
    assert probe.check_now() and seen == [True]
