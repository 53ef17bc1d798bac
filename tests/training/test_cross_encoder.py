"""Training pairs and cross-encoder training (a tiny BERT, a few steps)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.indexer import index_catalog
from indexer.reader import Row, read_catalog
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.rankers.cross_encoder import CrossEncoderReranker
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import SAMPLE_CATALOG
from training.cross_encoder import (
    CHECKPOINTS,
    TrainingOptions,
    TrainingPair,
    build_pairs,
    read_pairs,
    train_cross_encoder,
    write_pairs,
)
from training.errors import TrainingError
from training.negatives import NegativeMiner
from training.queries import generate_queries

SAMPLE = {r.product.id: r.product for r in read_catalog(SAMPLE_CATALOG) if isinstance(r, Row)}


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path_factory.mktemp("sample-index"))
    index_catalog(read_catalog(SAMPLE_CATALOG), store, HashingEmbedder(256), progress=False)
    yield store
    store.close()


@pytest.fixture(scope="module")
def sample_search(sample_store: EmbeddedStore) -> HybridSearch:
    return HybridSearch(sample_store, HashingEmbedder(256), config=SearchConfig(min_similarity=0.2))


def _pairs(search: HybridSearch, seed: int) -> list[TrainingPair]:
    queries = generate_queries(SAMPLE.values(), per_product=3, seed=seed)
    return build_pairs(queries, NegativeMiner(search, SAMPLE, seed=seed))


class TestPairs:
    def test_same_seed_same_pairs(self, sample_search: HybridSearch) -> None:
        first = _pairs(sample_search, 3)
        assert first == _pairs(sample_search, 3)
        assert first != _pairs(sample_search, 4)

    def test_one_positive_per_query_with_the_text_the_reranker_sees(
        self, sample_search: HybridSearch, sample_store: EmbeddedStore
    ) -> None:
        pairs = _pairs(sample_search, 0)
        positives = [p for p in pairs if p.label == 1.0]
        assert len({(p.query, p.template, p.unit_id) for p in positives}) == len(positives)
        assert {p.source for p in pairs} == {"positive", "hard", "random"}
        for pair in pairs[:200]:
            stored = {u.id: u.text for u in sample_store.get_units(pair.product_id)}
            assert stored[pair.unit_id] == pair.text  # a search hit's content is the unit text
        assert any(p.unit_id.endswith("#qa-1") for p in positives)

    def test_round_trip(self, tmp_path: Path, sample_search: HybridSearch) -> None:
        pairs = _pairs(sample_search, 0)[:20]
        write_pairs(tmp_path / "pairs.jsonl", pairs)
        assert read_pairs(tmp_path / "pairs.jsonl") == pairs


def _few_pairs() -> list[TrainingPair]:
    pairs = []
    for i, product in enumerate(list(SAMPLE.values())[:10]):
        pairs.append(
            TrainingPair(
                product.title[:20], product.title, 1.0, product.id, product.id, "positive", "t"
            )
        )
        other = list(SAMPLE.values())[-1 - i]
        pairs.append(
            TrainingPair(product.title[:20], other.title, 0.0, other.id, other.id, "hard", "t")
        )
    return pairs


class TestTraining:
    def test_trains_saves_and_loads_with_the_reranker(
        self, tmp_path: Path, tiny_model: str
    ) -> None:
        options = TrainingOptions(base_model=tiny_model, max_steps=3, batch_size=4, max_length=64)
        result = train_cross_encoder(_few_pairs(), tmp_path / "model", options, progress=False)
        assert result.steps == 3 and result.complete and result.stopped_by == "max_steps"
        assert result.loss is not None and result.pairs_per_second > 0
        assert not (tmp_path / "model" / CHECKPOINTS).exists()  # removed once complete
        assert (tmp_path / "model" / "tokenizer.json").is_file()
        reranker = CrossEncoderReranker(str(tmp_path / "model"))
        scores = reranker.score("sony headphones", ["Sony headphones", "cast iron pan"])
        assert len(scores) == 2 and all(math.isfinite(s) for s in scores)
        assert reranker._model is not None and reranker._model.max_seq_length == 64  # as trained

    def test_epochs_set_the_steps_unless_max_steps(self) -> None:
        assert TrainingOptions(batch_size=4, epochs=1).total_steps(10) == 3
        assert TrainingOptions(batch_size=4, epochs=2).total_steps(10) == 6
        assert TrainingOptions(batch_size=4, max_steps=5).total_steps(10) == 5
        # by default whole passes until 200 steps, 1 to 4 of them
        assert TrainingOptions(batch_size=16).total_steps(16 * 74) == 74 * 3
        assert TrainingOptions(batch_size=16).total_steps(16 * 10) == 10 * 4
        assert TrainingOptions(batch_size=16).total_steps(16 * 500) == 500

    def test_time_budget_stops_with_a_checkpoint(self, tmp_path: Path, tiny_model: str) -> None:
        options = TrainingOptions(
            base_model=tiny_model, max_steps=5, batch_size=4, time_budget_s=0, save_steps=100
        )
        result = train_cross_encoder(_few_pairs(), tmp_path / "model", options, progress=False)
        assert result.steps == 1 and result.stopped_by == "time_budget" and not result.complete
        assert (tmp_path / "model" / CHECKPOINTS / "checkpoint-1").is_dir()
        assert (tmp_path / "model" / "model.safetensors").is_file()  # usable meanwhile

    def test_no_pairs(self, tmp_path: Path) -> None:
        with pytest.raises(TrainingError, match="no training pairs"):
            train_cross_encoder([], tmp_path, TrainingOptions())

    def test_bad_options(self) -> None:
        with pytest.raises(ValueError, match="max_steps"):
            TrainingOptions(max_steps=0)
