"""Synthetic shopper queries from a product's own structure."""

from __future__ import annotations

from indexer.units import passage_units
from retrieval.schema import Product
from retrieval.text import has_cjk, normalize
from tests.conftest import PRODUCTS
from training.queries import (
    PRODUCT_TEMPLATES,
    QA_TEMPLATE,
    cap_queries,
    generate_queries,
    product_queries,
    qa_queries,
    words_of,
)

CATALOG = [Product.model_validate(p) for p in PRODUCTS]
BY_ID = {p.id: p for p in CATALOG}


def _squash(text: str) -> str:
    return "".join(normalize(text).split())


class TestProductQueries:
    def test_same_seed_same_queries(self) -> None:
        first = generate_queries(CATALOG, per_product=4, seed=7)
        assert first == generate_queries(CATALOG, per_product=4, seed=7)
        assert first != generate_queries(CATALOG, per_product=4, seed=8)

    def test_a_products_queries_do_not_depend_on_the_others(self) -> None:
        alone = product_queries(BY_ID["hp-anker"], count=4, seed=3)
        together = [
            q
            for q in generate_queries(CATALOG, per_product=4, seed=3)
            if q.product_id == "hp-anker"
        ]
        assert [q for q in together if q.template != QA_TEMPLATE] == alone

    def test_short_never_empty_never_the_title(self) -> None:
        for product in CATALOG:
            for seed in range(5):
                queries = product_queries(product, count=5, seed=seed)
                assert queries, product.id
                for query in queries:
                    assert query.text.strip()
                    assert query.template in PRODUCT_TEMPLATES
                    assert 1 <= len(words_of(query.text)) <= 8, query
                    assert _squash(query.text) != _squash(product.title), query
                    assert query.unit_id == product.id and query.kind == "product"
                assert len({_squash(q.text) for q in queries}) == len(queries)

    def test_titles_are_shortened_keeping_the_head_noun_and_order(self) -> None:
        sony = BY_ID["hp-sony"]
        shortened = [
            q.text
            for seed in range(30)
            for q in product_queries(sony, count=5, seed=seed)
            if q.template == "title_short"
        ]
        assert shortened
        title_words = [w.casefold() for w in words_of(sony.title)]
        for text in shortened:
            words = words_of(text)
            assert 2 <= len(words) <= 6
            assert words[-1] == "headphones"
            positions = [title_words.index(w) for w in words]
            assert positions == sorted(positions)  # order kept
        assert any(not t.startswith("sony") for t in shortened)  # brand dropped sometimes
        assert any(t.startswith("sony") for t in shortened)

    def test_templates_draw_on_brand_category_attributes_reviews(self) -> None:
        texts = {
            (q.template, q.text)
            for seed in range(30)
            for q in product_queries(BY_ID["hp-sony"], count=5, seed=seed)
        }
        assert ("brand_category", "sony headphones") in texts
        assert ("category_attribute", "noise cancelling headphones") in texts
        assert any(t == "review_phrase" and "flights" in q for t, q in texts)
        assert any(t == "title_feature" and "under $350" in q for t, q in texts)

    def test_chinese_products_get_chinese_queries(self) -> None:
        for product_id in ("zh-huawei", "zh-lining", "zh-midea"):
            queries = product_queries(BY_ID[product_id], count=4, seed=1)
            assert queries
            assert all(has_cjk(q.text) for q in queries), queries
        texts = {
            q.text
            for seed in range(20)
            for q in product_queries(BY_ID["zh-huawei"], count=5, seed=seed)
        }
        assert "华为耳机" in texts
        assert any(t.endswith("元以下") for t in texts)

    def test_lowercased_latin(self) -> None:
        queries = generate_queries(CATALOG, per_product=4, seed=2)
        assert all(q.text == q.text.casefold() for q in queries if q.template != QA_TEMPLATE)


class TestQaQueries:
    def test_questions_with_their_passage_as_positive(self) -> None:
        sony = BY_ID["hp-sony"]
        [query] = qa_queries(sony)
        assert query.text == "Does it fold?"
        assert query.template == QA_TEMPLATE and query.kind == "qa"
        passage = {u.id: u for u in passage_units(sony)}[query.unit_id]
        assert passage.kind == "qa" and "Does it fold?" in passage.text

    def test_generate_includes_the_catalogs_questions(self) -> None:
        queries = generate_queries(CATALOG, per_product=2, seed=0)
        questions = {q.text for q in queries if q.template == QA_TEMPLATE}
        assert questions == {"Does it fold?", "Does it work on induction?", "可以连接两台设备吗？"}


class TestCap:
    def test_keeps_order_and_is_deterministic(self) -> None:
        queries = generate_queries(CATALOG, per_product=4, seed=0)
        capped = cap_queries(queries, 10, seed=0)
        assert len(capped) == 10
        assert capped == cap_queries(queries, 10, seed=0)
        assert [queries.index(q) for q in capped] == sorted(queries.index(q) for q in capped)
        assert cap_queries(queries, None, seed=0) == queries
