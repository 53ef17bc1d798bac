"""Ranking metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from benchmarks import metrics


class TestNdcg:
    def test_hand_computed(self) -> None:
        # ranked gains 3, 0, 2 against the ideal 3, 2, 1 (d is judged but not retrieved)
        gains = {"a": 3.0, "b": 0.0, "c": 2.0, "d": 1.0}
        dcg = 3 / math.log2(2) + 0 / math.log2(3) + 2 / math.log2(4)  # 3 + 0 + 1 = 4
        ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)  # 3 + 1.2619 + 0.5
        assert metrics.ndcg_at_k(["a", "b", "c"], gains, 10) == pytest.approx(dcg / ideal)
        assert metrics.ndcg_at_k(["a", "b", "c"], gains, 10) == pytest.approx(0.84001, abs=1e-5)

    def test_perfect_and_empty(self) -> None:
        gains = {"a": 2.0, "b": 1.0}
        assert metrics.ndcg_at_k(["a", "b", "x"], gains) == pytest.approx(1.0)
        assert metrics.ndcg_at_k([], gains) == 0.0
        assert metrics.ndcg_at_k(["x", "y"], gains) == 0.0

    def test_unjudged_count_as_zero_and_only_k_counts(self) -> None:
        gains = {"a": 1.0}
        # a at rank 2: 1 / log2(3)
        assert metrics.ndcg_at_k(["x", "a"], gains) == pytest.approx(1 / math.log2(3))
        assert metrics.ndcg_at_k(["x", "a"], gains, k=1) == 0.0

    def test_ideal_is_cut_at_k(self) -> None:
        gains = {"a": 1.0, "b": 1.0, "c": 1.0}
        assert metrics.ndcg_at_k(["a"], gains, k=1) == pytest.approx(1.0)

    def test_repeated_id_gains_once(self) -> None:
        gains = {"a": 1.0, "b": 1.0}
        assert metrics.ndcg_at_k(["a", "a"], gains) == pytest.approx(1 / (1 + 1 / math.log2(3)))

    def test_undefined_without_positive_gain(self) -> None:
        assert metrics.ndcg_at_k(["a"], {"a": 0.0}) is None
        assert metrics.ndcg_at_k(["a"], {}) is None


class TestReciprocalRankAndRecall:
    def test_reciprocal_rank(self) -> None:
        assert metrics.reciprocal_rank_at_k(["x", "y", "a"], {"a", "b"}) == pytest.approx(1 / 3)
        assert metrics.reciprocal_rank_at_k(["a"], {"a"}) == 1.0
        assert metrics.reciprocal_rank_at_k(["x", "a"], {"a"}, k=1) == 0.0
        assert metrics.reciprocal_rank_at_k(["x"], set()) is None

    def test_recall(self) -> None:
        assert metrics.recall_at_k(["a", "x", "b"], {"a", "b", "c", "d"}, 10) == 0.5
        assert metrics.recall_at_k(["a", "x", "b"], {"a", "b"}, 2) == 0.5
        assert metrics.recall_at_k(["x"], {"a"}, 100) == 0.0
        assert metrics.recall_at_k(["x"], set(), 100) is None

    def test_judged_share(self) -> None:
        assert metrics.judged_share_at_k(["a", "x", "b", "y"], {"a", "b"}) == 0.5
        assert metrics.judged_share_at_k([], {"a"}) is None


class TestCoverageAndDiversity:
    def test_coverage(self) -> None:
        lists = [["a", "b", "c"], ["b", "c", "d"], ["a"]]
        assert metrics.coverage(lists, catalog_size=8, k=10) == 0.5  # a, b, c, d of 8
        assert metrics.coverage(lists, catalog_size=8, k=1) == 0.25  # a, b
        assert metrics.coverage([], catalog_size=0) == 0.0

    def test_distinct_values(self) -> None:
        assert metrics.distinct_values(["Sony", "sony ", "JBL", None, ""]) == 2
        assert metrics.distinct_values(["Sony", "JBL", "Anker"], k=2) == 2
        assert metrics.distinct_values([None, None]) is None

    def test_diversity_is_the_mean_and_na_without_values(self) -> None:
        per_query = [["Sony", "JBL", "Sony"], ["Anker"], [None, None]]
        assert metrics.diversity(per_query) == pytest.approx((2 + 1) / 2)
        assert metrics.diversity([[None], [None, None]]) is None


class TestMeansAndPercentiles:
    def test_mean_skips_undefined(self) -> None:
        assert metrics.mean([1.0, None, 0.0]) == 0.5
        assert metrics.mean([None]) is None
        assert metrics.count_defined([1.0, None, 0.0]) == 2

    def test_nearest_rank_percentile(self) -> None:
        samples = [float(x) for x in range(1, 21)]  # 1..20
        assert metrics.percentile(samples, 0.95) == 19.0
        assert metrics.percentile(samples, 0.99) == 20.0
        assert metrics.percentile(samples, 0.5) == 10.0
        assert metrics.percentile([5.0], 0.99) == 5.0
        with pytest.raises(ValueError, match="no samples"):
            metrics.percentile([], 0.5)

    def test_latency_summary(self) -> None:
        summary = metrics.latency_summary([4.0, 1.0, 3.0, 2.0])
        assert summary == {"median": 2.5, "p95": 4.0, "p99": 4.0, "max": 4.0, "n": 4}
        assert metrics.latency_summary([]) == {"n": 0}
