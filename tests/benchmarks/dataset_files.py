"""Tiny benchmark data files in their published layouts and formats (see
``../shared/datasets/README.md``), for the benchmark command tests."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

CROWDFLOWER_HEADER = [
    "id",
    "query",
    "product_title",
    "product_description",
    "median_relevance",
    "relevance_variance",
]
EPQA_HEADER = [
    "qid",
    "question",
    "ASIN",
    "candidate",
    "source",
    "qa_pair_id",
    "title",
    "label",
    "answer",
]

# (query, title, description, median relevance)
CrowdFlowerRow = tuple[str, str, str, int]
# (qid, question, ASIN, candidate, source, title, label, answer)
EpqaRow = tuple[str, str, str, str, str, str, int, str]


def write_crowdflower(root: Path, rows: Iterable[CrowdFlowerRow]) -> None:
    """``root/crowdflower/train.csv``."""
    (root / "crowdflower").mkdir(parents=True, exist_ok=True)
    with (root / "crowdflower" / "train.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CROWDFLOWER_HEADER)
        for i, (query, title, description, relevance) in enumerate(rows, start=1):
            writer.writerow([i, query, title, description, relevance, 0])


def write_epqa(root: Path, rows: Iterable[EpqaRow]) -> None:
    """``root/epqa/dev.csv``; each row gets the next ``qa_pair_id``."""
    (root / "epqa").mkdir(parents=True, exist_ok=True)
    with (root / "epqa" / "dev.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EPQA_HEADER)
        for pair, (qid, question, asin, candidate, source, title, label, answer) in enumerate(
            rows, start=1
        ):
            writer.writerow([qid, question, asin, candidate, source, pair, title, label, answer])
