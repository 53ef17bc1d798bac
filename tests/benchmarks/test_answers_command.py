"""The answer-quality benchmark end to end on tiny data sets in the published formats, with the
hashing embedder and a scripted fake LLM (the model is the boundary; the metrics are real).

The fake replies in the product's reply format: one line per claim, ``[n] "verbatim words of
source n" claim.``, found in the prompt it is given."""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from benchmarks import answers, concurrency
from benchmarks.answers import (
    SAMPLE_CATALOG,
    _sample_row,
    auc,
    best_threshold,
    constraint_scores,
    detector_scores,
    epqa_scores,
    judged_scores,
    language_match,
    main,
    missed_constraints,
    private_path,
    read_judged,
    read_products,
    rule_scores,
    sample_queries,
    sample_questions,
    split_of,
    tune_half,
    unexpected_constraints,
    violations,
)
from benchmarks.datasets import JudgedQuery, Question, load_epqa
from generation.answers import Answer
from generation.llm.base import ChatMessage, GenerationOptions
from generation.llm.fake import RecordingLLM
from generation.prompts import ABSTAIN_MARKER, ADVICE_SYSTEM, Source
from generation.quotes import Claim
from retrieval.schema import Filters, Product
from tests.benchmarks.dataset_files import write_crowdflower, write_epqa
from tests.quoting import sources_in

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
# qid, question, product, per candidate: (label, reference answer written from it).
# The split is a hash of the id (`tune_half`): dev = 2, 3, 8, 10; test = 1, 4, 5.
EPQA = [
    (
        "1",
        "does this drawer fit a frs20 fridge?",
        "B001",
        [(2, "Yes, it fits the FRS20."), (1, "It should fit."), (0, ""), (0, ""), (0, "")],
    ),
    (
        "2",
        "what plastic is the drawer made of?",
        "B001",
        [(0, ""), (2, "It is clear plastic."), (1, "The drawer is clear."), (0, ""), (0, "")],
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
    ("8", "what is the drawer made of?", "B001", [(0, "")] * 5),  # unanswerable by its labels
    (
        "10",
        "how big is the water tank?",
        "B002",
        [(0, ""), (2, "It holds 1.5 litres."), (0, ""), (0, "")],
    ),
]
SPLIT = {"dev": {"2", "3", "8", "10"}, "test": {"1", "4", "5"}}


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


# A source in the prompt: its number, its title, and the text shown to the model.
Shown = tuple[int, str, str]
Reply = Callable[[str, str, list[Shown]], str]


class ScriptedLLM(RecordingLLM):
    """The recording fake, with each reply chosen by ``reply(mode, question, sources)`` from the
    prompt it is given; ``delay_s`` is slept before each piece (a model that takes time)."""

    def __init__(self, reply: Reply, *, delay_s: float = 0.0) -> None:
        super().__init__(chunk=3)
        self.reply = reply
        self.delay_s = delay_s

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        prompt = messages[-1].content
        mode = "advice" if messages[0].content == ADVICE_SYSTEM else "ask"
        question = prompt.rsplit("\nQuestion: ", 1)[-1].removesuffix("\nAnswer:")
        shown = sources_in(prompt) if "<sources>" in prompt else {}
        sources = [(n, title, text) for n, (title, text) in shown.items()]
        self.replies.append(self.reply(mode, question, sources))
        for piece in super().stream(messages, options, cancelled=cancelled):
            time.sleep(self.delay_s)
            yield piece


def quoting(sources: list[Shown], words: str, claim: str) -> str:
    """A reply line quoting ``words`` from the source that shows them (the first source when
    none does: a quote that is not in its source)."""
    number = next((n for n, _, text in sources if words.casefold() in text.casefold()), 1)
    return f'[{number}] "{words}" {claim}'


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.casefold()))


def scripted_reply(mode: str, question: str, sources: list[Shown]) -> str:
    """ePQA: a fixed reply per question. Advice: quote the title of each product whose title
    shares a word with the question (none: abstain); on the sample catalog, of every one."""
    if not sources:
        return "ok"  # priming the prompt cache
    if mode == "ask":
        return {
            # a Yes that its quote settles (label 2)
            "does this drawer fit a frs20 fridge?": quoting(
                sources, "it fits the frs20 model", "Yes, it fits the frs20 model."
            ),
            # the wording says more than the quote: the quote ships (label 2)
            "what plastic is the drawer made of?": quoting(
                sources,
                "the drawer is made of clear plastic",
                "The drawer is a tinted clear plastic with a lovely finish.",
            ),
            # a Yes (label 2), then a claim citing a source it was not given: dropped
            "can it froth milk?": quoting(
                sources, "yes it has a milk frother", "Yes, it has a milk frother."
            )
            + '\n[9] "froths milk" It froths milk.',
            "does it come with a warranty?": ABSTAIN_MARKER,
            # a quote that does not settle the question: dropped, "not answered"
            "is it dishwasher safe?": quoting(
                sources, "arrived cracked, returned it", "It is dishwasher safe."
            ),
            # answered from a passage its labels call irrelevant (label 0)
            "what is the drawer made of?": quoting(
                sources,
                "the drawer is made of clear plastic",
                "The drawer is made of clear plastic.",
            ),
            # a quote that is not in its source: dropped, "unsupported"
            "how big is the water tank?": quoting(
                sources, "holds two litres", "It holds two litres."
            ),
        }[question]
    everything = question in {q.text for q in answers.SAMPLE_QUESTIONS}
    matching = [(n, t) for n, t, _ in sources if everything or _words(t) & _words(question)]
    if not matching:
        return ABSTAIN_MARKER
    return "\n".join(f'[{n}] "{title}" The {title} fits.' for n, title in matching[:3])


@contextlib.contextmanager
def fake_llm(llm: RecordingLLM) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(answers, "build_llm", lambda settings: llm)
        yield


ARGS = ["--embedder", "hashing-64", "--embedding-cache", "none", "--no-progress"]


def run_main(args: list[str], llm: RecordingLLM) -> tuple[dict[str, Any], str]:
    """``main(args)`` with ``llm``: the JSON it wrote to ``--out`` and what it printed."""
    printed = io.StringIO()
    with fake_llm(llm), contextlib.redirect_stdout(printed):
        assert main([*ARGS, *args]) == 0
    out = Path(args[args.index("--out") + 1])
    return json.loads(out.read_text(encoding="utf-8")), printed.getvalue()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_datasets(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def llm() -> ScriptedLLM:
    return ScriptedLLM(scripted_reply)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("out")


@pytest.fixture(scope="module")
def run(data: Path, llm: ScriptedLLM, folder: Path) -> tuple[dict[str, Any], str]:
    """The JSON result of one run over the default data sets, and what it printed."""
    args = ["--data", str(data), "--limit-queries", "10", "--out", str(folder / "answers.json")]
    return run_main([*args, "--dump-claims", str(folder / "claims.jsonl")], llm)


@pytest.fixture(scope="module")
def result(run: tuple[dict[str, Any], str]) -> dict[str, Any]:
    return run[0]


@pytest.fixture(scope="module")
def rows(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in result["datasets"]["epqa"]["rows"]}


class TestEpqa:
    def test_reference_answers_are_loaded(self, data: Path) -> None:
        questions = {q.id: q for q in load_epqa(data).questions}
        assert questions["1"].answer == "Yes, it fits the FRS20."  # the label-2 one first
        assert questions["1"].answers == ("Yes, it fits the FRS20.", "It should fit.")
        assert questions["3"].answer == "Yes, it has a milk frother."
        assert questions["4"].answer == ""
        assert questions["4"].answers == ()

    def test_two_splits_each_sampled(self, result: dict[str, Any]) -> None:
        epqa = result["datasets"]["epqa"]
        assert [split_of(qid) for qid in ("2", "3", "8", "10")] == ["dev"] * 4
        assert [split_of(qid) for qid in ("1", "4", "5")] == ["test"] * 3
        assert epqa["reported_split"] == "test"
        sampling = epqa["sampling"]
        assert sampling["dev"]["method"] == sampling["test"]["method"] == "all questions"
        assert (sampling["dev"]["questions"], sampling["dev"]["unanswerable"]) == (4, 1)
        assert (sampling["test"]["questions"], sampling["test"]["unanswerable"]) == (3, 2)
        assert {r["id"]: r["split"] for r in epqa["rows"]} == {
            qid: split for split, ids in SPLIT.items() for qid in ids
        }
        assert set(epqa["scores"]) == {"dev", "test"}
        assert [r["id"] for r in epqa["rows"]] == [q[0] for q in EPQA]  # the data set's order

    def test_rows_record_the_claims(self, rows: dict[str, dict[str, Any]]) -> None:
        yes = rows["1"]
        assert (yes["kind"], yes["verdict"], yes["abstained"]) == ("yes_no", "yes", False)
        assert yes["answer"].startswith("Yes. ")
        [claim] = yes["claims"]
        assert claim["quote"] == "it fits the frs20 model"
        assert claim["cited_label"] == 2 and not claim["quoted"]
        assert claim["source_id"] in yes["cited"]
        quoted = rows["2"]["claims"]
        assert [(c["quoted"], c["cited_label"]) for c in quoted] == [(True, 2)]
        assert "“the drawer is made of clear plastic”" in quoted[0]["text"]
        assert rows["2"]["kind"] == "open" and rows["2"]["verdict"] is None
        assert rows["3"]["dropped_reasons"] == ["unknown_source"]
        assert rows["3"]["verdict"] == "yes"
        assert [c["cited_label"] for c in rows["8"]["claims"]] == [0]

    def test_abstentions_and_their_reasons(self, rows: dict[str, dict[str, Any]]) -> None:
        assert (rows["4"]["abstain_reason"], rows["4"]["claims"]) == ("model", [])
        assert rows["5"]["abstain_reason"] == "not_answered"
        assert len(rows["5"]["dropped_reasons"]) == 1
        assert rows["5"]["dropped_reasons"][0] in {"not_an_answer", "unsettled"}
        assert rows["10"]["abstain_reason"] == "unsupported"
        assert rows["10"]["dropped_reasons"] == ["quote_not_in_source"]
        assert rows["10"]["kind"] == "measure"
        assert rows["10"]["closest_label"] == 2 and rows["2"]["closest_label"] is None
        assert all(r["cited"] == [] for r in rows.values() if r["abstained"])

    def test_scores_of_the_test_split(self, result: dict[str, Any]) -> None:
        test = result["datasets"]["epqa"]["scores"]["test"]
        # 1 answered (Yes); 4 and 5 (unanswerable) abstained
        assert (test["questions"], test["unanswerable"], test["answered"]) == (3, 2, 1)
        assert test["refused_answerable"] == {
            "refused": 0,
            "answerable": 1,
            "share": 0.0,
            "answered_on_page": {"refused": 0, "questions": 1, "share": 0.0},
            "offered_answering_passage": {"refused": 0, "share": None},
        }
        abstention = test["abstention"]
        assert (abstention["precision"], abstention["recall"]) == (1.0, 1.0)
        claims = test["claims"]
        assert claims["shipped"] == 1
        assert claims["label_1_or_2_share"] == claims["label_2_share"] == 1.0
        assert claims["quoted_share"] == 0.0
        assert test["yes_no"] == {"questions": 3, "answered": 1, "verdict": 1, "yes": 1, "no": 0}
        assert test["abstain_reasons"] == {"model": 1, "not_answered": 1}
        assert sum(test["dropped_reasons"].values()) == 1
        assert test["language_match"] == {"answered": 1, "matched": 1, "share": 1.0}
        assert test["answer"]["answered"]["n"] == 1

    def test_scores_of_the_dev_split(self, result: dict[str, Any]) -> None:
        dev = result["datasets"]["epqa"]["scores"]["dev"]
        # 2, 3, 8 answered; 10 (answerable) refused; 8 (unanswerable) answered
        assert (dev["questions"], dev["unanswerable"], dev["answered"]) == (4, 1, 3)
        assert dev["refused_answerable"] == {
            "refused": 1,
            "answerable": 3,
            "share": round(1 / 3, 4),
            # every answerable question here has a passage that answers it (label 2)
            "answered_on_page": {"refused": 1, "questions": 3, "share": round(1 / 3, 4)},
            # q10's refusal shows its best statement, from the passage labelled 2
            "offered_answering_passage": {"refused": 1, "share": 1.0},
        }
        abstention = dev["abstention"]
        assert (abstention["abstained"], abstention["true_positives"]) == (1, 0)
        assert (abstention["precision"], abstention["recall"]) == (0.0, 0.0)
        claims = dev["claims"]
        assert claims["shipped"] == 3  # labels 2 (q2), 2 (q3), 0 (q8)
        assert claims["label_1_or_2"] == claims["label_2"] == 2
        assert claims["label_1_or_2_share"] == round(2 / 3, 4)
        assert (claims["quoted"], claims["quoted_share"]) == (1, round(1 / 3, 4))
        assert claims["unjudged"] == 0
        assert dev["yes_no"] == {"questions": 1, "answered": 1, "verdict": 1, "yes": 1, "no": 0}
        assert dev["abstain_reasons"] == {"unsupported": 1}
        assert dev["dropped_reasons"] == {"quote_not_in_source": 1, "unknown_source": 1}
        assert dev["kinds"] == {"measure": 1, "open": 2, "yes_no": 1}

    def test_latency_in_seconds(self, result: dict[str, Any], rows: dict[str, Any]) -> None:
        for split in ("dev", "test"):
            latency = result["datasets"]["epqa"]["scores"][split]["latency_s"]
            assert latency["first_token"]["n"] == latency["total"]["n"] == len(SPLIT[split])
            assert 0 < latency["first_token"]["p50"] <= latency["total"]["p95"]
        timings = rows["1"]["timings_ms"]
        assert {"retrieval", "first_token", "model_first_token", "generation", "total"} <= set(
            timings
        )
        assert timings["retrieval"] <= timings["first_token"] <= timings["total"]

    def test_abstention_rules_and_the_gate(self, result: dict[str, Any]) -> None:
        rules = result["datasets"]["epqa"]["rules"]
        assert set(rules) == {"model", "gate", "both"}
        assert rules["model"]["abstained"] == 3  # as the model alone did, both splits
        epqa_rows = result["datasets"]["epqa"]["rows"]
        assert all(isinstance(r["evidence"], float) for r in epqa_rows)
        gate = result["datasets"]["gate"]
        assert gate["questions"] == 7 and gate["unanswerable"] == 3
        assert gate["halves"] == {"tune": 4, "test": 3}  # the tune half is dev
        assert {r["id"] for r in gate["rows"]} == {r["id"] for r in epqa_rows}
        evidence = {r["id"]: r["evidence"] for r in epqa_rows}
        assert all(evidence[r["id"]] == r["evidence"] for r in gate["rows"])  # the same figure
        assert [p["threshold"] for p in gate["curve"]][:2] == [0.1, 0.15]
        # one index for both tasks
        assert result["datasets"]["epqa"]["index"]["reused"] is True
        assert "reused" not in gate["index"]


class TestClaimsToJudge:
    def test_each_shipped_claim_is_dumped_with_its_passage(
        self, folder: Path, result: dict[str, Any]
    ) -> None:
        lines = (folder / "claims.jsonl").read_text(encoding="utf-8").splitlines()
        dumped = [json.loads(line) for line in lines]
        shipped = [d["id"] for d in dumped if d["shipped"]]
        assert shipped == ["1", "2", "3", "8"]  # the rows' order
        assert result["datasets"]["epqa"]["dumped_claims"]["claims"] == 7
        one = next(d for d in dumped if d["id"] == "1")
        assert one["question"] == "does this drawer fit a frs20 fridge?"
        assert one["passage"] == "it fits the frs20 model. Question: will it fit frs20?"
        assert one["label"] == 2
        assert one["quote"] == "it fits the frs20 model"
        assert one["reference"] == "Yes, it fits the FRS20."
        assert one["split"] == "test"
        assert one["answer"] == "Yes. It fits the frs20 model [1]."
        assert one["claim"] == "It fits the frs20 model."  # the claim as shipped, uncited
        assert {"claim", "answer", "quoted", "source_id", "references"} <= set(one)
        assert one["shipped"] is True and one["reason"] is None
        # shipped in the model's words: no other wording, and nothing it was replaced for
        assert (one["quoted"], one["model_text"], one["reworded"]) == (False, "", "")

    def test_each_dropped_claim_is_dumped_as_the_model_wrote_it(self, folder: Path) -> None:
        lines = (folder / "claims.jsonl").read_text(encoding="utf-8").splitlines()
        dropped = {d["id"]: d for d in map(json.loads, lines) if not d["shipped"]}
        assert set(dropped) == {"3", "5", "10"}
        off = dropped["5"]  # a true sentence about the page that does not answer
        assert (off["claim"], off["quote"]) == (
            "It is dishwasher safe.",
            "arrived cracked, returned it",
        )
        assert (off["reason"], off["label"]) == ("not_an_answer", 0)
        assert off["detail"].startswith("quote relevance")  # the checker's why, to read by it
        assert dropped["10"]["reason"] == "quote_not_in_source"
        assert dropped["3"]["reason"] == "unknown_source" and dropped["3"]["passage"] is None

    def test_judged_claims_are_counted(
        self, data: Path, folder: Path, tmp_path: Path, result: dict[str, Any]
    ) -> None:
        dumped = [
            json.loads(line)
            for line in (folder / "claims.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        judged = tmp_path / "judged.jsonl"
        lines = [
            {
                "id": d["id"],
                "claim": d["claim"],
                "shipped": d["shipped"],
                "judgement": "supported" if d["label"] else "not_an_answer",
            }
            for d in dumped
            if d["id"] != "3"  # q3's claims left unjudged
        ]
        lines.append({"id": "4", "claim": "It has a warranty.", "judgement": "contradicted"})
        judged.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        out = tmp_path / "judged-run.json"
        again, printed = run_main(
            ["--data", str(data), "--datasets", "epqa", "--judged", str(judged), "--out", str(out)],
            ScriptedLLM(scripted_reply),
        )
        scores = again["judged"]
        # shipped: q1, q2 supported, q8 not an answer, q4 contradicted (no "shipped": shipped)
        assert scores["judged"] == 4
        assert scores["counts"] == {
            "supported": 2,
            "contradicted": 1,
            "not_in_source": 0,
            "not_an_answer": 1,
        }
        assert scores["supported_share"] == 0.5
        # dropped: q5 not an answer, q10 (a quote not in its passage, labelled 2) supported
        assert scores["dropped"]["judged"] == 2
        assert scores["dropped"]["counts"]["supported"] == 1
        assert scores["checker_precision"] == 0.5
        assert scores["checker_recall"] == round(2 / 3, 4)
        assert scores["by_split"]["test"]["judged"] == 2  # q1 and q4
        assert scores["by_split"]["dev"]["counts"]["supported"] == 1  # q2
        run = scores["this_run"]
        assert (run["claims"], run["judged"], run["unjudged"]) == (4, 3, 1)
        assert (run["dropped_claims"], run["dropped_unjudged"]) == (3, 1)
        assert run["supported_share"] == round(2 / 3, 4)
        assert run["checker_recall"] == round(2 / 3, 4)
        assert "== judged claims" in printed
        assert "this run (4 shipped, 3 dropped)" in printed
        assert "checker precision 0.5" in printed

    def test_one_split_alone(self, data: Path, tmp_path: Path) -> None:
        """Settings are tuned on dev without asking the test questions."""
        out = tmp_path / "dev.json"
        result, printed = run_main(
            ["--data", str(data), "--datasets", "epqa", "--splits", "dev", "--out", str(out)],
            ScriptedLLM(scripted_reply),
        )
        epqa = result["datasets"]["epqa"]
        assert {r["split"] for r in epqa["rows"]} == {"dev"}
        assert list(epqa["scores"]) == ["dev"] and result["settings"]["splits"] == ["dev"]
        assert "  dev: 4 questions" in printed and "  test: " not in printed
        with pytest.raises(SystemExit):
            main(["--splits", "train"])

    def test_a_bad_judgement_file_is_refused(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"id": "1", "claim": "x", "judgement": "maybe"}\n', encoding="utf-8")
        with pytest.raises(ValueError, match="maybe"):
            read_judged(bad)
        bad.write_text('{"id": "1", "claim": "x"}\n', encoding="utf-8")
        with pytest.raises(ValueError, match="judgement"):
            read_judged(bad)
        with pytest.raises(SystemExit):
            main(["--judged", str(bad)])

    def test_dumps_stay_out_of_the_repository(self, tmp_path: Path) -> None:
        assert private_path(tmp_path / "claims.jsonl")
        assert private_path(answers.ROOT / "bench-results" / "claims.jsonl")
        assert not private_path(answers.ROOT / "claims.jsonl")
        assert not private_path(answers.ROOT / "benchmarks" / "claims.jsonl")
        with pytest.raises(SystemExit):
            main(["--dump-claims", str(answers.ROOT / "claims.jsonl")])

    def test_judged_scores_without_a_run(self) -> None:
        judged = [
            {"id": "1", "claim": "a", "judgement": "supported", "shipped": True},
            {"id": "2", "claim": "b", "judgement": "not_in_source", "shipped": True},
            {"id": "2", "claim": "c", "judgement": "supported", "shipped": False},
        ]
        scores = judged_scores(judged)
        assert scores["judged"] == 2 and scores["supported_share"] == 0.5
        assert scores["checker_recall"] == 0.5  # one supported claim of two was dropped
        assert "this_run" not in scores
        assert scores["by_split"]["dev"]["counts"]["not_in_source"] == 1


class TestClaimReading:
    def test_language_match(self) -> None:
        assert language_match("is it clear?", "Yes. It is clear [1].")
        assert language_match("is it clear?", "A review says “透明的” [1].")  # a quote
        assert not language_match("is it clear?", "是的，它是透明的 [1]。")
        assert language_match("是透明的吗", "是的，评论说：“clear plastic, very clear” [1]。")
        assert not language_match("是透明的吗", "Yes, it is clear [1].")


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
        claims = scores["claims"]
        assert claims["claims"] == 8 and claims["dropped_claims"] == 0
        assert claims["abstain_reasons"] == {"no_sources": 1}  # garden hose: nothing found
        assert claims["language_match"] == 1.0

    def test_rows_name_cited_products_and_gains(self, result: dict[str, Any]) -> None:
        rows = {r["query"]: r for r in result["datasets"]["crowdflower"]["rows"]}
        assert sorted(g for g in rows["kettle"]["cited_gains"]) == [3.0, 3.0]
        assert None in rows["wireless headphones"]["cited_gains"]
        assert rows["garden hose"]["abstained"]
        assert rows["garden hose"]["cited"] == []
        kettle = rows["kettle"]["claims"]
        assert {c["product_id"] for c in kettle} == set(rows["kettle"]["cited"])
        assert all(c["quote"] for c in kettle)


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


class TestConcurrency:
    @pytest.fixture(scope="class")
    def load(
        self, data: Path, tmp_path_factory: pytest.TempPathFactory
    ) -> tuple[dict[str, Any], str]:
        """1 then 4 askers, 2 questions each, a model that takes a while, no room to wait."""
        out = tmp_path_factory.mktemp("load") / "load.json"
        args = ["--data", str(data), "--datasets", "concurrency", "--concurrency", "1,4"]
        args += ["--questions-per-asker", "2", "--out", str(out)]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SHOPGUIDE_LLM_CONCURRENCY", "1")
            patch.setenv("SHOPGUIDE_LLM_QUEUE", "0")
            patch.setenv("SHOPGUIDE_ASK_MIN_EVIDENCE", "-1")  # every question to the model
            return run_main(args, ScriptedLLM(scripted_reply, delay_s=0.02))

    def test_each_level(self, load: tuple[dict[str, Any], str]) -> None:
        result, _ = load
        d = result["datasets"]["concurrency"]
        assert (d["llm_concurrency"], d["llm_queue"], d["questions_per_asker"]) == (1, 0, 2)
        one, four = d["levels"]
        assert (one["askers"], one["requests"], one["answered"]) == (1, 2, 2)
        assert one["refused_busy"] == one["timeouts"] == one["errors"] == 0
        assert one["first_token_s"]["n"] == one["total_s"]["n"] == 2
        assert one["throughput_per_min"] > 0 and one["wall_s"] > 0
        assert four["askers"] == 4 and four["requests"] == 8
        assert four["refused_busy"] >= 1 and four["answered"] >= 1
        assert four["answered"] + four["refused_busy"] + four["timeouts"] + four["errors"] == 8
        assert four["timeouts"] == four["errors"] == 0
        assert four["queued"] == 0  # nobody may wait
        assert len(four["retry_after_s"]) == four["refused_busy"]
        assert all(s >= 1 for s in four["retry_after_s"])
        answer_s = four["total_s"]["p50"]
        assert four["refusal_s"]["max"] < answer_s  # refused at once, not after a wait
        busy = [r for r in four["requests_detail"] if r["status"] == "busy"]
        assert all("refusal_ms" in r and "retry_after_s" in r for r in busy)
        assert {r["asker"] for r in four["requests_detail"]} == {0, 1, 2, 3}

    def test_printed(self, load: tuple[dict[str, Any], str]) -> None:
        _, printed = load
        assert "== concurrency: 2 ePQA questions per asker, llm_concurrency 1, llm_queue 0" in (
            printed
        )

    def test_level_scores(self) -> None:
        records = [
            {
                "status": "answered",
                "abstained": False,
                "queued_place": None,
                "first_token_ms": 100.0,
                "total_ms": 400.0,
            },
            {
                "status": "answered",
                "abstained": True,
                "queued_place": 1,
                "first_token_ms": 900.0,
                "total_ms": 900.0,
            },
            {"status": "busy", "retry_after_s": 6, "refusal_ms": 5.0},
            {"status": "timeout", "error": "late"},
        ]
        scores = concurrency.level_scores(records, askers=4, wall_s=30.0)
        assert (scores["answered"], scores["abstained"], scores["queued"]) == (2, 1, 1)
        assert (scores["refused_busy"], scores["timeouts"], scores["errors"]) == (1, 1, 0)
        assert scores["retry_after_s"] == [6]
        assert scores["throughput_per_min"] == 4.0
        assert scores["first_token_s"]["p50"] == 0.5
        assert scores["refusal_s"]["p50"] == 0.005

    def test_levels_option(self) -> None:
        assert concurrency.levels("1,4,8") == (1, 4, 8)
        assert concurrency.levels("4, 4,2") == (4, 2)
        with pytest.raises(ValueError):
            concurrency.levels("0,2")
        with pytest.raises(SystemExit):
            main(["--concurrency", "x"])
        with pytest.raises(SystemExit):  # without the concurrency data set
            main(["--concurrency", "2"])


class TestCommand:
    def test_settings_machine_and_git(self, result: dict[str, Any]) -> None:
        settings = result["settings"]
        assert settings["llm"] == "recording-fake"
        assert settings["embedder"] == "hashing-64"
        assert settings["limit_questions"] == 60
        assert settings["limit_questions_per"] == "split"
        assert settings["limit_queries"] == 10
        assert settings["seed"] == 0
        assert settings["concurrency"] == [1, 4, 8]
        assert {"llm_concurrency", "llm_queue", "ask_min_quote_relevance"} <= set(settings)
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
        assert "== epqa: 2 pages" in printed
        assert "  dev: 4 questions (1 unanswerable) of 4 (1 unanswerable)\n" in printed
        assert "  test: 3 questions (2 unanswerable) of 3 (2 unanswerable)\n" in printed
        assert "test is the reported split" in printed
        assert re.search(r"claims shipped\s+3\s+1\n", printed)
        assert re.search(r"cited label >= 1\s+0\.667\s+1\.000\n", printed)
        assert "dev: abstentions unsupported 1; dropped claims quote_not_in_source 1" in printed
        assert "gate, then model (shipped)" in printed
        assert "== gate: evidence of 7 ePQA questions (3 unanswerable)" in printed
        assert "7 claims written to" in printed
        assert "== crowdflower advice: 5 queries" in printed
        assert "== sample catalog constraints" in printed
        assert "written to" in printed

    def test_dataset_choice_and_limits(self, data: Path, tmp_path: Path) -> None:
        args = ["--data", str(data), "--datasets", "crowdflower,epqa", "--limit-queries", "2"]
        args += ["--limit-questions", "2", "--seed", "3", "--out", str(tmp_path / "small.json")]
        small, _ = run_main(args, ScriptedLLM(scripted_reply))
        assert list(small["datasets"]) == ["crowdflower", "epqa"]
        crowdflower = small["datasets"]["crowdflower"]
        assert crowdflower["sampling"]["queries"] == 2
        assert crowdflower["sampling"]["seed"] == 3
        assert len(crowdflower["rows"]) == 2
        sampling = small["datasets"]["epqa"]["sampling"]
        assert sampling["dev"]["questions"] == sampling["test"]["questions"] == 2  # per split
        assert sampling["dev"]["unanswerable"] == sampling["test"]["unanswerable"] == 1

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


def _row(
    answerable: bool,
    claims: list[tuple[int | None, bool]],
    *,
    kind: str = "open",
    verdict: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """An ePQA row: its claims as (cited label, quoted); none: abstained for ``reason``."""
    return {
        "answerable": answerable,
        "abstained": not claims,
        "abstain_reason": reason if not claims else None,
        "kind": kind,
        "verdict": verdict,
        "claims": [{"cited_label": label, "quoted": quoted} for label, quoted in claims],
        "dropped_claims": 1 if reason else 0,
        "dropped_reasons": ["unsettled"] if reason else [],
        "language_match": True,
        "f1": None,
        "rouge_l": None,
        "timings_ms": {"first_token": 1000.0, "total": 2000.0},
    }


class TestEpqaScores:
    def test_claims_labels_and_refusals(self) -> None:
        rows = [
            _row(True, [(2, False), (None, True)], kind="yes_no", verdict="no"),
            _row(True, [(1, True)]),
            _row(True, [], kind="yes_no", reason="not_answered"),
            _row(False, [(0, False)]),
            _row(False, [], reason="model"),
            {"id": "x", "error": "timeout"},
        ]
        scores = epqa_scores(rows, prevalence=0.06)
        assert (scores["questions"], scores["errors"], scores["answered"]) == (5, 1, 3)
        assert scores["refused_answerable"]["share"] == round(1 / 3, 4)
        assert scores["abstention"]["precision"] == 0.5
        assert scores["abstention"]["recall"] == 0.5
        assert "precision_at_data_set_share" in scores["abstention"]
        claims = scores["claims"]
        assert (claims["shipped"], claims["label_1_or_2"], claims["label_2"]) == (4, 2, 1)
        assert (claims["unjudged"], claims["quoted"]) == (1, 2)
        assert claims["label_1_or_2_share"] == 0.5 and claims["per_answer"] == round(4 / 3, 4)
        assert scores["yes_no"] == {"questions": 2, "answered": 1, "verdict": 1, "yes": 0, "no": 1}
        assert scores["abstain_reasons"] == {"model": 1, "not_answered": 1}
        assert scores["dropped_reasons"] == {"unsettled": 2}
        assert scores["latency_s"]["first_token"] == {"p50": 1.0, "p95": 1.0, "n": 5}

    def test_the_halves_are_the_splits(self) -> None:
        assert all(split_of(str(i)) == ("dev" if tune_half(str(i)) else "test") for i in range(50))


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
            text="The Sony WH-1000XM5 fits [1].",
            abstained=False,
            cited=[source],
            sources=[source],
            applied_constraints=["price ≤ 100"],
            filters=Filters(price_max=100),
            claims=[Claim("The Sony WH-1000XM5 fits.", (1,), "Sony WH-1000XM5")],
        )
        question = answers.SAMPLE_QUESTIONS[0]
        row = _sample_row(question, answer, {"p001": SONY})
        assert row["violations"] == {"p001": ["price_max"]}
        assert row["other_currency"] == []
        assert row["claims"] == [
            {"text": "The Sony WH-1000XM5 fits.", "quote": "Sony WH-1000XM5", "product_id": "p001"}
        ]
        assert row["language_match"]
        scores = constraint_scores([row])
        assert scores["satisfaction_applied"] == 0.0
        assert scores["satisfaction_meant"] == 0.0
        assert scores["claims"]["claims"] == 1
