"""Numbers read from claims, and claims written as answer text."""

from __future__ import annotations

from generation.facts import numbers_in, render_claims
from generation.quotes import Claim


def test_values_not_spellings() -> None:
    assert numbers_in("1,299 and 12.50 [3] and WH-1000XM5") == {1299.0, 12.5, 1000.0}
    assert numbers_in("It weighs 0.30 kg") == {0.3}


def test_list_numbers_and_references_are_not_facts() -> None:
    assert numbers_in("1. The lid holds 750 ml") == {750.0}
    assert numbers_in("2) Option 3 and source 1 are cheaper than #2") == set()
    assert numbers_in("It sleeps 2.") == {2.0}  # a count is a fact


def test_a_number_inside_a_model_name_is_not_one_but_between_chinese_characters_it_is() -> None:
    assert numbers_in("Anker Q30") == set()
    assert numbers_in("续航约50小时") == {50.0}


def test_render_claims() -> None:
    claims = [Claim("It holds 750 ml.", (3,)), Claim("容量4升。", (1, 2)), Claim("Cheap", (2,))]
    assert render_claims(claims) == "It holds 750 ml [3]. 容量4升[1][2]。 Cheap [2]"
