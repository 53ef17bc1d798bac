from indexer.units import passage_units, product_unit, product_units
from retrieval.schema import Product


def test_a_product_becomes_a_product_unit_and_passages() -> None:
    product = Product(
        id="p1",
        title="Trail tent",
        brand="Nordik",
        category="Sports > Camping > Tents",
        attributes={"sleeps": 2, "waterproof": True, "weight_kg": 2.0},
        description="A light tent.",
        reviews=[{"text": "Stayed dry."}, {"text": "Easy to pitch."}],
        qa=[{"question": "Footprint included?", "answer": "No."}],
    )
    units = product_units(product)
    assert [u.id for u in units] == [
        "p1",
        "p1#description",
        "p1#attributes",
        "p1#review-1",
        "p1#review-2",
        "p1#qa-1",
    ]
    assert {u.product_id for u in units} == {"p1"}
    main = product_unit(product)
    assert main.kind == "product"
    assert main.fields["brand"] == "Nordik"
    assert main.fields["category"] == "Sports > Camping > Tents"
    assert main.fields["attributes"] == "sleeps: 2; waterproof: yes; weight kg: 2"
    assert "Nordik" in main.text and "A light tent." in main.text
    qa = passage_units(product)[-1]
    assert qa.kind == "qa" and qa.text == "Q: Footprint included?\nA: No."


def test_minimal_product_has_only_the_product_unit() -> None:
    units = product_units(Product(id="x", title="Just a title"))
    assert [(u.id, u.kind) for u in units] == [("x", "product")]
    assert units[0].fields == {"title": "Just a title"}
