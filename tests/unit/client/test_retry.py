"""Retries: only UNAVAILABLE, only idempotent methods, exponential backoff with jitter, one deadline for all."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from secretsvc.client import IDEMPOTENT_METHODS, ClientSettings, FileToken, RetryPolicy, StaticToken, open_channel
from secretsvc.v1 import access_pb2, admin_pb2, matching_pb2, policies_pb2, secrets_pb2, tokens_pb2, transit_pb2
from tests.unit.client.fakeserver import Behaviour, fake_server

GET = "/secretsvc.v1.Secrets/GetSecret"
PUT = "/secretsvc.v1.Secrets/PutSecret"
FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)


def _settings(addr: str, **kwargs: object) -> ClientSettings:
    return ClientSettings(addr=addr, **{"retry": FAST, "timeout": 5.0, **kwargs})  # type: ignore[arg-type]


def test_every_idempotent_method_exists() -> None:
    known = {f"/{d.services_by_name[s].full_name}/{m.name}"
             for d in (secrets_pb2.DESCRIPTOR, transit_pb2.DESCRIPTOR, admin_pb2.DESCRIPTOR, tokens_pb2.DESCRIPTOR,
                       policies_pb2.DESCRIPTOR, access_pb2.DESCRIPTOR, matching_pb2.DESCRIPTOR)
             for s in d.services_by_name for m in d.services_by_name[s].methods}
    known.add("/grpc.health.v1.Health/Check")
    assert known >= IDEMPOTENT_METHODS
    # Nothing that writes is in the list.
    for verb in ("Put", "Delete", "Destroy", "Undelete", "Update", "Create", "Rotate", "Revoke", "Set"):
        assert not [m for m in IDEMPOTENT_METHODS if m.rsplit("/", 1)[1].startswith(verb)]


def test_backoff_grows_to_its_ceiling_with_full_jitter() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0)
    assert [policy.delay(n, lambda: 0.999999) for n in range(1, 7)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0], rel=1e-5)
    assert policy.delay(3, lambda: 0.0) == 0.0
    assert policy.delay(3, lambda: 0.5) == pytest.approx(0.2)


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"max_attempts": 11}, {"initial_backoff": -1},
                                    {"initial_backoff": 3, "max_backoff": 2}, {"multiplier": 0.5}])
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_an_idempotent_call_is_retried_until_it_succeeds() -> None:
    behaviour = Behaviour()
    behaviour.fail_first = 2
    with fake_server(behaviour) as addr, open_channel(_settings(addr), StaticToken("t")) as channel:
        assert channel.unary_unary(GET)(b"hello") == b"hello"
    assert behaviour.calls["GetSecret"] == 3


def test_retries_stop_after_max_attempts() -> None:
    behaviour = Behaviour()
    behaviour.fail_first = 100
    with (fake_server(behaviour) as addr, open_channel(_settings(addr), StaticToken("t")) as channel,
          pytest.raises(grpc.RpcError) as info):
        channel.unary_unary(GET)(b"x")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert behaviour.calls["GetSecret"] == FAST.max_attempts


def test_a_write_is_never_repeated() -> None:
    behaviour = Behaviour()
    behaviour.fail_first = 1
    with (fake_server(behaviour) as addr, open_channel(_settings(addr), StaticToken("t")) as channel,
          pytest.raises(grpc.RpcError) as info):
        channel.unary_unary(PUT)(b"x")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert behaviour.calls["PutSecret"] == 1


def test_all_attempts_share_one_deadline() -> None:
    behaviour = Behaviour()
    behaviour.fail_first = 100
    slow = RetryPolicy(max_attempts=10, initial_backoff=0.2, max_backoff=0.2)
    with fake_server(behaviour) as addr, open_channel(_settings(addr, retry=slow, timeout=0.5),
                                                      StaticToken("t")) as channel:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError):
            channel.unary_unary(GET)(b"x")
        assert time.monotonic() - started < 1.5
    assert 1 <= behaviour.calls["GetSecret"] < 10
    remaining = [d for d in behaviour.seen_deadlines if d is not None]
    # Each attempt gets what is left of the one deadline, not a fresh one.
    assert remaining and max(remaining) <= 0.6 and remaining[-1] < remaining[0]


def test_the_default_deadline_applies_and_a_given_one_wins() -> None:
    behaviour = Behaviour()
    behaviour.delay = 1.0
    with fake_server(behaviour) as addr, open_channel(_settings(addr, timeout=0.2), StaticToken("t")) as channel:
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(PUT)(b"x")
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert channel.unary_unary(PUT)(b"y", timeout=3) == b"y"


def test_every_call_carries_the_current_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    behaviour = Behaviour()
    with fake_server(behaviour) as addr, open_channel(_settings(addr), FileToken(token_file, interval=0)) as channel:
        channel.unary_unary(GET)(b"a")
        token_file.write_text("rotated\n")
        channel.unary_unary(GET)(b"b")
        list(channel.unary_stream("/secretsvc.v1.Admin/RewrapStored")(b"c"))
        channel.unary_unary(GET)(b"d", metadata=(("authorization", "Bearer chosen"),))
    assert behaviour.seen_tokens == ["Bearer first", "Bearer rotated", "Bearer rotated", "Bearer chosen"]
    # Streams get no default deadline: a watch or a long rewrap runs as long as it needs.
    assert behaviour.seen_deadlines[2] is None or behaviour.seen_deadlines[2] > 1e6


def test_without_a_token_source_nothing_is_added() -> None:
    behaviour = Behaviour()
    with fake_server(behaviour) as addr, open_channel(_settings(addr), None) as channel:
        channel.unary_unary(GET)(b"a")
    assert behaviour.seen_tokens == [""]
