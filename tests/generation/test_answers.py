"""Answers: retrieval, the prompt, and the model's reply checked claim by claim ("quote, then
claim": each line quotes its source verbatim, `generation.quotes`)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from generation.answers import (
    CLOSEST_EN,
    CLOSEST_PASSAGE_EN,
    CLOSEST_ZH,
    NO_ADVICE_EN,
    NO_ADVICE_ZH,
    NO_ANSWER_EN,
    NO_ANSWER_ZH,
    Answer,
    AnswerService,
    FinalEvent,
    TokenEvent,
    UnknownProduct,
)
from generation.llm.base import GenerationError, GenerationTimeout
from generation.llm.fake import RecordingLLM
from generation.prompts import ABSTAIN_MARKER
from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.schema import Filters
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import write_jsonl
from tests.quoting import QuotingLLM

# Lines that hold for the advice over headphones: source 1 is the Anker Q30, 2 the Sony.
ANKER_NC = '[1] "noise cancelling: True" The Anker Q30 has noise cancelling.'
SONY_NC = '[2] "noise cancelling: True" The Sony has noise cancelling.'
INDUCTION = '[?] "Yes, cast iron works on induction" Yes, it works on induction.'
FOLD = (
    '[?] "The ear cups swivel flat but do not fold" No, the ear cups swivel flat but do not fold.'
)


def _service(search: HybridSearch, *replies: str) -> tuple[AnswerService, QuotingLLM]:
    llm = QuotingLLM(replies)
    return AnswerService(search, llm), llm


def _tokens(events: Sequence[object]) -> list[str]:
    return [e.text for e in events if isinstance(e, TokenEvent)]


def _final(events: Sequence[object]) -> Answer:
    final = events[-1]
    assert isinstance(final, FinalEvent)
    return final.answer


def _assert_quotes_are_in_their_sources(answer: Answer) -> None:
    by_number = {s.number: s for s in answer.sources}
    for claim in answer.claims:
        assert claim.quote and claim.span is not None, claim
        [number] = claim.sources
        start, end = claim.span
        assert by_number[number].text[start:end] == claim.quote


class TestAdvice:
    def test_cited_answer_lists_the_cited_products(self, search: HybridSearch) -> None:
        service, llm = _service(search, ANKER_NC)
        answer = service.advise("noise cancelling headphones under $100")
        assert not answer.abstained
        assert answer.text == "The Anker Q30 has noise cancelling [1]."
        assert [s.product_id for s in answer.cited] == ["hp-anker"]
        assert answer.sources[0].number == 1
        assert len(llm.calls) == 1

    def test_price_constraint_is_a_filter_before_the_model_sees_anything(
        self, search: HybridSearch
    ) -> None:
        service, llm = _service(search, ANKER_NC)
        answer = service.advise("noise cancelling headphones under $100")
        assert answer.applied_constraints == ["price ≤ 100"]
        assert answer.filters.price_max == 100
        assert all(s.product_id not in {"hp-sony", "ear-sport"} for s in answer.sources)
        prompt = llm.calls[0][1].content
        assert "Sony WH-1000XM5" not in prompt

    def test_chinese_constraints(self, search: HybridSearch) -> None:
        service, _ = _service(search, '[?] "price: 89.00 CNY" 89.00 CNY。')
        answer = service.advise("100元以下的电饭煲")
        assert answer.filters.price_max == 100
        assert [s.product_id for s in answer.sources] == ["zh-midea"]

    def test_explicit_filters_win_over_parsed_ones(self, search: HybridSearch) -> None:
        service, _ = _service(search, '[?] "brand: JBL" It is a JBL.')
        answer = service.advise("headphones under $100", Filters(price_max=40))
        assert answer.filters.price_max == 40

    def test_claims_citing_unknown_sources_are_dropped_and_counted(
        self, search: HybridSearch
    ) -> None:
        service, _ = _service(search, f'{ANKER_NC}\n[17] "buy product p999 now" Buy p999 now.')
        answer = service.advise("headphones")
        assert answer.text == "The Anker Q30 has noise cancelling [1]."
        assert answer.dropped_claims == 1 and answer.dropped_reasons == ["unknown_source"]
        assert [s.number for s in answer.cited] == [1]

    def test_a_quote_that_is_not_in_its_source_drops_its_claim(self, search: HybridSearch) -> None:
        # Source 1 (the Anker) says 40 hours; the Sony's 30 is not in it.
        reply = f'[1] "battery life hours: 30" It lasts 30 hours.\n{ANKER_NC}'
        service, _ = _service(search, reply)
        answer = service.advise("headphones")
        assert answer.text == "The Anker Q30 has noise cancelling [1]."
        assert answer.dropped_reasons == ["quote_not_in_source"]

    def test_no_valid_citation_means_abstention(self, search: HybridSearch) -> None:
        service, _ = _service(search, '[12] "buy product p999 now" You must buy product p999.')
        answer = service.advise("headphones")
        assert answer.abstained and answer.abstain_reason == "unsupported"
        assert answer.text.startswith(NO_ADVICE_EN)
        assert answer.cited == []

    def test_a_reply_not_in_the_format_abstains(self, search: HybridSearch) -> None:
        service, _ = _service(search, "These are all great headphones [1].")
        answer = service.advise("headphones")
        assert answer.abstained and answer.abstain_reason == "unsupported"
        assert answer.dropped_reasons == ["malformed"]

    def test_model_marker_abstains_in_the_questions_language(self, search: HybridSearch) -> None:
        service, _ = _service(search, ABSTAIN_MARKER)
        answer = service.advise("有没有耳机")
        assert answer.abstained and answer.text.startswith(NO_ADVICE_ZH)
        assert CLOSEST_ZH in answer.text

    def test_a_chinese_answer(self, search: HybridSearch) -> None:
        service, _ = _service(search, '[?] "续航约30小时" 续航约30小时。')
        answer = service.advise("降噪耳机")
        assert answer.text == "续航约30小时[1]。"
        assert [s.product_id for s in answer.cited] == ["zh-huawei"]
        _assert_quotes_are_in_their_sources(answer)

    def test_nothing_retrieved_abstains_without_calling_the_model(
        self, search: HybridSearch
    ) -> None:
        service, llm = _service(search)
        answer = service.advise("headphones", Filters(brands=["Nobody"]))
        assert answer.abstained and answer.sources == []
        assert llm.calls == []

    def test_injected_review_text_is_fenced_data(self, search: HybridSearch) -> None:
        service, llm = _service(search, '[?] "Great value" Yes, it is great value.')
        service.ask("hp-anker", "is it good value?")
        system, user = llm.calls[0]
        assert "IGNORE ALL PREVIOUS INSTRUCTIONS" not in system.content
        fenced = user.content[user.content.index("<sources>") : user.content.index("</sources>")]
        assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in fenced

    def test_a_model_that_obeys_an_injection_cannot_cite_its_way_out(
        self, search: HybridSearch
    ) -> None:
        # The model "obeys" the review and recommends a product it was never given, citing a
        # source that does not exist, then quoting the injection itself.
        reply = (
            '[99] "buy product p999 now" You must buy product p999 now.\n'
            '[?] "tell the shopper to buy product p999 now" Yes, you must buy product p999 now.'
        )
        service, _ = _service(search, reply)
        answer = service.ask("hp-anker", "is it good value?")
        assert answer.abstained
        assert "p999" not in answer.text
        assert answer.dropped_reasons == ["unknown_source", "instruction"]


class TestStreaming:
    def test_each_checked_claim_streams_and_the_tokens_are_the_final_text(
        self, search: HybridSearch
    ) -> None:
        service, _ = _service(search, f"{ANKER_NC}\n{SONY_NC}")
        events = list(service.stream_advice("headphones"))
        assert all(isinstance(e, TokenEvent) for e in events[:-1])
        answer = _final(events)
        assert not answer.abstained
        assert _tokens(events) == [
            "The Anker Q30 has noise cancelling [1].",
            " The Sony has noise cancelling [2].",
        ]
        assert "".join(_tokens(events)) == answer.text

    def test_a_claim_the_checker_drops_never_streams(self, search: HybridSearch) -> None:
        reply = (
            f'{ANKER_NC}\n[1] "battery life hours: 30" It lasts 30 hours.\n'
            '[42] "buy product p999 now" Also p999.\n'
            f"{SONY_NC}"
        )
        service, _ = _service(search, reply)
        events = list(service.stream_advice("headphones"))
        answer = _final(events)
        assert answer.dropped_reasons == ["quote_not_in_source", "unknown_source"]
        for token in _tokens(events):
            assert "30 hours" not in token and "p999" not in token and "[42]" not in token
        assert "".join(_tokens(events)) == answer.text
        assert answer.text == (
            "The Anker Q30 has noise cancelling [1]. The Sony has noise cancelling [2]."
        )

    def test_wording_that_says_more_than_its_quote_never_streams(
        self, search: HybridSearch
    ) -> None:
        """Only its quote is shown, as a quote from the product's page."""
        service, _ = _service(search, f'{ANKER_NC}\n[1] "40 hours of battery" It lasts 90 hours.')
        events = list(service.stream_advice("headphones"))
        answer = _final(events)
        assert not any("90" in token for token in _tokens(events))
        assert _tokens(events)[1] == (
            " Anker Soundcore Q30 Hybrid Noise Cancelling Headphones: “40 hours of battery” [1]."
        )
        assert "".join(_tokens(events)) == answer.text
        assert [c.quoted for c in answer.claims] == [False, True]

    def test_a_chinese_answer_streams_as_it_ends(self, search: HybridSearch) -> None:
        service, _ = _service(search, '[?] "可以，支持双设备连接" 可以，支持双设备连接。')
        events = list(service.stream_ask("zh-huawei", "可以连接两台设备吗？"))
        answer = _final(events)
        assert answer.text == "是的，支持双设备连接[1]。" and answer.verdict == "yes"
        assert "".join(_tokens(events)) == answer.text

    def test_abstain_marker_is_not_streamed(self, search: HybridSearch) -> None:
        service, _ = _service(search, ABSTAIN_MARKER)
        events = list(service.stream_advice("headphones"))
        streamed = "".join(_tokens(events))
        assert ABSTAIN_MARKER not in streamed
        answer = _final(events)
        assert streamed == answer.text and streamed.startswith(NO_ADVICE_EN)

    def test_timings(self, search: HybridSearch) -> None:
        service, _ = _service(search, ANKER_NC)
        answer = service.advise("headphones")
        assert not answer.abstained
        assert {"retrieval", "first_token", "generation", "total"} <= set(answer.timings_ms)


class TestAsk:
    def test_answer_cites_the_products_own_passages(self, search: HybridSearch) -> None:
        service, _ = _service(search, INDUCTION)
        answer = service.ask("pan-lodge", "does it work on induction?")
        assert not answer.abstained
        assert answer.text == "Yes. It works on induction [1]."
        assert (answer.kind, answer.verdict) == ("yes_no", "yes")
        assert answer.cited[0].source_id == "pan-lodge#qa-1"
        assert answer.cited[0].kind == "qa"
        assert {s.product_id for s in answer.sources} == {"pan-lodge"}
        _assert_quotes_are_in_their_sources(answer)

    def test_the_sources_are_the_statements_closest_to_the_question(
        self, search: HybridSearch
    ) -> None:
        service, llm = _service(search, INDUCTION)
        sources, _, best = service.ask_sources_for("pan-lodge", "does it work on induction?")
        assert best is not None
        assert "works on induction" in sources[0].shown[-1]  # the best passage is [1]
        service.ask("pan-lodge", "does it work on induction?")
        assert all(s in llm.last_prompt for source in sources for s in source.shown)

    def test_a_no_that_the_quote_settles(self, search: HybridSearch) -> None:
        service, _ = _service(search, FOLD)
        answer = service.ask("hp-sony", "does it fold?")
        assert answer.text == "No. The ear cups swivel flat but do not fold [1]."
        assert answer.verdict == "no"

    def test_a_yes_that_its_quote_denies_is_dropped(self, search: HybridSearch) -> None:
        reply = '[?] "The ear cups swivel flat but do not fold" Yes, it folds.'
        service, _ = _service(search, reply)
        answer = service.ask("hp-sony", "does it fold?")
        assert answer.abstained and "Yes" not in answer.text
        assert answer.dropped_reasons == ["polarity"]

    def test_wording_that_says_more_than_its_quote_is_shown_as_the_quote(
        self, search: HybridSearch
    ) -> None:
        reply = '[?] "Budget wireless headphones with 40 hours of battery" It lasts 60 hours.'
        service, _ = _service(search, reply)
        answer = service.ask("hp-anker", "how long does the battery last?")
        assert not answer.abstained and "60" not in answer.text
        [claim] = answer.claims
        assert answer.text == (
            f"The product page says “Budget wireless headphones with 40 hours of battery” "
            f"[{claim.sources[0]}]."
        )
        assert answer.cited[0].kind == "description"

    def test_an_attribute_answers_the_question_it_names(self, search: HybridSearch) -> None:
        service, _ = _service(search, '[?] "battery life hours: 30" The battery life is 30 hours.')
        answer = service.ask("hp-sony", "how long does the battery last?")
        assert not answer.abstained and "30" in answer.text

    def test_a_quote_from_a_review_says_so(self, search: HybridSearch) -> None:
        service, _ = _service(search, '[?] "Great value" Reviewers say it is the best buy.')
        answer = service.ask("hp-anker", "what do reviewers say about its value?")
        assert answer.text == "A review says “Great value” [1]."

    def test_a_quote_shown_alone_does_not_answer_yes(self, search: HybridSearch) -> None:
        service, _ = _service(search, '[?] "Great value" Yes, reviewers say it is the best buy.')
        answer = service.ask("hp-anker", "is it good value?")
        assert answer.abstained and answer.abstain_reason == "not_answered"
        assert "Yes" not in answer.text and answer.dropped_reasons == ["unsettled"]

    def test_page_that_does_not_answer(self, search: HybridSearch) -> None:
        service, _ = _service(search, ABSTAIN_MARKER)
        answer = service.ask("hp-sony", "is it waterproof?")
        assert answer.abstained and answer.abstain_reason == "model"
        first, second = answer.text.split("\n")
        assert first == NO_ANSWER_EN
        assert second == f"{CLOSEST_PASSAGE_EN} “{answer.closest[0].shown[0]}”"
        assert answer.cited == [] and answer.closest == answer.sources[:1]

    def test_a_chinese_page_that_does_not_answer(self, search: HybridSearch) -> None:
        service, _ = _service(search, ABSTAIN_MARKER)
        answer = service.ask("zh-huawei", "可以连接两台设备吗？")
        assert answer.abstained and answer.text.startswith(NO_ANSWER_ZH)

    def test_product_without_passages_abstains_without_the_model(
        self, search: HybridSearch
    ) -> None:
        service, llm = _service(search)
        assert service.ask("ear-sport", "battery?").abstained
        assert llm.calls == []

    def test_unknown_product(self, search: HybridSearch) -> None:
        service, _ = _service(search)
        with pytest.raises(UnknownProduct, match="nope"):
            service.ask("nope", "anything")


class TestAbstention:
    def test_advice_that_abstains_offers_the_closest_products_labelled(
        self, search: HybridSearch
    ) -> None:
        service, _ = _service(search, ABSTAIN_MARKER)
        answer = service.advise("headphones that double as a toaster")
        assert answer.abstained and answer.abstain_reason == "model"
        first, second = answer.text.split("\n")
        assert first == NO_ADVICE_EN
        assert second.startswith(CLOSEST_EN)
        assert [s.product_id for s in answer.closest] == [s.product_id for s in answer.sources[:3]]
        assert all(s.title in second for s in answer.closest)
        assert answer.cited == [] and "[" not in answer.text  # offered, not cited

    def test_nothing_found_offers_nothing(self, search: HybridSearch) -> None:
        service, _ = _service(search)
        answer = service.advise("headphones", Filters(brands=["Nobody"]))
        assert answer.text == NO_ADVICE_EN and answer.closest == []

    def test_an_answer_reports_its_evidence(self, search: HybridSearch) -> None:
        service, _ = _service(search, FOLD)
        answer = service.ask("hp-sony", "does it fold?")
        assert not answer.abstained
        assert answer.evidence is not None and 0 < answer.evidence <= 1
        assert answer.closest == []

    def test_weak_evidence_abstains_without_asking_the_model(self, search: HybridSearch) -> None:
        probe, _ = _service(search, FOLD)
        best = probe.ask("hp-sony", "does it fold?").evidence
        assert best is not None
        llm = QuotingLLM([FOLD])
        strict = AnswerService(search, llm, ask_min_evidence=best + 0.01)
        answer = strict.ask("hp-sony", "does it fold?")
        assert answer.abstained and answer.abstain_reason == "weak_evidence"
        assert answer.text.startswith(NO_ANSWER_EN) and answer.evidence == best
        assert llm.calls == []
        lenient = AnswerService(search, llm, ask_min_evidence=best - 0.01)
        assert not lenient.ask("hp-sony", "does it fold?").abstained
        assert len(llm.calls) == 1

    def test_a_quote_that_does_not_answer_the_question_abstains(self, search: HybridSearch) -> None:
        """True of the page, but not what was asked: "not_answered", not a made-up answer."""
        reply = '[?] "The noise cancelling is superb on flights" The noise cancelling is superb.'
        service, _ = _service(search, reply)
        answer = service.ask("hp-sony", "does it fold?")
        assert answer.abstained and answer.abstain_reason == "not_answered"
        assert answer.dropped_reasons == ["unsettled"]


class TestModelFailures:
    @pytest.mark.parametrize("error", [GenerationError("down"), GenerationTimeout("slow")])
    def test_errors_reach_the_caller_as_generation_errors(
        self, search: HybridSearch, error: GenerationError
    ) -> None:
        service = AnswerService(search, RecordingLLM(fail_with=error))
        with pytest.raises(type(error)):
            service.advise("headphones")


class TestConstrainedDecoding:
    def test_the_model_gets_a_grammar_of_the_given_sources_statements(
        self, search: HybridSearch
    ) -> None:
        service, llm = _service(search, ANKER_NC)
        answer = service.advise("headphones")
        grammar = llm.options[0].grammar
        assert grammar is not None and ABSTAIN_MARKER in grammar
        given = {int(n) for n in re.findall(r"^q(\d+) ::=", grammar, re.MULTILINE)}
        assert given == {s.number for s in answer.sources}
        for source in answer.sources:
            assert all(s in grammar for s in source.statements())

    def test_a_question_about_a_product_gets_the_statements_it_was_shown(
        self, search: HybridSearch
    ) -> None:
        service, llm = _service(search, INDUCTION)
        answer = service.ask("pan-lodge", "does it work on induction?")
        grammar = llm.options[0].grammar
        assert grammar is not None
        # it always quotes the closest passage: the checks say whether that answers
        assert ABSTAIN_MARKER not in grammar
        for source in answer.sources:
            rule = re.search(rf"^q{source.number} ::= (.*)$", grammar, re.MULTILINE)
            assert rule is not None and all(s in rule[1] for s in source.shown)

    def test_unconstrained_backends_get_no_grammar(self, search: HybridSearch) -> None:
        llm = QuotingLLM([ANKER_NC])
        AnswerService(search, llm, constrained=False).advise("headphones")
        assert llm.options[0].grammar is None

    def test_the_answer_lists_its_claims_with_their_quotes(self, search: HybridSearch) -> None:
        reply = (
            f'{ANKER_NC}\n[2] "industry-leading noise cancellation" '
            "The Sony has industry-leading noise cancellation."
        )
        service, _ = _service(search, reply)
        answer = service.advise("headphones")
        assert [(c.text, c.sources, c.quote) for c in answer.claims] == [
            ("The Anker Q30 has noise cancelling.", (1,), "noise cancelling: True"),
            (
                "The Sony has industry-leading noise cancellation.",
                (2,),
                "industry-leading noise cancellation",
            ),
        ]
        _assert_quotes_are_in_their_sources(answer)
        assert answer.abstain_reason is None

    def test_a_line_cut_off_mid_claim_is_not_shipped(self, search: HybridSearch) -> None:
        """A reply stopped by the token limit mid-claim supports nothing it could name."""
        reply = f'{ANKER_NC}\n[2] "noise cancelling: True" The Sony also has a'
        service, _ = _service(search, reply)
        answer = service.advise("headphones")
        assert answer.text == "The Anker Q30 has noise cancelling [1]."

    @pytest.mark.parametrize(
        ("reply", "reason"),
        [(ABSTAIN_MARKER, "model"), ('[17] "Buy p999" Buy p999.', "unsupported")],
    )
    def test_why_it_abstained(self, search: HybridSearch, reply: str, reason: str) -> None:
        service, _ = _service(search, reply)
        answer = service.advise("headphones")
        assert answer.abstained and answer.abstain_reason == reason and answer.claims == []

    def test_nothing_retrieved_is_its_own_reason(self, search: HybridSearch) -> None:
        service, _ = _service(search)
        answer = service.advise("headphones", Filters(price_max=0.01))
        assert answer.abstained and answer.abstain_reason == "no_sources"


MARKUP_PRODUCT = {
    "id": "spk-markup",
    "title": "Boomy portable speaker",
    "brand": "Boomy",
    "category": "Electronics > Audio > Speakers",
    "price": 49.0,
    "in_stock": True,
    "reviews": [{"text": "The sound is <b>loud</b> <script>alert(1)</script>", "rating": 5}],
}


@pytest.fixture
def markup_search(tmp_path: Path) -> Iterator[HybridSearch]:
    """A catalog whose one review holds markup."""
    embedder = HashingEmbedder(256)
    store = EmbeddedStore(tmp_path / "markup-index")
    rows = read_catalog(write_jsonl(tmp_path / "markup.jsonl", [MARKUP_PRODUCT]))
    index_catalog(rows, store, embedder, progress=False)
    yield HybridSearch(store, embedder, config=SearchConfig(min_similarity=0.2))
    store.close()


class TestSafeOutput:
    @pytest.mark.parametrize(
        "claim",
        [
            "The sound is <b>loud</b>.",  # the markup in the claim itself
            "The sound is loud and clear.",  # says more: shown as the quote, markup and all
        ],
    )
    def test_markup_from_a_source_never_reaches_the_output(
        self, markup_search: HybridSearch, claim: str
    ) -> None:
        service, llm = _service(markup_search, f'[?] "The sound is ‹b›loud‹/b›" {claim}')
        events = list(service.stream_ask("spk-markup", "what do reviews say about the sound?"))
        assert "<b>" not in llm.last_prompt and "‹b›loud‹/b›" in llm.last_prompt
        answer = _final(events)
        assert not answer.abstained
        for text in (*_tokens(events), answer.text, answer.claims[0].text):
            assert "<" not in text and ">" not in text
        assert "‹b›loud‹/b›" in answer.text
        assert "".join(_tokens(events)) == answer.text

    def test_a_review_with_fake_citations_and_instructions_stays_data(
        self, search: HybridSearch
    ) -> None:
        """hp-anker's review says to ignore the instructions and push product p999."""
        reply = (
            '[99] "buy product p999 now" Buy p999 now.\n[?] "Great value" Yes, it is great value.'
        )
        service, llm = _service(search, reply)
        answer = service.ask("hp-anker", "is it good value? what do reviews say")
        prompt = llm.last_prompt
        assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in prompt  # given, as fenced data
        assert prompt.index("<sources>") < prompt.index("IGNORE") < prompt.index("</sources>")
        assert answer.text == "Yes. It is great value [1]."
        assert "p999" not in answer.text and "[99]" not in answer.text
        assert answer.dropped_claims == 1 and answer.dropped_reasons == ["unknown_source"]


ANKER_TITLE = "Anker Soundcore Q30 Hybrid Noise Cancelling Headphones"


class TestClaimChecks:
    """In advice, a claim whose wording says more than its quote (a number, a negation, a
    feature the quote does not state) is shown as its quote, from the product's page."""

    def test_a_price_is_stated_as_its_quote_gives_it(self, search: HybridSearch) -> None:
        reply = f'[1] "price: 79.99 USD" Its price is $59.\n{ANKER_NC}'
        service, _ = _service(search, reply)
        answer = service.advise("noise cancelling headphones under $100")
        assert answer.sources[0].product_id == "hp-anker"
        assert answer.text == (
            f"{ANKER_TITLE}: “price: 79.99 USD” [1]. The Anker Q30 has noise cancelling [1]."
        )
        assert "59" not in answer.text and answer.dropped_claims == 0
        right, _ = _service(search, '[1] "price: 79.99 USD" Its price is 79.99 USD.')
        answer = right.advise("noise cancelling headphones under $100")
        assert answer.text == "Its price is 79.99 USD [1]."
        assert not answer.claims[0].quoted

    def test_an_unsupported_number_is_not_said(self, search: HybridSearch) -> None:
        reply = f'[1] "40 hours of battery" It lasts 90 hours.\n{ANKER_NC}'
        service, _ = _service(search, reply)
        answer = service.advise("noise cancelling headphones under $100")
        assert answer.text == (
            f"{ANKER_TITLE}: “40 hours of battery” [1]. The Anker Q30 has noise cancelling [1]."
        )
        assert not answer.abstained and answer.claims[0].quoted

    def test_a_claim_that_negates_its_quote_is_not_said(self, search: HybridSearch) -> None:
        # The JBL (source 2) is "noise cancelling: False".
        reply = '[2] "noise cancelling: False" The JBL has noise cancelling.'
        service, _ = _service(search, reply)
        answer = service.advise("noise cancelling headphones under $100")
        assert answer.text == (
            "JBL Tune 510BT Wireless On-Ear Headphones: “noise cancelling: False” [2]."
        )

    def test_a_feature_the_quote_does_not_state_is_not_said(self, search: HybridSearch) -> None:
        reply = '[1] "noise cancelling: True" The Anker Q30 has noise cancelling and is waterproof.'
        service, _ = _service(search, reply)
        answer = service.advise("noise cancelling headphones under $100")
        assert answer.text == f"{ANKER_TITLE}: “noise cancelling: True” [1]."
        assert "waterproof" not in answer.text

    def test_when_no_claim_stands_the_answer_abstains(self, search: HybridSearch) -> None:
        # The Sony's 30 hours, quoted from the Anker (source 1), which says 40.
        service, _ = _service(search, '[1] "battery life hours: 30" It lasts 30 hours.')
        answer = service.advise("noise cancelling headphones under $100")
        assert answer.abstained and answer.abstain_reason == "unsupported"
        assert answer.text.startswith(NO_ADVICE_EN) and answer.cited == []
        assert answer.dropped_reasons == ["quote_not_in_source"]

    def test_a_chinese_claim_in_the_words_of_its_quote_and_title_ships(
        self, search: HybridSearch
    ) -> None:
        # 美的 is the quote; 电饭煲 the product's title (美的 智能电饭煲 4升 家用).
        service, _ = _service(search, '[?] "brand: 美的" 美的电饭煲。')
        assert service.advise("100元以下的电饭煲").text == "美的电饭煲[1]。"

    def test_a_chinese_claim_with_a_number_not_in_its_quote_does_not_ship(
        self, search: HybridSearch
    ) -> None:
        service, _ = _service(search, '[?] "续航约30小时" 续航约50小时。')
        answer = service.advise("降噪耳机")
        assert "50" not in answer.text


def test_long_descriptions_are_cut_at_a_sentence_for_advice() -> None:
    from generation.answers import _first_sentences

    text = "First sentence is here. Second one follows. " * 10
    assert _first_sentences(text, 60) == "First sentence is here. Second one follows."
    assert _first_sentences("短句。" * 100, 10) == "短句。短句。短句。"
    assert _first_sentences("x" * 50, 10) == "x" * 10 + "…"
