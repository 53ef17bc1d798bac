"""Answer quality: the product's `AnswerService` on questions, advice, constraints and load.

Judged product questions (ePQA), shopping advice (CrowdFlower), shoppers' constraints (the sample
catalog), and many shoppers asking at once.

    python -m benchmarks.answers [--data ../shared/datasets]
        [--datasets gate,epqa,crowdflower,sample[,concurrency]] [--limit-questions 60]
        [--all-unanswerable] [--limit-queries 40] [--seed 0]
        [--concurrency 1,4,8] [--questions-per-asker 3]
        [--dump-claims bench-results/claims.jsonl] [--judged judged.jsonl]
        [--embedder packaged:all-minilm-l6-v2]
        [--embedding-cache bench-results/embedding-cache|none] [--no-progress]
        [--out bench-results/answers.json]

The system under test is the product's own `generation.answers.AnswerService`, built by
`app.services.build_answers` from the settings (``SHOPGUIDE_LLM_*`` choose the generator, by
default the local llama.cpp Qwen2.5-Coder-1.5B; ``SHOPGUIDE_RERANKER``, ``SHOPGUIDE_ASK_SOURCES``,
``SHOPGUIDE_ASK_MIN_QUOTE_RELEVANCE``, ``SHOPGUIDE_LLM_CONCURRENCY``, ``SHOPGUIDE_LLM_QUEUE`` …
as in the API), over an `EmbeddedStore` in a temporary folder that the project's indexer fills
(once per catalog: the ePQA tasks share one index). The prompt cache is primed once, as the API
does at start-up. The API's query-embedding cache is left out (every question is new). Document
vectors are kept in ``--embedding-cache`` as the relevance benchmark keeps them.

Answers are "quote, then claim" (`generation.quotes`): each shipped claim cites one passage and
quotes it verbatim; a claim whose wording said more than its quote ships as the quote itself
("A review says “…”", a *quoted* claim); a claim that fails the checks (`generation.support`) is
dropped with a reason.

ePQA is split in two by a stable hash of the question id (`tune_half`): ``dev`` (the tune half:
settings such as the evidence gate's threshold are chosen on it) and ``test`` (the other half:
the reported split).

0. ``gate`` (no model): for every ePQA question, the evidence `AnswerService` computes (the
   best cosine similarity of the question to one of the statements it would give the model).
   The threshold of the evidence gate (``SHOPGUIDE_ASK_MIN_EVIDENCE``) with the best abstention
   F1 on the tune half (= dev) is reported with its scores on the test half, beside the
   configured threshold's and a curve of thresholds on the test half, and the AUC of evidence as
   a detector of the unanswerable questions.

1. ``epqa``: every ePQA page is indexed with `benchmarks.relevance.epqa_catalog` (each judged
   passage is one unit) and each sampled question goes to ``ask(product, question)``. Each split
   is sampled on its own (``--limit-questions`` per split, seeded), stratified: the unanswerable
   questions (no passage labelled above 0) keep their share of the split, at least one;
   ``--all-unanswerable`` asks every unanswerable question of the split and
   ``--limit-questions`` answerable ones instead. The model answers every question (the evidence
   gate is off for the run; it is scored from each row's evidence in ``rules``). Scores, per
   split:

   - questions, answered (a claim shipped), and refusals of answerable questions (their share;
     the share of those a passage labelled 2 answers; and the share of refusals whose closest
     passage, shown to the shopper as not settling it, is one labelled 2);
   - abstention as a detector of the unanswerable questions: precision, recall (and ``P@share``,
     the precision at the data set's share of unanswerable questions);
   - shipped claims; the share whose cited passage the question's ePQA label marks helpful or
     answering (label >= 1: a proxy of "supported and relevant") and answering (label 2). Only a
     question's own ten candidates are judged: a cited passage judged only for another question
     is *unjudged* (label None) and counts as neither, so these are lower bounds;
   - the quoted share of the shipped claims;
   - yes/no questions (`Answer.kind`): how many were answered and how many got a Yes or No
     (`Answer.verdict`);
   - why answers abstained (`Answer.abstain_reason`) and why claims were dropped
     (`Answer.dropped_reasons`), as histograms;
   - language match: the share of answered questions whose answer is in the question's language
     (outside the quotes “…”, which keep the source's words: no Chinese character in an answer to
     an English question; `generation.quotes.is_chinese` for a Chinese one);
   - time to the first checked claim (``first_token``, from the request's start, retrieval
     included) and total time, p50 and p95 in seconds;
   - the answer against the human references (ePQA writes one per helpful passage; the best one
     counts, as SQuAD does), citation markers removed: token F1 and ROUGE-L
     (`benchmarks.text_metrics`), over the answered answerable questions, and over all
     answerable questions with an abstention scored 0.

   Over both splits together: abstention by the model alone, by the evidence gate alone at the
   configured threshold, and by both (the gate first, then the model, as the API runs).

   ``--dump-claims PATH`` writes one JSON line per claim, shipped or dropped (the question, the
   answer, the claim as shipped or as the model wrote it, its quote, why it was dropped, the
   cited passage's text and ePQA label, the reference answer) to judge by reading;
   ``--judged PATH`` reads such lines back with a ``judgement`` (one of `JUDGEMENTS`) and
   reports, per split, the counts and the share supported of the shipped claims, and the
   checker's precision (of the judged shipped claims, the share supported) and recall (of the
   judged claims that were supported, shipped or dropped, the share shipped); and the same for
   the claims of this run it matches (same question id and claim text). Both files hold ePQA
   text: they must stay out of the repository (a path inside it is refused unless under
   ``bench-results/`` or ``var/``, which git ignores).

2. ``crowdflower``: ``advise(query)`` for ``--limit-queries`` seeded queries over the whole
   CrowdFlower catalog. Scores the share of the recommended (cited) products that the query's
   raters graded 3 or 4 (gain >= 2; an unjudged product counts as not relevant, and the count
   of unjudged cited products is reported), the same share over every product the model was
   given (what retrieval alone offered), the abstention rate, the claims shipped and dropped,
   and the language match. CrowdFlower products have no price, brand, stock or rating, hence:

3. ``sample``: ``advise`` on the project's sample catalog (``data/sample_catalog.jsonl``) with a
   fixed list of English and Chinese shopping questions that state constraints
   (`SAMPLE_QUESTIONS`, each with the constraints the shopper meant). Constraint satisfaction is
   the share of cited products that meet every constraint `parse_constraints` applied (the
   answer's filters), checked on the product's own catalog fields by `violations`,
   independently of the store's filtering; the same share against the constraints the shopper
   meant; the questions with a constraint the parser missed (or read that was not meant); and
   cited products priced in a currency other than the one the shopper named (no currency is
   converted).

4. ``concurrency`` (not run unless named): ``--concurrency`` levels (default 1,4,8) of askers at
   once, each asking ``--questions-per-asker`` ePQA questions through one `AnswerService` built
   as the API builds it (the configured evidence gate, ``SHOPGUIDE_LLM_CONCURRENCY`` answers at
   once, ``SHOPGUIDE_LLM_QUEUE`` waiting); see `benchmarks.concurrency`. Per level: requests,
   answered, refused busy (with each ``retry_after_s`` and the time to the refusal), timeouts,
   first token and total p50/p95 of the answered (seconds), answers per minute, and wall time.

Prints one table per task and writes JSON (machine, git state, settings, per-question rows) to
``--out``, after each task too. A question whose generation fails is kept as a row with its
error and left out of the scores.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import random
import re
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from app.logs import configure_logging
from app.services import (
    build_answers,
    build_embedder,
    build_llm,
    build_reranker,
    configure_threads,
    search_config,
)
from app.settings import Settings
from benchmarks import concurrency, metrics
from benchmarks.datasets import (
    JudgedQuery,
    PageQASet,
    ProductSearchSet,
    Question,
    load_crowdflower,
    load_epqa,
)
from benchmarks.embedders import MemoEmbedder, add_embedding_cache
from benchmarks.relevance import (
    EpqaCatalog,
    _write,
    add_data_options,
    as_product,
    epqa_catalog,
    git_state,
    index_products,
    machine,
    positive_int,
)
from benchmarks.text_metrics import best, rouge_l, token_f1
from generation.answers import Answer, AnswerService
from generation.evidence import evidence
from generation.llm.base import LLM, GenerationError
from generation.quotes import CITATION_RE, is_chinese
from indexer.indexer import IndexReport
from indexer.reader import Row, read_catalog
from retrieval import text as text_analysis
from retrieval.embedders.base import Embedder
from retrieval.rankers.base import Reranker
from retrieval.schema import Filters, Product
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.embedded import EmbeddedStore
from retrieval.text import has_cjk

logger = logging.getLogger("benchmarks.answers")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CATALOG = ROOT / "data" / "sample_catalog.jsonl"
DATASETS = ("gate", "epqa", "crowdflower", "sample", "concurrency")
DEFAULT_DATASETS = ("gate", "epqa", "crowdflower", "sample")
SPLITS = ("dev", "test")
REPORTED_SPLIT = "test"
# Where files holding data-set text may go inside the repository (git ignores them).
PRIVATE_FOLDERS = ("bench-results", "var")
JUDGEMENTS = ("supported", "contradicted", "not_in_source", "not_an_answer")
RELEVANT_GAIN = 2.0  # CrowdFlower grades 3 and 4
LOG_EVERY_S = 15.0
LATENCY = ("first_token", "total")
TIMINGS = ("retrieval", "first_token", "model_first_token", "generation", "total")

T = TypeVar("T")


# -- the constraint questions -----------------------------------------------------------------


@dataclass(frozen=True)
class ShoppingQuestion:
    """A shopping question, the constraints its shopper meant, and the currency they named."""

    id: str
    text: str
    expected: Filters
    currency: str | None = None


SAMPLE_QUESTIONS: tuple[ShoppingQuestion, ...] = (
    ShoppingQuestion("s01", "headphones under $100", Filters(price_max=100), "USD"),
    ShoppingQuestion(
        "s02", "noise cancelling headphones, not Sony", Filters(exclude_brands=["Sony"])
    ),
    ShoppingQuestion("s03", "in stock kettles rated 4+", Filters(in_stock=True, min_rating=4)),
    ShoppingQuestion(
        "s04",
        "running shoes rated 4.5 stars and up, in stock",
        Filters(in_stock=True, min_rating=4.5),
    ),
    ShoppingQuestion(
        "s05", "a laptop between $500 and $1000", Filters(price_min=500, price_max=1000), "USD"
    ),
    ShoppingQuestion(
        "s06",
        "coffee maker under $200 with at least 4 stars",
        Filters(price_max=200, min_rating=4),
        "USD",
    ),
    ShoppingQuestion("s07", "Apple or Beats earbuds", Filters(brands=["Apple", "Beats"])),
    ShoppingQuestion(
        "s08",
        "a tent for two people under $600, except Coleman",
        Filters(price_max=600, exclude_brands=["Coleman"]),
        "USD",
    ),
    ShoppingQuestion(
        "s09", "a phone for no more than five hundred dollars", Filters(price_max=500), "USD"
    ),
    ShoppingQuestion("s10", "100元以下的耳机", Filters(price_max=100), "CNY"),
    ShoppingQuestion("s11", "不要华为的降噪耳机", Filters(exclude_brands=["华为"])),
    ShoppingQuestion(
        "s12", "有货的电饭煲，200元以内", Filters(in_stock=True, price_max=200), "CNY"
    ),
    ShoppingQuestion("s13", "小米耳机 4星以上", Filters(brands=["小米"], min_rating=4)),
    ShoppingQuestion("s14", "跑鞋 预算三百元", Filters(price_max=300), "CNY"),
    ShoppingQuestion("s15", "300元以下的跑鞋", Filters(price_max=300), "CNY"),
    ShoppingQuestion("s16", "headphones, 4.5 stars minimum", Filters(min_rating=4.5)),
    ShoppingQuestion("s17", "降噪耳机 500块以内", Filters(price_max=500), "CNY"),
    ShoppingQuestion(
        "s18",
        "running shoes below 150 dollars that are available now",
        Filters(price_max=150, in_stock=True),
        "USD",
    ),
)

# The constraints `parse_constraints` can set (it never sets a category or product ids).
CONSTRAINTS = ("price_min", "price_max", "brands", "exclude_brands", "in_stock", "min_rating")


def violations(product: Product, constraints: Filters) -> list[str]:
    """The constraints of `CONSTRAINTS` that ``product`` breaks, checked on its own fields.

    A constraint on a field the product lacks (no price, no rating) is broken. This is the
    benchmark's own reading, not the store's filter (`Filters.matches`), so a filter that let a
    product through by mistake shows here.
    """
    broken: list[str] = []
    price, rating = product.price, product.rating
    if constraints.price_min is not None and (price is None or price < constraints.price_min):
        broken.append("price_min")
    if constraints.price_max is not None and (price is None or price > constraints.price_max):
        broken.append("price_max")
    brand = (product.brand or "").casefold()
    if constraints.brands is not None and brand not in _folded(constraints.brands):
        broken.append("brands")
    if constraints.exclude_brands is not None and brand in _folded(constraints.exclude_brands):
        broken.append("exclude_brands")
    if constraints.in_stock is not None and product.in_stock is not constraints.in_stock:
        broken.append("in_stock")
    if constraints.min_rating is not None and (rating is None or rating < constraints.min_rating):
        broken.append("min_rating")
    return broken


def _folded(names: Iterable[str]) -> set[str]:
    return {name.casefold() for name in names}


def _constraint(filters: Filters, name: str) -> Any:
    value = getattr(filters, name)
    return _folded(value) if isinstance(value, list) else value


def missed_constraints(expected: Filters, applied: Filters) -> list[str]:
    """The constraints the shopper meant that were not applied as meant."""
    return [
        name
        for name in CONSTRAINTS
        if getattr(expected, name) is not None
        and _constraint(applied, name) != _constraint(expected, name)
    ]


def unexpected_constraints(expected: Filters, applied: Filters) -> list[str]:
    """The constraints applied that the shopper did not state."""
    return [
        name
        for name in CONSTRAINTS
        if getattr(expected, name) is None and getattr(applied, name) is not None
    ]


def _set_constraints(filters: Filters) -> dict[str, Any]:
    return {
        name: getattr(filters, name) for name in CONSTRAINTS if getattr(filters, name) is not None
    }


# -- samples ----------------------------------------------------------------------------------


def answerable(question: Question) -> bool:
    """Whether some passage of the question is labelled above 0 (ePQA's "answerable")."""
    return any(label > 0 for label in question.labels.values())


def sample_questions(
    questions: Sequence[Question], limit: int, seed: int, *, all_unanswerable: bool = False
) -> tuple[list[Question], dict[str, Any]]:
    """A seeded sample of ``limit`` questions in which the unanswerable ones keep their share of
    the data set (rounded, at least one), in the data set's order, and how it was drawn. With
    ``all_unanswerable``: every unanswerable question and ``limit`` answerable ones."""
    groups = {
        "unanswerable": [i for i, q in enumerate(questions) if not answerable(q)],
        "answerable": [i for i, q in enumerate(questions) if answerable(q)],
    }
    total, unanswerable = len(questions), len(groups["unanswerable"])
    if all_unanswerable:
        rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not security
        answerable_part = rng.sample(groups["answerable"], min(limit, len(groups["answerable"])))
        chosen = sorted(groups["unanswerable"] + answerable_part)
        method = f"every unanswerable question and a seeded sample of {limit} answerable ones"
    elif limit >= total:
        chosen = list(range(total))
        method = "all questions"
    else:
        share = round(limit * unanswerable / total) if total else 0
        if unanswerable and limit > 1:
            share = max(share, 1)
        share = min(share, unanswerable, limit)
        rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not security
        chosen = sorted(
            rng.sample(groups["unanswerable"], share)
            + rng.sample(groups["answerable"], min(limit - share, len(groups["answerable"])))
        )
        method = (
            "stratified seeded sample: the unanswerable questions keep their share of the data "
            "set (rounded, at least one)"
        )
    picked = [questions[i] for i in chosen]
    return picked, {
        "method": method,
        "seed": seed,
        "questions": len(picked),
        "unanswerable": sum(1 for q in picked if not answerable(q)),
        "data_set_questions": total,
        "data_set_unanswerable": unanswerable,
    }


def sample_queries(queries: Sequence[JudgedQuery], limit: int, seed: int) -> list[JudgedQuery]:
    """A seeded sample of ``limit`` queries, in the data set's order."""
    if limit >= len(queries):
        return list(queries)
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not security
    return [queries[i] for i in sorted(rng.sample(range(len(queries)), limit))]


# -- the system under test --------------------------------------------------------------------


@dataclass
class Options:
    """Everything a run needs, built once from the command line and the settings."""

    settings: Settings
    embedder: Embedder
    reranker: Reranker | None
    config: SearchConfig
    llm: LLM
    limit_questions: int  # per ePQA split
    limit_queries: int
    seed: int
    progress: bool
    all_unanswerable: bool = False
    embedding_cache: Path | None = None
    concurrency_levels: tuple[int, ...] = concurrency.DEFAULT_LEVELS
    questions_per_asker: int = concurrency.DEFAULT_PER_ASKER
    dump_claims: Path | None = None
    splits: tuple[str, ...] = SPLITS
    prime_s: float | None = None  # the first service's warm-up (and priming); None before
    # each catalog's store and index report, indexed once per run
    stores: dict[str, tuple[EmbeddedStore, dict[str, Any]]] = field(default_factory=dict)


def _index(
    name: str, products: list[Product], options: Options, folder: Path
) -> tuple[EmbeddedStore, dict[str, Any]]:
    """A store holding ``products``, indexed by the project's indexer (once per run: a second
    task over the same catalog gets the same store, its report marked ``reused``)."""
    if name in options.stores:
        store, report = options.stores[name]
        return store, {**report, "reused": True}
    embedder = MemoEmbedder(options.embedder, cache_dir=options.embedding_cache)
    store = EmbeddedStore(folder / name)
    indexed: IndexReport = index_products(name, products, store, embedder, options.progress)
    embedder.flush()
    summary = {
        "seconds": round(indexed.seconds, 2),
        "products": indexed.indexed,
        "units": indexed.units,
        "embedded": indexed.embedded,
        "computed": embedder.embedded,
    }
    options.stores[name] = (store, summary)
    return store, summary


def answer_service(store: EmbeddedStore, options: Options, *, gated: bool = False) -> AnswerService:
    """The product's answer service over ``store``, as `build_services` makes it; the first one
    primes the prompt cache as the API does at start-up. Not ``gated``: the evidence gate is
    off (the model answers every question; the gate is scored from each row's evidence)."""
    settings = options.settings
    search = HybridSearch(store, options.embedder, options.reranker, options.config)
    if not gated:
        settings = settings.model_copy(update={"ask_min_evidence": None})
    service = build_answers(settings, search, options.llm)
    search.warm_up()
    if options.prime_s is None:
        started = time.perf_counter()
        service.warm_up(prime=settings.llm_prime and settings.llm_backend == "llama-cpp")
        options.prime_s = round(time.perf_counter() - started, 2)
    return service


def _answer_all(
    label: str,
    items: Sequence[T],
    answer: Callable[[T], Answer],
    row: Callable[[T, Answer], dict[str, Any]],
    running: Callable[[list[dict[str, Any]]], str],
    *,
    item_id: Callable[[T], str],
    progress: bool,
) -> tuple[list[dict[str, Any]], float]:
    """Each item's row (or its error), and the seconds taken. Progress shows as a bar on a
    terminal, else as a log line (item i of N and ``running`` means) every `LOG_EVERY_S`."""
    rows: list[dict[str, Any]] = []
    bar_shown = progress and sys.stderr.isatty()
    bar = tqdm(items, desc=label, unit=" questions", disable=not bar_shown)
    started = shown = time.perf_counter()
    for number, item in enumerate(bar, start=1):
        try:
            rows.append(row(item, answer(item)))
        except GenerationError as exc:
            logger.warning("%s: %s failed: %s", label, item_id(item), exc)
            rows.append({"id": item_id(item), "error": str(exc)})
        now = time.perf_counter()
        if bar_shown:
            bar.set_postfix_str(running(rows), refresh=False)
        elif now - shown >= LOG_EVERY_S or number in (1, len(items)):
            shown = now
            logger.info("%s: %d of %d, %s", label, number, len(items), running(rows))
    bar.close()
    return rows, time.perf_counter() - started


def _ok(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if "error" not in r]


def _plain(text: str) -> str:
    """The answer's text without its citation markers (the references have none)."""
    return CITATION_RE.sub(" ", text)


def _timings(answer: Answer) -> dict[str, float]:
    return {k: answer.timings_ms[k] for k in TIMINGS if k in answer.timings_ms}


def _latency(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        stage: metrics.latency_summary(
            [r["timings_ms"][stage] for r in _ok(rows) if stage in r["timings_ms"]]
        )
        for stage in LATENCY
    }


def _latency_s(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """First token and total time of the rows, p50 and p95 in seconds."""
    out: dict[str, dict[str, float]] = {}
    for stage, stats in _latency(rows).items():
        out[stage] = (
            {
                "p50": round(stats["median"] / 1000, 3),
                "p95": round(stats["p95"] / 1000, 3),
                "n": stats["n"],
            }
            if stats.get("n")
            else {"n": 0}
        )
    return out


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _histogram(values: Iterable[str | None]) -> dict[str, int]:
    return dict(sorted(Counter(v for v in values if v).items()))


def _seconds_median(rows: list[dict[str, Any]], stage: str) -> str:
    values = [r["timings_ms"][stage] for r in _ok(rows) if stage in r["timings_ms"]]
    return f"{metrics.latency_summary(values)['median'] / 1000:.1f} s" if values else "-"


# -- claims -----------------------------------------------------------------------------------


_QUOTED_TEXT = re.compile(r"“[^”]*”")


def language_match(question: str, text: str) -> bool:
    """Whether ``text`` is in the language of ``question``, outside its quotes “…” (which keep
    the source's own words) and citation markers: for an English question no Chinese
    character, for a Chinese one Chinese (`generation.quotes.is_chinese`)."""
    own = CITATION_RE.sub(" ", _QUOTED_TEXT.sub(" ", text))
    if has_cjk(question):
        return is_chinese(own) if own.strip(" .。:：") else is_chinese(text)
    return not has_cjk(own)


def _claim_sources(answer: Answer) -> Iterator[dict[str, Any]]:
    """Each shipped claim's text, quote, cited source id (None: cites no source given), and
    whether it is its quote itself (the model's wording said more: `Supported.quoted`), with
    then the model's words and why they were not kept."""
    by_number = {s.number: s for s in answer.sources}
    for claim in answer.claims:
        source = by_number.get(claim.sources[0]) if claim.sources else None
        yield {
            "text": claim.text,
            "quote": claim.quote or "",
            "source_id": source.source_id if source else None,
            "quoted": claim.quoted,
            "model_text": claim.model_text,
            "reworded": claim.reworded,
        }


def _dropped_claims(answer: Answer) -> Iterator[dict[str, Any]]:
    """Each dropped claim that was a claim (the model's line parsed): its text as the model
    wrote it, quote, cited source id, and why it was dropped."""
    by_number = {s.number: s for s in answer.sources}
    for rejected in answer.dropped:
        if rejected.claim is None:
            continue
        source = by_number.get(rejected.claim.source)
        yield {
            "text": rejected.claim.text,
            "quote": rejected.claim.quote,
            "source_id": source.source_id if source else None,
            "reason": rejected.reason,
            "detail": rejected.detail,
        }


# -- ePQA: questions about one product --------------------------------------------------------


def split_of(question_id: str) -> str:
    """The ePQA split of a question: "dev" (the tune half) or "test"."""
    return "dev" if tune_half(str(question_id)) else "test"


def _epqa_row(
    question: Question, answer: Answer, catalog: EpqaCatalog, split: str
) -> dict[str, Any]:
    def label(unit_id: str | None) -> int | None:
        """The question's label of a passage; None when it is not one of its candidates."""
        text = catalog.unit_text.get(unit_id or "")
        return None if text is None else question.labels.get(text)

    cited = [s.source_id for s in answer.cited]
    scored = answerable(question) and not answer.abstained and bool(question.answers)
    plain = _plain(answer.text)
    return {
        "id": question.id,
        "split": split,
        "product_id": question.product_id,
        "question": question.text,
        "kind": answer.kind,
        "answerable": answerable(question),
        # 2: a passage answers it; 1: passages only help (the reference often "not sure")
        "best_label": max(question.labels.values(), default=0),
        # an abstention's closest passage: its label (None: none shown, or not a candidate)
        "closest_label": label(answer.closest[0].source_id) if answer.closest else None,
        "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason,
        "verdict": answer.verdict,
        "evidence": None if answer.evidence is None else round(answer.evidence, 4),
        "answer": answer.text,
        "language_match": language_match(question.text, answer.text),
        "claims": [
            {**claim, "cited_label": label(claim["source_id"])} for claim in _claim_sources(answer)
        ],
        "dropped_claims": answer.dropped_claims,
        "dropped_reasons": list(answer.dropped_reasons),
        "dropped": [
            {**dropped, "cited_label": label(dropped["source_id"])}
            for dropped in _dropped_claims(answer)
        ],
        "reference": question.answer,
        "references": len(question.answers),
        "sources": [s.source_id for s in answer.sources],
        "cited": cited,
        "cited_labels": [label(uid) for uid in cited],
        "f1": _round(best(token_f1, plain, question.answers)) if scored else None,
        "rouge_l": _round(best(rouge_l, plain, question.answers)) if scored else None,
        "timings_ms": _timings(answer),
    }


def epqa_scores(rows: list[dict[str, Any]], prevalence: float | None = None) -> dict[str, Any]:
    """The ePQA scores of the rows of one split (errors left out); see the module docstring.
    ``prevalence``: the data set's share of unanswerable questions, for ``P@share``."""
    ok = _ok(rows)
    answerable_rows = [r for r in ok if r["answerable"]]
    answered = [r for r in ok if not r["abstained"]]
    scored = [r for r in answerable_rows if r["f1"] is not None]
    claims = [c for r in ok for c in r["claims"]]
    labels = [c["cited_label"] for c in claims]
    yes_no = [r for r in ok if r["kind"] == "yes_no"]
    yes_no_answered = [r for r in yes_no if not r["abstained"]]
    refused = sum(1 for r in answerable_rows if r["abstained"])
    answered_on_page = [r for r in answerable_rows if r.get("best_label") == 2]
    refused_on_page = sum(1 for r in answered_on_page if r["abstained"])
    # a refusal that still shows the shopper a passage that answers (labelled 2)
    offered = sum(1 for r in answerable_rows if r["abstained"] and r.get("closest_label") == 2)
    matched = sum(1 for r in answered if r["language_match"])
    supported = sum(1 for x in labels if x is not None and x >= 1)
    answering = sum(1 for x in labels if x == 2)
    quoted = sum(1 for c in claims if c["quoted"])

    def all_answerable(key: str) -> float | None:
        # An abstention (or an answer to a question without a reference) scores 0.
        return metrics.mean(r[key] or 0.0 for r in answerable_rows)

    return {
        "questions": len(ok),
        "errors": len(rows) - len(ok),
        "unanswerable": len(ok) - len(answerable_rows),
        "answered": len(answered),
        "refused_answerable": {
            "refused": refused,
            "answerable": len(answerable_rows),
            "share": _ratio(refused, len(answerable_rows)),
            # of those that a passage answers (labelled 2), not only helps with
            "answered_on_page": {
                "refused": refused_on_page,
                "questions": len(answered_on_page),
                "share": _ratio(refused_on_page, len(answered_on_page)),
            },
            "offered_answering_passage": {
                "refused": offered,
                "share": _ratio(offered, refused),
            },
        },
        "abstention": detector_scores([(r["abstained"], r["answerable"]) for r in ok], prevalence),
        "claims": {
            "shipped": len(claims),
            "per_answer": _ratio(len(claims), len(answered)),
            "label_1_or_2": supported,
            "label_2": answering,
            "unjudged": sum(1 for x in labels if x is None),
            "label_1_or_2_share": _ratio(supported, len(claims)),
            "label_2_share": _ratio(answering, len(claims)),
            "quoted": quoted,
            "quoted_share": _ratio(quoted, len(claims)),
            "dropped": sum(r["dropped_claims"] for r in ok),
        },
        "yes_no": {
            "questions": len(yes_no),
            "answered": len(yes_no_answered),
            "verdict": sum(1 for r in yes_no_answered if r["verdict"]),
            "yes": sum(1 for r in yes_no_answered if r["verdict"] == "yes"),
            "no": sum(1 for r in yes_no_answered if r["verdict"] == "no"),
        },
        "kinds": _histogram(r["kind"] for r in ok),
        "abstain_reasons": _histogram(r["abstain_reason"] for r in ok),
        "dropped_reasons": _histogram(x for r in ok for x in r["dropped_reasons"]),
        "language_match": {
            "answered": len(answered),
            "matched": matched,
            "share": _ratio(matched, len(answered)),
        },
        "latency_s": _latency_s(ok),
        "answer": {
            "answered": {
                "n": len(scored),
                "f1": _round(metrics.mean(r["f1"] for r in scored)),
                "rouge_l": _round(metrics.mean(r["rouge_l"] for r in scored)),
            },
            "all_answerable": {
                "n": len(answerable_rows),
                "f1": _round(all_answerable("f1")),
                "rouge_l": _round(all_answerable("rouge_l")),
            },
        },
    }


# -- abstention rules -------------------------------------------------------------------------


def tune_half(question_id: str) -> bool:
    """Whether a question is in the half of ePQA the evidence gate is tuned on (a stable hash
    of its id); the other half scores it."""
    return hashlib.sha256(question_id.encode()).digest()[0] % 2 == 0


def detector_scores(
    flags: Sequence[tuple[bool, bool]], prevalence: float | None = None
) -> dict[str, Any]:
    """ "Cannot answer" as a detector of the unanswerable questions, from (abstained,
    answerable) pairs: precision, recall, F1 and the share of answerable questions abstained
    on; with ``prevalence`` (the data set's share of unanswerable questions), also the precision
    a sample with that share would have (for a sample that over-represents them)."""
    unanswerable = [a for a, ok in flags if not ok]
    answerable_flags = [a for a, ok in flags if ok]
    caught = sum(unanswerable)
    abstained = sum(a for a, _ in flags)
    precision = _ratio(caught, abstained)
    recall = _ratio(caught, len(unanswerable))
    rate = _ratio(sum(answerable_flags), len(answerable_flags))
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else None
    )
    out: dict[str, Any] = {
        "abstained": abstained,
        "unanswerable": len(unanswerable),
        "true_positives": caught,
        "precision": precision,
        "recall": recall,
        "f1": _round(f1),
        "rate_on_answerable": rate,
    }
    if prevalence is not None:
        out["precision_at_data_set_share"] = _round(
            _ratio(recall * prevalence, recall * prevalence + rate * (1 - prevalence))
            if recall is not None and rate is not None
            else None
        )
    return out


def weak(evidence: float | None, threshold: float | None) -> bool:
    """Whether the evidence gate abstains (as `AnswerService` with ``ask_min_evidence``)."""
    return threshold is not None and evidence is not None and evidence < threshold


def best_threshold(points: Sequence[tuple[float | None, bool]]) -> float | None:
    """The gate threshold with the best abstention F1 on (evidence, answerable) points: a
    midpoint between two observed evidence values (the lower one on a tie)."""
    values = sorted({e for e, _ in points if e is not None})
    best: tuple[float, float] | None = None
    for low, high in itertools.pairwise(values):
        threshold = round((low + high) / 2, 4)
        f1 = detector_scores([(weak(e, threshold), ok) for e, ok in points])["f1"] or 0.0
        if best is None or f1 > best[0]:
            best = (f1, threshold)
    return None if best is None else best[1]


def auc(points: Sequence[tuple[float | None, bool]]) -> float | None:
    """The chance that an unanswerable question's evidence is below an answerable one's (ties
    count half): how well evidence separates them, whatever the threshold."""
    low = [e for e, ok in points if not ok and e is not None]
    high = [e for e, ok in points if ok and e is not None]
    if not low or not high:
        return None
    wins = sum((u < a) + 0.5 * (u == a) for u in low for a in high)
    return _round(wins / (len(low) * len(high)))


def rule_scores(
    rows: list[dict[str, Any]], threshold: float | None, prevalence: float | None
) -> dict[str, dict[str, Any]]:
    """Abstention by the model alone, by the evidence gate alone at ``threshold``, and by both
    (the gate first, then the model: as `AnswerService` runs with ``ask_min_evidence``), with
    the answer scores of "both" over every answerable question (an abstention scores 0)."""
    ok = _ok(rows)
    gate = [weak(r["evidence"], threshold) for r in ok]
    rules = {
        "model": [(r["abstained"], r["answerable"]) for r in ok],
        "gate": [(g, r["answerable"]) for g, r in zip(gate, ok, strict=True)],
        "both": [(g or r["abstained"], r["answerable"]) for g, r in zip(gate, ok, strict=True)],
    }
    out = {name: detector_scores(flags, prevalence) for name, flags in rules.items()}
    kept = [r for g, r in zip(gate, ok, strict=True) if r["answerable"] and not g]
    n = sum(1 for r in ok if r["answerable"])
    for key in ("f1", "rouge_l"):
        out["both"][f"answer_{key}_all_answerable"] = _round(
            sum(r[key] or 0.0 for r in kept) / n if n else None
        )
    out["both"]["threshold"] = threshold
    return out


# -- ePQA: claims to judge by reading ---------------------------------------------------------


def claim_records(
    rows: list[dict[str, Any]], questions: dict[str, Question], catalog: EpqaCatalog
) -> Iterator[dict[str, Any]]:
    """One record per claim of the rows, with what a reader needs to judge it: the shipped
    claims (``shipped`` true) and the dropped ones as the model wrote them (``shipped`` false,
    with ``reason``), so that a judged file measures the checker both ways."""
    for row in _ok(rows):
        question = questions[row["id"]]
        claims = [{**c, "shipped": True} for c in row["claims"]]
        claims += [{**c, "shipped": False, "quoted": False} for c in row.get("dropped", [])]
        for claim in claims:
            yield {
                "id": row["id"],
                "split": row["split"],
                "question": row["question"],
                "kind": row["kind"],
                "answer": row["answer"],
                "verdict": row["verdict"],
                "shipped": claim["shipped"],
                "reason": claim.get("reason"),
                "detail": claim.get("detail"),
                "claim": claim["text"],
                "quote": claim["quote"],
                "quoted": claim["quoted"],
                # a claim shown as its quote: the model's words, and why they were not kept
                "model_text": claim.get("model_text", ""),
                "reworded": claim.get("reworded", ""),
                "source_id": claim["source_id"],
                "passage": catalog.unit_text.get(claim["source_id"] or ""),
                "label": claim["cited_label"],
                "reference": question.answer,
                "references": list(question.answers),
            }


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """``records`` as JSON lines; how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_judged(path: Path) -> list[dict[str, Any]]:
    """The judgements of a JSON-lines file (``id``, ``claim``, ``judgement``, and ``shipped``,
    true when absent; other fields are ignored); a line that lacks one of the first three, or
    judges outside `JUDGEMENTS`, is an error."""
    judged = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            msg = f"{path}:{number}: not JSON: {exc}"
            raise ValueError(msg) from exc
        if not isinstance(record, dict) or not {"id", "claim", "judgement"} <= set(record):
            msg = f"{path}:{number}: need the fields id, claim and judgement"
            raise ValueError(msg)
        if record["judgement"] not in JUDGEMENTS:
            msg = f"{path}:{number}: judgement {record['judgement']!r} is not one of {JUDGEMENTS}"
            raise ValueError(msg)
        judged.append(
            {
                "id": str(record["id"]),
                "claim": str(record["claim"]),
                "judgement": record["judgement"],
                "shipped": record.get("shipped", True) is not False,
            }
        )
    return judged


def _judgement_counts(judgements: Sequence[str]) -> dict[str, Any]:
    counts = Counter(judgements)
    return {
        "judged": len(judgements),
        "counts": {j: counts.get(j, 0) for j in JUDGEMENTS},
        "supported_share": _ratio(counts.get("supported", 0), len(judgements)),
    }


def checker_scores(shipped: Sequence[str], dropped: Sequence[str]) -> dict[str, Any]:
    """The judgements of shipped and of dropped claims, and the checker's precision (of the
    shipped, the share supported) and recall (of the supported, the share shipped)."""
    kept = shipped.count("supported")
    lost = dropped.count("supported")
    return {
        **_judgement_counts(shipped),
        "dropped": _judgement_counts(dropped),
        "checker_precision": _ratio(kept, len(shipped)),
        "checker_recall": _ratio(kept, kept + lost),
    }


def judged_scores(
    judged: Sequence[dict[str, Any]], rows: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """`checker_scores` over the file and per split; with ``rows`` (an ePQA run), over this
    run's claims that a judgement matches (same question id and claim text; the last
    judgement of a claim counts)."""

    def scores(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return checker_scores(
            [j["judgement"] for j in items if j["shipped"]],
            [j["judgement"] for j in items if not j["shipped"]],
        )

    out: dict[str, Any] = {
        **scores(judged),
        "by_split": {
            split: scores([j for j in judged if split_of(j["id"]) == split]) for split in SPLITS
        },
    }
    if rows is not None:
        by_claim = {(j["id"], j["claim"].strip()): j["judgement"] for j in judged}
        shipped = [(r["id"], c["text"].strip()) for r in _ok(rows) for c in r["claims"]]
        dropped = [(r["id"], c["text"].strip()) for r in _ok(rows) for c in r.get("dropped", [])]
        found = [by_claim[key] for key in shipped if key in by_claim]
        found_dropped = [by_claim[key] for key in dropped if key in by_claim]
        out["this_run"] = {
            "claims": len(shipped),
            "unjudged": len(shipped) - len(found),
            "dropped_claims": len(dropped),
            "dropped_unjudged": len(dropped) - len(found_dropped),
            **checker_scores(found, found_dropped),
        }
    return out


# -- ePQA: the run ----------------------------------------------------------------------------


def _epqa_running(rows: list[dict[str, Any]]) -> str:
    scores = epqa_scores(rows)
    share = scores["claims"]["label_1_or_2_share"]
    refused = scores["refused_answerable"]["share"]
    return (
        f"answered {scores['answered']} of {scores['questions']}, refused answerable "
        f"{'-' if refused is None else f'{refused:.2f}'}, claims {scores['claims']['shipped']} "
        f"({'-' if share is None else f'{share:.2f}'} label >= 1), "
        f"first token {_seconds_median(rows, 'first_token')} median"
    )


def _epqa_samples(
    data: PageQASet, options: Options
) -> tuple[list[tuple[str, Question]], dict[str, dict[str, Any]]]:
    """Each split's seeded, stratified sample, as (split, question) in the data set's order,
    and how each was drawn."""
    picked: list[tuple[str, Question]] = []
    sampling = {}
    for split in options.splits:
        questions, how = sample_questions(
            [q for q in data.questions if split_of(q.id) == split],
            options.limit_questions,
            options.seed,
            all_unanswerable=options.all_unanswerable,
        )
        sampling[split] = how
        picked += [(split, q) for q in questions]
    order = {q.id: i for i, q in enumerate(data.questions)}
    picked.sort(key=lambda item: order[item[1].id])
    return picked, sampling


def _epqa(data: PageQASet, options: Options, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    catalog = epqa_catalog(data)
    store, index = _index(data.name, catalog.products, options, folder)
    picked, sampling = _epqa_samples(data, options)
    # The model answers every question; the evidence gate is scored from each row's evidence.
    service = answer_service(store, options)
    rows, seconds = _answer_all(
        "epqa ask",
        picked,
        lambda item: service.ask(item[1].product_id, item[1].text),
        lambda item, a: _epqa_row(item[1], a, catalog, item[0]),
        _epqa_running,
        item_id=lambda item: item[1].id,
        progress=options.progress,
    )
    for (split, _), row in zip(picked, rows, strict=True):
        row.setdefault("split", split)  # a failed question's row too
    prevalence = {
        split: how["data_set_unanswerable"] / how["data_set_questions"]
        if how["data_set_questions"]
        else None
        for split, how in sampling.items()
    }
    everything = sum(h["data_set_questions"] for h in sampling.values())
    overall = (
        sum(h["data_set_unanswerable"] for h in sampling.values()) / everything
        if everything
        else None
    )
    result: dict[str, Any] = {
        "task": "ask(product, question) for each sampled ePQA question over its product's page",
        "catalog": {
            "products": len(catalog.products),
            "passages": len(catalog.unit_text),
            "shuffle_seed": data.seed,
        },
        "index": index,
        "splits": {
            "dev": "tune_half(id): settings are chosen on it",
            "test": "the other questions: the reported split",
        },
        "reported_split": REPORTED_SPLIT,
        "sampling": sampling,
        "scores": {
            split: epqa_scores([r for r in rows if r["split"] == split], prevalence[split])
            for split in options.splits
        },
        "rules": rule_scores(rows, options.settings.ask_min_evidence, overall),
        "latency_ms": _latency(rows),
        "rows": rows,
        "answer_seconds": round(seconds, 2),
    }
    if options.dump_claims is not None:
        questions = {q.id: q for _, q in picked}
        written = write_jsonl(options.dump_claims, claim_records(rows, questions, catalog))
        result["dumped_claims"] = {"path": str(options.dump_claims), "claims": written}
        logger.info("epqa: wrote %d claims to %s", written, options.dump_claims)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


# -- ePQA: many askers at once ----------------------------------------------------------------


def _concurrency(data: PageQASet, options: Options, folder: Path) -> dict[str, Any]:
    """``options.concurrency_levels`` levels of askers at once through one gated `AnswerService`."""
    started = time.perf_counter()
    catalog = epqa_catalog(data)
    store, index = _index(data.name, catalog.products, options, folder)
    service = answer_service(store, options, gated=True)
    needed = max(options.concurrency_levels) * options.questions_per_asker
    rng = random.Random(options.seed)  # noqa: S311 - a reproducible sample, not security
    chosen = rng.sample(list(data.questions), min(needed, len(data.questions)))
    pool = [concurrency.Ask(q.id, q.product_id, q.text) for q in chosen]

    def report(level: dict[str, Any]) -> None:
        logger.info(
            "concurrency: %d askers: %d requests, %d answered, %d refused busy, %d timeouts, "
            "first token p50 %s s, %.1f s",
            level["askers"],
            level["requests"],
            level["answered"],
            level["refused_busy"],
            level["timeouts"],
            level["first_token_s"].get("p50", "-"),
            level["wall_s"],
        )

    settings = options.settings
    levels = concurrency.run_levels(
        service, pool, options.concurrency_levels, options.questions_per_asker, report=report
    )
    return {
        "task": "askers at once, each asking ePQA questions in turn through one AnswerService "
        "(the configured evidence gate and admission control); a refused asker moves on",
        "catalog": {"products": len(catalog.products), "passages": len(catalog.unit_text)},
        "index": index,
        "llm_concurrency": settings.llm_concurrency,
        "llm_queue": settings.llm_queue,
        "ask_min_evidence": settings.ask_min_evidence,
        "questions_per_asker": options.questions_per_asker,
        "question_pool": [q.id for q in pool],
        "levels": levels,
        "seconds": round(time.perf_counter() - started, 2),
    }


# -- ePQA: the evidence gate -------------------------------------------------------------------


GATE_CURVE = tuple(round(0.05 * i, 2) for i in range(2, 13))  # 0.10 … 0.60


def _gate(data: PageQASet, options: Options, folder: Path) -> dict[str, Any]:
    """The evidence of every ePQA question (no model): the gate's threshold tuned on one half,
    scored on the other, and the configured threshold's scores."""
    started = time.perf_counter()
    catalog = epqa_catalog(data)
    store, index = _index(data.name, catalog.products, options, folder)
    search = HybridSearch(store, options.embedder, options.reranker, options.config)
    search.warm_up()
    rows = []
    bar = tqdm(
        data.questions, desc="epqa evidence", unit=" questions", disable=not options.progress
    )
    for question in bar:
        hits = search.passages(
            question.product_id, question.text, top_k=options.settings.ask_sources
        )
        best = evidence(question.text, hits, options.embedder)
        rows.append(
            {
                "id": question.id,
                "answerable": answerable(question),
                "evidence": None if best is None else round(best, 4),
                "tune": tune_half(question.id),
            }
        )
    halves = {
        "tune": [(r["evidence"], r["answerable"]) for r in rows if r["tune"]],
        "test": [(r["evidence"], r["answerable"]) for r in rows if not r["tune"]],
    }
    prevalence = sum(1 for r in rows if not r["answerable"]) / len(rows)
    tuned = best_threshold(halves["tune"])
    configured = options.settings.ask_min_evidence

    def at(threshold: float | None, half: str) -> dict[str, Any]:
        return detector_scores([(weak(e, threshold), ok) for e, ok in halves[half]], prevalence)

    return {
        "task": "the best passage's similarity to each ePQA question, retrieval only",
        "index": index,
        "questions": len(rows),
        "unanswerable": sum(1 for r in rows if not r["answerable"]),
        "halves": {h: len(p) for h, p in halves.items()},
        "auc": {h: auc(p) for h, p in halves.items()},
        "tuned_threshold": tuned,
        "tuned": {h: at(tuned, h) for h in halves},
        "configured_threshold": configured,
        "configured": {h: at(configured, h) for h in halves},
        "curve": [{"threshold": t, **at(t, "test")} for t in GATE_CURVE],
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 2),
    }


# -- CrowdFlower: shopping advice -------------------------------------------------------------


def _advice_claims(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"text": c["text"], "quote": c["quote"], "product_id": c["source_id"]}
        for c in _claim_sources(answer)
    ]


def claim_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The claims shipped and dropped, why they were dropped, why answers abstained, and the
    share of answers in the question's language."""
    answered = [r for r in rows if not r["abstained"]]
    matched = sum(1 for r in answered if r["language_match"])
    return {
        "claims": sum(len(r["claims"]) for r in rows),
        "dropped_claims": sum(r["dropped_claims"] for r in rows),
        "dropped_reasons": _histogram(x for r in rows for x in r["dropped_reasons"]),
        "abstain_reasons": _histogram(r["abstain_reason"] for r in rows),
        "language_match": _ratio(matched, len(answered)),
    }


def _advice_row(query: JudgedQuery, answer: Answer) -> dict[str, Any]:
    def gains(ids: list[str]) -> list[float | None]:
        return [query.gains.get(i) for i in ids]  # None: unjudged

    cited = [s.product_id for s in answer.cited]
    sources = [s.product_id for s in answer.sources]
    return {
        "id": query.id,
        "query": query.text,
        "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason,
        "answer": answer.text,
        "language_match": language_match(query.text, answer.text),
        "claims": _advice_claims(answer),
        "dropped_claims": answer.dropped_claims,
        "dropped_reasons": list(answer.dropped_reasons),
        "sources": sources,
        "source_gains": gains(sources),
        "cited": cited,
        "cited_gains": gains(cited),
        "timings_ms": _timings(answer),
    }


def _relevant(gain: float | None) -> bool:
    return gain is not None and gain >= RELEVANT_GAIN


def advice_scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The share of cited (and of given) products graded 3 or 4, and the abstention rate."""
    ok = _ok(rows)
    cited = [g for r in ok for g in r["cited_gains"]]
    given = [g for r in ok for g in r["source_gains"]]
    return {
        "queries": len(ok),
        "errors": len(rows) - len(ok),
        "cited": len(cited),
        "cited_relevant": sum(1 for g in cited if _relevant(g)),
        "cited_unjudged": sum(1 for g in cited if g is None),
        "relevant_share_cited": _ratio(sum(1 for g in cited if _relevant(g)), len(cited)),
        "sources": len(given),
        "relevant_share_sources": _ratio(sum(1 for g in given if _relevant(g)), len(given)),
        "abstention_rate": _ratio(sum(1 for r in ok if r["abstained"]), len(ok)),
        "claims": claim_summary(ok),
    }


def _advice_running(rows: list[dict[str, Any]]) -> str:
    scores = advice_scores(rows)
    share = scores["relevant_share_cited"]
    return (
        f"relevant cited {'-' if share is None else f'{share:.3f}'} of {scores['cited']}, "
        f"abstention {scores['abstention_rate']}, "
        f"first token {_seconds_median(rows, 'first_token')} median"
    )


def _crowdflower(data: ProductSearchSet, options: Options, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    products = [as_product(item) for item in data.items]
    store, index = _index(data.name, products, options, folder)
    queries = sample_queries(data.queries, options.limit_queries, options.seed)
    service = answer_service(store, options)
    rows, seconds = _answer_all(
        "crowdflower advise",
        queries,
        lambda q: service.advise(q.text),
        _advice_row,
        _advice_running,
        item_id=lambda q: q.id,
        progress=options.progress,
    )
    return {
        "task": "advise(query) over the whole CrowdFlower catalog; relevant: grade 3 or 4 "
        "(gain >= 2), unjudged products count as not relevant",
        "catalog": {"products": len(products)},
        "index": index,
        "sampling": {
            "method": "seeded sample" if len(queries) < len(data.queries) else "all queries",
            "seed": options.seed,
            "queries": len(queries),
            "data_set_queries": len(data.queries),
        },
        "scores": advice_scores(rows),
        "latency_ms": _latency(rows),
        "rows": rows,
        "answer_seconds": round(seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
    }


# -- the sample catalog: constraints ----------------------------------------------------------


def read_products(path: Path) -> list[Product]:
    """The valid products of a catalog file (bad rows logged and skipped)."""
    products = []
    for row in read_catalog(path):
        if isinstance(row, Row):
            products.append(row.product)
        else:
            logger.warning("skipped %s", row)
    return products


def _sample_row(
    question: ShoppingQuestion, answer: Answer, products: dict[str, Product]
) -> dict[str, Any]:
    cited = [s.product_id for s in answer.cited]
    currency = question.currency
    return {
        "id": question.id,
        "question": question.text,
        "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason,
        "answer": answer.text,
        "language_match": language_match(question.text, answer.text),
        "claims": _advice_claims(answer),
        "dropped_claims": answer.dropped_claims,
        "dropped_reasons": list(answer.dropped_reasons),
        "applied": list(answer.applied_constraints),
        "filters": _set_constraints(answer.filters),
        "expected": _set_constraints(question.expected),
        "missed": missed_constraints(question.expected, answer.filters),
        "unexpected": unexpected_constraints(question.expected, answer.filters),
        "sources": [s.product_id for s in answer.sources],
        "cited": cited,
        "violations": {pid: violations(products[pid], answer.filters) for pid in cited},
        "expected_violations": {pid: violations(products[pid], question.expected) for pid in cited},
        "other_currency": [
            pid for pid in cited if currency is not None and products[pid].currency != currency
        ],
        "timings_ms": _timings(answer),
    }


def constraint_scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Constraint satisfaction of the cited products, and what the parser missed."""
    ok = _ok(rows)
    cited = sum(len(r["cited"]) for r in ok)

    def satisfied(key: str) -> int:
        return sum(1 for r in ok for broken in r[key].values() if not broken)

    missed = [r["id"] for r in ok if r["missed"]]
    unexpected = [r["id"] for r in ok if r["unexpected"]]
    return {
        "questions": len(ok),
        "errors": len(rows) - len(ok),
        "claims": claim_summary(ok),
        "cited": cited,
        "satisfaction_applied": _ratio(satisfied("violations"), cited),
        "satisfaction_meant": _ratio(satisfied("expected_violations"), cited),
        "questions_with_missed_constraint": len(missed),
        "missed": missed,
        "questions_with_unexpected_constraint": len(unexpected),
        "unexpected": unexpected,
        "cited_in_other_currency": sum(len(r["other_currency"]) for r in ok),
        "abstention_rate": _ratio(sum(1 for r in ok if r["abstained"]), len(ok)),
    }


def _sample_running(rows: list[dict[str, Any]]) -> str:
    scores = constraint_scores(rows)
    return (
        f"satisfaction {scores['satisfaction_applied']} of {scores['cited']} cited, "
        f"missed {scores['questions_with_missed_constraint']}"
    )


def _sample(options: Options, folder: Path, catalog: Path = SAMPLE_CATALOG) -> dict[str, Any]:
    started = time.perf_counter()
    products = read_products(catalog)
    store, index = _index("sample", products, options, folder)
    by_id = {p.id: p for p in products}
    service = answer_service(store, options)
    rows, seconds = _answer_all(
        "sample advise",
        SAMPLE_QUESTIONS,
        lambda q: service.advise(q.text),
        lambda q, a: _sample_row(q, a, by_id),
        _sample_running,
        item_id=lambda q: q.id,
        progress=options.progress,
    )
    return {
        "task": "advise(question) on the sample catalog for questions that state constraints; "
        "each cited product checked on its own fields",
        "catalog": {"path": str(catalog), "products": len(products)},
        "index": index,
        "scores": constraint_scores(rows),
        "latency_ms": _latency(rows),
        "rows": rows,
        "answer_seconds": round(seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
    }


# -- the command ------------------------------------------------------------------------------


def _datasets(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown or not names:
        msg = f"unknown data set(s) {unknown}; choose from {', '.join(DATASETS)}"
        raise argparse.ArgumentTypeError(msg)
    return names


def _levels(value: str) -> tuple[int, ...]:
    try:
        return concurrency.levels(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def private_path(path: Path) -> bool:
    """Whether a file holding data-set text may be written at ``path``: outside the
    repository, or in one of its `PRIVATE_FOLDERS` (which git ignores)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(ROOT):
        return True
    return any(resolved.is_relative_to(ROOT / folder) for folder in PRIVATE_FOLDERS)


def _splits(value: str) -> tuple[str, ...]:
    """The ``--splits`` argument: known splits, in `SPLITS` order."""
    names = {v.strip() for v in value.split(",") if v.strip()}
    unknown = names - set(SPLITS)
    if unknown or not names:
        msg = f"splits must be among {','.join(SPLITS)}, got {value!r}"
        raise argparse.ArgumentTypeError(msg)
    return tuple(s for s in SPLITS if s in names)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.answers",
        description=(__doc__ or "").splitlines()[0],
        conflict_handler="resolve",  # this command's --datasets replaces the shared one
    )
    add_data_options(parser)
    parser.add_argument(
        "--datasets",
        type=_datasets,
        default=list(DEFAULT_DATASETS),
        help=f"comma-separated, from {','.join(DATASETS)} (default: {','.join(DEFAULT_DATASETS)})",
    )
    parser.add_argument(
        "--limit-questions",
        type=positive_int,
        default=60,
        help="ePQA questions to ask per split, dev and test (a seeded sample, stratified by "
        "answerability; default 60)",
    )
    parser.add_argument(
        "--splits",
        type=_splits,
        default=SPLITS,
        help="the ePQA splits to ask, comma-separated (default: dev,test; tune on dev alone)",
    )
    parser.add_argument(
        "--all-unanswerable",
        action="store_true",
        help="ask every unanswerable ePQA question of each split, and --limit-questions "
        "answerable ones",
    )
    parser.add_argument(
        "--limit-queries", type=positive_int, default=40, help="CrowdFlower queries (seeded sample)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the samples and of the ePQA shuffle"
    )
    parser.add_argument(
        "--concurrency",
        type=_levels,
        default=None,
        help="with the concurrency data set: the numbers of askers at once, one level each "
        f"(default: {','.join(map(str, concurrency.DEFAULT_LEVELS))})",
    )
    parser.add_argument(
        "--questions-per-asker",
        type=positive_int,
        default=concurrency.DEFAULT_PER_ASKER,
        help="with the concurrency data set: questions each asker asks in turn "
        f"(default: {concurrency.DEFAULT_PER_ASKER})",
    )
    parser.add_argument(
        "--dump-claims",
        type=Path,
        default=None,
        metavar="PATH",
        help="write each ePQA claim, shipped or dropped, with its quote, passage, label and "
        "reference as a JSON line, to judge by reading (outside the repository, or under "
        "bench-results/)",
    )
    parser.add_argument(
        "--judged",
        type=Path,
        default=None,
        metavar="PATH",
        help="JSON lines with id, claim and judgement (one of "
        f"{', '.join(JUDGEMENTS)}) and shipped: report the judged counts, the share "
        "supported, and the checker's precision and recall",
    )
    add_embedding_cache(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--out", type=Path, default=Path("bench-results/answers.json"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.concurrency is not None and "concurrency" not in args.datasets:
        parser.error("--concurrency needs the concurrency data set (--datasets ...,concurrency)")
    args.concurrency = args.concurrency or concurrency.DEFAULT_LEVELS
    if args.dump_claims is not None and not private_path(args.dump_claims):
        parser.error(
            f"--dump-claims {args.dump_claims}: ePQA text must stay out of the repository; "
            f"write it outside it or under {' or '.join(PRIVATE_FOLDERS)}/"
        )
    judged = None
    if args.judged is not None:
        try:
            judged = read_judged(args.judged)
        except (OSError, ValueError) as exc:
            parser.error(f"--judged: {exc}")
    try:
        settings = Settings(embedder=args.embedder)
    except ValueError as exc:  # a bad SHOPGUIDE_* setting
        parser.error(str(exc))
    configure_logging("INFO", json_lines=False)
    started = time.perf_counter()
    configure_threads(settings, serving=True)  # as the API does at start-up
    load_start = time.perf_counter()
    embedder = build_embedder(settings, serving=True)
    reranker = build_reranker(settings)
    embedder.warm_up()
    if reranker is not None:
        reranker.warm_up()
    text_analysis.warm_up()
    model_load_s = time.perf_counter() - load_start
    llm = build_llm(settings)
    try:
        return _run(args, settings, embedder, reranker, llm, started, model_load_s, judged)
    finally:
        llm.close()


def _settings(
    args: argparse.Namespace,
    settings: Settings,
    embedder: Embedder,
    reranker: Reranker | None,
    llm: LLM,
    config: SearchConfig,
) -> dict[str, Any]:
    return {
        "data": str(args.data),
        "datasets": args.datasets,
        "llm": llm.name,
        "llm_backend": settings.llm_backend,
        "llm_model": settings.llm_model,
        "llm_context": settings.llm_context,
        "llm_max_tokens": settings.llm_max_tokens,
        "llm_threads": settings.llm_threads,
        "llm_timeout_s": settings.llm_timeout_s,
        "llm_prime": settings.llm_prime,
        "llm_constrained": settings.llm_constrained,
        "llm_concurrency": settings.llm_concurrency,
        "llm_queue": settings.llm_queue,
        "embedder": embedder.name,
        "embedding_dim": embedder.dim,
        "reranker": reranker.name if reranker is not None else None,
        "search": {
            "weights": dict(config.weights),
            "cjk_weights": dict(config.cjk_weights) if config.cjk_weights is not None else None,
            "rrf_k": config.rrf_k,
            "candidates": config.candidates,
            "min_similarity": config.min_similarity,
        },
        "ask_sources": settings.ask_sources,
        "ask_min_evidence": settings.ask_min_evidence,
        "ask_min_quote_relevance": settings.ask_min_quote_relevance,
        "advice_sources": settings.advice_sources,
        "limit_questions": args.limit_questions,
        "limit_questions_per": "split",
        "splits": list(args.splits),
        "all_unanswerable": args.all_unanswerable,
        "limit_queries": args.limit_queries,
        "sample_questions": len(SAMPLE_QUESTIONS),
        "concurrency": list(args.concurrency),
        "questions_per_asker": args.questions_per_asker,
        "dump_claims": str(args.dump_claims) if args.dump_claims else None,
        "judged": str(args.judged) if args.judged else None,
        "seed": args.seed,
        "torch_threads": settings.torch_threads,
        "embedding_cache": str(args.embedding_cache) if args.embedding_cache else None,
        "query_embedding_cache": None,
    }


def _run(
    args: argparse.Namespace,
    settings: Settings,
    embedder: Embedder,
    reranker: Reranker | None,
    llm: LLM,
    started: float,
    model_load_s: float,
    judged: list[dict[str, str]] | None = None,
) -> int:
    llm_start = time.perf_counter()
    if set(args.datasets) - {"gate"}:  # the gate needs no model
        llm.warm_up()
    options = Options(
        settings=settings,
        embedder=embedder,
        reranker=reranker,
        config=search_config(settings),
        llm=llm,
        limit_questions=args.limit_questions,
        splits=args.splits,
        limit_queries=args.limit_queries,
        seed=args.seed,
        progress=not args.no_progress,
        embedding_cache=args.embedding_cache,
        all_unanswerable=args.all_unanswerable,
        concurrency_levels=tuple(args.concurrency),
        questions_per_asker=args.questions_per_asker,
        dump_claims=args.dump_claims,
    )
    result: dict[str, Any] = {
        "benchmark": "answers",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "git": git_state(),
        "settings": _settings(args, settings, embedder, reranker, llm, options.config),
        "model_load_s": round(model_load_s, 2),
        "llm_load_s": round(time.perf_counter() - llm_start, 2),
        "datasets": {},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    epqa: PageQASet | None = None
    with tempfile.TemporaryDirectory(prefix="answers-") as folder:
        for name in args.datasets:
            logger.info("%s: loading", name)
            if name in ("gate", "epqa", "concurrency"):
                epqa = epqa or load_epqa(args.data, seed=args.seed)
                task = {"gate": _gate, "epqa": _epqa, "concurrency": _concurrency}[name]
                result["datasets"][name] = task(epqa, options, Path(folder))
            elif name == "crowdflower":
                crowdflower = load_crowdflower(args.data)
                result["datasets"][name] = _crowdflower(crowdflower, options, Path(folder))
            else:
                result["datasets"][name] = _sample(options, Path(folder))
            result["llm_prime_s"] = options.prime_s
            _write(result, started, args.out)  # what is done so far survives an interruption
    if judged is not None:
        rows = result["datasets"]["epqa"]["rows"] if "epqa" in result["datasets"] else None
        result["judged"] = {"path": str(args.judged), **judged_scores(judged, rows)}
    _write(result, started, args.out)
    _print(result, args.out)
    return 0


# -- printing ---------------------------------------------------------------------------------


def _cell(text: str, width: int) -> str:
    """``text`` cut and padded to ``width`` terminal columns (a Chinese character takes two)."""
    out, used = [], 0
    for char in text:
        size = 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if used + size > width:
            break
        out.append(char)
        used += size
    return "".join(out) + " " * (width - used)


def _num(value: float | None, width: int = 7) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.3f}"


def _latency_lines(latency: dict[str, dict[str, float]]) -> str:
    lines = [f"  {'latency, s':<14} {'median':>7} {'p95':>7} {'n':>5}"]
    for stage, stats in latency.items():
        if stats.get("n"):
            lines.append(
                f"  {stage:<14} {stats['median'] / 1000:>7.2f} {stats['p95'] / 1000:>7.2f} "
                f"{stats['n']:>5}"
            )
        else:
            lines.append(f"  {stage:<14} {'-':>7} {'-':>7} {0:>5}")
    return "\n".join(lines) + "\n"


def _took(task: dict[str, Any]) -> str:
    """A task heading's end: its seconds, and how many questions failed if any."""
    errors = task["scores"]["errors"]
    return f"{task['seconds']} s" + (f"; {errors} failed" if errors else "") + "\n"


def _counts(histogram: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in histogram.items()) or "none"


def _claims_line(scores: dict[str, Any]) -> str:
    claims = scores.get("claims")
    if not claims:
        return ""
    return (
        f"  claims {claims['claims']} shipped, {claims['dropped_claims']} dropped "
        f"({_counts(claims['dropped_reasons'])}); abstentions: "
        f"{_counts(claims['abstain_reasons'])}; language match "
        f"{_num(claims['language_match'], 5)}\n"
    )


_DETECTOR_HEADER = (
    f"  {'':<26} {'P':>6} {'P@share':>7} {'R':>6} {'F1':>6} {'on answ.':>8} {'caught':>7}\n"
)


def _detector_line(name: str, scores: dict[str, Any]) -> str:
    share = scores.get("precision_at_data_set_share")
    return (
        f"  {name:<26} {_num(scores['precision'], 6)} {_num(share)} {_num(scores['recall'], 6)} "
        f"{_num(scores['f1'], 6)} {_num(scores['rate_on_answerable'], 8)} "
        f"{scores['true_positives']:>3} of {scores['unanswerable']:<3}\n"
    )


def _print_gate(d: dict[str, Any], out: Callable[[str], Any]) -> None:
    out(
        f"\n== gate: evidence of {d['questions']} ePQA questions ({d['unanswerable']} "
        f"unanswerable), halves {d['halves']['tune']} tune (dev) / {d['halves']['test']} test; "
        f"{d['seconds']} s\n"
        f"  AUC tune {_num(d['auc']['tune'], 5)}, test {_num(d['auc']['test'], 5)}; threshold "
        f"tuned on the tune half {d['tuned_threshold']}, configured {d['configured_threshold']}\n"
    )
    out(_DETECTOR_HEADER)
    for kind in ("tuned", "configured"):
        for half in ("tune", "test"):
            threshold = d[f"{kind}_threshold"]
            out(_detector_line(f"{kind} {threshold} on {half}", d[kind][half]))
    out("  the test half by threshold:\n")
    for point in d["curve"]:
        out(_detector_line(f"  < {point['threshold']:.2f}", point))


def _print_rules(rules: dict[str, Any], out: Callable[[str], Any]) -> None:
    both = rules["both"]
    out(f"  abstention rules, dev and test together (evidence gate at {both['threshold']}):\n")
    out(_DETECTOR_HEADER)
    for name, label in (
        ("model", "the model alone"),
        ("gate", "the evidence gate alone"),
        ("both", "gate, then model (shipped)"),
    ):
        out(_detector_line(label, rules[name]))
    out(
        f"  shipped: answer F1 {_num(both['answer_f1_all_answerable'], 5)}, ROUGE-L "
        f"{_num(both['answer_rouge_l_all_answerable'], 5)} over all answerable (0 if "
        f"abstained)\n"
    )


def _epqa_lines() -> list[tuple[str, Callable[[dict[str, Any]], str]]]:
    def share(part: str, key: str) -> Callable[[dict[str, Any]], str]:
        return lambda s: _num(s[part][key], 9)

    def seconds(stage: str, stat: str) -> Callable[[dict[str, Any]], str]:
        return lambda s: _num(s["latency_s"][stage].get(stat), 9)

    return [
        ("questions (unanswerable)", lambda s: f"{s['questions']:>4} ({s['unanswerable']:>2})"),
        ("answered", lambda s: f"{s['answered']:>9}"),
        ("refused answerable, share", share("refused_answerable", "share")),
        (
            "  … a passage answers (2)",
            lambda s: _num(s["refused_answerable"]["answered_on_page"]["share"], 9),
        ),
        (
            "  … shown a passage labelled 2",
            lambda s: _num(s["refused_answerable"]["offered_answering_passage"]["share"], 9),
        ),
        ("abstention precision", share("abstention", "precision")),
        ("abstention recall", share("abstention", "recall")),
        ("claims shipped", lambda s: f"{s['claims']['shipped']:>9}"),
        ("  cited label >= 1", share("claims", "label_1_or_2_share")),
        ("  cited label 2", share("claims", "label_2_share")),
        ("  quoted", share("claims", "quoted_share")),
        ("  unjudged passage", lambda s: f"{s['claims']['unjudged']:>9}"),
        (
            "yes/no answered, verdict",
            lambda s: f"{s['yes_no']['answered']:>4} {s['yes_no']['verdict']:>4}",
        ),
        ("language match", share("language_match", "share")),
        ("first token p50, s", seconds("first_token", "p50")),
        ("first token p95, s", seconds("first_token", "p95")),
        ("total p50, s", seconds("total", "p50")),
        ("total p95, s", seconds("total", "p95")),
        ("answer F1, answered", lambda s: _num(s["answer"]["answered"]["f1"], 9)),
        ("answer F1, all answerable", lambda s: _num(s["answer"]["all_answerable"]["f1"], 9)),
    ]


def _print_epqa(d: dict[str, Any], out: Callable[[str], Any]) -> None:
    sampling, scores = d["sampling"], d["scores"]
    splits = list(scores)
    errors = sum(scores[split]["errors"] for split in splits)
    out(
        f"\n== epqa: {d['catalog']['products']} pages; {d['seconds']} s"
        + (f"; {errors} failed" if errors else "")
        + "\n"
    )
    for split in splits:
        how = sampling[split]
        out(
            f"  {split}: {how['questions']} questions ({how['unanswerable']} unanswerable) of "
            f"{how['data_set_questions']} ({how['data_set_unanswerable']} unanswerable)\n"
        )
    out(f"  settings are chosen on dev; {d['reported_split']} is the reported split\n")
    out(f"  {'':<28}" + "".join(f"{split:>10}" for split in splits) + "\n")
    for name, cell in _epqa_lines():
        out(f"  {name:<28}" + "".join(f" {cell(scores[split])}" for split in splits) + "\n")
    for split in splits:
        s = scores[split]
        out(
            f"  {split}: abstentions {_counts(s['abstain_reasons'])}; dropped claims "
            f"{_counts(s['dropped_reasons'])}\n"
        )
    if "dumped_claims" in d:
        dumped = d["dumped_claims"]
        out(f"  {dumped['claims']} claims written to {dumped['path']}\n")
    _print_rules(d["rules"], out)


def _per_minute(value: float | None) -> str:
    return f"{'n/a':>6}" if value is None else f"{value:>6.1f}"


def _print_concurrency(d: dict[str, Any], out: Callable[[str], Any]) -> None:
    out(
        f"\n== concurrency: {d['questions_per_asker']} ePQA questions per asker, "
        f"llm_concurrency {d['llm_concurrency']}, llm_queue {d['llm_queue']}, evidence gate "
        f"{d['ask_min_evidence']}; {d['seconds']} s\n"
    )
    out(
        f"  {'askers':>6} {'asked':>5} {'answ.':>5} {'busy':>5} {'t/o':>4} {'err':>4} "
        f"{'ft p50':>7} {'ft p95':>7} {'tot p50':>7} {'tot p95':>7} {'/min':>6} {'wall s':>7} "
        f"{'refusal':>7}  retry after\n"
        f"  {'':>6} {'':>5} {'':>5} {'':>5} {'':>4} {'':>4} {'s':>7} {'s':>7} {'s':>7} {'s':>7} "
        f"{'':>6} {'':>7} {'max, s':>7}  min-max, s\n"
    )
    for level in d["levels"]:
        ft, tot, refusal = level["first_token_s"], level["total_s"], level["refusal_s"]
        retry = level["retry_after_s"]
        out(
            f"  {level['askers']:>6} {level['requests']:>5} {level['answered']:>5} "
            f"{level['refused_busy']:>5} {level['timeouts']:>4} {level['errors']:>4} "
            f"{_num(ft.get('p50'))} {_num(ft.get('p95'))} {_num(tot.get('p50'))} "
            f"{_num(tot.get('p95'))} {_per_minute(level['throughput_per_min'])} "
            f"{level['wall_s']:>7.1f} {_num(refusal.get('max'))}  "
            f"{f'{min(retry)}-{max(retry)}' if retry else '-'}\n"
        )


def _judged_part(scores: dict[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in scores["counts"].items())
    dropped = scores["dropped"]
    return (
        f"{scores['judged']} shipped judged ({counts}), supported "
        f"{_num(scores['supported_share'], 5)}; {dropped['judged']} dropped judged, "
        f"{dropped['counts']['supported']} supported; checker precision "
        f"{_num(scores['checker_precision'], 5)}, recall {_num(scores['checker_recall'], 5)}"
    )


def _print_judged(d: dict[str, Any], out: Callable[[str], Any]) -> None:
    out(f"\n== judged claims ({d['path']}): {_judged_part(d)}\n")
    for split in SPLITS:
        out(f"  {split}: {_judged_part(d['by_split'][split])}\n")
    if "this_run" in d:
        run = d["this_run"]
        out(
            f"  this run ({run['claims']} shipped, {run['dropped_claims']} dropped): "
            f"{_judged_part(run)}; {run['unjudged']} shipped and {run['dropped_unjudged']} "
            "dropped not judged\n"
        )


def _print(result: dict[str, Any], path: Path) -> None:
    out = sys.stdout.write
    s = result["settings"]
    out(
        f"LLM {s['llm']} ({s['llm_backend']}, max {s['llm_max_tokens']} tokens), embedder "
        f"{s['embedder']}, re-ranker {s['reranker'] or 'none'}, sources ask {s['ask_sources']} "
        f"/ advice {s['advice_sources']}, seed {s['seed']}\n"
    )
    datasets = result["datasets"]
    if "gate" in datasets:
        _print_gate(datasets["gate"], out)
    if "epqa" in datasets:
        _print_epqa(datasets["epqa"], out)
    if "crowdflower" in datasets:
        d = datasets["crowdflower"]
        sc = d["scores"]
        out(
            f"\n== crowdflower advice: {sc['queries']} queries, {d['catalog']['products']} "
            f"products; {_took(d)}"
        )
        out(
            f"  relevant (grade 3-4) among cited  {_num(sc['relevant_share_cited'], 5)} "
            f"({sc['cited_relevant']} of {sc['cited']}; {sc['cited_unjudged']} unjudged count "
            f"as not relevant)\n"
            f"  relevant among sources given      {_num(sc['relevant_share_sources'], 5)} "
            f"(of {sc['sources']})\n"
            f"  abstention rate {_num(sc['abstention_rate'], 5)}\n"
        )
        out(_claims_line(sc))
        out(_latency_lines(d["latency_ms"]))
    if "sample" in datasets:
        d = datasets["sample"]
        sc = d["scores"]
        out(
            f"\n== sample catalog constraints: {sc['questions']} questions, "
            f"{d['catalog']['products']} products; {_took(d)}"
        )
        out(
            f"  cited products meeting the applied constraints "
            f"{_num(sc['satisfaction_applied'], 5)} (of {sc['cited']})\n"
            f"  cited products meeting the meant constraints   "
            f"{_num(sc['satisfaction_meant'], 5)}\n"
            f"  questions with a constraint missed: {sc['questions_with_missed_constraint']} "
            f"{sc['missed']}; read but not meant: {sc['questions_with_unexpected_constraint']} "
            f"{sc['unexpected']}\n"
            f"  cited in another currency than named: {sc['cited_in_other_currency']}; "
            f"abstention rate {_num(sc['abstention_rate'], 5)}\n"
        )
        out(f"  {'id':<4} {'question':<48} {'applied':<34} cited\n")
        for row in d["rows"]:
            if "error" in row:
                out(f"  {row['id']:<4} failed: {row['error']}\n")
                continue
            applied = ", ".join(row["applied"]) or "-"
            cited = ",".join(pid + ("!" if row["violations"][pid] else "") for pid in row["cited"])
            out(
                f"  {row['id']:<4} {_cell(row['question'], 48)} {_cell(applied, 34)} "
                f"{cited or '(abstained)'}\n"
            )
        out(_claims_line(sc))
        out(_latency_lines(d["latency_ms"]))
    if "concurrency" in datasets:
        _print_concurrency(datasets["concurrency"], out)
    if "judged" in result:
        _print_judged(result["judged"], out)
    m = result["machine"]
    out(
        f"\nwall time {result['wall_s']} s on {m['cpu_count']} CPUs; load average "
        f"{m.get('load_average_at_start', ['?'])[0]} at start, "
        f"{m.get('load_average_at_end', ['?'])[0]} at end\nwritten to {path}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
