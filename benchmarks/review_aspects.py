"""Review summaries: are the aspects found in reviews really there, is the feeling right, and
does every cited passage say it?

    python -m benchmarks.review_aspects [--data ../shared/datasets] [--epqa-mentions 120]
        [--seed 0] [--judgements benchmarks/judgements/review_aspects.jsonl]
        [--export PATH] [--out bench-results/review_aspects.json]

The mentions are what `GET /products/{id}/review-summary` is built from (`generation.aspects`):
every one in the sample catalog's reviews, and those of a seeded sample of ePQA's review
passages (read from ``--data``, never copied), taken in a seeded order until
``--epqa-mentions`` are found. Each mention is judged by hand in ``--judgements``, one JSON line
per mention: its ``key`` (a hash of the review's text and the aspect: no review text is kept
for ePQA), ``aspect_ok`` (the clause is about that aspect) and ``polarity`` (how the clause
feels about it: positive, negative or neutral).

Measured: aspect precision (mentions whose aspect is right, of those judged), polarity accuracy
(of the right ones), the share of cited passages that hold the aspect's words at the cited
place (checked, not judged), the time `summarize_reviews` takes per sample product (what a
first, uncached request adds), and how many mentions have no judgement yet (a changed lexicon
finds new ones: ``--export`` writes them, with their text, to a file outside the repository
for a judge). Prints one table per source and overall; writes JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.datasets import EPQA_FILE, csv_rows
from benchmarks.relevance import git_state, machine
from generation.aspects import mentions
from generation.review_summary import summarize_reviews
from retrieval.schema import Product

SAMPLE_CATALOG = Path("data") / "sample_catalog.jsonl"
JUDGEMENTS = Path("benchmarks") / "judgements" / "review_aspects.jsonl"


@dataclass(frozen=True)
class Found:
    """One mention to judge."""

    key: str
    source: str  # sample or epqa
    aspect: str
    polarity: str
    clause: str
    term: str
    review: str
    cited_ok: bool  # the clause holds the aspect's words, at the cited place, in the review


def mention_key(review: str, aspect: str, start: int) -> str:
    """A stable key for one mention: the review's text, the aspect and the clause's place."""
    digest = hashlib.sha1(review.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]
    return f"{digest}:{start}:{aspect}"


def found_in(review: str, source: str, rating: float | None = None) -> list[Found]:
    """The mentions of one review."""
    out = []
    for m in mentions(review, rating):
        clause, term = review[m.start : m.end], review[m.term_start : m.term_end]
        cited_ok = m.start <= m.term_start < m.term_end <= m.end and bool(term.strip())
        out.append(
            Found(
                key=mention_key(review, m.aspect, m.start),
                source=source,
                aspect=m.aspect,
                polarity=m.polarity,
                clause=clause,
                term=term,
                review=review,
                cited_ok=cited_ok,
            )
        )
    return out


def sample_mentions(catalog: Path) -> list[Found]:
    """Every mention in the sample catalog's reviews."""
    out: list[Found] = []
    for line in catalog.read_text(encoding="utf-8").splitlines():
        if line.strip():
            for review in json.loads(line).get("reviews", []):
                out += found_in(review["text"], "sample", review.get("rating"))
    return out


def epqa_mentions(data: Path, wanted: int, seed: int) -> list[Found]:
    """Mentions in ePQA's review passages, a seeded order of them, until ``wanted`` are found."""
    texts = sorted(
        {row["candidate"] for row in csv_rows(data / EPQA_FILE) if row["source"] == "review"}
    )
    random.Random(seed).shuffle(texts)  # noqa: S311 - a reproducible sample, not security
    out: list[Found] = []
    for text in texts:
        if len(out) >= wanted:
            break
        out += found_in(text, "epqa")
    return out


def summary_latency_ms(catalog: Path, rounds: int = 50) -> dict[str, float]:
    """p50 and p95 milliseconds of one product's review summary, over the catalog's products."""
    products = [
        Product(**json.loads(line))
        for line in catalog.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    times = []
    for _ in range(rounds):
        for product in products:
            start = time.perf_counter()
            summarize_reviews(product)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50": round(times[len(times) // 2], 3),
        "p95": round(times[int(len(times) * 0.95)], 3),
        "reviews_per_product": round(sum(len(p.reviews) for p in products) / len(products), 2),
    }


def read_judgements(path: Path) -> dict[str, dict[str, Any]]:
    """The judgements by mention key."""
    if not path.exists():
        return {}
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return {row["key"]: row for row in rows}


def score(found: list[Found], judged: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Aspect precision, polarity accuracy and cited-passage checks of ``found``."""
    with_judgement = [(f, judged[f.key]) for f in found if f.key in judged]
    right = [(f, j) for f, j in with_judgement if j["aspect_ok"]]
    polarity_right = sum(f.polarity == j["polarity"] for f, j in right)
    wrong_aspects: dict[str, int] = {}
    for f, j in with_judgement:
        if not j["aspect_ok"]:
            wrong_aspects[f.aspect] = wrong_aspects.get(f.aspect, 0) + 1
    return {
        "mentions": len(found),
        "judged": len(with_judgement),
        "unjudged": len(found) - len(with_judgement),
        "aspect_precision": _share(len(right), len(with_judgement)),
        "polarity_accuracy": _share(polarity_right, len(right)),
        "cited_with_aspect": _share(sum(f.cited_ok for f in found), len(found)),
        "aspects": len({f.aspect for f in found}),
        "wrong_by_aspect": dict(sorted(wrong_aspects.items(), key=lambda kv: -kv[1])),
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--catalog", type=Path, default=SAMPLE_CATALOG)
    parser.add_argument("--epqa-mentions", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--judgements", type=Path, default=JUDGEMENTS)
    parser.add_argument("--export", type=Path, help="write the unjudged mentions here (JSONL)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/review_aspects.json"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success."""
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    found = sample_mentions(args.catalog) + epqa_mentions(args.data, args.epqa_mentions, args.seed)
    judged = read_judgements(args.judgements)
    sources = {"sample": [f for f in found if f.source == "sample"]}
    sources["epqa"] = [f for f in found if f.source == "epqa"]
    sources["all"] = found
    result = {
        "benchmark": "review_aspects",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "git": git_state(),
        "settings": {
            "catalog": str(args.catalog),
            "data": str(args.data),
            "epqa_mentions": args.epqa_mentions,
            "seed": args.seed,
            "judgements": str(args.judgements),
        },
        "sources": {name: score(items, judged) for name, items in sources.items()},
        "summary_ms": summary_latency_ms(args.catalog),
        "wall_s": round(time.perf_counter() - started, 2),
    }
    if args.export:
        unjudged = [asdict(f) for f in found if f.key not in judged]
        args.export.parent.mkdir(parents=True, exist_ok=True)
        args.export.write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in unjudged),
            encoding="utf-8",
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    _print(result)
    sys.stdout.write(f"\nwritten to {args.out}\n")
    return 0


def _print(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    out(
        f"{'source':<8}{'mentions':>10}{'judged':>8}{'aspect precision':>18}"
        f"{'polarity accuracy':>19}{'cited with aspect':>19}{'aspects':>9}\n"
    )
    for name, row in result["sources"].items():
        out(
            f"{name:<8}{row['mentions']:>10}{row['judged']:>8}"
            f"{_cell(row['aspect_precision'], 18)}{_cell(row['polarity_accuracy'], 19)}"
            f"{_cell(row['cited_with_aspect'], 19)}{row['aspects']:>9}\n"
        )
    latency = result["summary_ms"]
    out(
        f"\none product's summary: p50 {latency['p50']:.2f} ms, p95 {latency['p95']:.2f} ms "
        f"({latency['reviews_per_product']} reviews a product)\n"
    )
    wrong = result["sources"]["all"]["wrong_by_aspect"]
    if wrong:
        out("\nwrong aspects: " + ", ".join(f"{k} {v}" for k, v in wrong.items()) + "\n")


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
