"""The data-key cache's counters as Prometheus metrics, read from the cache when the registry is scraped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from secretsvc.kek.cache import DataKeyCache


class DataKeyCacheCollector:
    """Register on the server's registry: `registry.register(DataKeyCacheCollector(cache))`."""

    def __init__(self, cache: DataKeyCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Any]:
        cache = self._cache
        yield CounterMetricFamily(
            "secretsvc_kek_cache_hits", "Data-key unwraps answered from the cache.", value=cache.hits
        )
        yield CounterMetricFamily(
            "secretsvc_kek_cache_misses", "Data-key unwraps that went to the key-encryption key.", value=cache.misses
        )
        yield CounterMetricFamily(
            "secretsvc_kek_cache_evictions",
            "Cached data keys dropped (and zeroed) for size, age, uses or a clear.",
            value=cache.evictions,
        )
        yield GaugeMetricFamily("secretsvc_kek_cache_entries", "Data keys held in the cache now.", value=len(cache))
