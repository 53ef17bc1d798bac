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
