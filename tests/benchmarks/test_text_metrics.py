"""Token F1 and ROUGE-L against hand-computed cases, English and Chinese."""

from __future__ import annotations

import pytest

from benchmarks.text_metrics import best, lcs_length, rouge_l, token_f1, tokens


class TestTokens:
    def test_lower_case_without_punctuation_or_articles(self) -> None:
        assert tokens("The quick, brown fox!") == ["quick", "brown", "fox"]
        assert tokens("An apple a day; THE end.") == ["apple", "day", "end"]

    def test_punctuation_is_deleted_not_split_on(self) -> None:
        # As SQuAD: "it's" becomes "its", "1.5" becomes "15".
        assert tokens("It's 1.5 litres (approx.)") == ["its", "15", "litres", "approx"]

    def test_chinese_characters_are_tokens(self) -> None:
        assert tokens("华为耳机，很好。") == ["华", "为", "耳", "机", "很", "好"]
        assert tokens("iPhone手机 A") == ["iphone", "手", "机"]


class TestTokenF1:
    def test_exact_match_ignores_case_punctuation_and_articles(self) -> None:
        assert token_f1("yes it fits the FRS20", "Yes, it fits the frs20.") == 1.0

    def test_partial_overlap(self) -> None:
        # candidate: it froths milk (3); reference: yes it has milk frother (5); common 2
        assert token_f1("It froths milk.", "Yes, it has a milk frother.") == pytest.approx(0.5)

    def test_tokens_count_with_multiplicity(self) -> None:
        # candidate cat cat, reference cat: precision 1/2, recall 1
        assert token_f1("the cat cat", "a cat") == pytest.approx(2 / 3)

    def test_chinese(self) -> None:
        # 电池续航30小时 / 续航大约30小时: 7 tokens each, 5 shared (续 航 30 小 时)
        assert token_f1("电池续航30小时", "续航大约30小时") == pytest.approx(5 / 7)

    def test_no_common_token(self) -> None:
        assert token_f1("blue", "red") == 0.0

    def test_empty_sides(self) -> None:
        assert token_f1("", "") == 1.0
        assert token_f1("the", "a") == 1.0  # both empty once normalised
        assert token_f1("", "something") == 0.0
        assert token_f1("something", "") == 0.0


class TestRougeL:
    def test_lcs_length(self) -> None:
        assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
        assert lcs_length([], ["a"]) == 0

    def test_order_matters_unlike_f1(self) -> None:
        # cat sat on mat / cat on mat sat: same bag (F1 1.0), LCS cat on mat = 3 of 4
        assert token_f1("cat sat on mat", "cat on the mat sat") == 1.0
        assert rouge_l("cat sat on mat", "cat on the mat sat") == pytest.approx(0.75)

    def test_partial(self) -> None:
        # it froths milk / yes it has milk frother: LCS "it milk" = 2; P 2/3, R 2/5
        assert rouge_l("It froths milk.", "Yes, it has a milk frother.") == pytest.approx(0.5)

    def test_chinese(self) -> None:
        # 我爱北京 / 北京我爱: LCS 2 of 4 on both sides
        assert rouge_l("我爱北京", "北京我爱") == pytest.approx(0.5)
        assert rouge_l("降噪耳机", "降噪耳机。") == 1.0

    def test_empty_sides(self) -> None:
        assert rouge_l("", "") == 1.0
        assert rouge_l("x", "") == 0.0


class TestBest:
    def test_the_best_reference_counts(self) -> None:
        references = ["The tank holds 1.5 litres.", "Yes, it has a milk frother."]
        assert best(token_f1, "It froths milk.", references) == pytest.approx(0.5)
        assert best(rouge_l, "yes it has a milk frother", references) == 1.0

    def test_no_reference(self) -> None:
        assert best(token_f1, "anything", []) is None
