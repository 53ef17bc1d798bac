"""The personalization benchmark: brand inference, shoppers, and the command end to end on a tiny
CrowdFlower-format file."""

from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from benchmarks.datasets import Item, load_crowdflower
from benchmarks.personalization import (
    build_shoppers,
    history_events,
    infer_brands,
    leading_token,
    main,
    preference_row,
    ranks,
)
from tests.benchmarks.dataset_files import write_crowdflower

# (query, title, description, median relevance): gain = relevance - 1, relevant from gain 2.
# Acme makes a product relevant to every product query; its kettle is relevant but long-winded,
# so relevance alone ranks it below the plain kettles.
CROWDFLOWER = [
    ("kettle", "Electric Kettle", "Boils water.", 4),
    ("kettle", "Glass Kettle", "Boils water.", 4),
    ("kettle", "Steel Kettle", "Boils water.", 3),
    ("kettle", "Copper Kettle", "Boils water.", 3),
    (
        "kettle",
        "Acme Stovetop Whistling Water Boiler Tea Kettle With Heat Resistant Handle",
        "A stovetop boiler in brushed steel with a loud whistle, a wide spout, a cool touch "
        "handle and a base that works on gas, electric and induction hobs.",
        3,
    ),
    ("kettle", "Acme Blender", "Crushes ice.", 1),  # judged for kettle: never kettle history
    ("toaster", "Acme Toaster", "Two slots.", 4),
    ("toaster", "Acme Toaster Oven", "Bakes too.", 3),
    ("toaster", "Chrome Toaster", "Four slots.", 3),
    ("blender", "Acme Blender", "Crushes ice.", 4),
    ("blender", "Power Blender", "Smoothies.", 3),
    ("mixer", "Acme Mixer", "Stand mixer.", 4),
    ("mixer", "Hand Mixer", "Whisks eggs.", 3),
    ("running shoes", "Trail Running Shoes", "Grippy sole.", 4),
    ("running shoes", "Road Running Shoes", "Light.", 3),
    ("running shoes", "Acme Running Shoes", "Plain.", 1),
]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    write_crowdflower(root, CROWDFLOWER)
    return root


class TestBrandInference:
    def test_leading_token(self) -> None:
        assert leading_token("Nike Air Max 90") == "Nike"
        assert leading_token("Levi's 501 Jeans") == "Levi's"
        assert leading_token('"Zippo" Lighter') == "Zippo"
        assert leading_token("Men's Running Shoes") is None
        assert leading_token("The Hobbit") is None
        assert leading_token("BLACK Kettle") is None  # a colour, any case
        assert leading_token("2-Pack Towels") is None
        assert leading_token("123 Main St") is None
        assert leading_token("- -") is None
        assert leading_token("") is None

    def test_brands_need_enough_distinct_titles(self) -> None:
        items = [
            Item("1", "Acme Kettle"),
            Item("2", "ACME Toaster"),
            Item("3", "Acme Toaster"),
            Item("4", "acme Blender"),
            Item("5", "Zest Kettle"),
            Item("6", "Zest Kettle", "other description"),  # one title, twice
            Item("7", "New Kettle"),
            Item("8", "New Toaster"),
            Item("9", "New Blender"),
        ]
        brands = infer_brands(items, min_products=3)
        # case-insensitive, in the most frequent spelling; Zest has one distinct title
        assert brands == {"1": "Acme", "2": "Acme", "3": "Acme", "4": "Acme"}
        assert infer_brands(items, min_products=5) == {}

    def test_a_word_mostly_inside_titles_is_no_brand(self) -> None:
        items = [Item(str(i), f"LED Lamp {i}") for i in range(3)]
        items += [Item(f"x{i}", f"Lamp{i} with LED") for i in range(10)]  # 3 of 13 start
        assert infer_brands(items, min_products=3, min_share=0.25) == {}
        assert infer_brands(items, min_products=3, min_share=0.2) == {
            str(i): "LED" for i in range(3)
        }


class TestShoppers:
    def test_one_shopper_per_query_and_brand_with_a_history(self, data_root: Path) -> None:
        data = load_crowdflower(data_root)
        brands = infer_brands(data.items, min_products=3)
        by_title = {item.title: item.id for item in data.items}
        assert set(brands.values()) == {"Acme"}
        chosen = build_shoppers(data, brands, history=2, limit=10, seed=0)
        shoppers = {s.query.text: s for s in chosen.shoppers}
        # every product query has a relevant Acme product and two or more elsewhere; the
        # running shoes' Acme product is not relevant
        assert chosen.eligible == 4
        assert set(shoppers) == {"kettle", "toaster", "blender", "mixer"}
        kettle = shoppers["kettle"]
        assert kettle.brand == "Acme"
        assert kettle.preferred == (by_title[CROWDFLOWER[4][1]],)
        # the pool: Acme products relevant to other queries and not judged for this one
        assert kettle.pool == 3  # the toaster, the toaster oven, the mixer; not the blender
        assert by_title["Acme Blender"] not in kettle.bought
        assert len(kettle.bought) == len(set(kettle.bought)) == 2
        for shopper in chosen.shoppers:
            assert not set(shopper.bought) & set(shopper.query.gains)
            assert shopper.control is not None
            assert shopper.control.text == "running shoes"  # the only query without Acme
        assert len({s.user_id for s in chosen.shoppers}) == 4

    def test_the_sample_is_capped_seeded_and_in_query_order(self, data_root: Path) -> None:
        data = load_crowdflower(data_root)
        brands = infer_brands(data.items, min_products=3)
        one = build_shoppers(data, brands, history=2, limit=2, seed=7)
        again = build_shoppers(data, brands, history=2, limit=2, seed=7)
        assert one == again
        assert len(one.shoppers) == 2 and one.eligible == 4
        order = [q.text for q in data.queries]
        positions = [order.index(s.query.text) for s in one.shoppers]
        assert positions == sorted(positions)
        # a history needs that many products in the pool: four for the blender and the mixer
        four = build_shoppers(data, brands, history=4, limit=10, seed=0).shoppers
        assert {s.query.text for s in four} == {"blender", "mixer"}
        assert build_shoppers(data, brands, history=5, limit=10, seed=0).shoppers == []

    def test_history_is_a_view_then_a_purchase_in_the_last_60_days(self, data_root: Path) -> None:
        data = load_crowdflower(data_root)
        brands = infer_brands(data.items, min_products=3)
        shopper = build_shoppers(data, brands, history=2, limit=1, seed=0).shoppers[0]
        now = 1_700_000_000.0
        events = history_events(shopper, now, random.Random(0))
        assert [e.type for e in events] == ["view", "purchase"] * 2
        assert [e.product_id for e in events[1::2]] == list(shopper.bought)
        for view, purchase in zip(events[::2], events[1::2], strict=True):
            assert view.product_id == purchase.product_id
            assert view.at < purchase.at <= now - 3600
            assert purchase.at >= now - 60 * 86_400
        assert len({e.event_id for e in events}) == 4


def test_ranks_and_preference_row() -> None:
    assert ranks(["a", "b", "c", "d"], {"b", "d"}, depth=3) == {"b": 2}
    row = preference_row({"b": 5, "d": 9}, {"b": 1, "d": 8})
    assert row["best_before"] == 5 and row["best_after"] == 1
    assert row["mean_before"] == 7 and row["mean_after"] == 4.5 and row["mean_gain"] == 2.5
    empty = preference_row({}, {})
    assert empty["best_before"] is None and empty["mean_gain"] is None


@pytest.fixture(scope="module")
def run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    folder = tmp_path_factory.mktemp("run")
    out = folder / "personalization.json"
    argv = ["--data", str(data_root), "--embedder", "hashing-256"]
    argv += ["--embedding-cache", str(folder / "cache"), "--weights", "0.5,1.0"]
    argv += ["--history", "2", "--min-brand-products", "3"]
    argv += ["--ingest-events", "60", "--ingest-users", "4", "--ingest-batch", "20"]
    argv += ["--no-progress", "--out", str(out)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    return json.loads(out.read_text(encoding="utf-8")), printed.getvalue()


class TestCommand:
    def test_writes_the_result(self, run: tuple[dict[str, Any], str]) -> None:
        result, _ = run
        for key in (
            "benchmark",
            "machine",
            "git",
            "settings",
            "catalog",
            "shoppers",
            "weights",
            "baseline_latency_ms",
            "rows",
            "ingest",
            "wall_s",
        ):
            assert key in result, key
        assert result["benchmark"] == "personalization"
        settings = result["settings"]
        assert settings["app_weight"] in settings["weights"]  # the app's default always runs
        assert {0.5, 1.0} <= set(settings["weights"])
        assert "inferred" in settings["brand"] and "no prices" in settings["price"]
        assert result["catalog"]["brands"] == 1
        assert result["shoppers"]["sampled"] == 4
        assert result["shoppers"]["history_events"] == 16  # 4 shoppers x 2 x (view, purchase)
        assert len(result["rows"]) == 4
        weight = result["weights"]["1.0"]
        assert weight["personalized"] == 4
        assert weight["targeted"]["n"] == 4 and weight["control"]["n"] == 4
        for part in ("ranking", "policy", "added", "search"):
            assert weight["latency_ms"][part]["n"] == 8  # targeted and control searches
        ingest = result["ingest"]["file"]
        assert ingest["events"] == 60 and ingest["accepted"] == 60
        assert ingest["events_per_s"] > 0 and ingest["batch_ms"]["n"] == 3

    def test_the_preferred_brand_moves_up(self, run: tuple[dict[str, Any], str]) -> None:
        result, _ = run
        kettle = next(row for row in result["rows"] if row["query"] == "kettle")
        before = kettle["with"]["1.0"]["best_before"]
        after = kettle["with"]["1.0"]["best_after"]
        assert before is not None and after is not None and after < before
        assert kettle["with"]["1.0"]["mean_gain"] > 0
        assert result["weights"]["1.0"]["preference"]["moved_up"] > 0

    def test_prints_the_tables(self, run: tuple[dict[str, Any], str]) -> None:
        _, printed = run
        assert "inferred brands" in printed and "price bands are not" in printed
        for title in ("relevance:", "preferred products", "latency, ms", "ingestion:"):
            assert title in printed
        assert "written to" in printed

    def test_bad_options_are_refused(self) -> None:
        for argv in (["--weights", "0"], ["--weights", "x"], ["--history", "0"]):
            with pytest.raises(SystemExit):
                main(argv)
