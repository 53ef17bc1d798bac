"""Loaders for the human-judged benchmark data in ``shared/datasets`` (see its README).

Each loader reads the files as published and returns plain dataclasses; nothing is copied into
the project. Scoring rules that depend on the data (gains, which label counts as relevant, the
ePQA shuffle) are applied here, once, so every system is scored against the same judgments.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

csv.field_size_limit(16 * 1024 * 1024)

CROWDFLOWER_FILE = Path("crowdflower") / "train.csv"
EPQA_FILE = Path("epqa") / "dev.csv"
MULTICPR_PRODUCTS = Path("multicpr-zh") / "products.jsonl"
MULTICPR_QUERIES = Path("multicpr-zh") / "queries-dev.jsonl"
SPLITS = ("dev", "test")


def split(text: str) -> str:
    """``dev`` or ``test``: the parity of the SHA-1 of the query text, which depends on nothing
    else (order, seed, limits). Settings are chosen on dev and reported on test."""
    digest = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
    return SPLITS[int(digest, 16) % 2]


@dataclass(frozen=True)
class Item:
    """A catalog product to index; brand and category only where the data has them."""

    id: str
    title: str
    description: str = ""
    brand: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class JudgedQuery:
    """A query with its judged items: item id → gain (unjudged items have gain 0)."""

    id: str
    text: str
    gains: dict[str, float]

    def relevant(self, min_gain: float) -> set[str]:
        """The items with at least ``min_gain``."""
        return {item for item, gain in self.gains.items() if gain >= min_gain}


@dataclass(frozen=True)
class ProductSearchSet:
    """A catalog and queries judged against it, for product search over the whole catalog.

    ``relevant_gain`` is the least gain that counts as relevant for recall and MRR.
    """

    name: str
    items: list[Item]
    queries: list[JudgedQuery]
    relevant_gain: float
    has_brand: bool = False
    has_category: bool = False


@dataclass(frozen=True)
class Passage:
    """One evidence passage of an ePQA product page (a distinct text within the product)."""

    text: str
    source: str  # review, attribute, cqa, description, bullet


@dataclass(frozen=True)
class PageProduct:
    """An ePQA product: its title and its page's passages, in a seeded random order."""

    id: str
    title: str
    passages: list[Passage]


@dataclass(frozen=True)
class Question:
    """A shopper's question about one product; ``labels`` maps a passage text to 0, 1 or 2.

    Only the question's own ten candidates are judged; other passages of the page count as 0.
    ``answer`` is the human reference answer (empty when no passage answers); ePQA writes one
    per helpful candidate, so ``answers`` holds every distinct one, ``answer`` first.
    """

    id: str
    text: str
    product_id: str
    labels: dict[str, int]
    answer: str = ""
    answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageQASet:
    """ePQA: products with their pages, and questions judged against their product's page."""

    name: str
    products: list[PageProduct]
    questions: list[Question]
    seed: int
    skipped_empty: int = 0


def _stable_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8"), usedforsecurity=False)
    return f"{prefix}{digest.hexdigest()[:16]}"


def csv_rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of a CSV file with a header, as dictionaries."""
    with path.open(encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def load_crowdflower(root: Path) -> ProductSearchSet:
    """CrowdFlower search relevance: distinct (title, description) pairs and graded queries.

    Each pair gets a stable id from a hash of its title and description. Gain is
    ``median_relevance - 1`` (0..3); a pair judged twice for the same query keeps the higher
    gain. Relevant for recall means gain >= 2.
    """
    items: dict[str, Item] = {}
    gains: dict[str, dict[str, float]] = {}
    order: list[str] = []
    for row in csv_rows(root / CROWDFLOWER_FILE):
        title = (row["product_title"] or "").strip()
        description = (row["product_description"] or "").strip()
        if not title:
            continue
        item_id = _stable_id("cf-", title, description)
        items.setdefault(item_id, Item(item_id, title, description))
        query = row["query"].strip()
        if query not in gains:
            gains[query] = {}
            order.append(query)
        gain = float(int(row["median_relevance"]) - 1)
        judged = gains[query]
        judged[item_id] = max(gain, judged.get(item_id, 0.0))
    queries = [JudgedQuery(_stable_id("q-", text), text, gains[text]) for text in order]
    return ProductSearchSet("crowdflower", list(items.values()), queries, relevant_gain=2.0)


def load_multicpr(root: Path) -> ProductSearchSet:
    """Multi-CPR Chinese product search: titles and queries with their matching ids (gain 1)."""
    items = []
    with (root / MULTICPR_PRODUCTS).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                data = json.loads(line)
                items.append(Item(str(data["id"]), str(data["title"]).strip()))
    queries = []
    with (root / MULTICPR_QUERIES).open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                data = json.loads(line)
                gains = {str(pid): 1.0 for pid in data["relevant"]}
                queries.append(JudgedQuery(f"q{number}", str(data["query"]).strip(), gains))
    return ProductSearchSet("multicpr", items, queries, relevant_gain=1.0)


def _with_answers(question: Question, references: list[tuple[int, str]]) -> Question:
    """The question with its distinct reference answers, those of the best-labelled candidates
    first (then in file order)."""
    ordered = [a for _, a in sorted(references, key=lambda r: -r[0])]  # a stable sort
    answers = tuple(dict.fromkeys(ordered))
    return replace(question, answer=answers[0] if answers else "", answers=answers)


def load_epqa(root: Path, *, seed: int = 0) -> PageQASet:
    """ePQA dev: candidates grouped by ASIN into product pages, labels kept per question.

    A page holds every distinct candidate text of its product (products asked about twice have
    up to 20). The file's candidate order leaks the labels, so each page's passages and the
    product order are shuffled with ``random.Random(seed)``; the systems then never see the
    file order, even through ties. The one empty candidate (label 0) is skipped. Each
    question keeps the reference answers of its candidates (`Question.answers`).
    """
    titles: dict[str, str] = {}
    pages: dict[str, dict[str, Passage]] = {}
    questions: dict[str, Question] = {}
    references: dict[str, list[tuple[int, str]]] = {}  # qid -> (label, answer), file order
    skipped = 0
    for row in csv_rows(root / EPQA_FILE):
        asin = row["ASIN"].strip()
        titles.setdefault(asin, (row["title"] or "").strip() or asin)
        text = (row["candidate"] or "").strip()
        qid = row["qid"].strip()
        question = questions.get(qid)
        if question is None:
            question = questions[qid] = Question(qid, row["question"].strip(), asin, {})
        answer = (row.get("answer") or "").strip()
        if answer:
            references.setdefault(qid, []).append((int(row["label"]), answer))
        if not text:
            skipped += 1
            continue
        pages.setdefault(asin, {}).setdefault(text, Passage(text, row["source"].strip()))
        label = int(row["label"])
        question.labels[text] = max(label, question.labels.get(text, 0))
    rng = random.Random(seed)  # noqa: S311 - a reproducible shuffle, not security
    products = []
    for asin, passages in pages.items():
        shuffled = list(passages.values())
        rng.shuffle(shuffled)
        products.append(PageProduct(asin, titles[asin], shuffled))
    rng.shuffle(products)
    return PageQASet(
        "epqa",
        products,
        [_with_answers(q, references.get(q.id, [])) for q in questions.values()],
        seed=seed,
        skipped_empty=skipped,
    )
