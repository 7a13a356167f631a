"""A snapshot of the server's counters in Prometheus's formats, written by prometheus-client.

The counting is the core's (``ocsi.STATS``: plain integers, added up over the workers by
``STATS.gather()``); prometheus-client only writes the text, through a collector that turns
each family of the snapshot into one of its metric families. Its own metric objects are not
used: their locks and label lookups would be paid per request, and its registry would not add
up the workers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

import ocsi

__all__ = ["SnapshotCollector", "render"]


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class SnapshotCollector(Collector):
    """Yields the families of one snapshot."""

    def __init__(self, snapshot: ocsi.Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        for name in sorted(self.snapshot):
            fam = self.snapshot[name]
            labels: list[str] = list(fam["labels"])
            n = len(labels)
            kind = fam["kind"]
            metric: Any
            if kind == "counter":
                metric = CounterMetricFamily(name, fam["help"], labels=labels)
                for row in fam["series"]:
                    metric.add_metric([str(v) for v in row[:n]], row[n])
            elif kind == "gauge":
                metric = GaugeMetricFamily(name, fam["help"], labels=labels)
                for row in fam["series"]:
                    metric.add_metric([str(v) for v in row[:n]], row[n])
            else:
                metric = HistogramMetricFamily(name, fam["help"], labels=labels)
                bounds = [*fam["bounds"], math.inf]
                for row in fam["series"]:
                    *counts, total = row[n]
                    cumulated, buckets = 0, []
                    for bound, count in zip(bounds, counts):
                        cumulated += count
                        buckets.append((_le(bound), cumulated))
                    metric.add_metric([str(v) for v in row[:n]], buckets, total)
            yield metric


def render(snapshot: ocsi.Snapshot, accept: str | None) -> tuple[bytes, str]:
    """The exposition of ``snapshot`` and its content type: OpenMetrics when ``accept`` asks
    for ``application/openmetrics-text``, Prometheus's text format 0.0.4 otherwise."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
