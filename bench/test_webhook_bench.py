"""Checks of the webhook benchmark's plumbing: h2load's log and summary read right, the client chosen (and a
missing h2load named with how to install it), and one short run end to end on real servers with each client."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import webhook_bench


def test_h2load_log_lines_give_latencies_and_the_requests_not_answered_200() -> None:
    log = "1796466489436098\t200\t11306\n1796466489438014\t200\t2500\n1796466489439415\t404\t900\n\n"
    latencies, not_ok = webhook_bench.parse_h2load_log(log)
    assert latencies == [11.306, 2.5, 0.9]
    assert not_ok == 1


def test_h2load_summary_gives_the_failed_requests() -> None:
    summary = ("finished in 5.00s, 1477.33 req/s, 4.26MB/s\n"
               "requests: 4432 total, 4432 started, 4430 done, 4427 succeeded, 3 failed, 2 errored, 0 timeout\n")
    assert webhook_bench.parse_h2load_failed(summary) == 3
    with pytest.raises(RuntimeError, match="no request counts"):
        webhook_bench.parse_h2load_failed("h2load: connection refused\n")


def test_percentile_is_the_rank_rounded_down() -> None:
    values = [float(x) for x in range(1, 101)]
    assert webhook_bench.percentile(values, 99) == 99.0
    assert webhook_bench.percentile(values, 50) == 50.0
    assert webhook_bench.percentile([7.0], 99) == 7.0


def test_check_access_calls_are_counted_in_every_audit_file(tmp_path: Path) -> None:
    record = webhook_bench.CHECK_ACCESS_RECORD
    (tmp_path / "audit.log").write_bytes(b"{" + record + b"}\n{\"resource\":\"payments/x\"}\n")
    (tmp_path / "audit.log.1").write_bytes(b"{" + record + b"}\n" * 1 + b"{" + record + b"}\n")
    assert webhook_bench.audited_checks(tmp_path) == 3


def test_without_h2load_the_python_client_is_used_with_a_warning_or_the_run_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    def missing(name: str) -> str | None:
        return None

    assert webhook_bench.choose_client("auto", missing) == "python"
    assert "apt-get install nghttp2-client" in capsys.readouterr().err
    assert webhook_bench.choose_client("h2load", missing) is None
    assert webhook_bench.choose_client("python", missing) == "python"
    assert webhook_bench.choose_client("auto", lambda name: "/usr/bin/h2load") == "h2load"


def test_asking_for_a_missing_h2load_exits_2_saying_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setattr(webhook_bench, "H2LOAD", "h2load-not-installed-here")
    assert webhook_bench.main(["--client", "h2load", "--out-dir", str(tmp_path)]) == 2
    assert "apt-get install nghttp2-client" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("client", ["h2load", "python"])
def test_the_webhook_benchmark_runs_end_to_end(client: str, tmp_path: Path) -> None:
    if client == "h2load" and shutil.which(webhook_bench.H2LOAD) is None:
        pytest.skip(webhook_bench.H2LOAD_MISSING)
    assert webhook_bench.main(["--client", client, "--duration", "1", "--warmup", "0.5", "--concurrency", "2",
                               "--client-procs", "1", "--out-dir", str(tmp_path)]) == 0
    (out,) = tmp_path.glob("webhook_bench-*.json")
    cases = {c["case"]: c for c in json.loads(out.read_text())["cases"]}
    assert list(cases) == [case.name for case in webhook_bench.CASES]
    for case in cases.values():
        assert case["client"] == client and case["requests"] > 0 and case["errors"] == 0
        assert 0 < case["p50_ms"] <= case["p99_ms"]
        assert case["client_cpu_ms_per_request"] > 0
    # Every pod checked: one CheckAccess call per review (a few more in flight when the window closed).
    assert 0.95 <= cases["checked, every pod"]["check_access_per_request"] <= 1.1
    assert cases["check off"]["check_access_per_request"] == 0
