"""The weak-match rule chosen on dev from per-query scores (`benchmarks.crosslingual`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from benchmarks.crosslingual import QuerySet, choose_weak_match

WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)


def _set(data: str, language: str) -> QuerySet:
    return QuerySet(f"{data} {language}", SimpleNamespace(name=data), [], [], "both", language)  # type: ignore[arg-type]


def _row(
    split: str, coverage: float | None, own: float, scores: dict[float, float]
) -> dict[str, Any]:
    return {
        "split": split,
        "coverage": coverage,
        "own": own,
        "scores": {str(w): scores.get(w, scores[0.5]) for w in WEIGHTS},
    }


def _results() -> tuple[dict[str, Any], list[QuerySet]]:
    english = _set("crowdflower", "en")  # the catalog's language
    chinese = _set("crowdflower", "zh")  # translated: wants the cross-lingual list
    results = {
        "crowdflower en over both catalog": {
            "queries": [
                # matched well: never raised
                _row(part, 1.0, 2.0, {0.0: 0.8, 0.5: 0.8})
                for part in ("dev", "test")
            ]
            + [
                # a descriptive query its best hit covers at 0.4: hurt at weight 4
                _row(part, 0.4, 2.0, {0.0: 0.6, 0.5: 0.6, 2.0: 0.6, 4.0: 0.0})
                for part in ("dev", "test")
            ]
        },
        "crowdflower zh over both catalog": {
            "queries": [
                _row(part, 0.0, 1.0, {0.0: 0.0, 0.5: 0.1, 1.0: 0.5, 2.0: 0.6})
                for part in ("dev", "test")
            ]
        },
    }
    return results, [english, chinese]


def test_the_best_dev_rule_within_the_same_language_tolerance() -> None:
    results, sets = _results()
    best = choose_weak_match(results, sets, WEIGHTS, 0.5, factors=(1.0, 2.0))["best"]
    # factor 2 raises the translated query to 2 (0.6); a threshold up to 0.4 spares the English
    # query at 0.4; ties go to the lowest threshold
    assert (best["coverage"], best["factor"]) == (0.1, 2.0)
    assert best["sets"]["crowdflower zh over both catalog"]["dev"] == 0.6
    best = choose_weak_match(results, sets, WEIGHTS, 0.5, factors=(1.0,))["best"]
    assert (best["coverage"], best["factor"]) == (0.1, 1.0)
    assert best["sets"]["crowdflower zh over both catalog"]["dev"] == 0.5


def test_a_rule_that_hurts_the_catalogs_language_on_dev_is_left_out() -> None:
    results, sets = _results()
    choice = choose_weak_match(results, sets, WEIGHTS, 0.5, factors=(2.0,))
    # above 0.4, factor 2 weighs the English query at 4: it falls from 0.6 to 0
    kept = [choice["best"], *choice["runner_up"]]
    assert sorted(c["coverage"] for c in kept) == [0.1, 0.2, 0.3, 0.4]


def test_nothing_to_choose_from_without_coverage() -> None:
    results, sets = _results()
    for run in results.values():
        for row in run["queries"]:
            del row["coverage"]
    assert choose_weak_match(results, sets, WEIGHTS, 0.5) == {}
