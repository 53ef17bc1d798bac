"""Reciprocal rank fusion of ranked lists, with a tunable constant and per-list weights, and the
rule that raises the cross-lingual weight of a query its own language matches weakly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from retrieval.text import coverage


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


@dataclass(frozen=True)
class WeakMatch:
    """A cross-lingual weight per query: when the best lexical hit holds fewer than
    ``coverage`` of the query's terms (`retrieval.text.coverage`), the shopper's words are
    probably not the catalog's language, and the cross-lingual list weighs ``factor`` times the
    query's own-language lists together (lexical + semantic), if that is more than its
    configured weight. At factor 1 its first hit ranks beside a unit first in both of the
    others: the lists interleave, the other language does not replace the query's own. Chosen
    on dev queries (BENCHMARKS.md, issue 18 fourth round)."""

    coverage: float = 0.5
    factor: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.coverage <= 1:
            msg = f"the weak-match coverage must be between 0 and 1, got {self.coverage}"
            raise ValueError(msg)
        if self.factor < 0:
            msg = f"the weak-match factor must not be negative, got {self.factor}"
            raise ValueError(msg)

    def weights(
        self, query: str, best_lexical: str | None, weights: Mapping[str, float]
    ) -> tuple[Mapping[str, float], float | None]:
        """The fusion weights for ``query`` whose best lexical hit reads ``best_lexical``
        (None: no lexical hit), and the query's coverage by it (None: a query without terms).
        A list missing from ``weights`` weighs 1, as in `reciprocal_rank_fusion`."""
        share = coverage(query, best_lexical or "")
        current = weights.get("crosslingual", 1.0)
        if share is None or share >= self.coverage or current == 0:  # 0: off, it stays off
            return weights, share
        own = weights.get("lexical", 1.0) + weights.get("semantic", 1.0)
        return {**weights, "crosslingual": max(current, self.factor * own)}, share
