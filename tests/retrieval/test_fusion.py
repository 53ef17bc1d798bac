import pytest

from retrieval.fusion import reciprocal_rank_fusion


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
