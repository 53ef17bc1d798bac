"""What customers say about a product: the aspects its reviews mention, how many reviews are
positive and negative about each, and the passages that say so, cited as answers cite them.

Extractive and model-free: every count comes from `generation.aspects`, every quote is a clause
of a review, cited by the review's passage id (``<product>#review-<n>``, as "ask about this
product" cites it) with the quote's and the aspect's offsets in the review. Reviews are data:
nothing in them is followed, only matched and quoted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from generation.aspects import Mention, Polarity, aspect, language_of, mentions
from retrieval.schema import Product, review_passage_id

_POLARITY_ORDER: dict[Polarity, int] = {"negative": 0, "positive": 1, "neutral": 2}


@dataclass(frozen=True)
class Quote:
    """A review clause about one aspect."""

    passage_id: str  # the review, as answers cite it
    text: str  # the clause
    start: int  # the clause's offsets in the review's text
    end: int
    term_start: int  # the words naming the aspect, offsets in the review's text
    term_end: int
    polarity: Polarity
    rating: float | None


@dataclass(frozen=True)
class AspectSummary:
    """One aspect: how many reviews mention it, and how they feel."""

    key: str
    label: str  # in the product's language
    reviews: int  # reviews that mention it
    positive: int  # of those, reviews positive about it
    negative: int
    neutral: int
    quotes: tuple[Quote, ...]


@dataclass(frozen=True)
class ReviewSummary:
    """What a product's reviews say, aspect by aspect, most mentioned first."""

    product_id: str
    language: str
    reviews: int  # all reviews of the product
    reviews_with_aspects: int
    aspects: tuple[AspectSummary, ...]


def summarize_reviews(product: Product, *, quotes_per_aspect: int = 3) -> ReviewSummary:
    """The review summary of ``product``: per aspect, the reviews positive, negative and neutral
    about it (a review that says both counts by its clauses' sum), and up to
    ``quotes_per_aspect`` quotes, the polarities taking turns so both sides are heard."""
    language = language_of(product.title, *(r.text for r in product.reviews))
    per_aspect: dict[str, list[tuple[int, Mention]]] = defaultdict(list)
    with_aspects = 0
    for number, review in enumerate(product.reviews, start=1):
        found = mentions(review.text, review.rating)
        with_aspects += bool(found)
        for mention in found:
            per_aspect[mention.aspect].append((number, mention))
    summaries = [
        _aspect_summary(product, key, found, language, quotes_per_aspect)
        for key, found in per_aspect.items()
    ]
    summaries.sort(key=lambda s: (-s.reviews, -s.negative, s.key))
    return ReviewSummary(
        product_id=product.id,
        language=language,
        reviews=len(product.reviews),
        reviews_with_aspects=with_aspects,
        aspects=tuple(summaries),
    )


def _aspect_summary(
    product: Product,
    key: str,
    found: list[tuple[int, Mention]],
    language: str,
    quotes_per_aspect: int,
) -> AspectSummary:
    by_review: dict[int, list[Mention]] = defaultdict(list)
    for number, mention in found:
        by_review[number].append(mention)
    verdicts = {number: _verdict(ms) for number, ms in by_review.items()}
    counts = defaultdict(int, {p: 0 for p in _POLARITY_ORDER})
    for verdict in verdicts.values():
        counts[verdict] += 1
    quotes = [_quote(product, number, ms[0]) for number, ms in sorted(by_review.items())]
    return AspectSummary(
        key=key,
        label=aspect(key).label(language),
        reviews=len(by_review),
        positive=counts["positive"],
        negative=counts["negative"],
        neutral=counts["neutral"],
        quotes=tuple(_interleaved(quotes, quotes_per_aspect)),
    )


def _verdict(found: list[Mention]) -> Polarity:
    score = sum(
        1 if m.polarity == "positive" else -1 if m.polarity == "negative" else 0 for m in found
    )
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def _quote(product: Product, number: int, mention: Mention) -> Quote:
    review = product.reviews[number - 1]
    return Quote(
        passage_id=review_passage_id(product.id, number),
        text=review.text[mention.start : mention.end],
        start=mention.start,
        end=mention.end,
        term_start=mention.term_start,
        term_end=mention.term_end,
        polarity=mention.polarity,
        rating=review.rating,
    )


def _interleaved(quotes: list[Quote], limit: int) -> list[Quote]:
    """Up to ``limit`` quotes, one of each polarity in turn (negative, positive, neutral),
    each polarity's in review order."""
    queues = {p: [q for q in quotes if q.polarity == p] for p in _POLARITY_ORDER}
    chosen: list[Quote] = []
    while len(chosen) < limit and any(queues.values()):
        for polarity in _POLARITY_ORDER:
            if queues[polarity] and len(chosen) < limit:
                chosen.append(queues[polarity].pop(0))
    return chosen
