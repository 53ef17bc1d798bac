"""The fusion tuner: the split, the offline fusion against the product's, and the command."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from benchmarks.datasets import Question, split
from benchmarks.relevance import Scope, epqa_scopes
from benchmarks.tune import Setting, fetch, fuse, grid, main
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.embedded import EmbeddedStore
from tests.benchmarks.test_relevance_command import write_datasets

QUERIES = [
    "wireless noise cancelling headphones",
    "headphones with long battery",
    "running shoes",
    "cast iron pan",
    "sport earbuds",
    "wireless earbuds",  # the fused top 3 depends on the depth of the lists (the window)
    "降噪耳机",
    "耳机",
    "跑步鞋",
]
CONFIGS = [
    SearchConfig(),
    SearchConfig(min_similarity=0.2),
    SearchConfig(min_similarity=0.35, rrf_k=5),
    SearchConfig(rrf_k=10, weights={"lexical": 1.0, "semantic": 0.25}),
    SearchConfig(rrf_k=100, weights={"lexical": 1.0, "semantic": 3.0}, min_similarity=0.1),
    SearchConfig(weights={"lexical": 0.0, "semantic": 1.0}, min_similarity=0.25),
    SearchConfig(weights={"lexical": 1.0, "semantic": 0.0}),
    SearchConfig(min_similarity=0.3, cjk_weights={"semantic": 0.0}),
    SearchConfig(candidates=4, rrf_k=20, weights={"lexical": 1.0, "semantic": 1.5}),
]


class TestSplit:
    def test_deterministic_disjoint_and_order_free(self) -> None:
        texts = [f"query number {i}" for i in range(200)]
        halves = {t: split(t) for t in texts}
        shuffled = texts[:]
        random.Random(1).shuffle(shuffled)
        assert {t: split(t) for t in shuffled} == halves
        dev = {t for t, h in halves.items() if h == "dev"}
        test = {t for t, h in halves.items() if h == "test"}
        assert dev.isdisjoint(test) and dev | test == set(texts)
        assert 70 < len(dev) < 130  # about half each
        assert split("降噪耳机") == split("降噪耳机")


class TestSetting:
    def test_the_grid_holds_the_defaults(self) -> None:
        default = Setting(1.0, 0.8, 50.0, 0.33, semantic_cjk=0.0)
        settings = grid(default)
        assert Setting(1.0, 0.8, 50.0, 0.33) in settings
        assert Setting(1.0, 0.0, 50.0, None) in settings
        assert Setting(0.0, 1.0, 5.0, 0.4) in settings
        assert len(settings) == len(set(settings))

    def test_from_config_round_trips(self) -> None:
        config = SearchConfig(
            rrf_k=20, weights={"lexical": 1.0, "semantic": 0.5}, cjk_weights={"semantic": 0.0}
        )
        setting = Setting.from_config(config)
        assert setting == Setting(1.0, 0.5, 20.0, None, semantic_cjk=0.0)
        assert setting.config(SearchConfig()) == dataclass_replace(config)
        assert setting.for_queries(["跑步鞋"]) == Setting(1.0, 0.0, 20.0, None)
        assert setting.for_queries(["shoes"]) == Setting(1.0, 0.5, 20.0, None)
        assert setting.for_queries(["shoes", "跑步鞋"]) == setting

    def test_settings_that_rank_alike_share_a_key(self) -> None:
        assert Setting(1, 0, 5, None).effective(True) == Setting(1, 0, 60, 0.3).effective(True)
        assert Setting(0, 1, 5, 0.3).effective(True) == Setting(0, 1, 60, 0.3).effective(True)
        assert Setting(0, 1, 5, 0.3).effective(True) != Setting(0, 1, 5, 0.2).effective(True)
        assert Setting(1, 1, 5, 0.3).effective(False) == Setting(1, 1, 5, 0.2).effective(False)
        assert Setting(1, 1, 5, 0.3).effective(True) != Setting(1, 1, 10, 0.3).effective(True)


def dataclass_replace(config: SearchConfig) -> SearchConfig:
    return SearchConfig(
        rrf_k=config.rrf_k,
        weights=dict(config.weights),
        min_similarity=config.min_similarity,
        cjk_weights=config.cjk_weights,
    )


class TestOfflineFusionIsTheProducts:
    """`fuse` over `fetch`ed lists must rank exactly as `HybridSearch` for the same settings."""

    @pytest.mark.parametrize("size", [1, 2, 3, 10])
    def test_product_search(
        self, store: EmbeddedStore, embedder: HashingEmbedder, size: int
    ) -> None:
        rankings = set()
        for config in CONFIGS:
            search = HybridSearch(store, embedder, None, config)
            scope = Scope(kinds=("product",), top_k=size, product_search=True)
            for query in QUERIES:
                product = [h.product.id for h in search.search(query, size=size).hits]
                offline = fuse(fetch(store, embedder, query, scope, config), config)
                assert offline == product, (config, query)
                rankings.add((query, tuple(offline)))
        if size >= 3:
            assert len(rankings) >= 2 * len(QUERIES)  # the settings do change the rankings

    def test_passages_of_a_product(self, store: EmbeddedStore, embedder: HashingEmbedder) -> None:
        cases = [
            ("hp-sony", "does it fold flat?"),
            ("hp-sony", "battery life on flights"),
            ("hp-anker", "is it good value"),
            ("zh-huawei", "可以连接两台设备吗"),
        ]
        for config in CONFIGS:
            search = HybridSearch(store, embedder, None, config)
            for product_id, question in cases:
                scope = epqa_scopes(Question("q", question, product_id, {}), config)["per_product"]
                public = search.passages(product_id, question, top_k=config.passage_candidates)
                offline = fuse(fetch(store, embedder, question, scope, config), config)
                assert offline == [h.unit_id for h in public], (config, question)
                assert offline


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    data = write_datasets(tmp_path_factory.mktemp("datasets"))
    out = tmp_path_factory.mktemp("out") / "tune.json"
    cache = tmp_path_factory.mktemp("cache")
    args = ["--data", str(data), "--embedder", "hashing-64", "--embedding-cache", str(cache)]
    args += ["--no-progress", "--out", str(out)]
    assert main(args) == 0
    return json.loads(out.read_text(encoding="utf-8")), str(cache), data


class TestCommand:
    def test_settings_and_machine(self, tuned: tuple[dict[str, Any], str, Path]) -> None:
        result, cache, _ = tuned
        settings = result["settings"]
        assert settings["embedder"] == "hashing-64"
        assert settings["embedding_cache"] == cache
        assert settings["default"] == {
            "lexical_weight": 1.0,
            "semantic_weight": 1.0,
            "rrf_k": 60.0,
            "semantic_min_similarity": 0.3,
        }
        assert settings["grid"]["settings"] == 10 * 6 * 6
        assert result["machine"]["cpu_count"] >= 1 and "git" in result

    def test_every_task_is_reported(self, tuned: tuple[dict[str, Any], str, Path]) -> None:
        result, _, _ = tuned
        assert list(result["tasks"]) == [
            "crowdflower/product_search",
            "multicpr/product_search",
            "epqa/per_product",
            "epqa/pooled",
        ]
        cf = result["tasks"]["crowdflower/product_search"]
        assert cf["main_metric"] == "nDCG@10"
        assert sum(cf["queries"].values()) == 3
        for row in ("default", "best", "lexical_only", "semantic_only"):
            assert set(cf[row]) == {"setting", "label", "dev", "test"}
            assert set(cf[row]["test"]) == {"nDCG@10", "Recall@100"}
        assert len(cf["grid"]) == 360
        assert result["tasks"]["multicpr/product_search"]["main_metric"] == "MRR@10"
        per_product = result["tasks"]["epqa/per_product"]
        assert per_product["similarity_floor_applies"] is False
        assert per_product["depth"] == 20
        assert result["tasks"]["epqa/pooled"]["similarity_floor_applies"] is True
        # the best on dev is at least as good on dev as every grid setting
        for task in result["tasks"].values():
            main_metric = task["main_metric"]
            top = task["best"]["dev"][main_metric]
            if top is not None:
                assert all(
                    dev[main_metric] is None or dev[main_metric] <= top
                    for _, dev, _ in task["grid"]
                )

    def test_chosen_settings(self, tuned: tuple[dict[str, Any], str, Path]) -> None:
        result, _, _ = tuned
        chosen = result["chosen"]
        assert list(chosen) == [
            "default",
            "product search (CrowdFlower dev)",
            "CJK product search (Multi-CPR dev)",
            "passage search (ePQA per-product dev)",
            "app: English setting + CJK vector weight",
        ]
        for entry in chosen.values():
            assert set(entry["tasks"]) == set(result["tasks"])
        assert (
            chosen["product search (CrowdFlower dev)"]["setting"]
            == result["tasks"]["crowdflower/product_search"]["best"]["setting"]
        )

    def test_a_second_run_embeds_nothing(
        self, tuned: tuple[dict[str, Any], str, Path], tmp_path: Path
    ) -> None:
        result, cache, data = tuned
        assert result["datasets"]["crowdflower"]["index"]["computed"] > 0
        assert result["queries_embedded"] > 0
        out = tmp_path / "again.json"
        args = ["--data", str(data), "--embedder", "hashing-64", "--embedding-cache", cache]
        args += ["--datasets", "crowdflower,epqa", "--limit-queries", "2"]
        args += ["--no-progress", "--out", str(out)]
        assert main(args) == 0
        again = json.loads(out.read_text(encoding="utf-8"))
        assert again["datasets"]["crowdflower"]["index"]["computed"] == 0
        assert again["datasets"]["epqa"]["index"]["computed"] == 0
        assert again["queries_embedded"] == 0
        assert list(again["tasks"]) == [
            "crowdflower/product_search",
            "epqa/per_product",
            "epqa/pooled",
        ]
        assert sum(again["tasks"]["epqa/pooled"]["queries"].values()) == 2
        assert "app: English setting + CJK vector weight" in again["chosen"]

    def test_bad_data_sets_are_refused(self) -> None:
        with pytest.raises(SystemExit):
            main(["--datasets", "amazon"])
