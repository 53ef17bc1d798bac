"""What `SimilarProducts` answers over the shared test catalog, whichever store holds it."""

from __future__ import annotations

import pytest

from recommendation.similar import SimilarProducts
from retrieval.schema import Filters
from retrieval.stores.base import DocumentStore


class SimilarContract:
    """Subclass it and provide the ``similar_store`` fixture (the test catalog indexed)."""

    @pytest.fixture
    def similar_store(self) -> DocumentStore:
        raise NotImplementedError

    @pytest.fixture
    def similar(self, similar_store: DocumentStore) -> SimilarProducts:
        return SimilarProducts(similar_store)

    def test_unknown_product_is_none(self, similar: SimilarProducts) -> None:
        assert similar.find("no-such-product") is None

    def test_the_category_first_in_stock_first_then_parents(self, similar: SimilarProducts) -> None:
        page = similar.find("hp-anker", same_price_band=False)
        assert page is not None
        ids = [s.product.id for s in page.items]
        # headphones (in stock before out of stock), then the rest of Audio; never the anchor,
        # never another department
        assert ids == ["hp-sony", "hp-jbl", "ear-sport"]
        assert page.scope == "Electronics"
        assert "same category: Electronics > Audio > Headphones" in page.items[0].reasons
        assert "also in Electronics > Audio" in page.items[2].reasons

    def test_the_price_band_holds_by_default(self, similar: SimilarProducts) -> None:
        page = similar.find("hp-anker")  # 79.99: 40..160, no other audio product is
        assert page is not None
        assert page.price_band == pytest.approx((39.995, 159.98))
        assert page.items == []
        page = similar.find("hp-sony")  # 348: 174..696 holds the earbuds only
        assert page is not None
        assert [s.product.id for s in page.items] == ["ear-sport"]

    def test_filters_narrow_and_replace_the_band(self, similar: SimilarProducts) -> None:
        page = similar.find("hp-anker", filters=Filters(in_stock=True, price_max=400))
        assert page is not None and page.price_band is None
        assert [s.product.id for s in page.items] == ["hp-sony", "ear-sport"]
        page = similar.find("hp-anker", filters=Filters(brands=["JBL"]), same_price_band=False)
        assert page is not None
        assert [s.product.id for s in page.items] == ["hp-jbl"]

    def test_paging(self, similar: SimilarProducts) -> None:
        first = similar.find("hp-anker", same_price_band=False, size=2)
        second = similar.find("hp-anker", same_price_band=False, size=2, page=2)
        assert first is not None and second is not None
        assert [s.product.id for s in first.items] == ["hp-sony", "hp-jbl"]
        assert [s.product.id for s in second.items] == ["ear-sport"]

    def test_similarities_are_cosines_and_reasons_name_shared_attributes(
        self, similar: SimilarProducts
    ) -> None:
        page = similar.find("hp-anker", same_price_band=False)
        assert page is not None
        sony = page.items[0]
        assert -1.0 <= sony.similarity <= 1.0
        assert "shares noise cancelling: yes" in sony.reasons
        assert sony.differences[:3] == (
            "pricier (+335%)",
            "higher rated (4.7 vs 4.4)",
            "brand: Sony (vs Anker)",
        )
        assert "battery life hours: 30 (less than 40)" in sony.differences
