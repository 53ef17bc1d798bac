"""Grounded answers: shopping advice over products, and questions about one product.

Constraints that code can check (price, brand, stock, rating) become filters before retrieval,
so the model never has to judge numbers. Sources go to the model numbered; its citations are
checked against them, and an answer with no valid citation becomes an abstention.
Answers stream as `TokenEvent`s followed by one `FinalEvent`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from generation.admission import Admission
from generation.claims import ClaimStream, abstain_reason
from generation.compare import Comparison, compare_products, comparison_claims
from generation.constraints import parse_constraints
from generation.conversation import Conversation, ConversationStore, FollowUp, Turn, interpret
from generation.evidence import quotable, scored_statements, statements
from generation.facts import render_claims
from generation.llm.base import LLM, GenerationError, GenerationOptions, generate
from generation.pipelines import build_answer_pipeline
from generation.prompts import ABSTAIN_MARKER, Source, advice_messages, ask_messages, sanitize
from generation.questions import QuestionKind, question_kind
from generation.quotes import Claim
from generation.support import CheckSource, ClaimContext, Rejected
from retrieval.schema import Filters, Product
from retrieval.search import HybridSearch, ResultPolicy
from retrieval.text import has_cjk

logger = logging.getLogger(__name__)

NO_ADVICE_EN = "The catalog does not support an answer to this question."
NO_ADVICE_ZH = "商品目录中没有足以回答这个问题的信息。"
NO_ANSWER_EN = "This product's page does not answer that question."
NO_ANSWER_ZH = "该商品的页面信息无法回答这个问题。"
CLOSEST_EN = "The closest products found, not confirmed to fit your question:"
CLOSEST_ZH = "找到的最接近的商品（未确认符合您的问题）："
CLOSEST_SHOWN = 3
CLOSEST_PASSAGE_EN = "The closest passage, which does not settle it:"
CLOSEST_PASSAGE_ZH = "最接近的一段（不足以回答）："
ASK_STATEMENTS = 6  # the statements of a product's page shown to the model for a question


class UnknownProduct(LookupError):
    """No product with this id."""


@dataclass(frozen=True)
class Answer:
    """A finished answer with the sources it cites and the ones it was given."""

    question: str
    text: str
    abstained: bool
    cited: list[Source]
    sources: list[Source]
    applied_constraints: list[str]
    filters: Filters
    timings_ms: dict[str, float] = field(default_factory=dict)
    # The answer as statements, each with the sources it cites (empty when abstaining).
    claims: list[Claim] = field(default_factory=list)
    # Why it abstained: "no_sources" (retrieval found nothing), "weak_evidence" (no passage is
    # similar enough to the question: the model was not asked), "model" (the model said the
    # sources do not answer), "not_answered" (its claims did not answer the question or settle
    # a yes/no), "unsupported" (no claim was supported by its quote; `generation.claims`).
    abstain_reason: str | None = None
    # The best cosine similarity between the question and a source (None when the embedder
    # did not score them), and when it abstained, the closest products (advice) or passage.
    evidence: float | None = None
    closest: list[Source] = field(default_factory=list)
    # Claims dropped by the checker (`generation.support`): the model's line and why.
    dropped: list[Rejected] = field(default_factory=list)
    # For a question about one product: what it asks for, and the Yes or No its quote gave.
    kind: QuestionKind | None = None
    verdict: str | None = None
    # In a conversation: its id, how this question continued it ("new", "cheaper", "pricier",
    # "among_shown", "compare"), and for "compare" the side-by-side table.
    conversation_id: str | None = None
    follow_up: str | None = None
    comparison: Comparison | None = None

    @property
    def dropped_claims(self) -> int:
        """How many claims the checker dropped."""
        return len(self.dropped)

    @property
    def dropped_reasons(self) -> list[str]:
        """Why each dropped claim was dropped, one reason each."""
        return [r.reason for r in self.dropped]


@dataclass(frozen=True)
class TokenEvent:
    """A piece of the answer as the model writes it (citations already checked)."""

    text: str


@dataclass(frozen=True)
class QueuedEvent:
    """The answer waits for the generator; ``place`` is its place in line (1: next)."""

    place: int


@dataclass(frozen=True)
class FinalEvent:
    """The finished answer; its text is authoritative."""

    answer: Answer


AnswerEvent = TokenEvent | QueuedEvent | FinalEvent


def _abstention(
    question: str, mode: Literal["advice", "ask"], closest: Sequence[Source] = ()
) -> str:
    """The "cannot answer" reply; for advice, followed by the closest products, labelled."""
    chinese = has_cjk(question)
    if mode == "ask":
        text = NO_ANSWER_ZH if chinese else NO_ANSWER_EN
        if closest and closest[0].shown:
            label = CLOSEST_PASSAGE_ZH if chinese else CLOSEST_PASSAGE_EN
            text += f"\n{label} “{closest[0].shown[0]}”"
        return text
    text = NO_ADVICE_ZH if chinese else NO_ADVICE_EN
    if closest:
        label, sep = (CLOSEST_ZH, "；") if chinese else (CLOSEST_EN, "; ")
        text += f"\n{label} {sep.join(s.title for s in closest)}"
    return text


_ADVICE_DESCRIPTION_CHARS = 220  # prompt length is time to first token on a CPU


def _first_sentences(text: str, limit: int) -> str:
    """Whole sentences from the start of ``text``, at most ``limit`` characters if possible."""
    if len(text) <= limit:
        return text
    cut = max(text.rfind(mark, 0, limit) for mark in (". ", "。", "! ", "? ", "！", "？"))
    return text[: cut + 1] if cut > 0 else text[:limit].rstrip() + "…"


def _product_source(number: int, product: Product) -> Source:
    facts = []
    if product.brand:
        facts.append(f"brand: {product.brand}")
    if product.price is not None:
        facts.append(f"price: {product.price:.2f} {product.currency}")
    if product.rating is not None:
        count = f" ({product.review_count} reviews)" if product.review_count else ""
        facts.append(f"rating: {product.rating}/5{count}")
    if product.in_stock is not None:
        facts.append(f"in stock: {'yes' if product.in_stock else 'no'}")
    if product.category:
        facts.append(f"category: {' > '.join(product.category_path)}")
    attributes = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in product.attributes.items())
    text = " | ".join(facts)
    if attributes:
        text += f" | {attributes}"
    if product.description:
        text += f" | {_first_sentences(product.description, _ADVICE_DESCRIPTION_CHARS)}"
    return Source(number, product.id, product.id, "product", product.title, text, product)


class AnswerService:
    """Shopping advice and product questions on top of hybrid search and an LLM."""

    def __init__(
        self,
        search: HybridSearch,
        llm: LLM,
        *,
        options: GenerationOptions | None = None,
        advice_sources: int = 5,
        ask_sources: int = 5,
        constrained: bool = True,
        conversations: ConversationStore | None = None,
        ask_min_evidence: float | None = None,
        min_quote_relevance: float | None = None,
        admission: Admission | None = None,
        queue_timeout_s: float = 120.0,
    ) -> None:
        """``ask_min_evidence``: a question about a product whose best passage is less similar
        than this (cosine, the search's embedder) is answered "cannot answer" without asking
        the model (None: always ask). ``min_quote_relevance``: a claim whose quote is less
        similar to the question than this, and shares none of its words, does not answer it.
        ``admission``: the line in front of the model (`generation.admission`)."""
        self.search = search
        self.min_quote_relevance = min_quote_relevance
        self.admission = admission or Admission()
        self.queue_timeout_s = queue_timeout_s
        self.ask_min_evidence = ask_min_evidence
        self.llm = llm
        self.advice_sources = advice_sources
        self.conversations = conversations
        self.ask_sources = ask_sources
        self._pipelines = {
            "advice": build_answer_pipeline(llm, "advice", options, constrained=constrained),
            "ask": build_answer_pipeline(llm, "ask", options, constrained=constrained),
        }

    def warm_up(self, *, prime: bool = False) -> None:
        """Load the model; with ``prime``, then `prime` it."""
        self.llm.warm_up()
        if prime:
            self.prime()

    def prime(self) -> None:
        """Run each prompt's fixed instructions once, so that a backend with a prompt cache
        answers the first shopper as fast as the next."""
        started = time.perf_counter()
        empty: list[Source] = []
        for build in (advice_messages, ask_messages):
            generate(self.llm, build("", empty), GenerationOptions(max_tokens=1))
        logger.info("primed the prompt cache in %.1f s", time.perf_counter() - started)

    # -- sources ---------------------------------------------------------------------------

    def advice_sources_for(
        self,
        question: str,
        filters: Filters | None,
        *,
        rerank: bool = True,
        policy: ResultPolicy | None = None,
    ) -> tuple[list[Source], list[str], Filters, float]:
        """The products to show the model, the constraints applied, and retrieval time."""
        sources, applied, merged, _, took = self._advice_search(question, filters, rerank, policy)
        return sources, applied, merged, took

    def _advice_search(
        self, question: str, filters: Filters | None, rerank: bool, policy: ResultPolicy | None
    ) -> tuple[list[Source], list[str], Filters, str, float]:
        start = time.perf_counter()
        parsed = parse_constraints(question, known_brands=self.search.store.brands())
        merged = parsed.filters.merged(filters)
        result = self.search.search(
            parsed.text, filters=merged, size=self.advice_sources, rerank=rerank, policy=policy
        )
        sources = [_product_source(i, h.product) for i, h in enumerate(result.hits, start=1)]
        took = (time.perf_counter() - start) * 1000
        return sources, list(parsed.applied), merged, parsed.text, took

    def ask_sources_for(
        self, product_id: str, question: str, *, rerank: bool = True
    ) -> tuple[list[Source], float, float | None]:
        """The product's passages that best match the question, numbered, the retrieval time,
        and the best statement's similarity to the question (`generation.evidence`)."""
        sources, took, best, _ = self._ask_sources(product_id, question, rerank)
        return sources, took, best

    def _ask_sources(
        self, product_id: str, question: str, rerank: bool
    ) -> tuple[list[Source], float, float | None, dict[str, float]]:
        """The passages, with only their statements closest to the question shown (the best
        `ASK_STATEMENTS` in all: a short prompt is a fast first token), and each statement's
        similarity to the question."""
        start = time.perf_counter()
        product = self.search.store.get_product(product_id)
        if product is None:
            msg = f"no product with id '{product_id}'"
            raise UnknownProduct(msg)
        hits = self.search.passages(product_id, question, top_k=self.ask_sources, rerank=rerank)
        ranked = scored_statements(question, hits, self.search.embedder)
        chosen: dict[int, list[str]] = {}
        if ranked is None:  # not scored: the first statements of the first passages
            for i, hit in enumerate(hits[:3]):
                chosen[i] = [sanitize(s) for s in statements(hit.text) if quotable(s)][:2]
        else:
            for statement in [s for s in ranked if quotable(s.text)][:ASK_STATEMENTS]:
                chosen.setdefault(statement.hit, []).append(sanitize(statement.text))
        sources = [
            Source(
                n,
                hits[i].unit_id,
                product_id,
                hits[i].kind,
                product.title,
                hits[i].text,
                shown=tuple(chosen[i]),
            )
            for n, i in enumerate(chosen, start=1)  # the passage of the best statement first
        ]
        relevance = {sanitize(s.text): s.score for s in ranked or []}
        best = ranked[0].score if ranked else None
        return sources, (time.perf_counter() - start) * 1000, best, relevance

    # -- answers ---------------------------------------------------------------------------

    def stream_advice(
        self,
        question: str,
        filters: Filters | None = None,
        *,
        rerank: bool = True,
        cancelled: Callable[[], bool] | None = None,
        conversation_id: str | None = None,
        user_id: str | None = None,
        owner: str | None = None,
        policy: ResultPolicy | None = None,
    ) -> Iterator[AnswerEvent]:
        """Advice for a shopping question, streamed; with ``conversation_id``, a follow-up
        ("cheaper ones?", "which of these…", "compare the first two") continues that
        conversation (`generation.conversation`), kept under ``user_id`` when given, else
        under ``owner`` (the caller). A ``policy`` (personalization, diversity) orders the
        products found."""
        if conversation_id is None:
            sources, applied, merged, retrieval_ms = self.advice_sources_for(
                question, filters, rerank=rerank, policy=policy
            )
            yield from _safe(
                self._stream(
                    _Asked("advice", question, sources, applied, merged, retrieval_ms), cancelled
                )
            )
            return
        if self.conversations is None:
            msg = "conversations are not configured"
            raise ValueError(msg)
        conversation = self.conversations.load(conversation_id, user_id, owner)
        follow = interpret(question, conversation)
        events = (
            self._compare(question, conversation, follow)
            if follow.kind == "compare"
            else self._continue(question, filters, conversation, follow, rerank, policy, cancelled)
        )
        for event in _safe(events):
            if isinstance(event, FinalEvent):
                # the question the shopper asked, not the one the model was given
                event = FinalEvent(
                    replace(
                        event.answer,
                        question=question,
                        conversation_id=conversation_id,
                        follow_up=follow.kind,
                    )
                )
                self._remember(conversation, follow, event.answer)
            yield event

    def _continue(
        self,
        question: str,
        filters: Filters | None,
        conversation: Conversation,
        follow: FollowUp,
        rerank: bool,
        policy: ResultPolicy | None,
        cancelled: Callable[[], bool] | None,
    ) -> Iterator[AnswerEvent]:
        """A new search, the last search with a price bound, or the products shown last."""
        asked = question if follow.kind == "new" else f"{conversation.question} ({question})"
        if follow.kind == "among_shown":
            start = time.perf_counter()
            found = self.search.store.get_products(conversation.shown)
            products = [found[i] for i in conversation.shown if i in found]
            sources = [_product_source(i, p) for i, p in enumerate(products, start=1)]
            shown = Filters(product_ids=[p.id for p in products])
            took = (time.perf_counter() - start) * 1000
            request = _Asked("advice", asked, sources, ["the products shown last"], shown, took)
            yield from self._stream(request, cancelled)
            return
        text, applied_first = question, []
        if follow.kind in ("cheaper", "pricier"):
            # the last search again, with the new question's own constraints and a price bound
            extra = parse_constraints(question, known_brands=self.search.store.brands())
            text = conversation.query
            filters = conversation.filters.merged(extra.filters).merged(filters)
            applied_first = list(extra.applied)
            bound = self._price_bound(conversation, cheaper=follow.kind == "cheaper")
            if bound is not None:
                filters = filters.merged(bound)
                applied_first.insert(
                    0,
                    f"price < {bound.price_max:g}"
                    if bound.price_max is not None
                    else f"price > {bound.price_min:g}",
                )
        sources, applied, merged, search_text, took = self._advice_search(
            text, filters, rerank, policy
        )
        conversation.query, conversation.filters = search_text, merged
        if follow.kind == "new":
            conversation.question = question
        request = _Asked("advice", asked, sources, applied_first + applied, merged, took)
        yield from self._stream(request, cancelled)

    def _price_bound(self, conversation: Conversation, *, cheaper: bool) -> Filters | None:
        """Below the cheapest (above the dearest) product the last answer recommended, or
        None when none of them has a price."""
        ids = conversation.cited or conversation.shown
        prices = [p.price for p in self.search.store.get_products(ids).values() if p.price]
        if not prices:
            return None
        if cheaper:
            return Filters(price_max=round(min(prices) - 0.01, 2))
        return Filters(price_min=round(max(prices) + 0.01, 2))

    def _compare(
        self, question: str, conversation: Conversation, follow: FollowUp
    ) -> Iterator[AnswerEvent]:
        """The products named, side by side from their catalog fields, every line cited."""
        start = time.perf_counter()
        ids = [conversation.shown[p] for p in follow.positions]
        found = self.search.store.get_products(ids)
        products = [found[i] for i in ids if i in found]
        sources = [_product_source(i, p) for i, p in enumerate(products, start=1)]
        filters = Filters(product_ids=[p.id for p in products])
        if len(products) < 2:
            text = _abstention(question, "advice")
            yield TokenEvent(text)
            yield FinalEvent(
                Answer(question, text, True, [], sources, [], filters, abstain_reason="no_sources")
            )
            return
        language = "zh" if has_cjk(question) else "en"
        comparison = compare_products(products, language=language)
        claims = comparison_claims(comparison, [s.number for s in sources], language=language)
        text = render_claims(claims)
        yield TokenEvent(text)
        yield FinalEvent(
            Answer(
                question=question,
                text=text,
                abstained=False,
                cited=sources,
                sources=sources,
                applied_constraints=[],
                filters=filters,
                timings_ms={"total": round((time.perf_counter() - start) * 1000, 3)},
                claims=claims,
                comparison=comparison,
            )
        )

    def _remember(self, conversation: Conversation, follow: FollowUp, answer: Answer) -> None:
        """Add the turn; a search that found products becomes the last result set."""
        assert self.conversations is not None
        cited = [s.product_id for s in answer.cited]
        conversation.turns.append(Turn(answer.question, answer.text, cited))
        if follow.kind in ("new", "cheaper", "pricier") and answer.sources:
            conversation.shown = [s.product_id for s in answer.sources]
            conversation.cited = cited
        elif cited:
            conversation.cited = cited
        self.conversations.save(conversation)

    def stream_ask(
        self,
        product_id: str,
        question: str,
        *,
        rerank: bool = True,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[AnswerEvent]:
        """An answer from one product's own passages, streamed."""
        sources, retrieval_ms, best, relevance = self._ask_sources(product_id, question, rerank)
        filters = Filters(product_ids=[product_id])
        floor = self.ask_min_evidence
        weak = floor is not None and best is not None and best < floor
        request = _Asked("ask", question, sources, [], filters, retrieval_ms, best, relevance)
        yield from _safe(self._stream(request, cancelled, weak=weak))

    def advise(self, question: str, filters: Filters | None = None, **kwargs: Any) -> Answer:
        """Advice for a shopping question."""
        return final_answer(self.stream_advice(question, filters, **kwargs))

    def ask(self, product_id: str, question: str, **kwargs: Any) -> Answer:
        """An answer from one product's own passages."""
        return final_answer(self.stream_ask(product_id, question, **kwargs))

    def _stream(
        self, asked: _Asked, cancelled: Callable[[], bool] | None, *, weak: bool = False
    ) -> Iterator[AnswerEvent]:
        if not asked.sources or weak:
            text = _abstention(asked.question, asked.mode, asked.closest)
            yield TokenEvent(text)
            reason = "weak_evidence" if asked.sources else "no_sources"
            yield FinalEvent(asked.answer(text, reason, None))
            return

        ticket = self.admission.enter()  # GeneratorBusy now, before anything is streamed
        try:
            for place in ticket.wait(timeout_s=self.queue_timeout_s, cancelled=cancelled):
                yield QueuedEvent(place)
            yield from self._generate(asked, cancelled)
        finally:
            ticket.leave()

    def _generate(
        self, asked: _Asked, cancelled: Callable[[], bool] | None
    ) -> Iterator[AnswerEvent]:
        """Run the model and hand out each claim once it is checked."""
        mode, question, sources = asked.mode, asked.question, asked.sources
        context = ClaimContext(
            question=question,
            mode=mode,
            sources={s.number: _check_source(s) for s in sources},
            kind=question_kind(question) if mode == "ask" else "open",
            chinese=asked.chinese,
            relevance=lambda quote: _relevance(quote, asked.relevance),
            min_relevance=self.min_quote_relevance,
        )
        stream = ClaimStream(context, ABSTAIN_MARKER)
        pieces: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()

        def is_cancelled() -> bool:
            return stop.is_set() or stream.stop or (cancelled is not None and cancelled())

        def work() -> None:
            try:
                result = self._pipelines[mode].run(
                    {
                        "prompt": {"question": question, "sources": list(sources)},
                        "generator": {
                            "streaming_callback": lambda p: pieces.put(("piece", p)),
                            "cancelled": is_cancelled,
                        },
                    },
                    include_outputs_from={"generator"},
                )
                pieces.put(("done", result))
            except Exception as exc:  # noqa: BLE001 - handed to the consumer thread
                pieces.put(("error", exc))

        worker = threading.Thread(target=work, name=f"{mode}-generation", daemon=True)
        worker.start()
        first_claim: float | None = None
        try:
            while True:
                kind, value = pieces.get()
                if kind == "piece":
                    out = stream.feed(value)
                    if out:
                        first_claim = first_claim or time.perf_counter()
                        yield TokenEvent(out)
                elif kind == "error":
                    raise _as_generation_error(value)
                else:
                    break
        finally:
            stop.set()
        tail = stream.finish()
        if tail:
            first_claim = first_claim or time.perf_counter()
            yield TokenEvent(tail)
        generator = value["generator"]
        shown = first_claim or time.perf_counter()
        timing = {
            # what the shopper waits for: the first checked claim (or the final text)
            "first_token": round(asked.retrieval_ms + (shown - asked.started) * 1000, 3),
            "model_first_token": round(asked.retrieval_ms + generator["first_token_ms"], 3),
            "generation": round(generator["took_ms"], 3),
            "pieces": float(generator["pieces"]),
        }
        if stream.rejected:
            logger.info("dropped %d claims: %s", len(stream.rejected), ", ".join(stream.reasons()))
        reason = abstain_reason(stream)
        if reason is None:
            yield FinalEvent(asked.answer(stream.text, None, stream, **timing))
            return
        text = _abstention(question, mode, asked.closest)
        yield TokenEvent(text)
        yield FinalEvent(asked.answer(text, reason, stream, **timing))


@dataclass
class _Asked:
    """A question being answered: its sources and filters, how long retrieval took, and for
    a question about one product the evidence and each shown statement's similarity."""

    mode: Literal["advice", "ask"]
    question: str
    sources: Sequence[Source]
    applied: list[str]
    filters: Filters
    retrieval_ms: float
    evidence: float | None = None
    relevance: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @property
    def chinese(self) -> bool:
        return has_cjk(self.question)

    @property
    def closest(self) -> list[Source]:
        """What an abstention offers: the closest products, or the best passage."""
        return list(self.sources[: CLOSEST_SHOWN if self.mode == "advice" else 1])

    def answer(
        self, text: str, reason: str | None, stream: ClaimStream | None, **timing: float
    ) -> Answer:
        """The finished answer: ``text``, abstaining for ``reason`` (None: it answers), with
        the claims that ``stream`` shipped and dropped."""
        by_number = {s.number: s for s in self.sources}
        claims = stream.claims() if stream is not None and reason is None else []
        cited = sorted({n for c in claims for n in c.sources})
        return Answer(
            question=self.question,
            text=text,
            abstained=reason is not None,
            cited=[by_number[n] for n in cited],
            sources=list(self.sources),
            applied_constraints=self.applied,
            filters=self.filters,
            timings_ms={
                "retrieval": round(self.retrieval_ms, 3),
                **timing,
                "total": round(self.retrieval_ms + (time.perf_counter() - self.started) * 1000, 3),
            },
            claims=claims,
            abstain_reason=reason,
            dropped=list(stream.rejected) if stream is not None else [],
            evidence=self.evidence,
            closest=self.closest if reason is not None else [],
            kind=question_kind(self.question) if self.mode == "ask" else None,
            verdict=stream.verdict if stream is not None and reason is None else None,
        )


def safe_text(text: str) -> str:
    """Text safe to render as HTML or Markdown markup-free: angle brackets become look-alikes,
    so no tag (``<script>``) a model copied from a review can reach a page."""
    return text.replace("<", "‹").replace(">", "›")


def _safe(events: Iterator[AnswerEvent]) -> Iterator[AnswerEvent]:
    """The events with their text made `safe_text` (tokens, the answer and its claims)."""
    for event in events:
        if isinstance(event, TokenEvent):
            yield TokenEvent(safe_text(event.text))
            continue
        if not isinstance(event, FinalEvent):
            yield event
            continue
        answer = event.answer
        claims = [replace(c, text=safe_text(c.text)) for c in answer.claims]
        yield FinalEvent(replace(answer, text=safe_text(answer.text), claims=claims))


def _check_source(source: Source) -> CheckSource:
    """What a claim citing ``source`` is checked against: its text as stored, or for a
    product source the text the model saw."""
    return CheckSource(source.number, source.title, source.text, source.product, source.kind)


def _relevance(quote: str, scores: dict[str, float]) -> float | None:
    """The similarity to the question of the statement ``quote`` was taken from."""
    folded = " ".join(quote.split()).casefold()
    for statement, score in scores.items():
        if folded in " ".join(statement.split()).casefold():
            return score
    return None


def _as_generation_error(exc: BaseException) -> GenerationError:
    """The model's error, unwrapped from Haystack's pipeline error when wrapped."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, GenerationError):
            return seen
        seen = seen.__cause__
    return GenerationError(f"generation failed: {exc}")


def final_answer(events: Iterator[AnswerEvent]) -> Answer:
    """The answer of a stream's `FinalEvent` (the tokens before it are dropped)."""
    for event in events:
        if isinstance(event, FinalEvent):
            return event.answer
    msg = "the answer stream ended without a final event"
    raise GenerationError(msg)
