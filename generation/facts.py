"""Checking the facts a claim states against the sources it cites.

A small model copies numbers badly, so every number a claim states must be one its cited
sources hold (their title and text, as the model saw them); prices, ratings and stock are also
checked against the cited products' structured fields:

- a price ("$129", "129.00 USD", "129元") that no cited product has is corrected when the claim
  cites exactly one priced product (the number is replaced by that product's price), else the
  claim is dropped;
- a rating ("4.5/5", "4.5 stars", "rated 4.5", "4.5星") likewise, against the products' ratings;
- "in stock" / "有货" when no cited product is in stock, or "out of stock" / "缺货" when every
  cited product is, drops the claim;
- any other number (a weight, a capacity, a count) that none of the cited sources holds drops
  the claim: there is nothing to correct it from.

Numbers the shopper wrote in the question stand wherever they appear ("will it fit a 25cc
trimmer?", "under $100"): repeating them states nothing new. (On 100 ePQA questions, 10 claims
were dropped before this rule, nearly all for restating the question's numbers.)

Numbers are compared as values (``129`` matches ``129.00``; ``1,299`` is 1299). Source
numbers inside citation markers are not facts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from generation.citations import CITATION_RE
from generation.grammar import Claim
from retrieval.schema import Product
from retrieval.text import has_cjk

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_NUMBER_RE = re.compile(rf"(?<![\w.])(?:{_NUMBER})")
_PRICE_RE = re.compile(
    rf"(?:(?:US\$|\$|€|£|¥|￥|(?<![a-z])(?:usd|eur|gbp|rmb|cny)\s?)\s*(?P<a>{_NUMBER}))"
    rf"|(?:(?P<b>{_NUMBER})\s*(?:usd|dollars?|eur|euros?|gbp|rmb|cny|yuan|元|块))",
    re.IGNORECASE,
)
_RATING_RE = re.compile(
    rf"(?:(?P<a>{_NUMBER})\s*(?:/\s*5|out of 5|stars?|星))"
    rf"|(?:(?:rated|rating of|rating:?|评分)\s*(?P<b>{_NUMBER}))",
    re.IGNORECASE,
)
_IN_STOCK_RE = re.compile(r"\bin stock\b|\bavailable now\b|有货|现货", re.IGNORECASE)
_OUT_OF_STOCK_RE = re.compile(
    r"\bout of stock\b|\bsold out\b|\bnot (?:in stock|available)\b|缺货|无货|没货|售罄",
    re.IGNORECASE,
)


def _value(text: str) -> float:
    return float(text.replace(",", ""))


# Numbers that point, not state: a list's "1." or "2)" at the start, "option 2", "source 3".
_POINTERS = re.compile(
    r"^\s*(?:\(?\d{1,2}[.)]|#\d{1,2})\s+"
    r"|(?<![\w])(?:option|source|product|item|choice|pick|number|no\.|#)\s*\d{1,2}(?![\d.])",
    re.IGNORECASE,
)


def numbers_in(text: str) -> set[float]:
    """The numeric values written in ``text``; citation markers, list numbers ("1.") and
    references ("option 2") left out."""
    text = _POINTERS.sub(" ", CITATION_RE.sub(" ", text))
    return {_value(m.group()) for m in _NUMBER_RE.finditer(text)}


def _same(a: float, b: float) -> bool:
    return abs(a - b) < 0.005 or (b >= 10 and round(b) == a)  # "$129" for 129.00 and 128.99


@dataclass(frozen=True)
class FactSource:
    """What a cited source holds: the text the model saw and, for a product, its fields."""

    text: str
    product: Product | None = None


@dataclass(frozen=True)
class FactCheck:
    """The claims that stand (some corrected), and how many were corrected or dropped."""

    claims: list[Claim]
    corrected: int
    dropped: int
    reasons: list[str]


def _fix(
    claim: str,
    pattern: re.Pattern[str],
    values: Sequence[float],
    fmt: str,
    allowed: frozenset[float],
) -> tuple[str, bool, bool]:
    """The claim with each mention of ``pattern`` checked against ``values``: (text, changed,
    unfixable). A wrong mention is replaced when there is exactly one value."""
    changed = unfixable = False

    def replace(match: re.Match[str]) -> str:
        nonlocal changed, unfixable
        group = "a" if match.group("a") is not None else "b"
        written = _value(match.group(group))
        if any(_same(written, v) for v in values) or written in allowed:
            return match.group()
        if len(values) != 1:
            unfixable = True
            return match.group()
        changed = True
        start, end = match.span(group)
        whole = match.group()
        offset = match.start()
        return whole[: start - offset] + format(values[0], fmt) + whole[end - offset :]

    return pattern.sub(replace, claim), changed, unfixable


def _price_format(price: float) -> str:
    return ".0f" if float(price).is_integer() else ".2f"


def check_claim(
    claim: Claim, cited: Sequence[FactSource], allowed: frozenset[float] = frozenset()
) -> tuple[Claim | None, bool, str]:
    """The claim as it may stand (None: dropped), whether it was corrected, and why;
    ``allowed`` holds the numbers of the question."""
    products = [s.product for s in cited if s.product is not None]
    text = claim.text
    corrected = False
    if products:
        prices = sorted({p.price for p in products if p.price is not None})
        if _PRICE_RE.search(text):
            fmt = _price_format(prices[0]) if len(prices) == 1 else ".2f"
            text, changed, unfixable = _fix(text, _PRICE_RE, prices, fmt, allowed)
            if unfixable:
                return None, False, "price not in the cited products"
            corrected |= changed
        ratings = sorted({p.rating for p in products if p.rating is not None})
        if _RATING_RE.search(text):
            text, changed, unfixable = _fix(text, _RATING_RE, ratings, "g", allowed)
            if unfixable:
                return None, False, "rating not in the cited products"
            corrected |= changed
        stock = [p.in_stock for p in products if p.in_stock is not None]
        if stock:
            if _OUT_OF_STOCK_RE.search(text):
                if all(stock):
                    return None, False, "says out of stock; the cited products are in stock"
            elif _IN_STOCK_RE.search(text) and not any(stock):
                return None, False, "says in stock; the cited products are not"
    known = set().union(*(numbers_in(s.text) for s in cited)) if cited else set()
    for product in products:
        known |= {v for v in (product.price, product.rating) if v is not None}
    for value in numbers_in(text):
        if value not in allowed and not any(_same(value, k) for k in known):
            return None, False, f"{value:g} is not in the cited sources"
    return Claim(text, claim.sources), corrected, ""


def check_facts(
    claims: Sequence[Claim], sources: Mapping[int, FactSource], *, question: str = ""
) -> FactCheck:
    """Each claim checked against the sources it cites and the question's own numbers (see
    the module docstring)."""
    allowed = frozenset(numbers_in(question))
    kept: list[Claim] = []
    corrected = dropped = 0
    reasons: list[str] = []
    for claim in claims:
        cited = [sources[n] for n in claim.sources if n in sources]
        checked, changed, reason = check_claim(claim, cited, allowed)
        if checked is None:
            dropped += 1
            reasons.append(reason)
            continue
        corrected += changed
        kept.append(checked)
    return FactCheck(kept, corrected, dropped, reasons)


def render_claims(claims: Sequence[Claim]) -> str:
    """The answer text of ``claims``: each claim's citations before its end punctuation."""
    parts = []
    for claim in claims:
        cites = "".join(f"[{n}]" for n in claim.sources)
        text = claim.text
        end = text[-1] if text and text[-1] in ".!?。！？" else ""
        body = text[: len(text) - len(end)].rstrip()
        space = "" if body and has_cjk(body[-1]) else " "
        parts.append(f"{body}{space}{cites}{end}")
    return " ".join(parts)
