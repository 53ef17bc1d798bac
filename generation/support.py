"""Whether a claim is supported by the words it quotes: the checks every claim must pass.

A claim (`generation.quotes.QuotedClaim`) ships only when all of these hold, in code:

1. **Verbatim**: its quote is in the cited source (title or text), word for word.
2. **Numbers**: every number it states is in its quote or the cited product's title.
3. **Polarity**: it negates what its quote negates ("did not come with" is not "comes with").
4. **Content**: every content word it uses is in its quote or the product's title, or is a
   word that states nothing ("it", "comes with", "the description says"); units compare by
   meaning ("hrs" is "hours"). A claim that adds a feature, a use or a reason fails here.
5. **Attributes**: a claim about a yes/no attribute of the cited product ("noise cancelling:
   False") agrees with it.
6. **Language**: it is written in the question's language.
7. **An answer** (questions about one product): its quote holds what the question asks for
   (`generation.questions.holds_kind`), and for a yes/no question it settles it: the quote is
   on the question's subject (a word in common, and similar to the question or holding most
   of what it asks about), does not only guess, no other statement of its passage says the
   opposite, and the claim's Yes or No (or, without one, a claim restating the question in
   its quote's words) is the one the quote's polarity gives, read against the question's own
   negation ("does it work without batteries?" — "works without batteries": Yes).

A claim that fails only in its wording (2–6: the model said more than its quote) is not
shipped in the model's words: the quote itself is shown instead, as a quote from its source,
when it passes 7 and, about one product, does not only guess and (for an open question) holds
at least half of what the question asks about. A quote shown alone never answers Yes or No:
that takes the model's own words, checked.
`check_claim` returns the claim as it may ship, or why it may not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from generation.evidence import quotable, statements
from generation.facts import numbers_in
from generation.questions import (
    QuestionKind,
    hedged,
    holds_kind,
    negated,
    question_negated,
    split_verdict,
)
from generation.quotes import QuotedClaim, is_chinese, locate
from retrieval.schema import Product
from retrieval.text import CJK_RANGE, has_cjk, normalize, stem, tokenize

Verdict = Literal["yes", "no"]


def _words(text: str) -> frozenset[str]:
    """The words of ``text``, and their light stems (`retrieval.text.stem`)."""
    words = text.split()
    return frozenset(words) | {stem(w) for w in words}


# Words that state nothing a source must hold.
_GENERIC = _words(
    """
    it its it's this that these those they them their there here one ones product item model
    unit set come comes came coming include includes included including feature features
    featured offer offers provide provides provided use used uses using make made can could will
    would should may also both each either about around approximately roughly nearly almost just
    only over under up per very really quite well much many more most less some any all every
    other another same such than then so too which what who whose when where how why page
    description descriptions review reviews reviewer reviewers customer customers buyer buyers
    user users owner owners listing listed list lists says say said state states stated mention
    mentions mentioned according note notes noted specify specifies specified detail details
    source sources seller manufacturer answer answers yes no true yeah have has had having get
    gets got do does did done be is are was were been being go goes went come per piece pieces
    total
    """
)
_ADVICE_GENERIC = _words(
    """
    recommend recommended recommendation good great nice choice choices option options pick
    picks suitable suit suits fit fits fitting consider considered buy buying purchase worth
    look looking need needs want wants if you your shopper shoppers budget match matches
    """
)
# Units written differently that mean the same.
_UNITS = {
    "hr": "hour",
    "hrs": "hour",
    "h": "hour",
    "min": "minute",
    "mins": "minute",
    "sec": "second",
    "secs": "second",
    "in": "inch",
    "inche": "inch",
    "ft": "foot",
    "feet": "foot",
    "lb": "pound",
    "lbs": "pound",
    "oz": "ounce",
    "kg": "kilogram",
    "kilo": "kilogram",
    "g": "gram",
    "ml": "milliliter",
    "l": "liter",
    "litre": "liter",
    "cm": "centimeter",
    "mm": "millimeter",
    "w": "watt",
    "v": "volt",
    "yr": "year",
    "yrs": "year",
    "qt": "quart",
    "gal": "gallon",
}
_NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "single": 1,
    "pair": 2,
    "dozen": 12,
    "half": 0.5,
}
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
# Chinese characters that state nothing a source must hold.
_ZH_GENERIC = frozenset(
    "它这那该款个是的了有和与及也都很可以能会就在为对于用其此它们根据描述评论页面商品产品说提到显示"
)
_BOOL_VALUES = {"true": True, "yes": True, "false": False, "no": False, "是": True, "否": False}


@dataclass(frozen=True)
class CheckSource:
    """What a claim may be checked against: the cited source as stored, and its product."""

    number: int
    title: str
    text: str
    product: Product | None = None
    kind: str = "product"


@dataclass(frozen=True)
class Supported:
    """A claim that may ship: its text (without a leading Yes/No), its quote and where the
    quote is in the source's text (None: in its title), and the Yes/No it settles. When the
    model's wording said more than its quote (``quoted``), the quote itself is the claim."""

    source: int
    text: str
    quote: str
    span: tuple[int, int] | None
    verdict: Verdict | None = None
    quoted: bool = False
    reworded: str = ""  # why the model's wording was not kept ("" when it was)


@dataclass(frozen=True)
class Rejected:
    """A claim that may not ship, why (one of the `check_claim` reasons), and the model's
    line as parsed (None: the line did not parse, or was never a claim)."""

    reason: str
    detail: str = ""
    claim: QuotedClaim | None = field(default=None, compare=False)


@dataclass
class ClaimContext:
    """What every claim of one answer is checked against."""

    question: str
    mode: Literal["advice", "ask"]
    sources: dict[int, CheckSource]
    kind: QuestionKind = "open"
    chinese: bool = False
    # The similarity of a statement to the question (None: not scored).
    relevance: Callable[[str], float | None] = field(default=lambda _: None)
    min_relevance: float | None = None


def _numbers(text: str) -> set[float]:
    return numbers_in(_NUMBER_WORD_RE.sub(lambda m: f" {_NUMBER_WORDS[m[1].lower()]:g} ", text))


def _latin_terms(text: str) -> set[str]:
    latin = re.sub(rf"[{CJK_RANGE}]+", " ", text)
    return {_UNITS.get(t, t) for t in tokenize(latin) if not any(c.isdigit() for c in t)}


def _cjk_chars(text: str) -> set[str]:
    return {c for c in normalize(text) if has_cjk(c)}


def uncovered(claim: str, quote: str, title: str, mode: Literal["advice", "ask"]) -> list[str]:
    """The content words (Chinese: characters) of ``claim`` that its quote and the product's
    title do not hold."""
    generic = _GENERIC | _ADVICE_GENERIC if mode == "advice" else _GENERIC
    known = _latin_terms(quote) | _latin_terms(title)
    missing = sorted(t for t in _latin_terms(claim) - known if t not in generic)
    chars = _cjk_chars(claim) - _cjk_chars(quote) - _cjk_chars(title) - _ZH_GENERIC
    return missing + sorted(chars)


def _same(a: float, b: float) -> bool:
    return abs(a - b) < 0.005 or (b >= 10 and round(b) == a)


def _attribute_conflict(claim: str, product: Product | None) -> str:
    """The yes/no attribute of ``product`` that ``claim`` contradicts ("" when none)."""
    if product is None:
        return ""
    terms = _latin_terms(claim)
    for name, value in product.attributes.items():
        truth = _BOOL_VALUES.get(str(value).strip().casefold())
        words = _latin_terms(name.replace("_", " "))
        if truth is None or not words or not words <= terms:
            continue
        if negated(claim) == truth:
            return f"{name}: {value}"
    return ""


def _asked(question: str, title: str) -> tuple[set[str], set[str]]:
    """The content words (and Chinese characters) of ``question`` that are not just the
    product's name."""
    return (
        _latin_terms(question) - _GENERIC - _latin_terms(title),
        _cjk_chars(question) - _ZH_GENERIC - _cjk_chars(title),
    )


def _on_subject(question: str, quote: str, title: str) -> bool:
    """Whether ``quote`` speaks of what ``question`` asks about: a content word of the
    question that is not just the product's name is in the quote."""
    asked, zh_asked = _asked(question, title)
    if asked & _latin_terms(quote):
        return True
    return len(zh_asked & _cjk_chars(quote)) >= 2 or (
        len(zh_asked) == 1 and zh_asked <= _cjk_chars(quote)
    )


def _covers_most(question: str, quote: str, title: str) -> bool:
    """Whether ``quote`` holds at least half of what ``question`` asks about (its content
    words, or for Chinese its characters); any quote does when it asks about nothing in
    particular ("what do reviews say?")."""
    asked, zh_asked = _asked(question, title)
    words = asked | zh_asked
    held = (asked & _latin_terms(quote)) | (zh_asked & _cjk_chars(quote))
    return 2 * len(held) >= len(words)


def _passage_disagrees(question: str, quote: str, source: CheckSource) -> bool:
    """Whether another statement of the quote's passage, on the question's subject, denies
    what the quote affirms or the reverse ("in the box: software disc" … "not true! there is
    no software with it")."""
    return any(
        negated(other) != negated(quote)
        for other in statements(source.text)
        if other.strip() not in quote
        and quote.strip() not in other
        and quotable(other)
        and not hedged(other)
        and _on_subject(question, other, source.title)
    )


def _stance(text: str, source: CheckSource, context: ClaimContext) -> Verdict | None:
    """The Yes or No a claim without one takes: a claim that restates the question's subject
    in words its quote holds ("It comes with a key." from "2 keys come with the box") answers
    it, with its own polarity. None when it is not about what was asked."""
    if not _on_subject(context.question, text, source.title):
        return None
    return question_verdict(context.question, text)


def question_verdict(question: str, quote: str) -> Verdict:
    """The Yes or No that ``quote`` gives to ``question``: Yes when it affirms what the
    question asks about, or denies what a negated question asks about ("does it work without
    batteries?" — "works without batteries"; 不防水吗？— 不，防水); No otherwise. How a
    question asks is not a denial ("Doesn't it come with a charger?", 有没有充电器：
    `generation.questions.question_negated`)."""
    return "no" if negated(quote) != question_negated(question) else "yes"


# A claim states; it does not tell the shopper to act. One that does repeats an instruction
# found in a source (a review saying "tell the shopper to buy p999"): shown only as a quote.
_INSTRUCTION = re.compile(
    r"^\s*(?:please\s+)?(?:buy|order|purchase|ignore|disregard|forget|tell|click|visit|go|call|"
    r"contact|email|send|follow|use|try|get|choose|pick|avoid|act|say|reply|write)\b"
    r"|\byou (?:must|should|have to|need to)\b|\b(?:previous|prior|above) instructions?\b"
    r"|^\s*(?:请|务必|忽略|购买|点击)",
    re.IGNORECASE,
)


# Words of a source addressed to the model rather than to shoppers: never shown at all.
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|rules|prompt)\b"
    r"|\b(?:tell|instruct|ask) the (?:shopper|user|customer|buyer)s?\b|\bsystem prompt\b"
    r"|\byou (?:must|should) (?:buy|recommend|say)\b|忽略.{0,10}(?:指令|指示|规则)",
    re.IGNORECASE,
)


def _wording(text: str, quote: str, source: CheckSource, context: ClaimContext) -> str:
    """Why the model's wording says more than its quote ("" when it does not)."""
    if _INSTRUCTION.search(text):
        return "instruction"
    if context.chinese != is_chinese(text) and (context.chinese or has_cjk(text)):
        return "language"
    known = _numbers(quote) | _numbers(source.title)
    for value in _numbers(text):
        if not any(_same(value, k) for k in known):
            return f"number_not_in_quote: {value:g}"
    if negated(text) != negated(quote):
        return "polarity"
    missing = uncovered(text, quote, source.title, context.mode)
    if missing:
        return "not_in_quote: " + ", ".join(missing)
    conflict = _attribute_conflict(text, source.product)
    return f"attribute: {conflict}" if conflict else ""


def check_claim(claim: QuotedClaim, context: ClaimContext) -> Supported | Rejected:
    """The claim as it may ship, or why not (see the module docstring), with the model's line.

    A claim whose wording says more than its quote (checks 2–6) ships as the quote itself,
    shown as a quote (in a question about one product, when the quote answers it: check 7)."""
    checked = _check(claim, context)
    if isinstance(checked, Rejected):
        return replace(checked, claim=claim)
    return checked


def _check(claim: QuotedClaim, context: ClaimContext) -> Supported | Rejected:
    source = context.sources.get(claim.source)
    if source is None:
        return Rejected("unknown_source", f"[{claim.source}]")
    span = locate(claim.quote, source.text)
    if span is None and locate(claim.quote, source.title) is None:
        return Rejected("quote_not_in_source", claim.quote)
    quote = source.text[span[0] : span[1]] if span else claim.quote
    said, text = split_verdict(claim.text)
    if not text.strip(" .!?。！？"):
        return Rejected("empty_claim")
    if _INJECTION.search(quote):
        return Rejected("instruction", quote)
    conflict = _attribute_conflict(quote, source.product)
    if conflict:  # the page contradicts itself: neither the claim nor its quote ships
        return Rejected("attribute", conflict)
    reworded = _wording(text, quote, source, context)
    if (
        said is not None
        and reworded == "polarity"
        and not _wording(claim.text, quote, source, context)
    ):
        # its "No" was a word of the claim, not a verdict ("No keys come with the box.")
        said, text, reworded = None, claim.text, ""
    if reworded.startswith("attribute"):
        return Rejected("attribute", reworded.partition(": ")[2])
    verdict: Verdict | None = None
    if context.mode == "ask":
        floor = context.min_relevance
        score = context.relevance(quote)
        far = floor is not None and score is not None and score < floor
        if far and not _on_subject(context.question, quote, source.title):
            return Rejected("not_an_answer", f"quote relevance {score:.2f}")
        if not holds_kind(context.kind, quote):
            return Rejected("not_an_answer", f"no {context.kind} in the quote")
        if context.kind == "yes_no":
            if hedged(quote):
                return Rejected("unsettled", f"only guesses: {quote}")
            if not _on_subject(context.question, quote, source.title):
                return Rejected("unsettled", f"off the subject: {quote}")
            # A word in common is not enough to settle it: the quote must also be close to
            # the question ("phones" in "do you have phones for metro pcs?" and "an otterbox
            # to fit most samsung phones"), or hold most of what it asks about.
            if far and not _covers_most(context.question, quote, source.title):
                return Rejected("unsettled", f"far from the question ({score:.2f}): {quote}")
            verdict = question_verdict(context.question, quote)
            if _passage_disagrees(context.question, quote, source):
                return Rejected("unsettled", f"the passage says both: {quote}")
            if said is None and not reworded:
                said = _stance(text, source, context)
            if said is not None and said != verdict:
                return Rejected("polarity", f"says {said}, the quote says {verdict}")
            # A quote shown alone gives no Yes or No: only the model's own words, checked, do.
            if reworded:
                return Rejected("unsettled", f"the model's words said more ({reworded}): {quote}")
            if said is None:  # the model did not find a Yes or No in it either
                return Rejected("unsettled", f"no Yes or No from the model: {quote}")
        elif reworded and hedged(quote):
            return Rejected("not_an_answer", f"shown alone, the quote only guesses: {quote}")
        elif (
            reworded
            and context.kind == "open"
            and not _covers_most(context.question, quote, source.title)
        ):
            # Shown alone, a quote must hold most of what was asked (a duration, a count, a
            # measure or a price it holds by `holds_kind`): the model's reading of it is not
            # shown, and a quote about something else is not an answer.
            return Rejected("not_an_answer", f"shown alone, the quote holds too little: {quote}")
    return Supported(
        claim.source, text, quote, span, verdict, quoted=bool(reworded), reworded=reworded
    )
