from collections.abc import Mapping
from types import MappingProxyType

import pytest

from retrieval.fusion import WeakMatch, reciprocal_rank_fusion


class TestReciprocalRankFusion:
    def test_agreement_beats_a_single_first_place(self) -> None:
        fused = reciprocal_rank_fusion({"a": ["x", "both"], "b": ["y", "both"]}, k=60)
        assert fused[0][0] == "both"

    def test_scores_follow_the_formula(self) -> None:
        fused = dict(reciprocal_rank_fusion({"a": ["x", "y"], "b": ["y"]}, k=10))
        assert fused["x"] == pytest.approx(1 / 11)
        assert fused["y"] == pytest.approx(1 / 12 + 1 / 11)

    def test_small_k_lets_a_decoy_win(self) -> None:
        ranked = {"a": ["decoy", "x", "both"], "b": ["z1", "z2", "z3", "both"]}
        assert reciprocal_rank_fusion(ranked, k=1)[0][0] == "decoy"
        assert reciprocal_rank_fusion(ranked, k=60)[0][0] == "both"

    def test_weights_tilt_the_order(self) -> None:
        ranked = {"lexical": ["l"], "semantic": ["s"]}
        assert reciprocal_rank_fusion(ranked, weights={"semantic": 2.0})[0][0] == "s"
        assert reciprocal_rank_fusion(ranked, weights={"lexical": 2.0})[0][0] == "l"

    def test_ties_break_by_best_rank_then_list_order_not_hashing(self) -> None:
        fused = reciprocal_rank_fusion({"a": ["p", "q"], "b": ["q2", "p2"]})
        assert [item for item, _ in fused] == ["p", "q2", "q", "p2"]

    @pytest.mark.parametrize("k", [0, -1])
    def test_bad_k(self, k: float) -> None:
        with pytest.raises(ValueError, match="constant k"):
            reciprocal_rank_fusion({"a": ["x"]}, k=k)

    def test_negative_weight(self) -> None:
        with pytest.raises(ValueError, match="weight"):
            reciprocal_rank_fusion({"a": ["x"]}, weights={"a": -1})


class TestWeakMatch:
    rule = WeakMatch(coverage=0.5, factor=1.0)
    weights: Mapping[str, float] = MappingProxyType(
        {"lexical": 1.0, "semantic": 1.0, "crosslingual": 0.5}
    )

    def test_below_the_coverage_the_list_weighs_as_much_as_the_own_language_ones(self) -> None:
        weights, share = self.rule.weights("red running shoes", "Trail shoe, blue", self.weights)
        assert share == pytest.approx(1 / 3)
        assert weights == {**self.weights, "crosslingual": 2.0}
        # a Chinese query without the semantic list: as much as the lexical list alone
        chinese = {**self.weights, "semantic": 0.0}
        weights, share = self.rule.weights("蓝牙运动耳机", "无线耳机", chinese)
        assert share == pytest.approx(1 / 5)
        assert weights["crosslingual"] == 1.0
        weights, _ = WeakMatch(factor=2.0).weights("蓝牙运动耳机", "无线耳机", chinese)
        assert weights["crosslingual"] == 2.0

    def test_at_or_above_the_coverage_nothing_changes(self) -> None:
        weights, share = self.rule.weights("running shoes", "Running shoe", self.weights)
        assert share == 1.0
        assert weights == self.weights
        weights, share = self.rule.weights("red shoes", "Shoes", self.weights)
        assert share == 0.5
        assert weights == self.weights

    def test_no_lexical_hit_is_the_weakest_match(self) -> None:
        weights, share = self.rule.weights("red running shoes", None, self.weights)
        assert share == 0.0
        assert weights["crosslingual"] == 2.0

    def test_it_never_lowers_the_weight_nor_turns_the_list_on(self) -> None:
        heavy = {**self.weights, "crosslingual": 3.0}
        assert self.rule.weights("red running shoes", None, heavy) == (heavy, 0.0)
        off = {**self.weights, "crosslingual": 0.0}
        assert self.rule.weights("red running shoes", None, off) == (off, 0.0)
        assert self.rule.weights("the of", "anything", self.weights) == (self.weights, None)

    @pytest.mark.parametrize(("coverage", "factor"), [(-0.1, 1.0), (1.5, 1.0), (0.5, -1.0)])
    def test_bad_settings(self, coverage: float, factor: float) -> None:
        with pytest.raises(ValueError, match="weak-match"):
            WeakMatch(coverage=coverage, factor=factor)
