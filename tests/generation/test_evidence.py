"""The evidence behind the gate: a passage's statements, and the best one's similarity."""

from __future__ import annotations

import numpy as np

from generation.evidence import evidence, quotable, statements
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.search import Explanation, Hit

DESCRIPTION = (
    "Over-ear headphones with eight microphones for adaptive noise cancelling. Up to 30 hours "
    "of battery; 3 minutes of charging gives 3 hours of playback. Multipoint pairing."
)


def _hit(text: str, retrievers: tuple[str, ...] = ("lexical", "semantic")) -> Hit:
    explanation = Explanation(
        retrievers={r: {"rank": 1, "score": 0.5} for r in retrievers},
        matched_terms={},
        fused_score=0.0,
        rerank_score=None,
    )
    return Hit("p#d", "p", "description", text, 0.5, explanation)


def test_statements_are_sentences_clauses_and_attributes() -> None:
    assert statements(DESCRIPTION) == [
        "Over-ear headphones with eight microphones for adaptive noise cancelling.",
        "Up to 30 hours of battery",
        "3 minutes of charging gives 3 hours of playback.",
        "Multipoint pairing.",
    ]
    assert statements("type: over-ear; battery life hours: 30") == [
        "type: over-ear",
        "battery life hours: 30",
    ]
    assert statements("续航30小时。支持快充；重量250克") == ["续航30小时", "支持快充", "重量250克"]
    assert statements("v1.2 firmware, 5.2 Bluetooth") == ["v1.2 firmware, 5.2 Bluetooth"]
    assert statements("ok") == ["ok"]  # too short to split is itself


def test_a_long_sentence_is_split_at_commas_into_verbatim_pieces() -> None:
    clauses = [
        f"clause {i} is about the sturdy stainless steel lid and its handle" for i in range(8)
    ]
    sentence = ", ".join(clauses) + "."
    assert len(sentence) > 400 and "." not in sentence[:-1]
    pieces = statements(sentence + " Short one.")
    assert len(pieces) >= 3
    assert pieces[-1] == "Short one."
    for piece in pieces[:-1]:
        assert piece in sentence, piece  # a quote of a piece is a quote of the source
        assert len(piece) <= 200
        assert not piece.startswith((",", " ")) and not piece.endswith((",", " "))
    assert ", ".join(pieces[:-1]) == sentence  # in order, nothing lost between the pieces


def test_evidence_is_the_best_statement_not_the_diluted_passage() -> None:
    embedder = HashingEmbedder(256)
    question = "how many hours of battery"
    whole = float(embedder.embed_documents([DESCRIPTION])[0] @ embedder.embed_query(question))
    best = evidence(question, [_hit(DESCRIPTION)], embedder)
    assert best is not None and best > whole
    statement = embedder.embed_documents(["Up to 30 hours of battery"])[0]
    assert np.isclose(best, float(statement @ embedder.embed_query(question)), atol=1e-6)


def test_no_evidence_when_the_vector_side_did_not_run() -> None:
    assert evidence("续航多久", [_hit(DESCRIPTION, ("lexical",))], HashingEmbedder(64)) is None
    assert evidence("anything", [], HashingEmbedder(64)) is None


def test_a_question_in_a_passage_is_not_quotable() -> None:
    assert not quotable("Q: does it come with the box, chute and ramp")
    assert not quotable("the box, chute and ramp?")
    assert quotable("A: it comes with the wooden stand and the black chute.")
