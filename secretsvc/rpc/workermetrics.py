"""One /metrics for a server of several worker processes: the supervisor scrapes each worker and merges.

Each worker keeps its own registry (`rpc/metrics.py`) and serves it on a loopback port of its own that only the
supervisor reads. On every scrape of the server's `metrics_listen`, the supervisor reads every worker's text,
adds a `worker` label (its index, stable across restarts) to each sample, and serves the union, so a query sums
over workers (`sum without (worker) (...)`) and a restarted worker's counters read as a reset of its own series,
never as a total that went backwards. Its own metrics say which workers answered and how often they were
started again.
"""

from __future__ import annotations

import http.client
import logging
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger("secretsvc.server")

WORKER_LABEL = "worker"
# One worker's metrics are a few hundred lines; far more is a bug or not our worker.
MAX_WORKER_METRICS_BYTES = 4 * 1024 * 1024
SCRAPE_TIMEOUT_SECONDS = 2.0

# (worker index -> its private metrics port), read afresh on every scrape: workers come and go.
PortsOf = Callable[[], Mapping[int, int]]
RestartsOf = Callable[[], int]


def read_worker(port: int, *, host: str = "127.0.0.1", timeout: float = SCRAPE_TIMEOUT_SECONDS) -> str:
    """One worker's metrics text. Raises OSError, http.client.HTTPException (a reply that is not HTTP), or
    ValueError (a reply over the bound, or not UTF-8) when it cannot."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as response:
        data = response.read(MAX_WORKER_METRICS_BYTES + 1)
    if len(data) > MAX_WORKER_METRICS_BYTES:
        raise ValueError(f"worker metrics over MAX_WORKER_METRICS_BYTES={MAX_WORKER_METRICS_BYTES}")
    return str(data.decode("utf-8"))


def merge(texts: Mapping[int, str]) -> list[Metric]:
    """The families of every worker's text, one family per name, each sample labelled with its worker."""
    merged: dict[str, Metric] = {}
    for index in sorted(texts):
        for family in text_string_to_metric_families(texts[index]):
            into = merged.get(family.name)
            if into is None:
                into = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            for sample in family.samples:
                labels = {**sample.labels, WORKER_LABEL: str(index)}
                into.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
    return list(merged.values())


class WorkerMetricsCollector:
    """Registered on the supervisor's registry; reads the workers when the registry is collected."""

    def __init__(self, ports: PortsOf, restarts: RestartsOf, *, read: Callable[[int], str] = read_worker) -> None:
        self._ports = ports
        self._restarts = restarts
        self._read = read

    def collect(self) -> Iterator[Any]:
        ports = dict(self._ports())
        texts: dict[int, str] = {}
        up = GaugeMetricFamily("secretsvc_worker_up", "1 if the worker process answered this scrape, else 0.",
                               labels=[WORKER_LABEL])
        if ports:
            with futures.ThreadPoolExecutor(max_workers=min(len(ports), 8), thread_name_prefix="scrape") as pool:
                asked = {index: pool.submit(self._read, port) for index, port in ports.items()}
                for index, answer in sorted(asked.items()):
                    try:
                        texts[index] = answer.result()
                    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError is an OSError
                        log.warning("worker metrics not read", extra={"worker": index, "error": str(exc)})
                    up.add_metric([str(index)], 1.0 if index in texts else 0.0)
        try:
            yield from merge(texts)
        except ValueError as exc:  # a text that does not parse: report the workers, not half a family
            log.warning("worker metrics did not parse", extra={"error": str(exc)})
        yield up
        yield CounterMetricFamily("secretsvc_worker_restarts", "Worker processes started again after exiting.",
                                  value=self._restarts())


def supervisor_registry(ports: PortsOf, restarts: RestartsOf) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(WorkerMetricsCollector(ports, restarts))
    return registry
