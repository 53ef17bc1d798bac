"""Reciprocal rank fusion of ranked lists, with a tunable constant and per-list weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def reciprocal_rank_fusion(
    ranked: Mapping[str, Sequence[str]],
    *,
    k: float = 60.0,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """Fuse ranked id lists into one list of ``(id, score)``, best first.

    Each list named ``name`` adds ``weights[name] / (k + rank)`` (rank from 1) to every id it
    holds. Ties go to the id with the better best rank, then to the earlier list, so the order
    never depends on hashing.
    """
    if k <= 0:
        msg = f"the RRF constant k must be positive, got {k}"
        raise ValueError(msg)
    weights = weights or {}
    scores: dict[str, float] = {}
    best: dict[str, tuple[int, int]] = {}
    for list_no, (name, ids) in enumerate(ranked.items()):
        weight = weights.get(name, 1.0)
        if weight < 0:
            msg = f"RRF weight of '{name}' must not be negative, got {weight}"
            raise ValueError(msg)
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            best[item] = min(best.get(item, (rank, list_no)), (rank, list_no))
    return sorted(scores.items(), key=lambda pair: (-pair[1], best[pair[0]], pair[0]))
