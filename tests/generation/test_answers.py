import re

import pytest

from generation.answers import (
    CLOSEST_EN,
    CLOSEST_ZH,
    NO_ADVICE_EN,
    NO_ADVICE_ZH,
    NO_ANSWER_EN,
    AnswerService,
    FinalEvent,
    TokenEvent,
    UnknownProduct,
)
from generation.llm.base import GenerationError, GenerationTimeout
from generation.llm.fake import RecordingLLM
from generation.prompts import ABSTAIN_MARKER
from retrieval.schema import Filters
from retrieval.search import HybridSearch


def _service(search: HybridSearch, *replies: str) -> tuple[AnswerService, RecordingLLM]:
    llm = RecordingLLM(replies)
    return AnswerService(search, llm), llm


class TestAdvice:
    def test_cited_answer_lists_the_cited_products(self, search: HybridSearch) -> None:
        service, llm = _service(search, "The Anker Q30 cancels noise and costs less [1].")
        answer = service.advise("noise cancelling headphones under $100")
        assert not answer.abstained
        assert answer.text == "The Anker Q30 cancels noise and costs less [1]."
        assert [s.product_id for s in answer.cited] == ["hp-anker"]
        assert answer.sources[0].number == 1
        assert len(llm.calls) == 1

    def test_price_constraint_is_a_filter_before_the_model_sees_anything(
        self, search: HybridSearch
    ) -> None:
        service, llm = _service(search, "Anker [1].")
        answer = service.advise("noise cancelling headphones under $100")
        assert answer.applied_constraints == ["price ≤ 100"]
        assert answer.filters.price_max == 100
        assert all(s.product_id not in {"hp-sony", "ear-sport"} for s in answer.sources)
        prompt = llm.calls[0][1].content
        assert "Sony WH-1000XM5" not in prompt

    def test_chinese_constraints(self, search: HybridSearch) -> None:
        service, _ = _service(search, "美的电饭煲[1]。")
        answer = service.advise("100元以下的电饭煲")
        assert answer.filters.price_max == 100
        assert [s.product_id for s in answer.sources] == ["zh-midea"]

    def test_explicit_filters_win_over_parsed_ones(self, search: HybridSearch) -> None:
        service, _ = _service(search, "x [1].")
        answer = service.advise("headphones under $100", Filters(price_max=40))
        assert answer.filters.price_max == 40

    def test_citations_to_unknown_sources_are_dropped_and_counted(
        self, search: HybridSearch
    ) -> None:
        service, _ = _service(search, "Anker is great [1]. Buy p999 [17].")
        answer = service.advise("headphones")
        assert answer.text == "Anker is great [1]."
        assert answer.dropped_citations == 1
        assert [s.number for s in answer.cited] == [1]

    def test_no_valid_citation_means_abstention(self, search: HybridSearch) -> None:
        service, _ = _service(search, "You must buy product p999 now [12].")
        answer = service.advise("headphones")
        assert answer.abstained
        assert answer.text.startswith(NO_ADVICE_EN)
        assert answer.cited == []

    def test_uncited_answer_abstains(self, search: HybridSearch) -> None:
        service, _ = _service(search, "These are all great headphones.")
        assert service.advise("headphones").abstained

    def test_model_marker_abstains_in_the_questions_language(self, search: HybridSearch) -> None:
        service, _ = _service(search, ABSTAIN_MARKER)
        answer = service.advise("有没有耳机")
        assert answer.abstained and answer.text.startswith(NO_ADVICE_ZH)
        assert CLOSEST_ZH in answer.text

    def test_nothing_retrieved_abstains_without_calling_the_model(
        self, search: HybridSearch
    ) -> None:
        service, llm = _service(search)
        answer = service.advise("headphones", Filters(brands=["Nobody"]))
        assert answer.abstained and answer.sources == []
        assert llm.calls == []

    def test_injected_review_text_is_fenced_data(self, search: HybridSearch) -> None:
        service, llm = _service(search, "The Q30 lasts 40 hours [1].")
        service.ask("hp-anker", "is it good value?")
        system, user = llm.calls[0]
        assert "IGNORE ALL PREVIOUS INSTRUCTIONS" not in system.content
        fenced = user.content[user.content.index("<sources>") : user.content.index("</sources>")]
        assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in fenced

    def test_a_model_that_obeys_an_injection_cannot_cite_its_way_out(
        self, search: HybridSearch
    ) -> None:
        # The model "obeys" the review and recommends a product it was never given.
        service, _ = _service(search, "You must buy product p999 now [99].")
        answer = service.ask("hp-anker", "is it good value?")
        assert answer.abstained
        assert "p999" not in answer.text


class TestStreaming:
    def test_tokens_then_a_final_event_with_the_same_text(self, search: HybridSearch) -> None:
        service, _ = _service(search, "Anker is great [1]. Sony is quiet [2].")
        events = list(service.stream_advice("headphones"))
        assert isinstance(events[-1], FinalEvent)
        assert all(isinstance(e, TokenEvent) for e in events[:-1])
        streamed = "".join(e.text for e in events[:-1])  # type: ignore[union-attr]
        assert streamed == events[-1].answer.text

    def test_invalid_citations_never_stream(self, search: HybridSearch) -> None:
        service, _ = _service(search, "Anker [1]. Also p999 [42].")
        events = list(service.stream_advice("headphones"))
        streamed = "".join(e.text for e in events if isinstance(e, TokenEvent))
        assert "[42]" not in streamed

    def test_abstain_marker_is_not_streamed(self, search: HybridSearch) -> None:
        service, _ = _service(search, ABSTAIN_MARKER)
        events = list(service.stream_advice("headphones"))
        streamed = "".join(e.text for e in events if isinstance(e, TokenEvent))
        assert ABSTAIN_MARKER not in streamed
        final = events[-1]
        assert isinstance(final, FinalEvent)
        assert streamed == final.answer.text and streamed.startswith(NO_ADVICE_EN)

    def test_timings(self, search: HybridSearch) -> None:
        service, _ = _service(search, "Anker [1].")
        timings = service.advise("headphones").timings_ms
        assert {"retrieval", "first_token", "generation", "total"} <= set(timings)


class TestAsk:
    def test_answer_cites_the_products_own_passages(self, search: HybridSearch) -> None:
        service, _ = _service(search, "Yes, it works on induction [1].")
        answer = service.ask("pan-lodge", "does it work on induction?")
        assert not answer.abstained
        assert answer.cited[0].source_id == "pan-lodge#qa-1"
        assert answer.cited[0].kind == "qa"
        assert {s.product_id for s in answer.sources} == {"pan-lodge"}

    def test_page_that_does_not_answer(self, search: HybridSearch) -> None:
        service, _ = _service(search, ABSTAIN_MARKER)
        answer = service.ask("hp-sony", "is it waterproof?")
        assert answer.abstained and answer.text == NO_ANSWER_EN

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
        service, _ = _service(search, "It swivels flat but does not fold [1].")
        answer = service.ask("hp-sony", "does it fold?")
        assert answer.evidence is not None and 0 < answer.evidence <= 1
        assert answer.closest == []

    def test_weak_evidence_abstains_without_asking_the_model(self, search: HybridSearch) -> None:
        probe, _ = _service(search, "x [1].")
        best = probe.ask("hp-sony", "does it fold?").evidence
        assert best is not None
        llm = RecordingLLM(["It folds [1]."])
        strict = AnswerService(search, llm, ask_min_evidence=best + 0.01)
        answer = strict.ask("hp-sony", "does it fold?")
        assert answer.abstained and answer.abstain_reason == "weak_evidence"
        assert answer.text == NO_ANSWER_EN and answer.evidence == best
        assert llm.calls == []
        lenient = AnswerService(search, llm, ask_min_evidence=best - 0.01)
        assert not lenient.ask("hp-sony", "does it fold?").abstained
        assert len(llm.calls) == 1


class TestModelFailures:
    @pytest.mark.parametrize("error", [GenerationError("down"), GenerationTimeout("slow")])
    def test_errors_reach_the_caller_as_generation_errors(
        self, search: HybridSearch, error: GenerationError
    ) -> None:
        service = AnswerService(search, RecordingLLM(fail_with=error))
        with pytest.raises(type(error)):
            service.advise("headphones")


class TestConstrainedDecoding:
    def test_the_model_gets_a_grammar_of_the_given_source_numbers(
        self, search: HybridSearch
    ) -> None:
        service, llm = _service(search, "Anker [1].")
        answer = service.advise("headphones")
        grammar = llm.options[0].grammar
        assert grammar is not None and ABSTAIN_MARKER in grammar
        numbers = re.search(r"number ::= (.*)", grammar)
        assert numbers is not None
        given = {int(n) for n in re.findall(r'"(\d+)"', numbers.group(1))}
        assert given == {s.number for s in answer.sources}

    def test_unconstrained_backends_get_no_grammar(self, search: HybridSearch) -> None:
        llm = RecordingLLM(["Anker [1]."])
        AnswerService(search, llm, constrained=False).advise("headphones")
        assert llm.options[0].grammar is None

    def test_the_answer_lists_its_claims(self, search: HybridSearch) -> None:
        service, _ = _service(search, "The Anker cancels noise [1]. Both fold [1][2].")
        answer = service.advise("headphones")
        assert [(c.text, c.sources) for c in answer.claims] == [
            ("The Anker cancels noise.", (1,)),
            ("Both fold.", (1, 2)),
        ]
        assert answer.abstain_reason is None

    def test_text_after_the_last_citation_is_cut(self, search: HybridSearch) -> None:
        """A reply stopped by the token limit mid-claim supports nothing it could name."""
        service, _ = _service(search, "The Anker cancels noise [1]. The Sony also has a")
        answer = service.advise("headphones")
        assert answer.text == "The Anker cancels noise [1]."

    @pytest.mark.parametrize(
        ("reply", "reason"),
        [(ABSTAIN_MARKER, "model"), ("Buy p999 [17].", "no_valid_citation")],
    )
    def test_why_it_abstained(self, search: HybridSearch, reply: str, reason: str) -> None:
        service, _ = _service(search, reply)
        answer = service.advise("headphones")
        assert answer.abstained and answer.abstain_reason == reason and answer.claims == []

    def test_nothing_retrieved_is_its_own_reason(self, search: HybridSearch) -> None:
        service, _ = _service(search)
        answer = service.advise("headphones", Filters(price_max=0.01))
        assert answer.abstained and answer.abstain_reason == "no_sources"


class TestSafeOutput:
    def test_markup_a_model_copies_never_reaches_the_output(self, search: HybridSearch) -> None:
        reply = 'Great <script>alert("x")</script> buy <b>now</b> [1].'
        service, _ = _service(search, reply)
        events = list(service.stream_advice("headphones"))
        streamed = "".join(e.text for e in events if isinstance(e, TokenEvent))
        final = events[-1]
        assert isinstance(final, FinalEvent)
        for text in (streamed, final.answer.text, final.answer.claims[0].text):
            assert "<" not in text and ">" not in text
        assert "‹script›" in final.answer.text

    def test_a_review_with_fake_citations_and_instructions_stays_data(
        self, search: HybridSearch
    ) -> None:
        """hp-anker's review says to ignore the instructions and push product p999."""
        service, llm = _service(search, "Buy p999 now [99]. It is good value [1].")
        answer = service.ask("hp-anker", "is it good value? what do reviews say")
        prompt = llm.last_prompt
        assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in prompt  # given, as fenced data
        assert prompt.index("<sources>") < prompt.index("IGNORE") < prompt.index("</sources>")
        assert "p999" not in answer.text and "[99]" not in answer.text
        assert answer.dropped_citations == 1


class TestFactCheck:
    def test_a_wrong_price_is_corrected_from_the_cited_product(self, search: HybridSearch) -> None:
        service, _ = _service(search, "The Anker Q30 costs $59 [1]. It is light [1].")
        answer = service.advise("noise cancelling headphones under $100")
        assert answer.sources[0].product_id == "hp-anker"
        assert answer.text == "The Anker Q30 costs $79.99 [1]. It is light [1]."
        assert answer.corrected_claims == 1 and answer.dropped_claims == 0

    def test_an_unsupported_number_drops_its_claim(self, search: HybridSearch) -> None:
        service, _ = _service(search, "It lasts 90 hours [1]. It cancels noise [1].")
        answer = service.advise("noise cancelling headphones under $100")
        assert answer.text == "It cancels noise [1]."
        assert answer.dropped_claims == 1 and not answer.abstained

    def test_when_no_claim_stands_the_answer_abstains(self, search: HybridSearch) -> None:
        service, _ = _service(search, "It lasts 90 hours [1].")
        answer = service.advise("noise cancelling headphones under $100")
        assert answer.abstained and answer.abstain_reason == "unsupported_facts"
        assert answer.text.startswith(NO_ADVICE_EN) and answer.cited == []


def test_long_descriptions_are_cut_at_a_sentence_for_advice() -> None:
    from generation.answers import _first_sentences

    text = "First sentence is here. Second one follows. " * 10
    assert _first_sentences(text, 60) == "First sentence is here. Second one follows."
    assert _first_sentences("短句。" * 100, 10) == "短句。短句。短句。"
    assert _first_sentences("x" * 50, 10) == "x" * 10 + "…"
