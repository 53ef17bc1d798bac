"""Tests of recognising price, stock, brand and rating constraints in queries."""

from __future__ import annotations

from typing import Any

import pytest

from generation.constraints import ParsedQuery, chinese_number, english_number, parse_constraints

BRANDS = [
    "Samsung",
    "Sony",
    "Apple",
    "Bose",
    "Beats",
    "Anker",
    "Anker Soundcore",
    "On",
    "华为",
    "小米",
    "三星",
    "苹果",
]


def parse(query: str) -> ParsedQuery:
    return parse_constraints(query, known_brands=BRANDS)


def set_filters(parsed: ParsedQuery) -> dict[str, Any]:
    return {k: v for k, v in parsed.filters.model_dump().items() if v is not None}


@pytest.mark.parametrize(
    ("query", "expected", "text"),
    [
        ("headphones under $100", {"price_max": 100}, "headphones"),
        ("speakers below 100 dollars", {"price_max": 100}, "speakers"),
        ("earbuds less than $50", {"price_max": 50}, "earbuds"),
        ("a mouse cheaper than 80", {"price_max": 80}, "a mouse"),
        ("at most $60 keyboard", {"price_max": 60}, "keyboard"),
        ("charger max 100", {"price_max": 100}, "charger"),
        ("up to $200 speakers", {"price_max": 200}, "speakers"),
        ("headphones under 100", {"price_max": 100}, "headphones"),
        ("headphones under 100 for running", {"price_max": 100}, "headphones for running"),
        ("headphones under 100 bucks", {"price_max": 100}, "headphones"),
        ("USD 100 or less", {"price_max": 100}, "USD 100 or less"),
        ("monitor $300 or less", {"price_max": 300}, "monitor"),
        ("webcam under €80", {"price_max": 80}, "webcam"),
        ("blender under £40", {"price_max": 40}, "blender"),
        ("bags over $20", {"price_min": 20}, "bags"),
        ("bags more than 30", {"price_min": 30}, "bags"),
        ("bags above 50", {"price_min": 50}, "bags"),
        ("bags at least $40", {"price_min": 40}, "bags"),
        ("bags $20+", {"price_min": 20}, "bags"),
        ("tv between 50 and 80 euros", {"price_min": 50, "price_max": 80}, "tv"),
        ("tv between $50 and $80", {"price_min": 50, "price_max": 80}, "tv"),
        ("tv $50-$80", {"price_min": 50, "price_max": 80}, "tv"),
        ("tv $50-80", {"price_min": 50, "price_max": 80}, "tv"),
        ("tv $50 to $80", {"price_min": 50, "price_max": 80}, "tv"),
        ("tv from 50 to 80 usd", {"price_min": 50, "price_max": 80}, "tv"),
        ("tv from 50 to 80", {"price_min": 50, "price_max": 80}, "tv"),
        ("tv price 50-80", {"price_min": 50, "price_max": 80}, "tv"),
        ("tv in the $50-$80 range", {"price_min": 50, "price_max": 80}, "tv"),
        ("tv between $80 and $50", {"price_min": 50, "price_max": 80}, "tv"),
        ("laptop under $1,299", {"price_max": 1299}, "laptop"),
        ("case under $49.99", {"price_max": 49.99}, "case"),
        ("monitor under 2k", {"price_max": 2000}, "monitor"),
        ("laptop under $1.5k", {"price_max": 1500}, "laptop"),
        ("headphones with a budget of $300", {"price_max": 300}, "headphones"),
        ("my budget is 300", {"price_max": 300}, "my budget is 300"),
        ("headphones, under $100.", {"price_max": 100}, "headphones"),
        ("bags under $100, over $50", {"price_min": 50, "price_max": 100}, "bags"),
        ("laptop in stock", {"in_stock": True}, "laptop"),
        ("laptop in-stock only", {"in_stock": True}, "laptop"),
        ("laptop available now", {"in_stock": True}, "laptop"),
    ],
)
def test_english_prices_and_stock(query: str, expected: dict[str, Any], text: str) -> None:
    parsed = parse(query)
    assert set_filters(parsed) == expected
    assert parsed.text == text


@pytest.mark.parametrize(
    ("query", "expected", "text"),
    [
        ("100元以下的耳机", {"price_max": 100}, "耳机"),
        ("100块以内的耳机", {"price_max": 100}, "耳机"),
        ("耳机低于100元", {"price_max": 100}, "耳机"),
        ("耳机不超过200元", {"price_max": 200}, "耳机"),
        ("耳机不到200块", {"price_max": 200}, "耳机"),
        ("1000以下的手机", {"price_max": 1000}, "手机"),
        ("手机2千元以下", {"price_max": 2000}, "手机"),
        ("电脑1万以内", {"price_max": 10000}, "电脑"),
        ("耳机200元以上", {"price_min": 200}, "耳机"),
        ("耳机高于50元", {"price_min": 50}, "耳机"),
        ("耳机不低于50元", {"price_min": 50}, "耳机"),
        ("耳机200到300元", {"price_min": 200, "price_max": 300}, "耳机"),
        ("耳机200-300元", {"price_min": 200, "price_max": 300}, "耳机"),
        ("耳机200至300元之间", {"price_min": 200, "price_max": 300}, "耳机"),
        ("价格在100到200元之间的耳机", {"price_min": 100, "price_max": 200}, "耳机"),
        ("在200到300之间的耳机", {"price_min": 200, "price_max": 300}, "耳机"),
        ("耳机¥100-200", {"price_min": 100, "price_max": 200}, "耳机"),
        ("预算300元的耳机", {"price_max": 300}, "耳机"),
        ("预算300买耳机", {"price_max": 300}, "买耳机"),
        ("有货的耳机", {"in_stock": True}, "耳机"),
        ("现货耳机", {"in_stock": True}, "耳机"),
        ("耳机有现货吗", {"in_stock": True}, "耳机吗"),
    ],
)
def test_chinese_prices_and_stock(query: str, expected: dict[str, Any], text: str) -> None:
    parsed = parse(query)
    assert set_filters(parsed) == expected
    assert parsed.text == text


@pytest.mark.parametrize(
    "query",
    [
        "100 watts charger",
        "backpack under 2 kg",
        "running shoes size 10",
        "charger over 65w",
        "phones more than 30 reviews",
        "laptop under 15 in",
        "under 100 headphones",  # a word that may be a unit follows: not guessed
        "iPhone 13 to $500",
        "kids toys 5-8",
        "200到300",
        "around $100",
        "headphones about 100 dollars",
        "预算300元左右",
        "1000元左右的手机",
        "5人以上的帐篷",
        "3年以上保修",
        "speakers below 50%",
        "tv 55 inch",
        "not in stock",
        "out of stock",
        "没有货",
        "没有现货",
        "4 stars",
        "best earbuds",
    ],
)
def test_not_a_constraint(query: str) -> None:
    parsed = parse(query)
    assert parsed.filters.is_empty()
    assert parsed.applied == ()
    assert parsed.text == query


@pytest.mark.parametrize(
    ("query", "expected", "text"),
    [
        ("Sony headphones", {"brands": ["Sony"]}, "headphones"),
        ("sony headphones", {"brands": ["Sony"]}, "headphones"),
        ("Sony's best headphones", {"brands": ["Sony"]}, "best headphones"),
        ("anker soundcore earbuds", {"brands": ["Anker Soundcore"]}, "earbuds"),
        ("Anker charger", {"brands": ["Anker"]}, "charger"),
        ("On running shoes", {"brands": ["On"]}, "running shoes"),
        ("headphones on sale", {}, "headphones on sale"),
        ("headphones not Samsung", {"exclude_brands": ["Samsung"]}, "headphones"),
        ("earbuds, no Sony", {"exclude_brands": ["Sony"]}, "earbuds"),
        ("phones except Apple", {"exclude_brands": ["Apple"]}, "phones"),
        ("headphones other than Bose", {"exclude_brands": ["Bose"]}, "headphones"),
        ("headphones without Beats", {"exclude_brands": ["Beats"]}, "headphones"),
        ("phones except Apple and Samsung", {"exclude_brands": ["Apple", "Samsung"]}, "phones"),
        ("not Foo headphones", {}, "not Foo headphones"),
        ("headphones like Bose but cheaper", {}, "headphones like Bose but cheaper"),
        ("case for Samsung Galaxy", {}, "case for Samsung Galaxy"),
        ("华为耳机", {"brands": ["华为"]}, "耳机"),
        ("手机不要三星", {"exclude_brands": ["三星"]}, "手机"),
        ("除了苹果以外的耳机", {"exclude_brands": ["苹果"]}, "耳机"),
        ("手机不是小米", {"exclude_brands": ["小米"]}, "手机"),
        ("手机 不要三星和苹果", {"exclude_brands": ["三星", "苹果"]}, "手机"),
        ("不要Sony的耳机", {"exclude_brands": ["Sony"]}, "耳机"),
    ],
)
def test_brands(query: str, expected: dict[str, Any], text: str) -> None:
    parsed = parse(query)
    assert set_filters(parsed) == expected
    assert parsed.text == text


@pytest.mark.parametrize(
    ("query", "rating"),
    [
        ("blender rated 4+", 4.0),
        ("blender rated 4 and up", 4.0),
        ("blender 4 stars and up", 4.0),
        ("blender 4+ stars", 4.0),
        ("blender at least 4 stars", 4.0),
        ("blender 4.5 stars or better", 4.5),
        ("blender rating above 4", 4.0),
        ("4星以上的搅拌机", 4.0),
        ("评分4.5分以上的搅拌机", 4.5),
        ("评分不低于4的搅拌机", 4.0),
    ],
)
def test_ratings(query: str, rating: float) -> None:
    parsed = parse(query)
    assert set_filters(parsed) == {"min_rating": rating}
    assert "搅拌机" in parsed.text or parsed.text == "blender"


@pytest.mark.parametrize("query", ["over 5 stars", "6星以上"])
def test_impossible_rating_is_ignored(query: str) -> None:
    assert parse(query).filters.min_rating is None


def test_price_brand_and_stock_together() -> None:
    parsed = parse("Sony headphones under $100, not Samsung, in stock")
    assert parsed.text == "headphones"
    assert set_filters(parsed) == {
        "brands": ["Sony"],
        "exclude_brands": ["Samsung"],
        "price_max": 100,
        "in_stock": True,
    }
    assert parsed.applied == ("brand = Sony", "price ≤ 100", "brand ≠ Samsung", "in stock")


def test_chinese_price_brand_and_stock_together() -> None:
    parsed = parse("有货的华为耳机200元以内")
    assert parsed.text == "耳机"
    assert set_filters(parsed) == {"brands": ["华为"], "price_max": 200, "in_stock": True}
    assert parsed.applied == ("in stock", "brand = 华为", "price ≤ 200")


def test_applied_labels() -> None:
    parsed = parse("tv between $50 and $80 rated 4+ except Apple")
    assert parsed.applied == ("price 50–80", "rating ≥ 4", "brand ≠ Apple")


def test_nothing_left_keeps_the_query() -> None:
    parsed = parse("under $100")
    assert parsed.text == "under $100"
    assert parsed.filters.price_max == 100


def test_tightest_limits_win() -> None:
    parsed = parse("under $200 and below $150, over $20 and above $50")
    assert (parsed.filters.price_min, parsed.filters.price_max) == (50, 150)


def test_excluded_brand_is_not_included() -> None:
    parsed = parse("Sony or Bose headphones, not Bose")
    assert parsed.filters.brands == ["Sony"]
    assert parsed.filters.exclude_brands == ["Bose"]


def test_brand_aliases() -> None:
    parsed = parse_constraints(
        "苹果耳机 不要三星",
        known_brands=["Samsung"],
        brand_aliases={"苹果": "Apple", "三星": "Samsung"},
    )
    assert parsed.filters.brands == ["Apple"]
    assert parsed.filters.exclude_brands == ["Samsung"]


def test_no_brands_known() -> None:
    parsed = parse_constraints("Sony headphones not Samsung")
    assert parsed.filters.is_empty()
    assert parsed.text == "Sony headphones not Samsung"


def test_empty_query() -> None:
    parsed = parse_constraints("  ")
    assert parsed.text == ""
    assert parsed.filters.is_empty()


def test_a_catalog_with_thousands_of_brands() -> None:
    brands = [f"Maker{i}" for i in range(3000)] + ["Anker Soundcore", "华为"]
    parsed = parse_constraints("anker soundcore headphones, not maker2999", known_brands=brands)
    assert parsed.filters.brands == ["Anker Soundcore"]
    assert parsed.filters.exclude_brands == ["Maker2999"]
    assert parse_constraints("华为耳机", known_brands=brands).filters.brands == ["华为"]


class TestNumbersInWords:
    @pytest.mark.parametrize(
        ("query", "applied", "text"),
        [
            ("headphones under five hundred dollars", ("price ≤ 500",), "headphones"),
            ("tent for two people under fifty bucks", ("price ≤ 50",), "tent for two people"),
            ("预算三百元的耳机", ("price ≤ 300",), "耳机"),
            ("耳机 三百块以内", ("price ≤ 300",), "耳机"),
            ("两千五元以下的手机", ("price ≤ 2500",), "手机"),
            ("four stars and up kettle", ("rating ≥ 4",), "kettle"),
        ],
    )
    def test_number_words_before_a_unit(
        self, query: str, applied: tuple[str, ...], text: str
    ) -> None:
        parsed = parse_constraints(query)
        assert parsed.applied == applied
        assert parsed.text == text

    def test_number_words_elsewhere_are_left_alone(self) -> None:
        assert parse_constraints("tent for two people").text == "tent for two people"
        assert parse_constraints("5分钟煮好的电饭煲").applied == ()
        assert parse_constraints("三星手机").text == "三星手机"  # Samsung, not three stars

    @pytest.mark.parametrize(
        ("numeral", "value"),
        [
            ("三百", 300),
            ("两千五", 2500),
            ("一百零五", 105),
            ("十五", 15),
            ("三万", 30000),
            ("一千二百", 1200),
            ("三百五", 350),
            ("元", None),
        ],
    )
    def test_chinese_numerals(self, numeral: str, value: int | None) -> None:
        assert chinese_number(numeral) == value

    def test_english_number_words(self) -> None:
        assert english_number("twenty-five") == 25
        assert english_number("two hundred and fifty") == 250
        assert english_number("one thousand") == 1000
        assert english_number("lots") is None


@pytest.mark.parametrize(
    "query", ["4.5 stars minimum headphones", "至少4.5星的耳机", "minimum 4.5 stars headphones"]
)
def test_more_rating_phrasings(query: str) -> None:
    assert parse_constraints(query).applied == ("rating ≥ 4.5",)
