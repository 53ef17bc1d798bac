"""What goes with a product (搭配): the products shoppers carted or bought with it, never the
same kind of product; where a product has no such history yet, the nearest products of the
categories its own category goes with.

Pairs come from events: when a shopper carts or buys a product, it is paired with each other
product they carted or bought within `ComplementsConfig.window_days` before (from their stored
events), and its category with each other category. Only counts are kept, never who.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from personalization.events import BUY_EVENTS, Event
from personalization.stores.base import ProfileStoreUnavailable
from recommendation.paging import check_page, page_of
from recommendation.stores.base import DAY_S, PairCounts, TrendingUnavailable
from retrieval.schema import Filters, Product, split_category
from retrieval.stores.base import DocumentStore, StoreUnavailable

logger = logging.getLogger(__name__)

History = Callable[[str], Sequence[Event]]  # user id -> their recent events (any order)


@dataclass(frozen=True)
class ComplementsConfig:
    """How pairs are counted and read."""

    window_days: float = 30.0  # two buys this far apart still go together
    history: int = 200  # a shopper's recent events read to pair a new one with
    per_category: int = 3  # products shown from each related category (the fallback)


@dataclass(frozen=True)
class Complement:
    """A product that goes with the anchor, and why."""

    product: Product
    score: float  # times carted or bought together (the fallback: the categories' count)
    reason: str


@dataclass(frozen=True)
class ComplementsPage:
    """A page of what goes with ``product``; ``source`` says where it came from."""

    product: Product
    items: list[Complement]
    page: int
    size: int
    source: str  # "together" (pairs of products), "categories" (the fallback) or "none"


def product_key(product_id: str) -> str:
    return f"p:{product_id}"


def category_key(product: Product) -> str | None:
    """The key of the product's own category (its full path, case-folded)."""
    levels = [level.casefold() for level in split_category(product.category)]
    return "c:" + " > ".join(levels) if levels else None


class Complements:
    """Counts what goes together and answers pages of complements."""

    def __init__(
        self,
        pairs: PairCounts,
        store: DocumentStore,
        config: ComplementsConfig | None = None,
    ) -> None:
        self.pairs = pairs
        self.store = store
        self.config = config or ComplementsConfig()

    def record(self, events: Sequence[Event], history: History) -> int:
        """Pair the newly applied cart and purchase events with each shopper's earlier ones;
        how many pairs were counted. The counts' store, the profiles or the catalog being down
        loses them (logged): the events themselves are recorded already."""
        new = [e for e in events if e.type in BUY_EVENTS and e.product_id is not None]
        if not new:
            return 0
        try:
            pairs = self._pairs(new, history)
            self.pairs.add(pairs)
        except (TrendingUnavailable, ProfileStoreUnavailable, StoreUnavailable) as exc:
            logger.warning("pairs not counted for %d events: %s", len(new), exc)
            return 0
        return len(pairs)

    def _pairs(self, new: Sequence[Event], history: History) -> dict[tuple[str, str], float]:
        window_s = self.config.window_days * DAY_S
        together: set[tuple[str, str]] = set()
        for user_id in sorted({e.user_id for e in new}):
            mine = _buys(e for e in new if e.user_id == user_id)
            new_ids = {event_id for event_id, _, _ in mine}
            earlier = [b for b in _buys(history(user_id)) if b[0] not in new_ids]
            for i, (_, product_id, at) in enumerate(mine):
                # the shopper's earlier buys, and the batch's own before this one
                for _, other, other_at in [*earlier, *mine[:i]]:
                    if other != product_id and abs(other_at - at) <= window_s:
                        together.add((min(product_id, other), max(product_id, other)))
        if not together:
            return {}
        ids = sorted({pid for pair in together for pid in pair})
        products = self.store.get_products(ids)
        counts: dict[tuple[str, str], float] = {}
        for a, b in sorted(together):
            counts[(product_key(a), product_key(b))] = 1.0
            ca = category_key(products[a]) if a in products else None
            cb = category_key(products[b]) if b in products else None
            if ca and cb and ca != cb:
                pair = (min(ca, cb), max(ca, cb))
                counts[pair] = counts.get(pair, 0.0) + 1.0
        return counts

    def page(
        self,
        product_id: str,
        *,
        filters: Filters | None = None,
        page: int = 1,
        size: int = 10,
    ) -> ComplementsPage | None:
        """What goes with the product (None: no such product), passing ``filters``; never a
        product of the product's own category. `TrendingUnavailable` when the counts' store
        is down."""
        check_page(page, size)
        anchor = self.store.get_product(product_id)
        if anchor is None:
            return None
        needed = page * size
        own = category_key(anchor)
        items = self._together(anchor, own, filters, needed)
        source = "together" if items else "none"
        if len(items) < needed and own is not None:
            seen = {i.product.id for i in items}
            more = self._by_category(anchor, own, filters, seen, needed - len(items))
            if more and not items:
                source = "categories"
            items += more
        return ComplementsPage(anchor, page_of(items, page, size), page, size, source)

    def _together(
        self, anchor: Product, own: str | None, filters: Filters | None, needed: int
    ) -> list[Complement]:
        partners = self.pairs.partners(product_key(anchor.id), 4 * needed + 20)
        ids = [key.removeprefix("p:") for key, _ in partners]
        products = self.store.get_products(ids)
        out = []
        for key, count in partners:
            other = products.get(key.removeprefix("p:"))
            if other is None or _same_kind(other, own) or not _passes(other, filters):
                continue
            times = "once" if count == 1 else f"{count:g} times"
            reason = f"carted or bought together with {anchor.title} {times}"
            out.append(Complement(other, count, reason))
        return out

    def _by_category(
        self, anchor: Product, own: str, filters: Filters | None, seen: set[str], wanted: int
    ) -> list[Complement]:
        """The anchor's nearest products in each category its category goes with, most
        related first, until ``wanted`` (one search per category)."""
        related = self.pairs.partners(own, 10)
        vector = self.store.product_vectors([anchor.id]).get(anchor.id)
        if not related or vector is None:
            return []
        out: list[Complement] = []
        base = filters or Filters()
        own_leaf = split_category(anchor.category)[-1]
        for key, count in related:
            if len(out) >= wanted:
                break
            category = key.removeprefix("c:")
            scoped = base.model_copy(update={"category": category})
            hits = self.store.semantic(
                vector, kinds=("product",), filters=scoped, top_k=self.config.per_category * 3
            )
            products = self.store.get_products([h.unit.product_id for h in hits])
            shown = 0
            for hit in hits:
                other = products.get(hit.unit.product_id)
                if other is None or other.id in seen or _same_kind(other, own):
                    continue
                leaf = split_category(other.category)[-1] if other.category else category
                reason = f"shoppers who buy {own_leaf} also buy {leaf}"
                out.append(Complement(other, count, reason))
                seen.add(other.id)
                shown += 1
                if shown == self.config.per_category:
                    break
        return out


def _buys(events: Iterable[Event]) -> list[tuple[str, str, float]]:
    """(event id, product id, time) of the cart and purchase events about a product."""
    return [
        (e.event_id, e.product_id, e.at)
        for e in events
        if e.type in BUY_EVENTS and e.product_id is not None
    ]


def _same_kind(product: Product, own: str | None) -> bool:
    return own is not None and category_key(product) == own


def _passes(product: Product, filters: Filters | None) -> bool:
    return filters is None or filters.matches(product)
