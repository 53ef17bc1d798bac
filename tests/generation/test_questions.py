"""What a question asks for, and what a passage says: the rules the answer checker relies on.

A yes/no answer opens with Yes or No only when its quote settles it, and an answer to "how
long" must hold a duration; these tests pin the English and Chinese rules behind that."""

from __future__ import annotations

import pytest

from generation.questions import (
    QuestionKind,
    hedged,
    holds_kind,
    negated,
    negations,
    question_kind,
    split_verdict,
)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("does it come with a charger?", "yes_no"),
        ("Hi, is it waterproof?", "yes_no"),
        ("能防水吗", "yes_no"),
        ("有没有充电器", "yes_no"),
        ("how long does the battery last?", "duration"),
        ("续航多久", "duration"),
        ("how many pieces are in the set?", "count"),
        ("一套有几件", "count"),
        ("what size is the cord?", "measure"),
        ("how heavy is it", "measure"),
        ("how long is the cord?", "measure"),  # a length, not a duration
        ("how many inches wide is it?", "measure"),  # a unit, not a count
        ("尺寸多大", "measure"),
        ("how much does it cost", "price"),
        ("how much does it weigh?", "measure"),  # "how much" that is not a price
        ("多少钱", "price"),
        ("is the tank inside or outside?", "open"),  # asks which, not whether
        ("Does it come with batteries or not?", "yes_no"),  # "or not" is still whether
        ("what color is it?", "open"),
        # the sentence that asks decides, not the context before it
        ("my model is frs20qrb. it's not on the list. will this one fit?", "yes_no"),
        ("i have an lg ltcs24223w. which filter would work?", "open"),
        ("my bolts are missing... what size bolts should i get?", "measure"),
        ("any rust issues?", "yes_no"),
        ('does it come with any adapters, e.g. 1/4" jack?', "yes_no"),  # "e.g." ends nothing
        ('is the lecithin "soy lecithin" or just lecithin?', "open"),
    ],
)
def test_question_kind(question: str, kind: QuestionKind) -> None:
    assert question_kind(question) == kind


@pytest.mark.parametrize(
    ("kind", "text", "holds"),
    [
        ("duration", "8-10 hrs", True),
        ("duration", "续航约30小时", True),
        ("duration", "great sound", False),
        ("duration", "capacity: 750 ml", False),
        ("duration", "the bottle lasts more than a month", True),
        ("duration", "ah, nice", False),
        ("measure", "750 ml", True),
        ("measure", "12 x 8 inches", True),
        ("measure", "great sound", False),
        ("price", "$19.99", True),
        ("price", "great sound", False),
        ("count", "a set of 12 pieces", True),
        ("yes_no", "great sound", True),  # any quote may settle a yes/no
        ("open", "great sound", True),
    ],
)
def test_holds_kind(kind: QuestionKind, text: str, holds: bool) -> None:
    assert holds_kind(kind, text) is holds


def test_a_contraction_is_not_a_clothing_size() -> None:
    assert not holds_kind("measure", "It's a great gift for my son")


@pytest.mark.parametrize(
    ("text", "denies"),
    [
        ("did not come with the battery pack", True),
        ("comes with a charger", False),
        ("noise cancelling: False", True),
        ("It doesn't fold", True),
        ("不锈钢", False),  # a word that holds 不 without denying anything
        ("无线充电", False),
        ("不防水", True),
        ("没有噪音", True),
        ("not bad, not cheap", False),  # two negations
    ],
)
def test_negated(text: str, denies: bool) -> None:
    assert negated(text) is denies


def test_negations_are_counted() -> None:
    assert negations("not bad, not cheap") == 2
    assert negations("comes with a charger") == 0


@pytest.mark.parametrize(
    ("text", "guess"),
    [
        ("it might be possible", True),
        ("it probably fits", True),
        ("可能会漏水", True),
        ("it fits a 12 inch laptop", False),
        ("支持无线充电", False),
        ("came with a jack adapter (i think that's what it is called)", False),  # an aside
        ("it came with an adapter, i think", True),
        ("i can't recall if they were 2 or 2.5 inches long", True),
        ("i don't think there is a maximum", True),
    ],
)
def test_hedged(text: str, guess: bool) -> None:
    assert hedged(text) is guess


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ("Yes, it is waterproof.", ("yes", "It is waterproof.")),
        ("No it does not.", ("no", "It does not.")),
        ("Nothing to add", (None, "Nothing to add")),  # "No" inside a word is no verdict
        ("Noted.", (None, "Noted.")),
        ("是的，可以防水。", ("yes", "可以防水。")),
        ("不防水。", (None, "不防水。")),  # a negated claim, not a leading No
    ],
)
def test_split_verdict(claim: str, expected: tuple[str | None, str]) -> None:
    assert split_verdict(claim) == expected
