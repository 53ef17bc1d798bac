"""Negatives for synthetic queries, mined with the shop's own hybrid search.

For a query and its positive unit, hard negatives are drawn from the hybrid search's top
``depth`` (product units for product-search queries, passages of every product for Q&A
questions), random negatives from the whole catalog. A candidate is never a negative when it:

- belongs to the positive's product (a product's other passages may answer the question too);
- is a near-duplicate of the positive: the same text, or (product units) titles or (passages)
  texts whose word sets overlap by ``duplicate_overlap`` or more (Jaccard);
- contains every term of the query: it may well be relevant too ("sony headphones" for
  another pair of Sony headphones), so it is left out rather than taught as irrelevant. Price,
  stock and rating phrases do not count ("headphones under $350" is every pair of headphones to
  a re-ranker, which never sees prices); brands do (a product's text names its brand).

Sampling is deterministic: each query draws from a generator seeded with the seed, its text and
its positive.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from generation.constraints import parse_constraints
from indexer.units import product_units
from retrieval.schema import Product, Unit
from retrieval.search import Hit, HybridSearch
from retrieval.text import normalize, tokenize
from training.queries import SyntheticQuery

NegativeSource = Literal["hard", "random"]


@dataclass(frozen=True)
class Negative:
    """A unit that does not answer the query, and where it came from."""

    unit_id: str
    product_id: str
    text: str
    source: NegativeSource
    rank: int | None = None  # rank in the hybrid results (hard negatives)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


class NegativeMiner:
    """Mines hard negatives with ``search`` and random ones from ``products``' units.

    ``search`` must search an index that holds ``products`` (the positives' texts come from
    ``products``, built with the indexer's own `product_units`, so they are the texts the
    re-ranker sees at search time).
    """

    def __init__(
        self,
        search: HybridSearch,
        products: Mapping[str, Product],
        *,
        depth: int = 30,
        hard: int = 4,
        random_count: int = 2,
        seed: int = 42,
        duplicate_overlap: float = 0.9,
    ) -> None:
        if depth < 1 or hard < 0 or random_count < 0:
            msg = f"depth must be at least 1, counts at least 0: {depth}, {hard}, {random_count}"
            raise ValueError(msg)
        self.search = search
        self.products = products
        self.depth = depth
        self.hard = hard
        self.random_count = random_count
        self.seed = seed
        self.duplicate_overlap = duplicate_overlap
        self._units: dict[str, Unit] = {}
        self._product_pool: list[str] = []
        self._passage_pool: list[str] = []
        for product in products.values():
            for unit in product_units(product):
                self._units[unit.id] = unit
                pool = self._product_pool if unit.kind == "product" else self._passage_pool
                pool.append(unit.id)
        self._terms: dict[str, frozenset[str]] = {}

    def unit(self, unit_id: str) -> Unit:
        """A unit of the catalog by id (KeyError when unknown)."""
        return self._units[unit_id]

    def _terms_of(self, key: str, phrase: str) -> frozenset[str]:
        terms = self._terms.get(key)
        if terms is None:
            terms = self._terms[key] = frozenset(tokenize(phrase))
        return terms

    def is_duplicate(self, candidate: Unit, positive: Unit) -> bool:
        """Whether ``candidate`` is the positive's product or nearly the positive itself."""
        if candidate.product_id == positive.product_id or candidate.id == positive.id:
            return True
        if normalize(candidate.text).split() == normalize(positive.text).split():
            return True
        if positive.kind == "product" and candidate.kind == "product":
            a = self.products.get(candidate.product_id)
            b = self.products.get(positive.product_id)
            if a is not None and b is not None:
                overlap = _jaccard(
                    self._terms_of(f"title:{a.id}", a.title),
                    self._terms_of(f"title:{b.id}", b.title),
                )
                if overlap >= self.duplicate_overlap:
                    return True
        overlap = _jaccard(
            self._terms_of(candidate.id, candidate.text), self._terms_of(positive.id, positive.text)
        )
        return overlap >= self.duplicate_overlap

    def _eligible(self, candidate: Unit, positive: Unit, query_terms: frozenset[str]) -> bool:
        if self.is_duplicate(candidate, positive):
            return False
        return not (query_terms and query_terms <= self._terms_of(candidate.id, candidate.text))

    def _candidates(self, query: SyntheticQuery, positive: Unit) -> list[Hit]:
        if positive.kind == "product":
            result = self.search.search(query.text, size=self.depth, rerank=False)
            return [h.hit for h in result.hits]
        return self.search.passages(None, query.text, top_k=self.depth, rerank=False)

    def mine(self, query: SyntheticQuery) -> list[Negative]:
        """Up to ``hard`` hard and ``random_count`` random negatives for ``query``, hard
        negatives first, in the order the search ranked them."""
        positive = self._units[query.unit_id]
        rng = random.Random(f"{self.seed}:{query.unit_id}:{query.text}")
        query_terms = frozenset(tokenize(parse_constraints(query.text).text))
        eligible: list[tuple[int, Unit]] = []
        for rank, hit in enumerate(self._candidates(query, positive), start=1):
            unit = self._units.get(hit.unit_id) or Unit(
                hit.unit_id, hit.product_id, hit.kind, hit.text
            )
            if unit.text == hit.text and self._eligible(unit, positive, query_terms):
                eligible.append((rank, unit))
        picked = sorted(rng.sample(eligible, min(self.hard, len(eligible))), key=lambda p: p[0])
        negatives = [Negative(u.id, u.product_id, u.text, "hard", rank) for rank, u in picked]
        taken = {n.unit_id for n in negatives}
        pool = self._product_pool if positive.kind == "product" else self._passage_pool
        negatives.extend(self._random(rng, pool, positive, query_terms, taken))
        return negatives

    def _random(
        self,
        rng: random.Random,
        pool: list[str],
        positive: Unit,
        query_terms: frozenset[str],
        taken: set[str],
    ) -> Iterable[Negative]:
        found = 0
        for _ in range(self.random_count * 10):
            if found >= self.random_count or not pool:
                return
            unit = self._units[pool[rng.randrange(len(pool))]]
            if unit.id in taken or not self._eligible(unit, positive, query_terms):
                continue
            taken.add(unit.id)
            found += 1
            yield Negative(unit.id, unit.product_id, unit.text, "random")
