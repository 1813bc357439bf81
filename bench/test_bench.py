"""Tests of the benchmark's own arithmetic and plumbing (run: .venv/bin/pytest -q bench/).

The load loop is exercised against a real in-process echo server, not a stand-in.
"""

from __future__ import annotations

import json
import math
import mmap
import os
from pathlib import Path

import auth_bench
import echo_server
import loadgen
import procs
import pytest
import service_bench
from loadgen import Case, Stats, WorkerResult, WorkerSpec
from service_bench import CaseResult

KIB = 1024


def test_percentile_nearest_rank() -> None:
    values = [float(x) for x in range(1, 101)]
    assert loadgen.percentile(values, 50) == 50.0
    assert loadgen.percentile(values, 99) == 99.0
    assert loadgen.percentile(values, 100) == 100.0
    assert loadgen.percentile(values, 0) == 1.0
    assert loadgen.percentile([7.0], 99) == 7.0


def test_percentile_empty_is_nan_and_bad_q_is_refused() -> None:
    assert math.isnan(loadgen.percentile([], 50))
    with pytest.raises(ValueError, match="q must be"):
        loadgen.percentile([1.0], 101)
    with pytest.raises(ValueError, match="q must be"):
        loadgen.percentile([1.0], -1)


@pytest.mark.parametrize(("concurrency", "processes", "expected"), [
    (1, 2, [1]), (16, 2, [8, 8]), (64, 2, [32, 32]), (5, 2, [3, 2]), (3, 8, [1, 1, 1]),
])
def test_split_concurrency_is_even_and_complete(concurrency: int, processes: int, expected: list[int]) -> None:
    got = loadgen.split_concurrency(concurrency, processes)
    assert got == expected
    assert sum(got) == concurrency


def test_split_concurrency_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        loadgen.split_concurrency(0, 1)
    with pytest.raises(ValueError, match="at least 1"):
        loadgen.split_concurrency(4, 0)
    with pytest.raises(ValueError, match="MAX_PROCESSES"):
        loadgen.split_concurrency(64, loadgen.MAX_PROCESSES + 1)
    with pytest.raises(ValueError, match="MAX_THREADS_PER_PROCESS"):
        loadgen.split_concurrency(loadgen.MAX_THREADS_PER_PROCESS + 1, 1)


def test_summarize_merges_processes() -> None:
    a = WorkerResult(latencies_s=(0.001, 0.003), errors=0, first_error="", cpu_s=0.1)
    b = WorkerResult(latencies_s=(0.002,), errors=2, first_error="UNAVAILABLE", cpu_s=0.1)
    stats = loadgen.summarize([a, b], duration_s=2.0)
    assert stats.ops == 3
    assert stats.ops_per_s == 1.5
    assert stats.p50_ms == pytest.approx(2.0)
    assert stats.p99_ms == pytest.approx(3.0)
    assert (stats.errors, stats.first_error) == (2, "UNAVAILABLE")


def test_human_size() -> None:
    assert [loadgen.human_size(n) for n in (1, KIB, 1536, 1024 * KIB)] == ["1B", "1KiB", "1536B", "1MiB"]


def test_make_call_refuses_unknown_kind() -> None:
    spec = WorkerSpec(Case("delete", KIB, 1), "127.0.0.1:1", "t", 0, 1, 0.0, 0.1, 1, 1)
    with pytest.raises(ValueError, match="unknown case kind"):
        loadgen.make_call(spec, None, 0)  # type: ignore[arg-type]


def test_usage_reads_this_process() -> None:
    before = procs.usage(os.getpid())
    sum(i * i for i in range(200_000))
    # A fresh anonymous mapping, written page by page, faults for certain (a heap buffer may reuse pages).
    with mmap.mmap(-1, 8 * 1024 * 1024) as fresh:
        for offset in range(0, len(fresh), mmap.PAGESIZE):
            fresh[offset] = 1
    delta = procs.usage(os.getpid()).minus(before)
    assert delta.user_s >= 0 and delta.sys_s >= 0
    assert delta.minor_faults > 0


def _result(kind: str, payload: int, concurrency: int, ops_per_s: float, p99_ms: float = 1.0,
            errors: int = 0) -> CaseResult:
    stats = Stats(ops=int(ops_per_s), ops_per_s=ops_per_s, p50_ms=p99_ms / 2, p99_ms=p99_ms, errors=errors,
                  first_error="UNAVAILABLE" if errors else "")
    return CaseResult(Case(kind, payload, concurrency), stats, 1, 0.1, 0.0, 0.0, 0.1, 0.0, math.nan)


def _verdicts(results: list[CaseResult]) -> dict[str, bool]:
    return {v.target.name: v.passed for v in service_bench.check_targets(service_bench.with_ratios(results))}


def test_ratios_are_against_echo_of_same_payload_and_concurrency() -> None:
    results = service_bench.with_ratios([
        _result("echo", KIB, 16, 1000.0), _result("echo", KIB, 1, 500.0),
        _result("get", KIB, 16, 600.0), _result("get", KIB, 1, 100.0), _result("put", KIB, 64, 10.0),
    ])
    ratios = {r.case.label: r.ratio_to_echo for r in results}
    assert ratios["get 1KiB c16"] == pytest.approx(0.6)
    assert ratios["get 1KiB c1"] == pytest.approx(0.2)
    assert math.isnan(ratios["echo 1KiB c16"])
    assert math.isnan(ratios["put 1KiB c64"])  # no echo baseline ran for it


def test_targets_pass_and_miss_at_their_bounds() -> None:
    get_name = service_bench.TARGETS[0].name
    put_name = service_bench.TARGETS[1].name
    echo = _result("echo", KIB, 16, 1000.0)
    assert _verdicts([echo, _result("get", KIB, 16, 500.0, p99_ms=19.9)])[get_name] is True
    assert _verdicts([echo, _result("get", KIB, 16, 499.0, p99_ms=5.0)])[get_name] is False
    assert _verdicts([echo, _result("get", KIB, 16, 900.0, p99_ms=20.0)])[get_name] is False
    assert _verdicts([echo, _result("get", KIB, 16, 900.0, errors=1)])[get_name] is False
    assert _verdicts([echo, _result("put", KIB, 16, 300.0)])[put_name] is True
    assert _verdicts([echo, _result("put", KIB, 16, 299.0)])[put_name] is False
    # A case without its echo baseline has no ratio, which is a miss, never a pass.
    assert _verdicts([_result("put", KIB, 16, 300.0)])[put_name] is False
    # Targets whose case did not run are left out rather than guessed.
    assert set(_verdicts([echo])) == set()


@pytest.mark.parametrize("argv", [
    ["--duration", "0"], ["--duration", "601"], ["--get-paths", "0"], ["--client-procs", "17"],
    ["--only", "get,delete"], ["--server-env", "NOEQUALS"], ["--server-env", "1BAD=x"],
])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        service_bench.parse_args(argv)
    assert info.value.code == 2


def test_load_loop_against_a_real_echo_server() -> None:
    server = echo_server.build_server(workers=4)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        spec = WorkerSpec(case=Case("echo", KIB, 2), target=f"127.0.0.1:{port}", token="t", process_index=0,
                          threads=2, warmup_s=0.1, duration_s=0.4, seed=1, get_paths=1)
        result = loadgen.run_worker(spec)
    finally:
        server.stop(None)
    assert result.errors == 0
    assert len(result.latencies_s) > 10
    assert all(0 < x < 5 for x in result.latencies_s)


def test_load_loop_counts_errors_by_status_code() -> None:
    server = echo_server.build_server(workers=2)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        # The echo server does not serve Secrets: every get fails with UNIMPLEMENTED, and none is timed.
        spec = WorkerSpec(case=Case("get", KIB, 1), target=f"127.0.0.1:{port}", token="t", process_index=0,
                          threads=1, warmup_s=0.0, duration_s=0.3, seed=1, get_paths=3)
        result = loadgen.run_worker(spec)
    finally:
        server.stop(None)
    assert result.latencies_s == ()
    assert result.errors > 0
    assert result.first_error == "UNIMPLEMENTED"


def test_a_failing_client_process_is_reported_not_waited_for(tmp_path: Path) -> None:
    server = procs.start_echo(tmp_path, workers=2, env={})
    try:
        args = service_bench.parse_args(["--duration", "0.2", "--warmup", "0"])
        with pytest.raises(RuntimeError, match=r"client process 0 of bogus 1KiB c1 failed: ValueError: unknown"):
            service_bench.run_case(Case("bogus", KIB, 1), server, "t", args)
        server.check_alive()
    finally:
        assert server.stop() == 0


# -- auth_bench ---------------------------------------------------------------------------------------------


def test_a_tls_client_certificate_needs_its_key() -> None:
    with pytest.raises(ValueError, match="needs its key"):
        loadgen.Tls(Path("ca.pem"), client_cert=Path("client.pem"))
    assert loadgen.call_metadata(None) == ()
    assert loadgen.call_metadata("a.b.c") == (("authorization", "Bearer a.b.c"),)


def _measured(config: str, position: int, ops_per_s: float) -> auth_bench.Measurement:
    return auth_bench.Measurement(config, 1, position, _result("get", KIB, 16, ops_per_s))


def test_auth_ratios_are_against_the_baselines_on_either_side() -> None:
    sequence = [_measured("baseline", 0, 1000.0), _measured("tls", 1, 900.0), _measured("baseline", 2, 800.0),
                _measured("audit", 3, 600.0)]
    ratios = auth_bench.ratios_in_round(sequence)
    assert ratios["tls"] == pytest.approx(1.0)  # 900 over the mean of 1000 and 800
    assert ratios["audit"] == pytest.approx(0.75)  # the last in a round has one baseline beside it


@pytest.mark.parametrize("argv", [
    ["--rounds", "0"], ["--rounds", "21"], ["--duration", "0"], ["--only", "tls,nope"], ["--client-procs", "0"],
])
def test_auth_bench_refuses_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        auth_bench.parse_args(argv)
    assert info.value.code == 2


def test_auth_bench_runs_all_seven_configurations_end_to_end(tmp_path: Path) -> None:
    """A smoke test on real servers (about half a minute): tiny windows, so the figures only need be sane."""
    assert auth_bench.main(["--duration", "0.3", "--warmup", "0.2", "--rounds", "1", "--out", str(tmp_path)]) == 0
    (out,) = tmp_path.glob("auth_bench-*.json")
    doc = json.loads(out.read_text())
    summary = doc["summary"]
    assert list(summary) == ["baseline", "tls", "mtls", "sa-jwt", "policy-1000", "audit", "all"]
    for name, s in summary.items():
        assert s["errors"] == 0, name
        assert s["ops_per_s"] > 0 and 0 < s["p50_ms"] <= s["p99_ms"] < 10_000, name
        assert 0.05 < s["ratio"] < 20, name
        assert s["server_cpu_ms_per_op"] > 0, name
    assert summary["baseline"]["ratio"] == 1.0
    assert {t["config"]: t["min_ratio"] for t in doc["targets"]} == {
        "tls": 0.85, "mtls": 0.85, "sa-jwt": 0.85, "policy-1000": 0.85, "audit": 0.85, "all": 0.65}
    # 7 measured baselines around 6 configurations; no key, token or temporary path in the flags written.
    assert [m["config"] for m in doc["measurements"]].count("baseline") == 7
    flags = " ".join(f for c in doc["configs"].values() for f in c["server_flags"])
    assert "--client-ca $TMP/pki/ca.pem" in flags and "secretsvc-auth-bench-" not in flags
