import json
from pathlib import Path

from benchmarks.review_aspects import JUDGEMENTS, found_in, read_judgements, score

ROOT = Path(__file__).resolve().parents[2]


def test_mentions_cite_the_aspect_words_in_place() -> None:
    [found] = found_in("The battery died after a week.", "sample", 1)
    assert (found.aspect, found.polarity, found.term, found.cited_ok) == (
        "battery",
        "negative",
        "battery",
        True,
    )
    assert found.clause in found.review
    assert found_in("The battery died after a week.", "x")[0].key == found.key  # stable


def test_scores_count_judged_mentions_only() -> None:
    found = found_in("Great battery, terrible sound.", "sample")
    by_aspect = {f.aspect: f for f in found}
    judged = {
        by_aspect["battery"].key: {"aspect_ok": True, "polarity": "positive"},
        by_aspect["sound"].key: {"aspect_ok": False},
    }
    result = score(found, judged)
    assert (result["judged"], result["unjudged"]) == (2, 0)
    assert (result["aspect_precision"], result["polarity_accuracy"]) == (0.5, 1.0)
    assert result["wrong_by_aspect"] == {"sound": 1}
    assert score(found, {})["aspect_precision"] is None


def test_the_judgements_are_well_formed() -> None:
    assert len(read_judgements(ROOT / JUDGEMENTS)) >= 100
    for line in (ROOT / JUDGEMENTS).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert row["aspect_ok"] in (True, False)
        assert not row["aspect_ok"] or row["polarity"] in ("positive", "negative", "neutral")
