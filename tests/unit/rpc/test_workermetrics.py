"""The supervisor's /metrics: every worker's families merged under a worker label, workers that do not answer
marked down, and the restart count."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from secretsvc.rpc.metrics import RpcMetrics
from secretsvc.rpc.workermetrics import (
    MAX_WORKER_METRICS_BYTES,
    WorkerMetricsCollector,
    merge,
    read_worker,
    supervisor_registry,
)


def _worker_text(calls: int, code: str = "OK") -> str:
    metrics = RpcMetrics.create()
    for _ in range(calls):
        metrics.observe("GetSecret", code, 0.002)
    return generate_latest(metrics.registry).decode()


def _value(text: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    assert found is not None, text
    return float(found.group(1))


def test_merge_keeps_one_family_per_name_and_labels_every_sample_with_its_worker() -> None:
    families = {f.name: f for f in merge({0: _worker_text(3), 1: _worker_text(5)})}
    requests = families["secretsvc_rpc_requests"]
    totals = {s.labels["worker"]: s.value for s in requests.samples if s.name.endswith("_total")}
    assert totals == {"0": 3.0, "1": 5.0}
    assert requests.type == "counter"
    buckets = [s for s in families["secretsvc_rpc_duration_seconds"].samples if s.name.endswith("_count")]
    assert sorted((s.labels["worker"], s.value) for s in buckets) == [("0", 3.0), ("1", 5.0)]


def _collect(texts: dict[int, str | Exception], restarts: int = 0) -> str:
    def read(port: int) -> str:
        answer = texts[port]
        if isinstance(answer, Exception):
            raise answer
        return answer

    registry = CollectorRegistry()
    registry.register(WorkerMetricsCollector(lambda: {i: i for i in texts}, lambda: restarts, read=read))
    return generate_latest(registry).decode()


def test_a_worker_that_does_not_answer_is_down_and_the_others_still_count() -> None:
    text = _collect({0: _worker_text(2), 1: ConnectionRefusedError("gone")}, restarts=1)
    assert _value(text, 'secretsvc_rpc_requests_total{code="OK",method="GetSecret",worker="0"}') == 2.0
    assert 'worker="1"' not in text.split("secretsvc_worker_up")[0]
    assert _value(text, 'secretsvc_worker_up{worker="0"}') == 1.0
    assert _value(text, 'secretsvc_worker_up{worker="1"}') == 0.0
    assert _value(text, "secretsvc_worker_restarts_total") == 1.0


def test_a_worker_text_that_does_not_parse_drops_the_families_not_the_scrape() -> None:
    text = _collect({0: "this is { not prometheus text\n"})
    assert "secretsvc_rpc_requests_total" not in text
    assert _value(text, 'secretsvc_worker_up{worker="0"}') == 1.0


def test_no_workers_yet_serves_only_the_supervisor_metrics() -> None:
    text = generate_latest(supervisor_registry(lambda: {}, lambda: 0)).decode()
    assert _value(text, "secretsvc_worker_restarts_total") == 0.0
    assert "secretsvc_rpc_requests" not in text


class _Handler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_worker() -> Iterator[tuple[ThreadingHTTPServer, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, handler
    httpd.shutdown()
    httpd.server_close()


def test_read_worker_reads_over_http_and_refuses_a_reply_over_the_bound(
        http_worker: tuple[ThreadingHTTPServer, type[_Handler]]) -> None:
    httpd, handler = http_worker
    handler.body = _worker_text(1).encode()
    assert "secretsvc_rpc_requests_total" in read_worker(httpd.server_port)
    handler.body = b"#" * (MAX_WORKER_METRICS_BYTES + 10)
    with pytest.raises(ValueError, match="MAX_WORKER_METRICS_BYTES"):
        read_worker(httpd.server_port)


def test_a_worker_port_that_does_not_speak_http_is_down_not_a_failed_scrape() -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def answer_garbage() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        registry = CollectorRegistry()
        registry.register(WorkerMetricsCollector(lambda: {0: port}, lambda: 0))
        text = generate_latest(registry).decode()
        thread.join(timeout=5)
    assert _value(text, 'secretsvc_worker_up{worker="0"}') == 0.0
