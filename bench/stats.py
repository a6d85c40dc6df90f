"""Latency summaries: percentiles of samples in seconds, reported in milliseconds."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of already sorted samples, nearest-rank, ``nan`` when empty."""
    if not ordered:
        return math.nan
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


def summary(samples: Iterable[float]) -> dict[str, float | int | None]:
    """count, mean, p50, p95, p99, max of samples in seconds, as milliseconds (rounded to 0.01)."""
    ordered = sorted(samples)
    if not ordered:
        return {"count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}

    def ms(value: float) -> float:
        return round(value * 1000, 2)

    return {
        "count": len(ordered),
        "mean_ms": ms(sum(ordered) / len(ordered)),
        "p50_ms": ms(percentile(ordered, 0.50)),
        "p95_ms": ms(percentile(ordered, 0.95)),
        "p99_ms": ms(percentile(ordered, 0.99)),
        "max_ms": ms(ordered[-1]),
    }
