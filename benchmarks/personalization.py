"""Personalization on human-judged data: relevance kept, and a shopper's brand preference counts.

    python -m benchmarks.personalization [--data ../shared/datasets]
        [--embedder packaged:all-minilm-l6-v2] [--reranker none]
        [--weights 0.1,0.3,0.5,1.0] [--shoppers 300] [--history 3] [--min-brand-products 5]
        [--seed 0] [--ingest-events 5000] [--ingest-users 200] [--ingest-batch 100]
        [--redis-url redis://localhost:6379/0]
        [--embedding-cache bench-results/embedding-cache|none] [--no-progress]
        [--out bench-results/personalization.json]

The catalog and the judgments are CrowdFlower's (`benchmarks.datasets.load_crowdflower`, read
from ``--data``, never copied): graded gains 0..3 per query, relevant meaning gain >= 2.
CrowdFlower products have no brand and no price, hence:

- **The brand is inferred** (`infer_brands`): a title's first word, punctuation at its ends
  stripped, is the product's brand when at least ``--min-brand-products`` distinct titles start
  with it (compared case-insensitively, as profiles compare brands; shown in its most frequent
  spelling), when those are at least a quarter (`MIN_LEADING_SHARE`) of the distinct titles
  holding the word anywhere (a word mostly found inside titles describes, "LED", "Electric",
  "Coffee", or names what an accessory fits, "for Samsung Galaxy"; Samsung and Apple are lost
  as brands with it), and when it is not generic: not in `GENERIC_WORDS` (articles, colours,
  sizes, genders and ages, "new", "set", "pack", ...) and not starting with a digit (a number
  or a quantity such as "2-Pack"). Brands are one word: "Hamilton Beach" is ``Hamilton``,
  "Rachael Ray" ``Rachael``. The inference is rough: a franchise ("Teenage" Mutant Ninja
  Turtles) counts as a brand, and so does a generic word that starts many titles ("Room",
  "Urban").
- **Price bands cannot be simulated** (no prices): only brand shoppers are, and the profile's
  price part never takes part in a score.

The catalog, with the inferred brands set as `Product.brand`, is indexed by the project's
indexer (`benchmarks.relevance.index_products`) into an `EmbeddedStore` in a temporary folder.
A product's unit text then names its brand, so the index is not quite the relevance
benchmark's; document vectors are kept in ``--embedding-cache`` as there. Search is the
product's `HybridSearch` as the app builds it (`app.services.search_config`, the re-ranker of
``--reranker`` as SHOPGUIDE_RERANKER, default the app's), first page of 10.

Shoppers (`build_shoppers`). For each query q and each inferred brand B such that a product of
B is judged relevant to q (B's *preferred products* for q) and at least ``--history`` products
of B are judged relevant to other queries without being judged for q at all (the *history
pool*): one shopper, who viewed and then bought ``--history`` products of the pool (a seeded
choice), each purchase at a random time in the last 60 days and its view ten minutes before.
``--shoppers`` caps them with a seeded sample of the (q, B) pairs. The events go through the
product's `Personalization.record`, in batches of 100, into a `FileProfileStore` in a
temporary folder (`app.services.build_profiles`), so the product's own code builds every
profile. Each shopper also gets a control query: a seeded random query, other than q, with
judged relevant products of which none is B's.

For each weight of ``--weights`` (by default 0.1, 0.3, 0.5, 1.0 and the app's
SHOPGUIDE_PERSONALIZE_WEIGHT), a `PersonalConfig` as `app.services.personal_config` builds it
from the settings with that weight (depth, half-life and diversity stay the app's), and a
`Personalization` over that store. Per shopper and weight, measured:

- nDCG@10 of q's first page without personalization (``ranking(user, personalize=False)``: no
  policy, or diversity alone when the settings configure it; one search per query) and with it
  (``search(q, size=10, policy=ranking(user).policy)``), unjudged products at gain 0 as in
  `benchmarks.relevance`; the same on the control query. The goal is a change of at least
  ``-NDCG_TOLERANCE`` (a drop of at most 0.01), on targeted and on control queries.
- Where the preferred products are among the first ``depth`` results (those personalization
  may re-order; one below never moves), before (relevance order) and after, as the product's
  policy was given and returned them (`RecordingPolicy` keeps both lists and changes
  nothing): per shopper the best rank and the mean rank. Over the shoppers with a preferred
  product within that depth (*reachable*): the mean best rank before and after, the mean gain
  of the mean rank (places moved up), the shares whose best rank moved up or down, and the
  shares with the best rank in the top 3 before and after. On control queries: B's products on
  the first page, before and after (a preference should not flood unrelated queries).
- Latency added: the time of ``ranking(user)`` (the profile read and its decay) plus the
  search's ``timings_ms["policy"]`` (vectors fetched, scored, re-ordered), median and p95,
  beside the search's own ``total`` (retrieval and re-ranking, without the policy), over the
  targeted and control searches of that weight. Three searches warm up first, untimed.

Ingestion throughput (`ingest`): ``--ingest-events`` synthetic events (views, clicks, carts and
purchases of random catalog products, at random times in the last 60 days) of
``--ingest-users`` users, in batches of ``--ingest-batch``, through `Personalization.record`
into a fresh file store, and into Redis at ``--redis-url`` when given (users
``bench-personalization-<pid>-<n>``, erased afterwards): events/s and milliseconds per batch.

Prints a relevance table, a preference table, a latency table and an ingestion table; writes
JSON (``--out``) with the settings, the machine, the git state and one row per shopper.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from app.logs import configure_logging
from app.services import (
    build_embedder,
    build_profiles,
    build_reranker,
    configure_threads,
    personal_config,
    search_config,
)
from app.settings import Settings
from benchmarks import metrics
from benchmarks.datasets import Item, JudgedQuery, ProductSearchSet, load_crowdflower
from benchmarks.embedders import MemoEmbedder, add_embedding_cache
from benchmarks.relevance import (
    DEFAULT_DATA,
    _write,
    as_product,
    git_state,
    index_products,
    machine,
    positive_int,
)
from personalization.events import Event, EventType
from personalization.profile import fold
from personalization.service import Personalization
from personalization.stores.base import DAY_S, ProfileStore, ProfileStoreUnavailable
from retrieval import text as text_analysis
from retrieval.search import HybridSearch, ProductHit, ResultPolicy
from retrieval.stores.embedded import EmbeddedStore

logger = logging.getLogger("benchmarks.personalization")

DEFAULT_WEIGHTS = (0.1, 0.3, 0.5, 1.0)
NDCG_TOLERANCE = 0.01  # the goal: nDCG@10 drops by at most this much
PAGE = 10
HISTORY_DAYS = 60
VIEW_BEFORE_S = 600.0  # a shopper views a product ten minutes before buying it
WARM_UP_SEARCHES = 3
LOG_EVERY_S = 15.0
TOP = 3  # "in the top 3"
# A brand starts at least this share of the titles that hold it: a word mostly found inside
# titles describes ("LED", "Electric") or names what an accessory fits ("for Samsung Galaxy").
MIN_LEADING_SHARE = 0.25
INGEST_TYPES: tuple[EventType, ...] = ("view", "view", "view", "click", "click", "cart", "purchase")

# Words that start many titles without naming a brand (compared folded: NFKC, casefolded).
# fmt: off
GENERIC_WORDS = frozenset(
    {
        # articles and fillers
        "a", "an", "the", "new", "all", "for", "with", "and", "by", "of", "brand", "my", "no",
        # quantities
        "set", "pack", "kit", "lot", "pair", "box", "case", "bundle", "one", "two", "three",
        # colours
        "black", "white", "red", "blue", "green", "pink", "purple", "yellow", "orange", "brown",
        "grey", "gray", "silver", "gold", "clear", "beige", "navy",
        # sizes
        "small", "medium", "large", "mini", "xl", "xxl", "plus", "big", "little",
        # genders and ages
        "men's", "mens", "men", "women's", "womens", "women", "ladies", "ladies'", "girls",
        "girl's", "boys", "boy's", "kids", "kid's", "children's", "baby", "toddler", "infant",
        "unisex", "adult",
        # descriptions
        "classic", "vintage", "modern", "luxury", "premium", "deluxe", "genuine", "original",
        "authentic", "official", "universal", "replacement", "stainless", "portable",
        "wireless", "personalized",
    }
)
# fmt: on
_EDGE_PUNCTUATION = "\"'.,;:!?()[]{}<>|/\\*&+#~-–—"

T = TypeVar("T")


# -- the inferred brand ----------------------------------------------------------------------


def leading_token(title: str) -> str | None:
    """A title's first word, punctuation at its ends stripped, when it may name a brand: None
    for a generic word (`GENERIC_WORDS`), a word starting with a digit, or one without a
    letter."""
    words = title.split(maxsplit=1)
    if not words:
        return None
    token = words[0].strip(_EDGE_PUNCTUATION)
    if not token or token[0].isdigit() or not any(c.isalpha() for c in token):
        return None
    return None if fold(token) in GENERIC_WORDS else token


def infer_brands(
    items: Iterable[Item], min_products: int, min_share: float = MIN_LEADING_SHARE
) -> dict[str, str]:
    """Item id -> inferred brand: the title's `leading_token` when at least ``min_products``
    distinct titles start with it and those are at least ``min_share`` of the distinct titles
    that hold it as a word anywhere (case-insensitively); shown in its most frequent spelling
    (the first seen on a tie)."""
    tokens: dict[str, str] = {}
    starting: dict[str, dict[str, Counter[str]]] = {}  # folded token -> title -> spellings
    holding: Counter[str] = Counter()  # folded word -> distinct titles holding it
    seen: set[str] = set()
    for item in items:
        if item.title not in seen:
            seen.add(item.title)
            holding.update({fold(w.strip(_EDGE_PUNCTUATION)) for w in item.title.split()})
        token = leading_token(item.title)
        if token is None:
            continue
        tokens[item.id] = token
        starting.setdefault(fold(token), {}).setdefault(item.title, Counter())[token] += 1
    labels: dict[str, str] = {}
    for key, by_title in starting.items():
        if len(by_title) >= min_products and len(by_title) >= min_share * holding[key]:
            spellings: Counter[str] = Counter()
            for counts in by_title.values():
                spellings.update(counts.keys())  # once per distinct title
            labels[key] = spellings.most_common(1)[0][0]
    return {
        item_id: labels[fold(token)] for item_id, token in tokens.items() if fold(token) in labels
    }


# -- shoppers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shopper:
    """A shopper who prefers ``brand``: their query, B's products judged relevant to it, what
    they bought (each viewed first), and a control query (None when the data has none)."""

    user_id: str
    brand: str
    query: JudgedQuery
    preferred: tuple[str, ...]
    bought: tuple[str, ...]
    pool: int  # how many products the history was chosen from
    control: JudgedQuery | None


@dataclass(frozen=True)
class Shoppers:
    """The shoppers sampled, and how many (query, brand) pairs were eligible."""

    shoppers: list[Shopper]
    eligible: int


def build_shoppers(
    data: ProductSearchSet,
    brands: Mapping[str, str],
    *,
    history: int,
    limit: int,
    seed: int,
) -> Shoppers:
    """One shopper per eligible (query, brand) pair (see the module docstring), at most
    ``limit`` of them (a seeded sample), in the data's query order."""
    relevant_gain = data.relevant_gain
    # brand -> query id -> the brand's products judged relevant to it
    relevant: dict[str, dict[str, set[str]]] = {}
    for query in data.queries:
        for item_id in query.relevant(relevant_gain):
            brand = brands.get(item_id)
            if brand is not None:
                relevant.setdefault(brand, {}).setdefault(query.id, set()).add(item_id)
    pairs: list[tuple[JudgedQuery, str, tuple[str, ...], list[str]]] = []
    for query in data.queries:
        for brand in sorted(relevant):
            targets = relevant[brand].get(query.id)
            if not targets:
                continue
            others = set().union(*(ids for qid, ids in relevant[brand].items() if qid != query.id))
            pool = sorted(others - set(query.gains))
            if len(pool) >= history:
                pairs.append((query, brand, tuple(sorted(targets)), pool))
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not security
    chosen = sorted(rng.sample(range(len(pairs)), min(limit, len(pairs))))
    judged = [q for q in data.queries if any(g > 0 for g in q.gains.values())]
    shoppers = []
    for number, index in enumerate(chosen, start=1):
        query, brand, preferred, pool = pairs[index]
        controls = [q for q in judged if q.id != query.id and q.id not in relevant[brand]]
        shoppers.append(
            Shopper(
                user_id=f"shopper-{number:04d}",
                brand=brand,
                query=query,
                preferred=preferred,
                bought=tuple(rng.sample(pool, history)),
                pool=len(pool),
                control=rng.choice(controls) if controls else None,
            )
        )
    return Shoppers(shoppers, len(pairs))


def history_events(shopper: Shopper, now: float, rng: random.Random) -> list[Event]:
    """The shopper's history: each product bought at a random time in the last
    `HISTORY_DAYS` days (at least an hour ago), and viewed ten minutes before."""
    events = []
    for n, product_id in enumerate(shopper.bought):
        at = now - rng.uniform(3600.0, HISTORY_DAYS * DAY_S)
        user = shopper.user_id
        events.append(Event(f"{user}-view-{n}", user, "view", at - VIEW_BEFORE_S, product_id))
        events.append(Event(f"{user}-purchase-{n}", user, "purchase", at, product_id))
    return events


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def record_all(personalization: Personalization, events: Sequence[Event], batch: int) -> int:
    """Record ``events`` in batches; the number accepted. Fails if any event is refused."""
    accepted = 0
    for part in chunks(events, batch):
        recorded = personalization.record(part)
        if recorded.rejected:
            msg = f"events rejected: {recorded.rejected[:3]}"
            raise RuntimeError(msg)
        accepted += recorded.report.accepted
    return accepted


# -- searching -------------------------------------------------------------------------------


class RecordingPolicy:
    """The product's policy, unchanged, keeping what it was given (the head, in relevance
    order) and what it returned (keeping the lists costs no copy: it adds nothing measurable to
    ``timings_ms["policy"]``)."""

    def __init__(self, policy: ResultPolicy) -> None:
        self.policy = policy
        self.depth = policy.depth
        self.given: list[ProductHit] = []
        self.returned: list[ProductHit] = []

    def apply(self, hits: list[ProductHit], page_size: int) -> list[ProductHit]:
        """What the product's policy returns for ``hits``."""
        returned = self.policy.apply(hits, page_size)
        self.given, self.returned = hits, returned
        return returned


@dataclass(frozen=True)
class Searched:
    """One search: the page's ids, the head before and after the policy (empty without one),
    and the times in ms (``policy`` None without one)."""

    page: list[str]
    given: list[str]
    returned: list[str]
    ranking_ms: float
    search_ms: float
    policy_ms: float | None
    personalized: bool


def run_search(
    search: HybridSearch,
    personalization: Personalization,
    query: str,
    user_id: str | None,
    *,
    personalize: bool,
) -> Searched:
    """The first page of ``query`` for ``user_id`` as the API ranks it."""
    started = time.perf_counter()
    ranking = personalization.ranking(user_id, personalize=personalize)
    ranking_ms = (time.perf_counter() - started) * 1000
    recorder = RecordingPolicy(ranking.policy) if ranking.policy is not None else None
    result = search.search(query, size=PAGE, policy=recorder)
    return Searched(
        page=[h.product.id for h in result.hits],
        given=[h.product.id for h in recorder.given] if recorder else [],
        returned=[h.product.id for h in recorder.returned] if recorder else [],
        ranking_ms=round(ranking_ms, 3),
        search_ms=result.timings_ms["total"],
        policy_ms=result.timings_ms.get("policy"),
        personalized=ranking.personalized,
    )


def ranks(order: Sequence[str], targets: Collection[str], depth: int) -> dict[str, int]:
    """The 1-based rank of each of ``targets`` within the first ``depth`` of ``order``."""
    return {pid: rank for rank, pid in enumerate(order[:depth], start=1) if pid in targets}


def preference_row(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, Any]:
    """The preferred products' ranks before and after, their best and mean, and the gain."""
    common = [pid for pid in before if pid in after]  # a near-duplicate may have been dropped
    row: dict[str, Any] = {
        "ranks_before": dict(before),
        "ranks_after": dict(after),
        "best_before": min(before.values()) if before else None,
        "best_after": min(after.values()) if after else None,
        "mean_before": _mean([before[p] for p in common]),
        "mean_after": _mean([after[p] for p in common]),
    }
    row["mean_gain"] = _mean([before[p] - after[p] for p in common])
    return row


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Catalog:
    """The indexed catalog, its searches and the inferred brands."""

    data: ProductSearchSet
    brands: dict[str, str]  # item id -> brand
    store: EmbeddedStore
    search: HybridSearch
    summary: dict[str, Any] = field(default_factory=dict)


def _progress(items: Sequence[T], label: str, progress: bool) -> Iterator[T]:
    """``items`` with a bar on a terminal, else a log line every `LOG_EVERY_S`."""
    shown_bar = progress and sys.stderr.isatty()
    bar = tqdm(items, desc=label, unit=" shoppers", disable=not shown_bar)
    shown = time.perf_counter()
    for number, item in enumerate(bar, start=1):
        yield item
        now = time.perf_counter()
        if progress and not shown_bar and (now - shown >= LOG_EVERY_S or number == len(items)):
            shown = now
            logger.info("%s: %d of %d", label, number, len(items))
    bar.close()


def measure(
    catalog: Catalog,
    shoppers: Sequence[Shopper],
    personalizations: Mapping[str, Personalization],
    *,
    progress: bool,
) -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    """Every shopper's row (baseline, and per weight label), and the baseline search times."""
    search = catalog.search
    plain = next(iter(personalizations.values()))  # `ranking(None)`: the same for every weight
    queries = {s.query.id: s.query for s in shoppers}
    queries.update({s.control.id: s.control for s in shoppers if s.control is not None})
    for shopper in shoppers[:WARM_UP_SEARCHES]:  # first-call costs stay out of the timings
        run_search(search, plain, shopper.query.text, shopper.user_id, personalize=True)
    baseline = {
        qid: run_search(search, plain, query.text, None, personalize=False)
        for qid, query in queries.items()
    }
    baseline_ms = {"search": [b.search_ms for b in baseline.values()]}
    check = plain.config.brand_cap is None and plain.config.dedupe_similarity is None
    rows = []
    for shopper in _progress(shoppers, "personalized searches", progress):
        before_page = baseline[shopper.query.id].page
        gains = shopper.query.gains
        row: dict[str, Any] = {
            "user_id": shopper.user_id,
            "brand": shopper.brand,
            "query": shopper.query.text,
            "preferred": list(shopper.preferred),
            "bought": list(shopper.bought),
            "history_pool": shopper.pool,
            "control_query": shopper.control.text if shopper.control else None,
            "without": {
                "ndcg": _round(metrics.ndcg_at_k(before_page, gains, PAGE)),
                "control_ndcg": None,
                "control_brand_on_page": None,
            },
            "with": {},
        }
        if shopper.control is not None:
            control_page = baseline[shopper.control.id].page
            row["without"]["control_ndcg"] = _round(
                metrics.ndcg_at_k(control_page, shopper.control.gains, PAGE)
            )
            row["without"]["control_brand_on_page"] = _brand_count(catalog, control_page, shopper)
        for label, personalization in personalizations.items():
            depth = personalization.config.depth
            done = run_search(
                search, personalization, shopper.query.text, shopper.user_id, personalize=True
            )
            if check and done.personalized and done.given[:PAGE] != before_page:
                msg = f"{shopper.query.text!r}: the policy was given {done.given[:PAGE]}, the "
                msg += f"search without personalization showed {before_page}"
                raise RuntimeError(msg)
            before = ranks(done.given, shopper.preferred, depth)
            after = ranks(done.returned, shopper.preferred, depth)
            one: dict[str, Any] = {
                "personalized": done.personalized,
                "ndcg": _round(metrics.ndcg_at_k(done.page, gains, PAGE)),
                **preference_row(before, after),
                "ranking_ms": done.ranking_ms,
                "policy_ms": done.policy_ms,
                "search_ms": done.search_ms,
            }
            if shopper.control is not None:
                control = run_search(
                    search,
                    personalization,
                    shopper.control.text,
                    shopper.user_id,
                    personalize=True,
                )
                one["control_ndcg"] = _round(
                    metrics.ndcg_at_k(control.page, shopper.control.gains, PAGE)
                )
                one["control_brand_on_page"] = _brand_count(catalog, control.page, shopper)
                one["control_timings_ms"] = {
                    "ranking": control.ranking_ms,
                    "policy": control.policy_ms,
                    "search": control.search_ms,
                }
            row["with"][label] = one
        rows.append(row)
    return rows, baseline_ms


def _brand_count(catalog: Catalog, page: Sequence[str], shopper: Shopper) -> int:
    return sum(1 for pid in page if catalog.brands.get(pid) == shopper.brand)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def summarize(rows: Sequence[dict[str, Any]], label: str) -> dict[str, Any]:
    """One weight's means and shares over the shoppers (see the module docstring)."""
    withs = [(row["without"], row["with"][label]) for row in rows]
    targeted = _ndcg_summary([(w["ndcg"], p["ndcg"]) for w, p in withs])
    control = _ndcg_summary(
        [(w["control_ndcg"], p.get("control_ndcg")) for w, p in withs if "control_ndcg" in p]
    )
    reachable = [p for _, p in withs if p["best_before"] is not None]
    kept = [p for p in reachable if p["best_after"] is not None]
    n = len(reachable)

    def share(test: Callable[[dict[str, Any]], bool], among: Sequence[dict[str, Any]]) -> Any:
        return _round(sum(1 for p in among if test(p)) / len(among)) if among else None

    with_control = [(w, p) for w, p in withs if "control_brand_on_page" in p]
    timings = [p for _, p in withs]
    controls = [p["control_timings_ms"] for p in timings if "control_timings_ms" in p]
    ranking = [p["ranking_ms"] for p in timings] + [c["ranking"] for c in controls]
    policy = [p["policy_ms"] or 0.0 for p in timings] + [c["policy"] or 0.0 for c in controls]
    search = [p["search_ms"] for p in timings] + [c["search"] for c in controls]
    return {
        "shoppers": len(rows),
        "personalized": sum(1 for p in timings if p["personalized"]),
        "targeted": targeted,
        "control": control,
        "preference": {
            "reachable": n,
            "best_rank_before": _round(metrics.mean(p["best_before"] for p in kept)),
            "best_rank_after": _round(metrics.mean(p["best_after"] for p in kept)),
            "mean_rank_gain": _round(metrics.mean(p["mean_gain"] for p in reachable)),
            "moved_up": share(lambda p: p["best_after"] < p["best_before"], kept),
            "moved_down": share(lambda p: p["best_after"] > p["best_before"], kept),
            "top3_before": share(lambda p: p["best_before"] <= TOP, reachable),
            "top3_after": share(lambda p: (p["best_after"] or TOP + 1) <= TOP, reachable),
            "into_top3": share(
                lambda p: p["best_before"] > TOP and (p["best_after"] or TOP + 1) <= TOP,
                reachable,
            ),
        },
        "control_brand_on_page": {
            "before": _round(metrics.mean(w["control_brand_on_page"] for w, _ in with_control)),
            "after": _round(metrics.mean(p["control_brand_on_page"] for _, p in with_control)),
        },
        "latency_ms": {
            "ranking": metrics.latency_summary(ranking),
            "policy": metrics.latency_summary(policy),
            "added": metrics.latency_summary([r + p for r, p in zip(ranking, policy, strict=True)]),
            "search": metrics.latency_summary(search),
        },
    }


def _ndcg_summary(pairs: Sequence[tuple[float | None, float | None]]) -> dict[str, Any]:
    scored = [(a, b) for a, b in pairs if a is not None and b is not None]
    without = metrics.mean(a for a, _ in scored)
    with_ = metrics.mean(b for _, b in scored)
    change = None if without is None or with_ is None else with_ - without
    return {
        "n": len(scored),
        "without": _round(without),
        "with": _round(with_),
        "change": _round(change),
        "worse": sum(1 for a, b in scored if b < a - 1e-9),
        "better": sum(1 for a, b in scored if b > a + 1e-9),
        "goal_met": None if change is None else change >= -NDCG_TOLERANCE - 1e-9,
    }


# -- ingestion -------------------------------------------------------------------------------


def ingest(
    personalization: Personalization,
    product_ids: Sequence[str],
    *,
    events: int,
    users: int,
    batch: int,
    seed: int,
    user_prefix: str,
) -> dict[str, Any]:
    """Record ``events`` synthetic events of ``users`` users in batches of ``batch``; the
    throughput and the time per batch."""
    rng = random.Random(seed)  # noqa: S311 - reproducible events, not security
    now = time.time()
    made = [
        Event(
            event_id=f"ingest-{n}",
            user_id=f"{user_prefix}{rng.randrange(users):04d}",
            type=rng.choice(INGEST_TYPES),
            at=now - rng.uniform(0.0, HISTORY_DAYS * DAY_S),
            product_id=rng.choice(product_ids),
        )
        for n in range(events)
    ]
    batch_ms = []
    accepted = 0
    started = time.perf_counter()
    for part in chunks(made, batch):
        began = time.perf_counter()
        accepted += personalization.record(part).report.accepted
        batch_ms.append((time.perf_counter() - began) * 1000)
    seconds = time.perf_counter() - started
    return {
        "events": events,
        "users": users,
        "batch": batch,
        "accepted": accepted,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds, 1) if seconds > 0 else None,
        "batch_ms": metrics.latency_summary(batch_ms),
    }


def _ingest_all(
    settings: Settings, catalog: Catalog, args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    """Ingestion into a fresh file store, and into Redis when ``--redis-url`` is given."""
    product_ids = [item.id for item in catalog.data.items]
    options = {
        "events": args.ingest_events,
        "users": args.ingest_users,
        "batch": args.ingest_batch,
        "seed": args.seed,
    }
    out: dict[str, Any] = {}
    config = personal_config(settings)
    stores: dict[str, Callable[[], ProfileStore | None]] = {
        "file": lambda: build_profiles(
            settings.model_copy(update={"profiles": "file", "data_dir": folder / "ingest"})
        )
    }
    if args.redis_url:
        stores["redis"] = lambda: build_profiles(
            settings.model_copy(update={"profiles": "redis", "profiles_redis_url": args.redis_url})
        )
    for name, build in stores.items():
        prefix = f"bench-personalization-{os.getpid()}-" if name == "redis" else "ingest-"
        profiles = build()
        assert profiles is not None
        personalization = Personalization(profiles, catalog.store, config)
        logger.info("ingestion into the %s store: %d events", name, args.ingest_events)
        try:
            out[name] = ingest(personalization, product_ids, user_prefix=prefix, **options)
        except ProfileStoreUnavailable as exc:
            logger.warning("ingestion into %s failed: %s", name, exc)
            out[name] = {"error": str(exc)}
        finally:
            if name == "redis":
                for n in range(args.ingest_users):
                    try:
                        profiles.erase(f"{prefix}{n:04d}")
                    except ProfileStoreUnavailable:
                        break
            profiles.close()
    return out


# -- the command -----------------------------------------------------------------------------


def _weights(value: str) -> list[float]:
    try:
        weights = sorted({float(part) for part in value.split(",") if part.strip()})
    except ValueError:
        msg = f"expected weights such as 0.1,0.3,1.0, got '{value}'"
        raise argparse.ArgumentTypeError(msg) from None
    if not weights or weights[0] <= 0 or weights[-1] > 5:
        msg = f"weights must be in (0, 5], got '{value}'"
        raise argparse.ArgumentTypeError(msg)
    return weights


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.personalization",
        description=(__doc__ or "").splitlines()[0],
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="the shared datasets folder"
    )
    parser.add_argument(
        "--embedder",
        default="packaged:all-minilm-l6-v2",
        help="as SHOPGUIDE_EMBEDDER: packaged:<name>, a model folder or hub name, hashing-<dim>",
    )
    parser.add_argument(
        "--reranker", default=None, help="as SHOPGUIDE_RERANKER (default: the app's setting)"
    )
    parser.add_argument(
        "--weights",
        type=_weights,
        default=None,
        help="comma-separated personalization weights (default: 0.1,0.3,0.5,1.0 and the app's "
        "SHOPGUIDE_PERSONALIZE_WEIGHT)",
    )
    parser.add_argument("--shoppers", type=positive_int, default=300, help="at most this many")
    parser.add_argument(
        "--history", type=positive_int, default=3, help="products each shopper bought"
    )
    parser.add_argument(
        "--min-brand-products",
        type=positive_int,
        default=5,
        help="distinct titles a first word must start to count as a brand",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples and events")
    parser.add_argument("--ingest-events", type=positive_int, default=5000)
    parser.add_argument("--ingest-users", type=positive_int, default=200)
    parser.add_argument("--ingest-batch", type=positive_int, default=100)
    parser.add_argument(
        "--redis-url",
        default=None,
        help="also measure ingestion into this Redis (its users are erased afterwards)",
    )
    add_embedding_cache(parser)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-results/personalization.json"))
    return parser


def _catalog(settings: Settings, args: argparse.Namespace, folder: Path, progress: bool) -> Catalog:
    """CrowdFlower with inferred brands, indexed, and the product's search over it."""
    logger.info("crowdflower: loading from %s", args.data)
    data = load_crowdflower(args.data)
    brands = infer_brands(data.items, args.min_brand_products)
    items = [replace(item, brand=brands.get(item.id)) for item in data.items]
    data = replace(data, items=items, has_brand=True)
    embedder = build_embedder(settings)
    load_start = time.perf_counter()
    embedder.warm_up()
    model_load_s = time.perf_counter() - load_start
    memo = MemoEmbedder(embedder, cache_dir=args.embedding_cache)
    store = EmbeddedStore(folder / "index")
    report = index_products(data.name, [as_product(i) for i in items], store, memo, progress)
    memo.flush()
    # indexing ran with the libraries' threads, as `shopguide index` does; search as the API
    configure_threads(settings, serving=True)
    reranker = build_reranker(settings)
    if reranker is not None:
        reranker.warm_up()
    search = HybridSearch(store, embedder, reranker, search_config(settings))
    search.warm_up()
    by_brand = Counter(brands.values())
    summary = {
        "products": len(items),
        "queries": len(data.queries),
        "brands": len(by_brand),
        "products_with_brand": len(brands),
        "largest_brands": dict(by_brand.most_common(15)),
        "model_load_s": round(model_load_s, 2),
        "index_s": round(report.seconds, 2),
        "embedded": memo.embedded,
    }
    return Catalog(data, brands, store, search, summary)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success."""
    parser = _parser()
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {"embedder": args.embedder}
    if args.reranker is not None:
        overrides["reranker"] = args.reranker
    try:
        settings = Settings(**overrides)
    except ValueError as exc:
        parser.error(str(exc))
    weights = sorted(set(args.weights or DEFAULT_WEIGHTS) | {settings.personalize_weight})
    weights = [w for w in weights if w > 0]  # a zero app default is "personalization off"
    configure_logging("INFO", json_lines=False)
    started = time.perf_counter()
    progress = not args.no_progress
    text_analysis.warm_up()
    configs = {
        _label(w): personal_config(settings.model_copy(update={"personalize_weight": w}))
        for w in weights
    }
    first = next(iter(configs.values()))
    result: dict[str, Any] = {
        "benchmark": "personalization",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "git": git_state(),
        "settings": {
            "data": str(args.data),
            "dataset": "crowdflower",
            "embedder": settings.embedder,
            "reranker": settings.reranker,
            "weights": weights,
            "app_weight": settings.personalize_weight,
            "personal_configs": {label: asdict(c) for label, c in configs.items()},
            "depth": first.depth,
            "half_life_days": first.half_life_days,
            "brand_cap": first.brand_cap,
            "dedupe_similarity": first.dedupe_similarity,
            "page": PAGE,
            "shoppers": args.shoppers,
            "history": args.history,
            "history_days": HISTORY_DAYS,
            "min_brand_products": args.min_brand_products,
            "seed": args.seed,
            "ndcg_tolerance": NDCG_TOLERANCE,
            "brand": "inferred: a title's first word started by at least min_brand_products "
            "distinct titles, not generic (generic_words) and not starting with a digit",
            "generic_words": sorted(GENERIC_WORDS),
            "price": "not simulated: CrowdFlower has no prices, so only brand shoppers are",
            "embedding_cache": str(args.embedding_cache) if args.embedding_cache else None,
            "ingest": {
                "events": args.ingest_events,
                "users": args.ingest_users,
                "batch": args.ingest_batch,
                "redis": bool(args.redis_url),
            },
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="personalization-") as name:
        folder = Path(name)
        catalog = _catalog(settings, args, folder, progress)
        result["catalog"] = catalog.summary
        chosen = build_shoppers(
            catalog.data,
            catalog.brands,
            history=args.history,
            limit=args.shoppers,
            seed=args.seed,
        )
        shoppers = chosen.shoppers
        profiles = build_profiles(
            settings.model_copy(update={"profiles": "file", "data_dir": folder / "shoppers"})
        )
        assert profiles is not None
        personalizations = {
            label: Personalization(profiles, catalog.store, config)
            for label, config in configs.items()
        }
        rng = random.Random(args.seed)  # noqa: S311 - reproducible histories, not security
        now = time.time()
        events = [e for s in shoppers for e in history_events(s, now, rng)]
        recorded = record_all(next(iter(personalizations.values())), events, args.ingest_batch)
        result["shoppers"] = {
            "eligible_pairs": chosen.eligible,
            "sampled": len(shoppers),
            "queries": len({s.query.id for s in shoppers}),
            "brands": len({s.brand for s in shoppers}),
            "with_control": sum(1 for s in shoppers if s.control is not None),
            "history_events": recorded,
        }
        logger.info(
            "%d shoppers of %d eligible (query, brand) pairs; %d history events recorded",
            len(shoppers),
            chosen.eligible,
            recorded,
        )
        rows, baseline_ms = measure(catalog, shoppers, personalizations, progress=progress)
        result["weights"] = {label: summarize(rows, label) for label in personalizations}
        result["baseline_latency_ms"] = {
            k: metrics.latency_summary(v) for k, v in baseline_ms.items()
        }
        result["rows"] = rows
        _write(result, started, args.out)
        result["ingest"] = _ingest_all(settings, catalog, args, folder)
        profiles.close()
    _write(result, started, args.out)
    _print(result)
    sys.stdout.write(f"\nwritten to {args.out}\n")
    return 0


def _label(weight: float) -> str:
    return str(float(weight))


# -- printing --------------------------------------------------------------------------------


def _num(value: float | None, width: int, digits: int = 3) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _change(value: float | None, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>+{width}.3f}"


def _pct(value: float | None, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value * 100:>{width - 1}.0f}%"


def _stats(stats: Mapping[str, float]) -> str:
    return f"{stats['median']:.2f} / {stats['p95']:.2f}" if stats.get("n") else "-"


def _print(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    s = result["settings"]
    c = result["catalog"]
    sh = result["shoppers"]
    out(
        f"CrowdFlower: {c['products']} products, {c['queries']} queries; inferred brands "
        f"(first word of >= {s['min_brand_products']} titles, not generic): {c['brands']} "
        f"brands on {c['products_with_brand']} products. No prices: price bands are not "
        "simulated, only brand shoppers.\n"
        f"embedder {s['embedder']}, re-ranker {s['reranker']}, depth {s['depth']}, half-life "
        f"{s['half_life_days']} days, brand cap {s['brand_cap']}, dedupe "
        f"{s['dedupe_similarity']}; app weight {s['app_weight']} (*)\n"
        f"shoppers: {sh['sampled']} of {sh['eligible_pairs']} eligible (query, brand) pairs, "
        f"{sh['queries']} queries, {sh['brands']} brands, {s['history']} purchases each (each "
        f"viewed first) over {s['history_days']} days; {sh['with_control']} with a control "
        "query\n"
    )
    weights = result["weights"]

    def name(label: str) -> str:
        return label + (" *" if float(label) == s["app_weight"] else "")

    out(
        f"\nrelevance: mean nDCG@10 of the first page without / with personalization "
        f"(goal: change >= -{s['ndcg_tolerance']}); worse / better: shoppers whose nDCG fell "
        "/ rose\n"
    )
    cols = f"{'without':>8} {'with':>7} {'change':>7} {'worse':>5} {'better':>6} {'goal':>4}"
    out(f"{'':<8} {'targeted':^{len(cols)}}   {'control':^{len(cols)}}\n")
    out(f"{'weight':<8} {cols}   {cols}\n")
    for label, w in weights.items():
        cells = []
        for part in (w["targeted"], w["control"]):
            goal = "n/a" if part["goal_met"] is None else ("ok" if part["goal_met"] else "DROP")
            cells.append(
                f"{_num(part['without'], 8)} {_num(part['with'], 7)} "
                f"{_change(part['change'], 7)} {part['worse']:>5} {part['better']:>6} "
                f"{goal:>4}"
            )
        out(f"{name(label):<8} {cells[0]}   {cells[1]}\n")

    any_weight = next(iter(weights.values()))
    out(
        f"\npreferred products (the brand's products judged relevant to the query) within the "
        f"first {s['depth']} results: {any_weight['preference']['reachable']} of "
        f"{any_weight['shoppers']} shoppers reachable; best rank (mean), mean-rank gain "
        "(places up), shares of reachable shoppers; control: the brand's products on the "
        "control page\n"
    )
    out(
        f"{'weight':<8} {'best before':>11} {'after':>6} {'rank gain':>9} {'up':>5} "
        f"{'down':>5} {'top3 before':>11} {'after':>6} {'into top3':>9}   "
        f"{'control before':>14} {'after':>6}\n"
    )
    for label, w in weights.items():
        p = w["preference"]
        b = w["control_brand_on_page"]
        out(
            f"{name(label):<8} {_num(p['best_rank_before'], 11, 2)} "
            f"{_num(p['best_rank_after'], 6, 2)} {_num(p['mean_rank_gain'], 9, 2)} "
            f"{_pct(p['moved_up'], 5)} {_pct(p['moved_down'], 5)} "
            f"{_pct(p['top3_before'], 11)} {_pct(p['top3_after'], 6)} "
            f"{_pct(p['into_top3'], 9)}   {_num(b['before'], 14, 2)} {_num(b['after'], 6, 2)}\n"
        )

    out(
        "\nlatency, ms, median / p95 over the personalized searches (targeted and control): "
        "ranking(user) = profile read + decay; policy = the search's policy step; added = both; "
        "search = the search's own total\n"
    )
    out(f"{'weight':<8} {'ranking':>15} {'policy':>15} {'added':>15} {'search':>15}\n")
    for label, w in weights.items():
        lat = w["latency_ms"]
        out(
            f"{name(label):<8} {_stats(lat['ranking']):>15} {_stats(lat['policy']):>15} "
            f"{_stats(lat['added']):>15} {_stats(lat['search']):>15}\n"
        )
    base = result["baseline_latency_ms"]["search"]
    out(f"{'none':<8} {'-':>15} {'-':>15} {'-':>15} {_stats(base):>15}\n")

    ingest = result.get("ingest", {})
    if ingest:
        i = s["ingest"]
        out(
            f"\ningestion: {i['events']} synthetic events of {i['users']} users through "
            f"Personalization.record in batches of {i['batch']}\n"
        )
        out(f"{'store':<8} {'events/s':>10} {'batch ms':>17} {'accepted':>9}\n")
        for store, row in ingest.items():
            if "error" in row:
                out(f"{store:<8} failed: {row['error']}\n")
                continue
            out(
                f"{store:<8} {_num(row['events_per_s'], 10, 1)} "
                f"{_stats(row['batch_ms']):>17} {row['accepted']:>9}\n"
            )
    machine_info = result["machine"]
    out(
        f"\nwall time {result['wall_s']} s on {machine_info['cpu_count']} CPUs; load average "
        f"{machine_info.get('load_average_at_start', ['?'])[0]} at start, "
        f"{machine_info.get('load_average_at_end', ['?'])[0]} at end\n"
    )


if __name__ == "__main__":
    sys.exit(main())
