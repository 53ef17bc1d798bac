"""The answer-quality benchmark end to end on tiny data sets in the published formats, with the
hashing embedder and a scripted fake LLM (the model is the boundary; the metrics are real)."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from benchmarks import answers
from benchmarks.answers import (
    SAMPLE_CATALOG,
    _sample_row,
    auc,
    best_threshold,
    constraint_scores,
    detector_scores,
    main,
    missed_constraints,
    read_products,
    rule_scores,
    sample_queries,
    sample_questions,
    tune_half,
    unexpected_constraints,
    valid_citations,
    violations,
)
from benchmarks.datasets import JudgedQuery, Question, load_epqa
from generation.answers import Answer
from generation.llm.base import ChatMessage, GenerationOptions
from generation.llm.fake import RecordingLLM
from generation.prompts import ABSTAIN_MARKER, ADVICE_SYSTEM, Source
from retrieval.schema import Filters, Product
from tests.benchmarks.dataset_files import write_crowdflower, write_epqa

CROWDFLOWER = [
    ("wireless headphones", "Sony Wireless Noise Cancelling Headphones", "Over-ear, 30 h.", 4),
    ("wireless headphones", "JBL Wireless On-Ear Headphones", "", 3),
    ("wireless headphones", "Stainless Steel Kettle", "Boils water fast.", 1),
    ("kettle", "Stainless Steel Kettle", "Boils water fast.", 4),
    ("kettle", "Glass Electric Kettle", "1.7 litre, blue light.", 4),
    ("kettle", "Sony Wireless Noise Cancelling Headphones", "Over-ear, 30 h.", 1),
    ("running shoes", "Trail Running Shoes", "Grippy sole for mud.", 4),
    ("running shoes", "Leather Office Shoes", "", 2),
    ("mouse", "Wireless Mouse", "Two buttons and a wheel.", 4),
    ("garden hose", "Glass Electric Kettle", "1.7 litre, blue light.", 1),
]
B001 = [
    ("it fits the frs20 model. Question: will it fit frs20? ", "cqa"),
    ("the drawer is made of clear plastic.", "bullet"),
    ("color:  { value:clear }", "attribute"),
    ("arrived cracked, returned it.", "review"),
    ("keeps vegetables fresh longer.", "description"),
]
B002 = [
    ("makes great espresso every morning.", "review"),
    ("water tank:  { value:1.5 litre }", "attribute"),
    ("yes it has a milk frother. Question: does it froth milk? ", "cqa"),
    ("", "description"),  # the real file has one empty candidate
]
PAGES = {"B001": ("Frigidaire Crisper Drawer", B001), "B002": ("Espresso Machine", B002)}
# qid, question, product, per candidate: (label, reference answer written from it)
EPQA = [
    (
        "1",
        "does this drawer fit a frs20 fridge?",
        "B001",
        [(2, "Yes, it fits the FRS20."), (1, "It should fit."), (0, ""), (0, ""), (0, "")],
    ),
    (
        "2",
        "what colour is the drawer?",
        "B001",
        [(0, ""), (2, "It is clear."), (1, "The drawer is clear."), (0, ""), (0, "")],
    ),
    (
        "3",
        "can it froth milk?",
        "B002",
        [
            (1, "A customer says it makes great espresso."),
            (1, "The tank holds 1.5 litres."),
            (2, "Yes, it has a milk frother."),
            (0, ""),
        ],
    ),
    ("4", "does it come with a warranty?", "B002", [(0, "")] * 4),  # unanswerable
    ("5", "is it dishwasher safe?", "B001", [(0, "")] * 5),  # unanswerable
]


def write_datasets(root: Path) -> Path:
    """CrowdFlower and ePQA in their published layouts and formats, tiny."""
    write_crowdflower(root, CROWDFLOWER)
    write_epqa(
        root,
        (
            (qid, question, asin, candidate, source, PAGES[asin][0], label, answer)
            for qid, question, asin, judged in EPQA
            for (candidate, source), (label, answer) in zip(PAGES[asin][1], judged, strict=True)
        ),
    )
    return root


Reply = Callable[[str, str, list[tuple[int, str]]], str]


class ScriptedLLM(RecordingLLM):
    """The recording fake, with each reply chosen by ``reply(mode, question, sources)`` from the
    prompt it is given (``sources``: each source's number and title)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(chunk=3)
        self.reply = reply

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        prompt = messages[-1].content
        mode = "advice" if messages[0].content == ADVICE_SYSTEM else "ask"
        question = prompt.rsplit("\nQuestion: ", 1)[-1]
        sources = [(int(n), t) for n, t in re.findall(r"^\[(\d+)\] \(\w+\) (.*)$", prompt, re.M)]
        self.replies.append(self.reply(mode, question, sources))
        return super().stream(messages, options, cancelled=cancelled)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.casefold()))


def scripted_reply(mode: str, question: str, sources: list[tuple[int, str]]) -> str:
    """ePQA: a fixed reply per question. Advice: cite the products whose title shares a word
    with the question (none: abstain); on the sample catalog (Chinese too), cite every one."""
    if not sources:
        return "ok"  # priming the prompt cache
    every = "".join(f"[{n}]" for n, _ in sources)
    if mode == "ask":
        return {
            "does this drawer fit a frs20 fridge?": f"Yes, it fits the FRS20 {every}.",
            "what colour is the drawer?": ABSTAIN_MARKER,
            "can it froth milk?": "It froths milk [1]. It is great [9].",
            "does it come with a warranty?": ABSTAIN_MARKER,
            "is it dishwasher safe?": "The drawer is clear [2].",
        }[question]
    if question in {q.text for q in answers.SAMPLE_QUESTIONS}:
        return f"These match {every}."
    matching = [(n, t) for n, t in sources if _words(t) & _words(question)]
    if not matching:
        return ABSTAIN_MARKER
    return " ".join(f"{title} [{n}]." for n, title in matching)


@contextlib.contextmanager
def fake_llm(llm: RecordingLLM) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(answers, "build_llm", lambda settings: llm)
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_datasets(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def llm() -> ScriptedLLM:
    return ScriptedLLM(scripted_reply)


@pytest.fixture(scope="module")
def run(
    data: Path, llm: ScriptedLLM, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], str]:
    """The JSON result of one run over all three data sets, and what it printed."""
    out = tmp_path_factory.mktemp("out") / "answers.json"
    args = ["--data", str(data), "--embedder", "hashing-64", "--embedding-cache", "none"]
    args += ["--limit-queries", "10", "--no-progress", "--out", str(out)]
    printed = io.StringIO()
    with fake_llm(llm), contextlib.redirect_stdout(printed):
        assert main(args) == 0
    return json.loads(out.read_text(encoding="utf-8")), printed.getvalue()


@pytest.fixture(scope="module")
def result(run: tuple[dict[str, Any], str]) -> dict[str, Any]:
    return run[0]


class TestEpqa:
    def test_reference_answers_are_loaded(self, data: Path) -> None:
        questions = {q.id: q for q in load_epqa(data).questions}
        assert questions["1"].answer == "Yes, it fits the FRS20."  # the label-2 one first
        assert questions["1"].answers == ("Yes, it fits the FRS20.", "It should fit.")
        assert questions["3"].answer == "Yes, it has a milk frother."
        assert questions["4"].answer == ""
        assert questions["4"].answers == ()

    def test_answer_quality(self, result: dict[str, Any]) -> None:
        epqa = result["datasets"]["epqa"]
        assert epqa["sampling"]["method"] == "all questions"
        assert epqa["sampling"]["questions"] == 5
        assert epqa["sampling"]["unanswerable"] == 2
        answer = epqa["scores"]["answer"]
        # q1 matches a reference exactly (markers removed), q3 scores 0.5, q2 abstained
        assert answer["answered"] == {"n": 2, "f1": 0.75, "rouge_l": 0.75}
        assert answer["all_answerable"] == {"n": 3, "f1": 0.5, "rouge_l": 0.5}
        rows = {r["id"]: r for r in epqa["rows"]}
        assert rows["1"]["f1"] == 1.0
        assert rows["3"]["f1"] == 0.5
        assert rows["2"]["f1"] is None
        assert rows["5"]["f1"] is None  # unanswerable: not scored

    def test_citations(self, result: dict[str, Any]) -> None:
        citations = result["datasets"]["epqa"]["scores"]["citations"]
        rows = {r["id"]: r for r in result["datasets"]["epqa"]["rows"]}
        # q3 cited [1] and [9] of its 3 sources: one valid, one dropped
        assert rows["3"]["valid_citations"] == 1
        assert rows["3"]["dropped_citations"] == 1
        assert len(rows["3"]["sources"]) == 3
        assert rows["1"]["valid_citations"] == 5  # every passage of its page
        # 5 + 1 + 1 valid, 1 dropped
        assert (citations["valid"], citations["dropped"]) == (7, 1)
        assert citations["validity"] == 0.875
        # q1's 5 cited passages hold its labels 2 and 1; q3's page is all helpful; q5 has none
        assert sorted(rows["1"]["cited_labels"]) == [0, 0, 0, 1, 2]
        assert rows["5"]["cited_labels"] == [0]
        assert citations["cited_passages"] == 7
        assert citations["supported"] == 3
        assert citations["support"] == round(3 / 7, 4)

    def test_abstention(self, result: dict[str, Any]) -> None:
        abstention = result["datasets"]["epqa"]["scores"]["abstention"]
        # abstained on q2 (answerable) and q4 (unanswerable); answered q5 (unanswerable)
        assert abstention == {
            "abstained": 2,
            "unanswerable": 2,
            "true_positives": 1,
            "precision": 0.5,
            "recall": 0.5,
            "rate_on_answerable": round(1 / 3, 4),
        }
        rows = {r["id"]: r for r in result["datasets"]["epqa"]["rows"]}
        assert rows["2"]["abstained"] and rows["2"]["cited"] == []
        reasons = result["datasets"]["epqa"]["scores"]["fact_check"]["abstain_reasons"]
        assert sum(reasons.values()) == 2 and set(reasons) <= {
            "model",
            "no_valid_citation",
            "unsupported_facts",
            "no_sources",
        }

    def test_abstention_rules_and_the_gate(self, result: dict[str, Any]) -> None:
        rules = result["datasets"]["epqa"]["rules"]
        assert set(rules) == {"model", "gate", "both"}
        assert rules["model"]["abstained"] == 2  # as the model alone did
        rows = result["datasets"]["epqa"]["rows"]
        assert all(isinstance(r["evidence"], float) for r in rows)
        gate = result["datasets"]["gate"]
        assert gate["questions"] == 5 and gate["unanswerable"] == 2
        assert sum(gate["halves"].values()) == 5
        assert {r["id"] for r in gate["rows"]} == {r["id"] for r in rows}
        evidence = {r["id"]: r["evidence"] for r in rows}
        assert all(evidence[r["id"]] == r["evidence"] for r in gate["rows"])  # the same figure
        assert [p["threshold"] for p in gate["curve"]][:2] == [0.1, 0.15]

    def test_latency(self, result: dict[str, Any]) -> None:
        latency = result["datasets"]["epqa"]["latency_ms"]
        assert latency["first_token"]["n"] == 5
        assert latency["total"]["n"] == 5
        assert 0 < latency["first_token"]["median"] <= latency["total"]["p95"]
        row = result["datasets"]["epqa"]["rows"][0]
        assert set(row["timings_ms"]) == {"first_token", "total"}


class TestCrowdflowerAdvice:
    def test_relevant_share_of_cited_products(self, result: dict[str, Any]) -> None:
        scores = result["datasets"]["crowdflower"]["scores"]
        # wireless headphones: Sony (4), JBL (3), Wireless Mouse (unjudged for it);
        # kettle: two kettles (4, 4); running shoes: Trail (4), Leather (2); mouse: (4);
        # garden hose: nothing shares a word, abstained
        assert scores["queries"] == 5
        assert scores["cited"] == 8
        assert scores["cited_relevant"] == 6
        assert scores["cited_unjudged"] == 1
        assert scores["relevant_share_cited"] == 0.75
        assert scores["abstention_rate"] == 0.2
        assert scores["citation_validity"] == 1.0

    def test_rows_name_cited_products_and_gains(self, result: dict[str, Any]) -> None:
        rows = {r["query"]: r for r in result["datasets"]["crowdflower"]["rows"]}
        assert sorted(g for g in rows["kettle"]["cited_gains"]) == [3.0, 3.0]
        assert None in rows["wireless headphones"]["cited_gains"]
        assert rows["garden hose"]["abstained"]
        assert rows["garden hose"]["cited"] == []


class TestSampleConstraints:
    def test_the_product_filtering_satisfies_every_applied_constraint(
        self, result: dict[str, Any]
    ) -> None:
        scores = result["datasets"]["sample"]["scores"]
        assert scores["questions"] == len(answers.SAMPLE_QUESTIONS)
        assert scores["cited"] > 10
        assert scores["satisfaction_applied"] == 1.0
        rows = {r["id"]: r for r in result["datasets"]["sample"]["rows"]}
        assert rows["s01"]["filters"] == {"price_max": 100.0}
        assert rows["s01"]["missed"] == []
        assert all(not broken for r in rows.values() for broken in r["violations"].values())

    def test_missed_constraints_are_the_rows_that_differ(self, result: dict[str, Any]) -> None:
        scores = result["datasets"]["sample"]["scores"]
        rows = result["datasets"]["sample"]["rows"]
        missed = [r["id"] for r in rows if r["missed"]]
        assert scores["missed"] == missed
        assert scores["questions_with_missed_constraint"] == len(missed)
        for row in rows:
            for name in row["missed"]:
                assert row["filters"].get(name) != row["expected"][name]

    def test_currency_is_checked_against_the_catalog(self, result: dict[str, Any]) -> None:
        currency = {p.id: p.currency for p in read_products(SAMPLE_CATALOG)}
        rows = {r["id"]: r for r in result["datasets"]["sample"]["rows"]}
        row = rows["s10"]  # 100元以下的耳机: named yuan
        assert row["other_currency"] == [p for p in row["cited"] if currency[p] != "CNY"]


class TestCommand:
    def test_settings_machine_and_git(self, result: dict[str, Any]) -> None:
        settings = result["settings"]
        assert settings["llm"] == "recording-fake"
        assert settings["embedder"] == "hashing-64"
        assert settings["limit_questions"] == 120
        assert settings["limit_queries"] == 10
        assert settings["seed"] == 0
        assert result["machine"]["cpu_count"] >= 1
        assert "git" in result
        assert list(result["datasets"]) == ["gate", "epqa", "crowdflower", "sample"]

    def test_the_llm_was_primed_once_and_asked_every_question(
        self, result: dict[str, Any], llm: ScriptedLLM
    ) -> None:
        primes = [c for c in llm.calls if "<sources>\n</sources>" in c[-1].content]
        assert len(primes) == 2  # the advice and the ask prompt, once
        answered = [d for name, d in result["datasets"].items() if name != "gate"]  # no model
        generated = sum(d["latency_ms"]["first_token"]["n"] for d in answered)
        assert len(llm.calls) == len(primes) + generated

    def test_printed_tables(self, run: tuple[dict[str, Any], str]) -> None:
        _, printed = run
        assert "== epqa: 5 questions (2 unanswerable" in printed
        assert "gate, then model (shipped)" in printed
        assert "== gate: evidence of 5 ePQA questions (2 unanswerable)" in printed
        assert "citation validity 0.875 (7 valid, 1 dropped)" in printed
        assert "== crowdflower advice: 5 queries" in printed
        assert "== sample catalog constraints" in printed
        assert "written to" in printed

    def test_dataset_choice_and_limits(self, data: Path, tmp_path: Path) -> None:
        out = tmp_path / "small.json"
        args = ["--data", str(data), "--embedder", "hashing-64", "--embedding-cache", "none"]
        args += ["--datasets", "crowdflower", "--limit-queries", "2", "--seed", "3"]
        with fake_llm(ScriptedLLM(scripted_reply)), contextlib.redirect_stdout(io.StringIO()):
            assert main([*args, "--no-progress", "--out", str(out)]) == 0
        small = json.loads(out.read_text(encoding="utf-8"))
        assert list(small["datasets"]) == ["crowdflower"]
        crowdflower = small["datasets"]["crowdflower"]
        assert crowdflower["sampling"]["queries"] == 2
        assert crowdflower["sampling"]["seed"] == 3
        assert len(crowdflower["rows"]) == 2

    def test_bad_options_are_refused(self) -> None:
        with pytest.raises(SystemExit):
            main(["--datasets", "multicpr"])
        with pytest.raises(SystemExit):
            main(["--limit-questions", "0"])


def _question(qid: str, labels: list[int]) -> Question:
    return Question(qid, f"question {qid}", "p", {f"passage {i}": x for i, x in enumerate(labels)})


class TestSamples:
    QUESTIONS = tuple(_question(str(i), [0, 0] if i % 5 == 0 else [0, 2]) for i in range(20))

    def test_unanswerable_questions_keep_their_share(self) -> None:
        picked, how = sample_questions(self.QUESTIONS, 10, seed=0)
        assert len(picked) == 10
        assert how["unanswerable"] == 2  # 4 of 20
        assert sum(1 for q in picked if not any(q.labels.values())) == 2
        assert [q.id for q in picked] == sorted((q.id for q in picked), key=int)  # data order
        again, _ = sample_questions(self.QUESTIONS, 10, seed=0)
        assert again == picked
        others = {
            tuple(q.id for q in sample_questions(self.QUESTIONS, 10, seed=s)[0]) for s in range(5)
        }
        assert len(others) > 1

    def test_at_least_one_unanswerable(self) -> None:
        picked, how = sample_questions(self.QUESTIONS, 3, seed=1)  # 3 x 4/20 rounds to 1
        assert how["unanswerable"] == 1
        assert len(picked) == 3
        picked, how = sample_questions(self.QUESTIONS[1:], 2, seed=1)  # 2 x 3/19 rounds to 0
        assert how["unanswerable"] == 1
        assert sum(1 for q in picked if not any(q.labels.values())) == 1

    def test_every_unanswerable_question_and_a_sample_of_the_rest(self) -> None:
        picked, how = sample_questions(self.QUESTIONS, 5, seed=0, all_unanswerable=True)
        assert how["unanswerable"] == 4 and how["questions"] == 9
        assert how["data_set_unanswerable"] == 4 and how["data_set_questions"] == 20
        assert [q.id for q in picked] == sorted((q.id for q in picked), key=int)

    def test_all_when_the_limit_allows(self) -> None:
        picked, how = sample_questions(self.QUESTIONS, 50, seed=0)
        assert picked == list(self.QUESTIONS)
        assert how["method"] == "all questions"

    def test_queries(self) -> None:
        queries = [JudgedQuery(str(i), f"q{i}", {}) for i in range(10)]
        assert sample_queries(queries, 20, 0) == queries
        sample = sample_queries(queries, 4, 0)
        assert len(sample) == 4
        assert sample == sample_queries(queries, 4, 0)
        assert [q.id for q in sample] == sorted((q.id for q in sample), key=int)


class TestAbstentionRules:
    def test_detector_scores_and_precision_at_the_data_sets_share(self) -> None:
        # (abstained, answerable): 2 of 3 unanswerable caught, 1 of 7 answerable abstained on
        flags = [(True, False), (True, False), (False, False), (True, True)]
        flags += [(False, True)] * 6
        scores = detector_scores(flags, prevalence=0.05)
        assert scores["precision"] == round(2 / 3, 4) and scores["recall"] == round(2 / 3, 4)
        assert scores["rate_on_answerable"] == round(1 / 7, 4)
        share = (2 / 3 * 0.05) / (2 / 3 * 0.05 + 1 / 7 * 0.95)
        assert scores["precision_at_data_set_share"] == pytest.approx(share, abs=1e-3)
        assert detector_scores([(False, True)])["precision"] is None

    def test_the_tuned_threshold_separates_best_and_auc_ranks(self) -> None:
        points = [(0.1, False), (0.2, False), (0.3, True), (0.4, True), (0.5, True), (None, True)]
        assert best_threshold(points) == 0.25
        assert auc(points) == 1.0
        assert auc([(0.5, False), (0.1, True)]) == 0.0
        assert auc([(0.2, True)]) is None
        assert best_threshold([(0.3, True)]) is None

    def test_the_halves_are_stable_and_balanced(self) -> None:
        halves = [tune_half(str(i)) for i in range(1000)]
        assert halves == [tune_half(str(i)) for i in range(1000)]
        assert 400 < sum(halves) < 600

    def test_rules_model_gate_and_both(self) -> None:
        def row(answerable: bool, abstained: bool, evidence: float, f1: float | None) -> dict:
            return {
                "answerable": answerable,
                "abstained": abstained,
                "evidence": evidence,
                "f1": f1,
                "rouge_l": f1,
            }

        rows = [
            row(False, False, 0.2, None),  # the gate catches it
            row(False, True, 0.6, None),  # the model catches it
            row(True, False, 0.7, 1.0),
            row(True, False, 0.25, 0.5),  # the gate abstains on an answerable one: scores 0
            {"id": "x", "error": "timeout"},
        ]
        rules = rule_scores(rows, 0.3, prevalence=0.5)
        assert (rules["model"]["true_positives"], rules["model"]["abstained"]) == (1, 1)
        assert (rules["gate"]["true_positives"], rules["gate"]["abstained"]) == (1, 2)
        assert (rules["both"]["true_positives"], rules["both"]["abstained"]) == (2, 3)
        assert rules["both"]["recall"] == 1.0
        assert rules["both"]["answer_f1_all_answerable"] == 0.5  # (1.0 + 0) / 2
        assert rules["both"]["threshold"] == 0.3
        assert rule_scores(rows, None, None)["gate"]["abstained"] == 0


SONY = Product(
    id="p001", title="Sony WH-1000XM5", brand="Sony", price=348.0, rating=4.7, in_stock=True
)
BARE = Product(id="p033", title="Generic bamboo toothbrush")


class TestConstraintChecks:
    def test_violations_on_the_products_own_fields(self) -> None:
        assert violations(SONY, Filters(price_max=100)) == ["price_max"]
        assert violations(SONY, Filters(price_min=100, price_max=400)) == []
        assert violations(SONY, Filters(exclude_brands=["sony"])) == ["exclude_brands"]
        assert violations(SONY, Filters(brands=["Apple", "Beats"])) == ["brands"]
        assert violations(SONY, Filters(min_rating=4.8, in_stock=True)) == ["min_rating"]
        assert violations(SONY, Filters(in_stock=False)) == ["in_stock"]

    def test_a_missing_field_breaks_its_constraint(self) -> None:
        assert violations(BARE, Filters(price_max=10, min_rating=1, in_stock=True)) == [
            "price_max",
            "in_stock",
            "min_rating",
        ]
        assert violations(BARE, Filters(exclude_brands=["Sony"])) == []

    def test_missed_and_unexpected(self) -> None:
        meant = Filters(price_max=500, brands=["Apple", "Beats"])
        assert missed_constraints(meant, Filters(brands=["beats", "apple"], price_max=500)) == []
        assert missed_constraints(meant, Filters(brands=["Apple"])) == ["price_max", "brands"]
        assert unexpected_constraints(meant, Filters(price_max=500, min_rating=4)) == ["min_rating"]

    def test_a_cited_product_breaking_the_filters_lowers_satisfaction(self) -> None:
        source = Source(1, "p001", "p001", "product", SONY.title, "brand: Sony")
        answer = Answer(
            question="headphones under $100",
            text="Buy these [1].",
            abstained=False,
            cited=[source],
            sources=[source],
            dropped_citations=0,
            applied_constraints=["price ≤ 100"],
            filters=Filters(price_max=100),
        )
        question = answers.SAMPLE_QUESTIONS[0]
        row = _sample_row(question, answer, {"p001": SONY})
        assert row["violations"] == {"p001": ["price_max"]}
        assert row["other_currency"] == []
        scores = constraint_scores([row])
        assert scores["satisfaction_applied"] == 0.0
        assert scores["satisfaction_meant"] == 0.0
        assert valid_citations(answer) == 1
