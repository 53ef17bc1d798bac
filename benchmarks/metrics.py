"""Ranking-quality and latency metrics: pure functions over ranked id lists and judgments.

Conventions shared by every function here:

- ``ranked`` is a list of ids, best first; only its first ``k`` count.
- ``gains`` maps an id to its graded gain; ids that are absent (unjudged) have gain 0.
- A per-query metric returns ``None`` when it is undefined for that query (no relevant item, so
  no ideal ranking): such queries are left out of the mean, never counted as 0 or 1. `mean`
  does that, and callers report how many queries were scored.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence


def dcg(gains_in_order: Sequence[float], k: int) -> float:
    """Discounted cumulative gain of the first ``k`` gains, with linear gains.

    ``sum(gain_i / log2(i + 1))`` for ranks ``i`` = 1..k, so rank 1 is undiscounted.
    """
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains_in_order[:k], 1))


def ndcg_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int = 10) -> float | None:
    """nDCG@k: DCG of ``ranked`` over the DCG of the ideal ranking of all judged gains.

    The ideal ranking sorts every gain in ``gains`` (not only the retrieved ones), so an item the
    system never returned still counts against it. A repeated id in ``ranked`` earns its gain
    only once. Returns ``None`` when no judged gain is positive (the ideal DCG is 0).
    """
    ideal = dcg(sorted((g for g in gains.values() if g > 0), reverse=True), k)
    if ideal <= 0:
        return None
    seen: set[str] = set()
    found = []
    for item in ranked[:k]:
        found.append(gains.get(item, 0.0) if item not in seen else 0.0)
        seen.add(item)
    return dcg(found, k) / ideal


def reciprocal_rank_at_k(
    ranked: Sequence[str], relevant: Collection[str], k: int = 10
) -> float | None:
    """1 / rank of the first relevant id within the first ``k``, 0 when none is there.

    Returns ``None`` when ``relevant`` is empty (nothing could be found). The mean over queries
    is MRR@k.
    """
    if not relevant:
        return None
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float | None:
    """Share of the relevant ids that appear within the first ``k``; ``None`` without any."""
    if not relevant:
        return None
    wanted = set(relevant)
    return len(wanted.intersection(ranked[:k])) / len(wanted)


def judged_share_at_k(ranked: Sequence[str], judged: Collection[str], k: int = 10) -> float | None:
    """Share of the first ``k`` results that carry a judgment; ``None`` for an empty list.

    Low values mean the query's scores are lower bounds: unjudged results count as irrelevant.
    """
    top = ranked[:k]
    if not top:
        return None
    return sum(1 for item in top if item in judged) / len(top)


def coverage(top_lists: Iterable[Sequence[str]], catalog_size: int, k: int = 10) -> float:
    """Share of the catalog that appears in at least one query's first ``k`` results.

    A system that shows the same few products to everyone scores low; 1.0 means every item was
    shown to some query. ``catalog_size`` of 0 gives 0.0.
    """
    if catalog_size <= 0:
        return 0.0
    shown: set[str] = set()
    for ranked in top_lists:
        shown.update(ranked[:k])
    return len(shown) / catalog_size


def distinct_values(values: Sequence[str | None], k: int = 10) -> int | None:
    """How many distinct non-empty values (brands, categories) the first ``k`` results have.

    Values are compared case-insensitively; ``None`` and blank values are ignored. Returns
    ``None`` when none of the first ``k`` results has a value, so data without the attribute
    reads as "n/a" rather than as 0 diversity.
    """
    present = {v.strip().casefold() for v in values[:k] if v is not None and v.strip()}
    return len(present) if present else None


def diversity(per_query_values: Iterable[Sequence[str | None]], k: int = 10) -> float | None:
    """Mean number of distinct values (e.g. brands) in each query's first ``k`` results.

    Queries whose results have no value at all are left out; ``None`` when no query has any
    (the data set does not carry the attribute).
    """
    return mean(distinct_values(values, k) for values in per_query_values)


def mean(values: Iterable[float | None]) -> float | None:
    """Arithmetic mean of the values that are not ``None``; ``None`` when there are none."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def count_defined(values: Iterable[float | None]) -> int:
    """How many of the values are not ``None`` (the number of queries a mean is over)."""
    return sum(1 for v in values if v is not None)


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank percentile: the smallest sample with at least ``q`` of them at or below.

    ``q`` is a fraction in (0, 1]; ``percentile(x, 0.5)`` is the lower median. With 20 samples
    p95 is the 19th smallest and p99 the largest.
    """
    if not samples:
        msg = "percentile of no samples"
        raise ValueError(msg)
    if not 0 < q <= 1:
        msg = f"q must be in (0, 1], got {q}"
        raise ValueError(msg)
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return ordered[rank - 1]


def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    """Median (the usual mean of the two middle samples), p95, p99 and max, rounded to 0.01."""
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {
        "median": round(median, 2),
        "p95": round(percentile(ordered, 0.95), 2),
        "p99": round(percentile(ordered, 0.99), 2),
        "max": round(ordered[-1], 2),
        "n": len(ordered),
    }
