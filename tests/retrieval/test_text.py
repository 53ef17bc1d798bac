import pytest

from retrieval import text
from retrieval.text import has_cjk, stem, tokenize


class TestTokenize:
    def test_english_is_lowercased_stemmed_and_stopped(self) -> None:
        assert tokenize("The Wireless Headphones for Runners") == [
            "wireless",
            "headphone",
            "runner",
        ]

    def test_full_width_is_normalised(self) -> None:
        assert tokenize("ＳＯＮＹ") == ["sony"]

    def test_chinese_gives_words_and_bigrams(self) -> None:
        tokens = tokenize("蓝牙耳机")
        assert "耳机" in tokens
        assert "蓝牙" in tokens
        assert "牙耳" in tokens  # bigram across the segmenter's cut

    def test_query_and_title_share_terms_without_spaces(self) -> None:
        title = set(tokenize("华为主动降噪真无线蓝牙耳机"))
        query = set(tokenize("降噪耳机"))
        assert query & title >= {"降噪", "耳机"}

    def test_mixed_language(self) -> None:
        tokens = tokenize("华为FreeBuds耳机")
        assert "freebud" in tokens and "耳机" in tokens

    def test_has_cjk(self) -> None:
        assert has_cjk("buy 耳机")
        assert not has_cjk("headphones")


def test_stem_keeps_short_and_special_words() -> None:
    assert stem("bus") == "bus"
    assert stem("glass") == "glass"
    assert stem("batteries") == "battery"
    assert stem("watches") == "watch"


class TestCoverage:
    def test_share_of_the_querys_words_the_text_holds(self) -> None:
        assert text.coverage("red running shoes", "Running shoe, blue") == pytest.approx(2 / 3)
        assert text.coverage("The running shoes", "running SHOES") == 1.0  # stop words aside
        assert text.coverage("red shoes", "") == 0.0

    def test_chinese_by_character_bigrams(self) -> None:
        assert text.coverage_terms("蓝牙耳机") == {"蓝牙", "牙耳", "耳机"}
        assert text.coverage_terms("锅 pan") == {"锅", "pan"}
        assert text.coverage("蓝牙耳机", "无线耳机 黑色") == pytest.approx(1 / 3)

    def test_a_query_without_terms_has_no_coverage(self) -> None:
        assert text.coverage("the of", "anything") is None
        assert text.coverage("", "anything") is None
