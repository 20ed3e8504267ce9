"""Reading a node's Prometheus exposition back into numbers (tests only)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from twistedmail.observe import metrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """{(sample name, sorted labels): value} of an exposition text."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(server: Any) -> Samples:
    """The node's metrics now, rendered in the reactor thread (as /metrics does)."""
    data, content_type = server.call(metrics.render, server.node)
    assert content_type.startswith("text/plain; version=")
    return parse(data.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample (0 when absent: a labelled counter not yet touched)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
