"""Checks of the newer benchmarks' plumbing: the large policy document the auth benchmark measures is what it
says it is, and the watch fan-out benchmark runs end to end on a real server (a few watchers, one round)."""

from __future__ import annotations

import json
from pathlib import Path

import auth_bench
import watch_bench

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.policy import Source, load_sources
from secretsvc.policy.identity import parse_identity
from secretsvc.policy.model import ResourceKind, Target


def test_the_large_policy_document_has_1000_rules_and_100_bindings_and_grants_the_bench_paths() -> None:
    policies = load_sources([Source("large.yaml", auth_bench.policy_document().encode())])
    documents = policies.documents[1:]  # after the built-in one
    assert sum(len(p.rules) for d in documents for p in d.policies) == 1000
    assert sum(len(d.bindings) for d in documents) == 100
    reader = Target(ResourceKind.SECRET, "bench/get/00007")
    for identity in ("sa:bench/client", f"mtls:{auth_bench.SPIFFE}"):
        assert policies.allows(parse_identity(identity), reader, "read")
    # The static token holds the reader policy itself (token create --policy), not through a binding.
    token = Principal(PrincipalId("token:bench-reader"), "bench-reader", "token", (auth_bench.READER_POLICY,))
    assert policies.allows(token, reader, "read")
    assert not policies.allows(parse_identity("token:bench-reader"), reader, "read")
    assert not policies.allows(parse_identity("sa:team02/web"), reader, "read")


def test_the_watch_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    assert watch_bench.main(["--watchers", "4", "--rounds", "1", "--client-procs", "1", "--out-dir",
                             str(tmp_path)]) == 0
    (out,) = tmp_path.glob("watch_bench-*.json")
    summary = json.loads(out.read_text())["summary"]
    assert summary["watchers"] == 4 and summary["rounds"] == 1
    assert 0 < summary["notify_p50_ms"] <= summary["all_notified_ms_worst"]
