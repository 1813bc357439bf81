"""RpcMetrics: counts and latencies per method and code, through cached labelled children."""

from __future__ import annotations

import threading

from secretsvc.rpc.metrics import RpcMetrics


def _count(metrics: RpcMetrics, method: str, code: str) -> float:
    return metrics.registry.get_sample_value("secretsvc_rpc_requests_total", {"method": method, "code": code}) or 0.0


def _latency_count(metrics: RpcMetrics, method: str) -> float:
    return metrics.registry.get_sample_value("secretsvc_rpc_duration_seconds_count", {"method": method}) or 0.0


def test_each_method_and_code_counts_separately() -> None:
    metrics = RpcMetrics.create()
    metrics.observe("GetSecret", "OK", 0.001)
    metrics.observe("GetSecret", "OK", 0.002)
    metrics.observe("GetSecret", "NOT_FOUND", 0.003)
    metrics.observe("PutSecret", "OK", 0.2)
    assert _count(metrics, "GetSecret", "OK") == 2
    assert _count(metrics, "GetSecret", "NOT_FOUND") == 1
    assert _count(metrics, "PutSecret", "OK") == 1
    assert _count(metrics, "PutSecret", "NOT_FOUND") == 0
    assert _latency_count(metrics, "GetSecret") == 3  # the histogram is per method, across codes
    assert metrics.registry.get_sample_value(
        "secretsvc_rpc_duration_seconds_bucket", {"method": "PutSecret", "le": "0.25"}) == 1
    assert metrics.registry.get_sample_value(
        "secretsvc_rpc_duration_seconds_bucket", {"method": "PutSecret", "le": "0.1"}) == 0


def test_two_instances_do_not_share_children() -> None:
    a, b = RpcMetrics.create(), RpcMetrics.create()
    a.observe("GetSecret", "OK", 0.001)
    assert _count(a, "GetSecret", "OK") == 1
    assert _count(b, "GetSecret", "OK") == 0


def test_concurrent_first_observations_lose_no_counts() -> None:
    metrics = RpcMetrics.create()
    start = threading.Barrier(8)

    def run() -> None:
        start.wait(timeout=30)
        for i in range(500):
            metrics.observe(f"M{i % 5}", "OK", 0.001)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(_count(metrics, f"M{m}", "OK") for m in range(5)) == 8 * 500
    assert all(_latency_count(metrics, f"M{m}") == 8 * 100 for m in range(5))
