"""`StartGate` and `open_configured` for a key the server starts without reaching: shut (UNAVAILABLE with a
retry hint) until the deferred start-up check passes, then a plain key; only unreachability is tolerated."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyEncryptionKey
from secretsvc.kek.configured import open_configured
from secretsvc.kek.gate import RETRY_AFTER_REFUSED_SECONDS, StartGate
from secretsvc.kek.local import LocalKeyring
from secretsvc.kek.settings import KekConfig
from secretsvc.kek.transit import TransitSettings
from secretsvc.kek.vaultauth import TokenLogin
from tests.baokit import OpenBao

AAD = b"secretsvc.dek.v1|gate-test"


class Check:
    """A start-up check that answers what the test sets, counting its runs."""

    def __init__(self) -> None:
        self.outcome: Exception | None = errors.KekUnavailable("not up yet", retry_after_seconds=1.0)
        self.runs = 0

    def __call__(self, kek: KeyEncryptionKey) -> None:
        self.runs += 1
        if self.outcome is not None:
            raise self.outcome


def test_the_gate_stays_shut_while_the_key_is_unreachable_then_opens_once(tmp_path: Path) -> None:
    ring = LocalKeyring.open_or_create(tmp_path / "keyring.json", None)
    check = Check()
    gate = StartGate(ring, check)
    key = SecretBytes(os.urandom(32))
    for call in (
        lambda: gate.wrap(key, AAD),
        gate.primary_version,
        gate.versions,
        gate.rotate,
        lambda: gate.wrap_many([(key, AAD)]),
        gate.check_reachable,
    ):
        with pytest.raises(errors.KekUnavailable) as info:
            call()
        assert info.value.retry_after_seconds == 1.0
    assert not gate.is_open() and check.runs == 6
    assert gate.key_id == ring.key_id  # known without the network: envelopes can be routed meanwhile

    check.outcome = None
    wrapped = gate.wrap(key, AAD)
    assert gate.is_open()
    assert gate.unwrap(wrapped, AAD) == key
    assert gate.unwrap_many([(wrapped, AAD)]) == [key]
    assert gate.held_versions() == [(ring.key_id, 1)]
    gate.check_reachable()
    assert check.runs == 7  # checked once, then out of the way


def test_a_key_the_check_refuses_is_unavailable_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ring = LocalKeyring.open_or_create(tmp_path / "keyring.json", None)
    check = Check()
    check.outcome = errors.KeyringError("the database holds data wrapped by a version this key does not hold")
    gate = StartGate(ring, check)
    with caplog.at_level(logging.ERROR, logger="secretsvc.kek.gate"):
        for _ in range(3):
            with pytest.raises(errors.KekUnavailable) as info:
                gate.unwrap(ring.wrap(SecretBytes(os.urandom(32)), AAD), AAD)
            assert info.value.retry_after_seconds == RETRY_AFTER_REFUSED_SECONDS
            assert "start-up check" in str(info.value)
    assert len([r for r in caplog.records if "refused by the start-up check" in r.message]) == 1
    assert not gate.is_open()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket closes


def _config(addr: str, token: str) -> KekConfig:
    settings = TransitSettings(addr, "gate-root", TokenLogin(token=SecretBytes(token.encode())), timeout_seconds=1.0)
    return KekConfig(backend="vault-transit", transit=settings)


def _no_local() -> KeyEncryptionKey:
    raise AssertionError("the local keyring is not configured")


def test_an_unreachable_transit_at_start_is_opened_behind_a_shut_gate() -> None:
    check = Check()
    opened = open_configured(
        _config(f"http://127.0.0.1:{_closed_port()}", "unused"), _no_local, lambda kek, where: check(kek)
    )
    try:
        assert not opened.ready and opened.gate is not None and opened.probed[0] is opened.gate
        assert check.runs == 0  # deferred: it needs the key
        with pytest.raises(errors.KekUnavailable):
            opened.kek.wrap(SecretBytes(os.urandom(32)), AAD)
        assert check.runs == 0  # the gate's check reads the key first, and Transit is still not there
    finally:
        opened.close()


def test_a_token_vault_refuses_still_fails_at_start(openbao: OpenBao) -> None:
    openbao.create_key("gate-root")
    with pytest.raises(errors.KekUnavailable, match="permission denied"):
        open_configured(_config(openbao.addr, "not-a-token"), _no_local, lambda kek, where: None)


def test_a_reachable_transit_is_checked_at_start(openbao: OpenBao) -> None:
    openbao.create_key("gate-root")
    seen: list[str] = []
    opened = open_configured(
        _config(openbao.addr, openbao.root_token), _no_local, lambda kek, where: seen.append(where)
    )
    try:
        assert opened.ready and opened.gate is None
        assert seen == [f"Vault Transit key transit/gate-root at {openbao.addr}"]
    finally:
        opened.close()


def test_each_new_reason_the_gate_stays_shut_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ring = LocalKeyring.open_or_create(tmp_path / "keyring.json", None)
    check = Check()
    gate = StartGate(ring, check, reason="not up yet")  # what was logged at start
    with caplog.at_level(logging.WARNING, logger="secretsvc.kek.gate"):
        for outcome in ("not up yet", "not up yet", "permission denied", "permission denied", "not up yet"):
            check.outcome = errors.KekUnavailable(outcome)
            with pytest.raises(errors.KekUnavailable):
                gate.check_reachable()
    logged = [r.__dict__["error"] for r in caplog.records if "still cannot be used" in r.message]
    assert logged == ["permission denied", "not up yet"]
