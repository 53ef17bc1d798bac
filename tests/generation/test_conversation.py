"""Conversations: reading follow-ups, storing state with a TTL, and advice that continues."""

from __future__ import annotations

import time

import pytest

from generation.answers import AnswerService
from generation.conversation import Conversation, ConversationStore, Turn, interpret
from generation.llm.fake import RecordingLLM
from generation.prompts import ABSTAIN_MARKER
from retrieval.caches.memory import MemoryCache
from retrieval.schema import Filters
from retrieval.search import HybridSearch
from tests.quoting import QuotingLLM

SHOWN = Conversation("c", shown=["a", "b", "c", "d", "e"])
# True of every headphones product's source (its category), whichever is first.
HEADPHONES = '[?] "Headphones" These are headphones.'


@pytest.mark.parametrize(
    ("question", "kind", "positions"),
    [
        ("cheaper ones?", "cheaper", ()),
        ("anything less expensive", "cheaper", ()),
        ("便宜一点的", "cheaper", ()),
        ("something more expensive", "pricier", ()),
        ("更贵的有吗", "pricier", ()),
        ("which of these has the longest battery?", "among_shown", ()),
        ("哪个续航最长", "among_shown", ()),
        ("compare the first two", "compare", (0, 1)),
        ("compare 1 and 3", "compare", (0, 2)),
        ("first vs third", "compare", (0, 2)),
        ("compare the last two", "compare", (3, 4)),
        ("compare them", "compare", (0, 1)),
        ("比较前两个", "compare", (0, 1)),
        ("对比第一个和第三个", "compare", (0, 2)),
        ("compare the first three", "compare", (0, 1, 2)),
        ("wireless headphones under $100", "new", ()),
        ("a tent for 2 people", "new", ()),
    ],
)
def test_follow_ups(question: str, kind: str, positions: tuple[int, ...]) -> None:
    follow = interpret(question, SHOWN)
    assert (follow.kind, follow.positions) == (kind, positions)


def test_without_a_last_result_everything_is_new() -> None:
    assert interpret("cheaper ones?", Conversation("c")).kind == "new"
    assert interpret("compare the first two", Conversation("c", shown=["a"])).kind == "new"


class TestStore:
    def test_round_trip_and_turn_limit(self) -> None:
        store = ConversationStore(MemoryCache(), max_turns=2)
        conversation = Conversation(
            "c-1",
            turns=[Turn(f"q{i}", f"a{i}", ["p"]) for i in range(3)],
            query="headphones",
            question="headphones under $100",
            filters=Filters(price_max=100),
            shown=["p1", "p2"],
            cited=["p1"],
        )
        store.save(conversation)
        loaded = store.load("c-1")
        assert loaded == conversation and [t.question for t in loaded.turns] == ["q1", "q2"]

    def test_it_expires(self) -> None:
        store = ConversationStore(MemoryCache(), ttl_s=0.05)
        store.save(Conversation("c-2", shown=["p1"]))
        time.sleep(0.1)
        assert store.load("c-2") == Conversation("c-2")

    def test_a_shoppers_conversation_lives_under_their_prefix(self) -> None:
        cache = MemoryCache()
        store = ConversationStore(cache)
        store.save(Conversation("c-4", shown=["p1"], user_id="ann"))
        assert store.key("c-4", "ann") == "shopguide:user:ann:conversation:c-4"
        assert store.load("c-4", "ann").shown == ["p1"]
        assert store.load("c-4") == Conversation("c-4")  # not the anonymous one
        assert store.load("c-4", "bob") == Conversation("c-4", user_id="bob")
        assert cache.delete_prefix("shopguide:user:ann:") == 1
        with pytest.raises(ValueError, match="user id"):
            store.key("c-4", "a:b")

    def test_an_owners_conversation_lives_under_their_prefix(self) -> None:
        store = ConversationStore(MemoryCache())
        store.save(Conversation("c-5", shown=["p1"], owner="key-front-end"))
        assert store.key("c-5", owner="key-front-end") == "shopguide:conversation:key-front-end:c-5"
        assert store.load("c-5", owner="key-front-end").shown == ["p1"]
        assert store.load("c-5", owner="key-back-office").shown == []
        assert store.load("c-5").shown == []
        assert store.load("c-5", "ann", owner="key-front-end").user_id == "ann"  # the user's
        with pytest.raises(ValueError, match="owner"):
            store.key("c-5", owner="key:front-end")

    def test_a_bad_id_or_record_is_handled(self) -> None:
        cache = MemoryCache()
        store = ConversationStore(cache)
        with pytest.raises(ValueError, match="conversation id"):
            store.load("no spaces or :colons")
        cache.set(store.key("c-3"), b"{not json", 60)
        assert store.load("c-3") == Conversation("c-3")


def _service(search: HybridSearch, llm: RecordingLLM) -> AnswerService:
    return AnswerService(search, llm, conversations=ConversationStore(MemoryCache()))


class TestAdviceInAConversation:
    def test_cheaper_repeats_the_search_below_the_recommended_price(
        self, search: HybridSearch
    ) -> None:
        llm = QuotingLLM(default=HEADPHONES)
        service = _service(search, llm)
        first = service.advise("noise cancelling headphones", conversation_id="c1")
        assert first.follow_up == "new" and first.conversation_id == "c1"
        assert first.text == "These are headphones [1]."
        recommended = first.cited[0].product
        assert recommended is not None and recommended.price is not None
        cheaper = service.advise("cheaper ones?", conversation_id="c1")
        assert cheaper.follow_up == "cheaper" and cheaper.question == "cheaper ones?"
        assert cheaper.applied_constraints[0] == f"price < {recommended.price - 0.01:g}"
        prices = [s.product.price for s in cheaper.sources if s.product is not None]
        assert prices and all(p is not None and p < recommended.price for p in prices)
        assert "noise cancelling headphones (cheaper ones?)" in llm.last_prompt

    def test_chinese_cheaper(self, search: HybridSearch) -> None:
        llm = QuotingLLM(['[?] "主动降噪" 主动降噪。'], default=ABSTAIN_MARKER)
        service = _service(search, llm)
        first = service.advise("耳机", conversation_id="zh")
        assert first.text == "主动降噪[1]。"
        cheaper = service.advise("便宜一点的", conversation_id="zh")
        assert cheaper.follow_up == "cheaper"
        assert cheaper.filters.price_max is not None
        assert first.cited[0].product is not None
        assert cheaper.filters.price_max < (first.cited[0].product.price or 0)

    def test_which_of_these_answers_over_the_products_shown(self, search: HybridSearch) -> None:
        service = _service(search, QuotingLLM(default=HEADPHONES))
        first = service.advise("headphones", conversation_id="c2")
        among = service.advise("which of these has the longest battery?", conversation_id="c2")
        assert among.follow_up == "among_shown"
        assert [s.product_id for s in among.sources] == [s.product_id for s in first.sources]
        assert among.filters.product_ids == [s.product_id for s in first.sources]

    def test_compare_is_built_from_catalog_fields_without_the_model(
        self, search: HybridSearch
    ) -> None:
        llm = QuotingLLM(default=HEADPHONES)
        service = _service(search, llm)
        first = service.advise("headphones", conversation_id="c3")
        calls = len(llm.calls)
        compared = service.advise("compare the first two", conversation_id="c3")
        assert len(llm.calls) == calls  # no model call
        assert compared.follow_up == "compare" and compared.comparison is not None
        ids = [s.product_id for s in first.sources[:2]]
        assert list(compared.comparison.product_ids) == ids
        price = next(r for r in compared.comparison.rows if r.attribute == "Price")
        products = [s.product for s in first.sources[:2]]
        assert price.values == tuple(
            f"{p.price:.2f} {p.currency}" for p in products if p is not None
        )
        lines = compared.text.split(". ")
        assert len(compared.claims) == len(compared.comparison.rows) == len(lines)
        assert "Price: " in compared.text and "[1][2]" in compared.text
        assert all(set(c.sources) <= {1, 2} for c in compared.claims)

    def test_turns_are_remembered(self, search: HybridSearch) -> None:
        store = ConversationStore(MemoryCache())
        service = AnswerService(search, QuotingLLM(default=HEADPHONES), conversations=store)
        service.advise("headphones", conversation_id="c4")
        service.advise("cheaper ones?", conversation_id="c4")
        turns = store.load("c4").turns
        assert [t.question for t in turns] == ["headphones", "cheaper ones?"]
        assert all(t.cited for t in turns)
        assert all(t.answer == "These are headphones [1]." for t in turns)

    def test_without_a_store_a_conversation_is_refused(self, search: HybridSearch) -> None:
        service = AnswerService(search, RecordingLLM(default=ABSTAIN_MARKER))
        with pytest.raises(ValueError, match="not configured"):
            service.advise("headphones", conversation_id="c5")
