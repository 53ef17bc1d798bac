"""The relevance benchmark command end to end on tiny data sets in the published file formats."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from app.services import RerankScope
from app.settings import Settings
from benchmarks import relevance
from benchmarks.datasets import load_crowdflower, load_epqa, load_multicpr
from benchmarks.relevance import (
    _build_systems,
    _depths,
    _rerankers,
    as_product,
    epqa_catalog,
    epqa_scopes,
    index_products,
    main,
    product_scope,
)
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.rankers.base import Reranker
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.embedded import EmbeddedStore
from tests.benchmarks.dataset_files import write_crowdflower, write_epqa

CROWDFLOWER = [
    ("wireless headphones", "Sony Wireless Noise Cancelling Headphones", "Over-ear, 30 h.", 4),
    ("wireless headphones", "JBL Wireless On-Ear Headphones", "", 3),
    ("wireless headphones", "Stainless Steel Kettle", "Boils water fast.", 1),
    ("kettle", "Stainless Steel Kettle", "Boils water fast.", 4),
    ("kettle", "Glass Electric Kettle", "1.7 litre, blue light.", 4),
    ("kettle", "Sony Wireless Noise Cancelling Headphones", "Over-ear, 30 h.", 1),
    ("running shoes", "Trail Running Shoes", "Grippy sole for mud.", 4),
    ("running shoes", "Trail Running Shoes", "Grippy sole for mud.", 3),  # judged twice
    ("running shoes", "Leather Office Shoes", "", 2),
]
MULTICPR_PRODUCTS = [
    ("zh0000", "华为无线降噪蓝牙耳机"),
    ("zh0001", "李宁男子轻便跑步鞋"),
    ("zh0002", "美的智能电饭煲4升"),
    ("zh0003", "不锈钢保温杯500毫升"),
]
MULTICPR_QUERIES = [("降噪耳机", ["zh0000"]), ("跑步鞋", ["zh0001"]), ("电饭煲", ["zh0002"])]
EPQA_PAGES = {
    "B001": (
        "Frigidaire Crisper Drawer",
        [
            ("it fits the frs20 model. Question: will it fit frs20? ", "cqa"),
            ("the drawer is made of clear plastic.", "bullet"),
            ("color:  { value:clear }", "attribute"),
            ("arrived cracked, returned it.", "review"),
            ("keeps vegetables fresh longer.", "description"),
        ],
    ),
    "B002": (
        "Espresso Machine",
        [
            ("makes great espresso every morning.", "review"),
            ("water tank:  { value:1.5 litre }", "attribute"),
            ("yes it has a milk frother. Question: does it froth milk? ", "cqa"),
            ("", "description"),  # the real file has one empty candidate
        ],
    ),
}
EPQA_QUESTIONS = [
    ("1", "does this drawer fit a frs20 fridge?", "B001", [2, 0, 0, 1, 0]),
    ("2", "what colour is the drawer?", "B001", [0, 1, 2, 0, 0]),
    ("3", "can it froth milk?", "B002", [1, 0, 2, 0]),
    ("4", "is it dishwasher safe?", "B002", [0, 0, 0, 0]),  # the page does not answer it
]


class KeywordReranker:
    """Stands in for a re-ranker model: scores by how often a keyword occurs in the text."""

    def __init__(self, keyword: str) -> None:
        self.keyword = keyword
        self.calls: list[int] = []

    @property
    def name(self) -> str:
        return f"keyword:{self.keyword}"

    def warm_up(self) -> None:
        pass

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        self.calls.append(len(texts))
        return [float(t.lower().count(self.keyword)) for t in texts]


def build_reranker(settings: Settings) -> Reranker | None:
    """The app's `build_reranker`, with ``keyword:<word>`` built as a `KeywordReranker`."""
    kind, _, keyword = settings.reranker.partition(":")
    if kind == "keyword":
        return KeywordReranker(keyword)
    return relevance.build_reranker(settings)


@contextlib.contextmanager
def keyword_rerankers() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(relevance, "build_reranker", build_reranker)
        yield


def write_datasets(root: Path) -> Path:
    """The three data sets in their published layouts and formats, tiny."""
    write_crowdflower(root, CROWDFLOWER)
    (root / "multicpr-zh").mkdir()
    (root / "multicpr-zh" / "products.jsonl").write_text(
        "".join(
            json.dumps({"id": i, "title": t}, ensure_ascii=False) + "\n"
            for i, t in MULTICPR_PRODUCTS
        ),
        encoding="utf-8",
    )
    (root / "multicpr-zh" / "queries-dev.jsonl").write_text(
        "".join(
            json.dumps({"query": q, "relevant": r}, ensure_ascii=False) + "\n"
            for q, r in MULTICPR_QUERIES
        ),
        encoding="utf-8",
    )
    write_epqa(
        root,
        (
            (
                qid,
                question,
                asin,
                candidate,
                source,
                EPQA_PAGES[asin][0],
                label,
                "an answer" if label else "",
            )
            for qid, question, asin, labels in EPQA_QUESTIONS
            for (candidate, source), label in zip(EPQA_PAGES[asin][1], labels, strict=True)
        ),
    )
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_datasets(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def result(data: Path, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("out") / "relevance.json"
    code = main(
        [
            "--data",
            str(data),
            "--embedder",
            "hashing-256",
            "--reranker",
            "none",
            "--embedding-cache",
            str(cache),
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return json.loads(out.read_text(encoding="utf-8"))


class TestLoaders:
    def test_crowdflower_catalog_is_the_distinct_pairs(self, data: Path) -> None:
        cf = load_crowdflower(data)
        assert len(cf.items) == 6
        assert len({i.id for i in cf.items}) == 6
        assert [q.text for q in cf.queries] == ["wireless headphones", "kettle", "running shoes"]
        shoes = cf.queries[2]
        assert sorted(shoes.gains.values()) == [1.0, 3.0]  # the higher of two judgments
        assert load_crowdflower(data).items[0].id == cf.items[0].id  # stable ids

    def test_multicpr(self, data: Path) -> None:
        cpr = load_multicpr(data)
        assert len(cpr.items) == 4
        assert cpr.queries[0].gains == {"zh0000": 1.0}

    def test_epqa_pages_are_shuffled_with_the_seed(self, data: Path) -> None:
        first, again = load_epqa(data, seed=0), load_epqa(data, seed=0)
        assert [p.passages for p in first.products] == [p.passages for p in again.products]
        assert first.skipped_empty == 2  # rows: both questions about B002 have it
        page = {p.id: p for p in first.products}["B001"]
        assert len(page.passages) == 5  # two questions, one page, texts deduplicated
        orders = {
            tuple(
                p.text for p in {q.id: q for q in load_epqa(data, seed=s).products}["B001"].passages
            )
            for s in range(10)
        }
        assert len(orders) > 1
        question = first.questions[0]
        assert question.labels["it fits the frs20 model. Question: will it fit frs20?"] == 2


class TestCommand:
    def test_settings_machine_and_systems(self, result: dict[str, Any]) -> None:
        assert result["settings"]["embedder"] == "hashing-256"
        assert result["settings"]["reranker"] is None
        assert result["machine"]["cpu_count"] >= 1
        assert "platform" in result["machine"]
        assert "git" in result
        assert result["systems"] == ["bm25", "dense", "hybrid", "textbook"]

    def test_product_search_tables(self, result: dict[str, Any]) -> None:
        cf = result["datasets"]["crowdflower"]
        assert cf["catalog"]["products"] == 6
        task = cf["tasks"]["product_search"]
        assert task["queries"] == 3
        assert set(task["metrics"]) == {"bm25", "dense", "hybrid", "textbook"}
        for values in task["metrics"].values():
            assert set(values) == {
                "nDCG@10",
                "Recall@100",
                "coverage@10",
                "brands@10",
                "categories@10",
            }
            assert 0 <= values["nDCG@10"] <= 1
            assert values["brands@10"] is None  # the data has no brands: n/a
        assert task["metrics"]["bm25"]["nDCG@10"] > 0.5
        cpr = result["datasets"]["multicpr"]["tasks"]["product_search"]
        assert set(cpr["metrics"]["hybrid"]) >= {"MRR@10", "Recall@10", "coverage@10"}
        assert cpr["metrics"]["bm25"]["MRR@10"] == 1.0  # Chinese words are found

    def test_epqa_tasks(self, result: dict[str, Any]) -> None:
        epqa = result["datasets"]["epqa"]
        assert epqa["catalog"]["passages"] == 8
        assert set(epqa["tasks"]) == {"per_product", "pooled"}
        per_product = epqa["tasks"]["per_product"]
        assert per_product["scored_queries"]["nDCG@10"] == 3  # one page does not answer
        assert set(per_product["metrics"]["hybrid"]) == {"nDCG@10", "MRR@10", "judged@10"}
        pooled = epqa["tasks"]["pooled"]["metrics"]["textbook"]
        assert {"coverage@10", "products@10"} <= set(pooled)

    def test_latency_per_stage(self, result: dict[str, Any]) -> None:
        latency = result["datasets"]["crowdflower"]["tasks"]["product_search"]["latency_ms"]
        assert set(latency["bm25"]) == {"bm25", "other", "total"}
        assert {"embedding", "knn", "total"} <= set(latency["dense"])
        assert {"embedding", "bm25+knn", "fusion", "rerank", "total"} <= set(latency["hybrid"])
        assert {"embedding", "bm25", "knn", "fusion", "total"} <= set(latency["textbook"])
        assert set(latency["hybrid"]["total"]) == {"median", "p95", "p99", "max", "n"}
        assert latency["hybrid"]["total"]["n"] == 3

    def test_limit_and_dataset_choice(self, data: Path, tmp_path: Path) -> None:
        out = tmp_path / "small.json"
        args = ["--data", str(data), "--embedder", "hashing-64", "--reranker", "none"]
        args += ["--datasets", "multicpr", "--limit-queries", "1", "--no-textbook"]
        args += ["--embedding-cache", "none"]
        args += [
            "--weights",
            "lexical=1,semantic=0.5,semantic_cjk=0.25",
            "--no-progress",
            "--out",
            str(out),
        ]
        assert main(args) == 0
        small = json.loads(out.read_text(encoding="utf-8"))
        assert list(small["datasets"]) == ["multicpr"]
        assert small["settings"]["weights"] == {
            "lexical": 1.0,
            "semantic": 0.5,
            "crosslingual": 0.0,
        }
        assert small["settings"]["cjk_weights"] == {"semantic": 0.25}
        assert small["datasets"]["multicpr"]["tasks"]["product_search"]["queries"] == 1
        assert small["systems"] == ["bm25", "dense", "hybrid"]

    def test_a_second_run_reuses_the_cached_vectors(
        self, data: Path, cache: Path, result: dict[str, Any], tmp_path: Path
    ) -> None:
        assert result["settings"]["embedding_cache"] == str(cache)
        index = result["datasets"]["crowdflower"]["index"]["project"]
        assert index["computed"] == index["embedded"] > 0
        out = tmp_path / "again.json"
        args = ["--data", str(data), "--embedder", "hashing-256", "--reranker", "none"]
        args += ["--embedding-cache", str(cache), "--no-progress", "--out", str(out)]
        assert main(args) == 0
        again = json.loads(out.read_text(encoding="utf-8"))
        for name, dataset in again["datasets"].items():
            assert dataset["index"]["project"]["computed"] == 0, name
            for task, values in dataset["tasks"].items():
                first = result["datasets"][name]["tasks"][task]["metrics"]
                assert values["metrics"] == first, (name, task)

    def test_bad_weights_are_refused(self) -> None:
        with pytest.raises(SystemExit):
            main(["--weights", "bm25=1"])

    def test_bad_settings_are_refused(self) -> None:
        with pytest.raises(SystemExit):
            main(["--min-similarity", "high"])
        with pytest.raises(SystemExit):
            main(["--rerank-depth", "0"])


def run_printed(argv: list[str]) -> tuple[dict[str, Any], str]:
    """`main`'s JSON result and what it printed."""
    printed = io.StringIO()
    with keyword_rerankers(), contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    out = Path(argv[argv.index("--out") + 1])
    return json.loads(out.read_text(encoding="utf-8")), printed.getvalue()


@pytest.fixture(scope="module")
def several(
    data: Path, cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], str]:
    """Two re-rankers (one labelled, one named by default) at two depths."""
    out = tmp_path_factory.mktemp("several") / "relevance.json"
    args = ["--data", str(data), "--embedder", "hashing-256", "--embedding-cache", str(cache)]
    args += ["--reranker", "kettle=keyword:kettle,keyword:shoes,none", "--rerank-depth", "4,2"]
    return run_printed([*args, "--no-progress", "--out", str(out)])


class TestSeveralRerankers:
    SYSTEMS: ClassVar[list[str]] = [
        "bm25",
        "dense",
        "hybrid",
        "hybrid+kettle@2",
        "hybrid+kettle@4",
        "hybrid+shoes@2",
        "hybrid+shoes@4",
        "textbook",
    ]

    def test_one_system_per_reranker_and_depth(self, several: tuple[dict[str, Any], str]) -> None:
        result, _ = several
        assert result["systems"] == self.SYSTEMS
        settings = result["settings"]
        assert settings["rerankers"] == {"kettle": "keyword:kettle", "shoes": "keyword:shoes"}
        assert settings["rerank_depths"] == [2, 4]
        assert settings["reranker"] == "keyword:kettle, keyword:shoes"
        assert settings["rerank_depth"] is None
        for name, dataset in result["datasets"].items():
            for task_name, task in dataset["tasks"].items():
                assert list(task["metrics"]) == self.SYSTEMS, (name, task_name)
                assert list(task["latency_ms"]) == self.SYSTEMS, (name, task_name)
                for system in self.SYSTEMS[3:7]:
                    assert task["latency_ms"][system]["rerank"]["n"] == task["queries"]

    def test_the_hybrid_is_shared(self, several: tuple[dict[str, Any], str]) -> None:
        result, _ = several
        latency = result["datasets"]["crowdflower"]["tasks"]["product_search"]["latency_ms"]
        hybrid = latency["hybrid"]
        for system in self.SYSTEMS[3:7]:
            for stage in ("embedding", "bm25+knn", "fusion"):
                assert latency[system][stage] == hybrid[stage], (system, stage)
            assert latency[system]["total"]["median"] >= hybrid["total"]["median"]

    def test_printed_tables_stay_narrow(self, several: tuple[dict[str, Any], str]) -> None:
        _, printed = several
        lines = printed.splitlines()
        assert max(len(line) for line in lines) <= relevance.LINE
        assert "hybrid+shoes@4" in printed
        latency = printed[printed.index("latency, ms") : printed.index("re-ranking: ")]
        assert latency.count("\ncrowdflower / product_search") == 2  # printed in two parts
        tradeoff = printed[printed.index("re-ranking: ") :]
        assert "multicpr / product_search" in tradeoff
        assert "hybrid+kettle@2" in tradeoff

    def test_one_reranker_at_one_depth_keeps_its_name(self, data: Path, tmp_path: Path) -> None:
        out = tmp_path / "one.json"
        args = ["--data", str(data), "--embedder", "hashing-64", "--embedding-cache", "none"]
        args += ["--datasets", "crowdflower", "--no-textbook", "--reranker", "keyword:kettle"]
        result, printed = run_printed(
            [*args, "--rerank-depth", "3", "--no-progress", "--out", str(out)]
        )
        assert result["systems"] == ["bm25", "dense", "hybrid", "hybrid+rerank"]
        assert result["settings"]["reranker"] == "keyword:kettle"
        assert result["settings"]["rerank_depth"] == 3
        assert result["settings"]["rerankers"] == {"kettle": "keyword:kettle"}
        metrics = result["datasets"]["crowdflower"]["tasks"]["product_search"]["metrics"]
        assert list(metrics) == result["systems"]
        assert "hybrid+rerank" in printed


class TestRerankedRankings:
    """Each depth's ranking is the product's search with that re-ranker and depth."""

    def test_product_search(self, data: Path, tmp_path: Path) -> None:
        cf = load_crowdflower(data)
        store, embedder = EmbeddedStore(tmp_path / "cf"), HashingEmbedder(64)
        index_products("cf", [as_product(i) for i in cf.items], store, embedder, False)
        config = SearchConfig()
        rerankers = {"kettle": KeywordReranker("kettle"), "shoes": KeywordReranker("shoes")}
        systems = _build_systems(store, embedder, rerankers, [2, 4], config, None)
        scope = product_scope("crowdflower", config)
        depth_matters = False
        for query in [q.text for q in cf.queries]:
            for reranker in rerankers.values():
                reranker.calls.clear()
            ranked = systems.run(query, scope)
            plain = HybridSearch(store, embedder, None, config)
            assert ranked["hybrid"][0] == [
                h.product.id for h in plain.search(query, size=scope.top_k).hits
            ]
            for label, reranker in rerankers.items():
                assert reranker.calls == [2, 4]  # one timed scorer call per depth
                for depth in (2, 4):
                    name = f"hybrid+{label}@{depth}"
                    search = HybridSearch(
                        store, embedder, reranker, replace(config, rerank_depth=depth)
                    )
                    hits = search.search(query, size=scope.top_k, rerank=True).hits
                    assert ranked[name][0] == [h.product.id for h in hits], (query, name)
                    timings = ranked[name][1]
                    assert timings["total"] == pytest.approx(
                        ranked["hybrid"][1]["total"] + timings["rerank"]
                    )
                depth_matters |= ranked[f"hybrid+{label}@2"][0] != ranked[f"hybrid+{label}@4"][0]
            systems.check(query, scope)
        assert depth_matters  # the data tells depths apart

    def test_passages(self, data: Path, tmp_path: Path) -> None:
        epqa = load_epqa(data, seed=0)
        catalog = epqa_catalog(epqa)
        store, embedder = EmbeddedStore(tmp_path / "epqa"), HashingEmbedder(64)
        index_products("epqa", catalog.products, store, embedder, False)
        config = SearchConfig()
        rerankers = {"drawer": KeywordReranker("drawer"), "milk": KeywordReranker("milk")}
        systems = _build_systems(store, embedder, rerankers, [1, 3], config, None)
        for question in epqa.questions:
            scope = epqa_scopes(question, config)["per_product"]
            ranked = systems.run(question.text, scope)
            for label, reranker in rerankers.items():
                for depth in (1, 3):
                    search = HybridSearch(
                        store, embedder, reranker, replace(config, rerank_depth=depth)
                    )
                    hits = search.passages(question.product_id, question.text, top_k=scope.top_k)
                    assert ranked[f"hybrid+{label}@{depth}"][0] == [h.unit_id for h in hits]
            systems.check(question.text, epqa_scopes(question, config)["pooled"])

    def test_a_reranker_not_trained_for_passages_leaves_them_alone(
        self, data: Path, tmp_path: Path
    ) -> None:
        """As the product routes them: the re-ranked systems equal the hybrid, with no call."""
        epqa = load_epqa(data, seed=0)
        catalog = epqa_catalog(epqa)
        store, embedder = EmbeddedStore(tmp_path / "epqa"), HashingEmbedder(64)
        index_products("epqa", catalog.products, store, embedder, False)
        config = SearchConfig()
        reranker = KeywordReranker("drawer")
        scopes = {"drawer": RerankScope(cjk=True, passages=False)}
        systems = _build_systems(store, embedder, {"drawer": reranker}, [3], config, None, scopes)
        for question in epqa.questions:
            for scope in epqa_scopes(question, config).values():
                ranked = systems.run(question.text, scope)
                assert ranked["hybrid+rerank"][0] == ranked["hybrid"][0]
                systems.check(question.text, scope)
        assert reranker.calls == []


class TestOptions:
    def test_rerankers(self) -> None:
        assert _rerankers("adapted=/tmp/cf/reranker/, nanoranker,none") == {
            "adapted": "/tmp/cf/reranker/",
            "nanoranker": "nanoranker",
        }
        assert _rerankers("cross-encoder/ms-marco-MiniLM-L-6-v2") == {
            "ms-marco-MiniLM-L-6-v2": "cross-encoder/ms-marco-MiniLM-L-6-v2"
        }
        assert _rerankers("/tmp/cf/reranker") == {"reranker": "/tmp/cf/reranker"}
        assert _rerankers("none") == {}
        assert _rerankers("off,x=none") == {}

    def test_depths(self) -> None:
        assert _depths("50,10, 20,10") == [10, 20, 50]
        assert _depths("20") == [20]

    @pytest.mark.parametrize(
        "argv",
        [
            ["--reranker", "nanoranker,nanoranker"],
            ["--reranker", "a=/x/reranker,b=/y/reranker,/z/reranker,/w/reranker"],
            ["--rerank-depth", "10,x"],
            ["--rerank-depth", "10,0"],
            ["--rerank-depth", "20,500"],  # above the app's limit
            ["--rerank-depth", ","],
        ],
    )
    def test_bad_options_are_refused(self, argv: list[str]) -> None:
        with pytest.raises(SystemExit):
            main(argv)
