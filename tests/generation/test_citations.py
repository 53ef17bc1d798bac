import pytest

from generation.citations import StreamingCitationFilter, check_citations


class TestCheckCitations:
    def test_valid_citations_stay(self) -> None:
        checked = check_citations("The Q30 lasts 40 hours [2]. Sony is quieter [1][2].", {1, 2})
        assert checked.text == "The Q30 lasts 40 hours [2]. Sony is quieter [1][2]."
        assert checked.cited == [1, 2]
        assert checked.dropped_citations == 0
        assert checked.supported

    def test_unknown_citation_is_removed_and_counted(self) -> None:
        checked = check_citations("Buy the Q30 [2, 7]. It is cheap [9].", {1, 2})
        assert checked.text == "Buy the Q30 [2]."
        assert checked.cited == [2]
        assert checked.dropped_citations == 2
        assert checked.dropped_sentences == 1

    def test_answer_left_without_valid_citation_is_unsupported(self) -> None:
        checked = check_citations("Product p999 is the best [5].", {1, 2, 3})
        assert not checked.supported
        assert checked.text == ""

    def test_uncited_sentence_is_kept_but_does_not_support(self) -> None:
        checked = check_citations("Here is what I found.", {1})
        assert checked.text == "Here is what I found."
        assert not checked.supported

    def test_citation_after_the_full_stop_belongs_to_its_sentence(self) -> None:
        checked = check_citations("Great battery. [3] Light too. [1]", {1})
        assert checked.text == "Light too. [1]"
        assert checked.dropped_sentences == 1

    def test_chinese_sentences(self) -> None:
        checked = check_citations("华为降噪很好[1]。小米更便宜[4]。", {1, 2})
        assert checked.text == "华为降噪很好[1]。"
        assert checked.cited == [1]

    @pytest.mark.parametrize("marker", ["[1,2]", "[1, 2]", "[1;2]", "[1，2]", "[ 1 ]"])
    def test_marker_spellings(self, marker: str) -> None:
        assert check_citations(f"Good {marker}.", {1, 2}).cited


class TestStreamingFilter:
    def _run(self, pieces: list[str], valid: set[int]) -> str:
        f = StreamingCitationFilter(valid)
        return "".join(f.feed(p) for p in pieces) + f.flush()

    def test_invalid_citation_never_leaves_even_split_across_pieces(self) -> None:
        out = self._run(["Buy it ", "[", "1", "2]", " now [1", "]."], {1})
        assert out == "Buy it  now [1]."

    def test_brackets_that_are_not_citations_pass(self) -> None:
        assert self._run(["size [M] fits"], {1}) == "size [M] fits"

    def test_unclosed_bracket_is_released(self) -> None:
        assert self._run(["a [", "b" * 30], {1}) == "a [" + "b" * 30
        assert self._run(["tail ["], {1}) == "tail ["
