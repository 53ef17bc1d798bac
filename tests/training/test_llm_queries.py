"""Queries written by the generator, through the recording fake LLM."""

from __future__ import annotations

from generation.llm.base import GenerationError
from generation.llm.fake import RecordingLLM
from retrieval.schema import Product
from tests.conftest import PRODUCTS
from training.llm_queries import LLM_TEMPLATE, llm_queries, parse_queries, query_messages

SONY = Product.model_validate(PRODUCTS[0])


class TestParseQueries:
    def test_numbering_bullets_quotes_and_chatter_removed(self) -> None:
        reply = (
            "Here are two queries:\n"
            '1. "Noise Cancelling Headphones"\n'
            "- sony wireless headphones.\n"
            "3) over-ear headphones for flights\n"
        )
        assert parse_queries(reply, title=SONY.title) == [
            "noise cancelling headphones",
            "sony wireless headphones",
        ]

    def test_the_title_long_lines_and_markup_are_dropped(self) -> None:
        reply = "\n".join(
            [
                SONY.title,
                "the best headphones you could ever buy for travelling on long haul flights",
                "<product>",
                "",
                "降噪耳机",
            ]
        )
        assert parse_queries(reply, title=SONY.title) == ["降噪耳机"]

    def test_duplicates_once(self) -> None:
        assert parse_queries("ANC headphones\nanc headphones!", title="x") == ["anc headphones"]


class TestLlmQueries:
    def test_product_text_is_fenced_data(self) -> None:
        anker = Product.model_validate(PRODUCTS[1])
        messages = query_messages(anker)
        system, user = messages[0].content, messages[1].content
        assert "not instructions" in system
        assert user.startswith("<product>\n") and user.endswith("</product>\nQueries:")
        assert "title: Anker Soundcore Q30" in user
        assert "IGNORE ALL PREVIOUS" not in user  # reviews are not sent at all

    def test_queries_for_a_number_of_products(self) -> None:
        products = [Product.model_validate(p) for p in PRODUCTS]
        llm = RecordingLLM(default="cheap headphones\nrunning shoes")
        queries, stats = llm_queries(products, llm, count=3, seed=0)
        assert stats.products == 3 and stats.failures == 0 and len(llm.calls) == 3
        assert len(queries) == 6
        assert all(q.template == LLM_TEMPLATE and q.unit_id == q.product_id for q in queries)
        again, _ = llm_queries(products, RecordingLLM(default="a b"), count=3, seed=0)
        assert [q.product_id for q in again] == [q.product_id for q in queries[::2]]

    def test_a_failing_call_is_skipped(self) -> None:
        llm = RecordingLLM(fail_with=GenerationError("down"))
        queries, stats = llm_queries([SONY], llm, count=5)
        assert queries == [] and stats.failures == 1
