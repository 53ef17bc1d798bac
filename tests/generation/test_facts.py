"""Facts in claims checked against the cited sources and their products' fields."""

from __future__ import annotations

import pytest

from generation.facts import FactSource, check_facts, numbers_in, render_claims
from generation.grammar import Claim
from retrieval.schema import Product

ANKER = Product(id="a", title="Anker Q30", price=79.99, rating=4.4, in_stock=True, currency="USD")
JBL = Product(id="j", title="JBL Tune 510BT", price=29.95, rating=4.2, in_stock=False)
SOURCES = {
    1: FactSource("Anker Q30 price: 79.99 USD | rating: 4.4/5 | battery: 40 hours", ANKER),
    2: FactSource("JBL Tune 510BT price: 29.95 USD | rating: 4.2/5 | in stock: no", JBL),
    3: FactSource("The lid holds 750 ml and weighs 0.3 kg."),
}


def _check(text: str, *sources: int) -> tuple[list[str], int, int]:
    result = check_facts([Claim(text, sources)], SOURCES)
    return [c.text for c in result.claims], result.corrected, result.dropped


class TestPrices:
    @pytest.mark.parametrize(
        "text", ["It costs $79.99.", "Only 79.99 USD.", "About $80.", "价格79.99元。"]
    )
    def test_a_price_the_product_has_stands(self, text: str) -> None:
        assert _check(text, 1) == ([text], 0, 0)

    def test_a_wrong_price_is_corrected_from_the_one_cited_product(self) -> None:
        assert _check("It costs $69.99 and lasts 40 hours.", 1) == (
            ["It costs $79.99 and lasts 40 hours."],
            1,
            0,
        )
        assert _check("只要50元。", 2) == (["只要29.95元。"], 1, 0)

    def test_a_wrong_price_with_two_cited_products_drops_the_claim(self) -> None:
        assert _check("Both cost $50.", 1, 2) == ([], 0, 1)

    def test_either_cited_price_may_be_named(self) -> None:
        assert _check("From $29.95 to $79.99.", 1, 2)[2] == 0


class TestRatingsAndStock:
    def test_ratings(self) -> None:
        assert _check("Rated 4.4 out of 5.", 1) == (["Rated 4.4 out of 5."], 0, 0)
        assert _check("It has 4.9 stars.", 1) == (["It has 4.4 stars."], 1, 0)
        assert _check("评分4.9星。", 1, 2) == ([], 0, 1)

    def test_stock(self) -> None:
        assert _check("The JBL is in stock.", 2) == ([], 0, 1)
        assert _check("The Anker is out of stock.", 1) == ([], 0, 1)
        assert _check("JBL 缺货。", 2)[2] == 0
        assert _check("One of them is in stock.", 1, 2)[2] == 0


class TestOtherNumbers:
    def test_numbers_must_be_in_the_cited_sources(self) -> None:
        assert _check("It holds 750 ml [3].", 3)[2] == 0
        assert _check("It holds 900 ml.", 3) == ([], 0, 1)
        assert _check("The battery lasts 40 hours.", 3)[2] == 1  # 40 is in source 1, not 3
        assert _check("The battery lasts 40 hours.", 1)[2] == 0

    def test_values_not_spellings(self) -> None:
        assert numbers_in("1,299 and 12.50 [3] and WH-1000XM5") == {1299.0, 12.5, 1000.0}
        assert _check("It weighs 0.30 kg.", 3)[2] == 0

    def test_list_numbers_and_references_are_not_facts(self) -> None:
        assert numbers_in("1. The lid holds 750 ml") == {750.0}
        assert numbers_in("2) Option 3 and source 1 are cheaper than #2") == set()
        assert _check("1. Option 2 holds 750 ml.", 3)[2] == 0
        assert _check("It sleeps 2.", 3)[2] == 1  # a count is a fact

    def test_a_claim_without_numbers_stands(self) -> None:
        assert _check("It is light and quiet.", 3) == (["It is light and quiet."], 0, 0)


def test_numbers_from_the_question_stand() -> None:
    claims = [Claim("It fits a 25cc trimmer.", (3,)), Claim("It is under $100.", (1,))]
    result = check_facts(claims, SOURCES, question="does it fit a 25cc trimmer under $100?")
    assert [c.text for c in result.claims] == [c.text for c in claims]
    assert (result.corrected, result.dropped) == (0, 0)
    assert check_facts(claims, SOURCES).dropped == 1  # without the question, 25 is unsupported


def test_render_claims() -> None:
    claims = [Claim("It holds 750 ml.", (3,)), Claim("容量4升。", (1, 2)), Claim("Cheap", (2,))]
    assert render_claims(claims) == "It holds 750 ml [3]. 容量4升[1][2]。 Cheap [2]"
