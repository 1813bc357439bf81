"""Prometheus metrics for the gRPC server, on a registry of their own (no process-global state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True, slots=True)
class RpcMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    # labels() hashes and locks on every call; the labelled children are kept per (method, code) instead.
    # Keys come from the server's registered methods and gRPC's status codes, so the dict stays small.
    _children: dict[tuple[str, str], tuple[Any, Any]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def create(cls) -> RpcMetrics:
        registry = CollectorRegistry()
        requests = Counter(
            "secretsvc_rpc_requests",
            "RPCs handled, by method and gRPC status code.",
            ["method", "code"],
            registry=registry,
        )
        latency = Histogram(
            "secretsvc_rpc_duration_seconds",
            "RPC handling time, by method.",
            ["method"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
        )
        return cls(registry, requests, latency)

    def observe(self, method: str, code: str, seconds: float) -> None:
        key = (method, code)
        children = self._children.get(key)
        if children is None:
            # Two threads may both get here; labels() hands both the same children, so either store is right.
            children = (self.requests.labels(method=method, code=code), self.latency.labels(method=method))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
