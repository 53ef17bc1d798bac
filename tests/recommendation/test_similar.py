"""Similar products on the embedded store; tests/integration runs the same on Elasticsearch."""

from __future__ import annotations

import pytest

from recommendation.similar import differences
from retrieval.schema import Product
from retrieval.stores.embedded import EmbeddedStore
from tests.recommendation.similar_contract import SimilarContract


class TestSimilarOnTheEmbeddedStore(SimilarContract):
    @pytest.fixture
    def similar_store(self, store: EmbeddedStore) -> EmbeddedStore:
        return store


def test_differences_say_what_changes_and_nothing_else() -> None:
    base = Product(id="a", title="A", price=100, rating=4.5, attributes={"watts": 60, "x": "y"})
    same = Product(id="b", title="B", price=102, rating=4.6, attributes={"watts": 60, "x": "Y"})
    assert differences(base, same) == []  # within 5% of price, 0.2 of rating, case of values
    other = Product(
        id="c", title="C", price=80, rating=4.0, attributes={"watts": 90, "x": "z", "new": 1}
    )
    assert differences(base, other) == [
        "cheaper (-20%)",
        "lower rated (4 vs 4.5)",
        "watts: 90 (more than 60)",
        "x: z (vs y)",
    ]
    euros = Product(id="d", title="D", price=50, currency="EUR")
    assert differences(base, euros) == []  # prices in other currencies are not compared
