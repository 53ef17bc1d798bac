"""The CrowdFlower catalog and query set for the load and indexing benchmarks.

The catalog holds every distinct (title, description) pair of the CrowdFlower "Search Results
Relevance" train set (``../shared/datasets/crowdflower/train.csv``), in order of first
appearance, with the id ``cf-`` + the first 16 hex digits of sha256(title + U+001F +
description); the query set is its distinct queries, in order of first appearance. Nothing
of the data set is copied into the repository: catalogs are written to temporary folders.

`expanded` makes larger catalogs from it: copy 0 is the catalog itself; copy k >= 1 gives
every product the id ``{id}-v{k}`` and appends `variant(k)` to its title (" - Red",
" - Navy Blue", ..., then " - Red, Small" and so on), so every product unit's text is new and
must be embedded; descriptions stay as they are.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRAIN_CSV = ROOT.parent / "shared" / "datasets" / "crowdflower" / "train.csv"

COLOURS = (
    "Red",
    "Navy Blue",
    "Forest Green",
    "Charcoal Grey",
    "Ivory White",
    "Jet Black",
    "Sunflower Yellow",
    "Burnt Orange",
    "Lavender Purple",
    "Blush Pink",
    "Chocolate Brown",
    "Teal",
)
SIZES = ("Small", "Medium", "Large", "X-Large", "XX-Large", "Compact", "Family Size", "Mini")


@dataclass(frozen=True)
class CrowdFlower:
    """The catalog (product dicts in the project's catalog shape) and the query set."""

    products: list[dict[str, Any]]
    queries: list[str]


def product_id(title: str, description: str) -> str:
    """The stable id of a (title, description) pair."""
    digest = hashlib.sha256(f"{title}\x1f{description}".encode()).hexdigest()
    return f"cf-{digest[:16]}"


def load(path: Path | str = DEFAULT_TRAIN_CSV) -> CrowdFlower:
    """Distinct products and distinct queries of the CrowdFlower train file."""
    products: dict[tuple[str, str], dict[str, Any]] = {}
    queries: dict[str, None] = {}
    with Path(path).open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            queries.setdefault(row["query"].strip(), None)
            title = row["product_title"].strip()
            description = row["product_description"].strip()
            if not title or (title, description) in products:
                continue
            product: dict[str, Any] = {"id": product_id(title, description), "title": title}
            if description:
                product["description"] = description
            products[(title, description)] = product
    return CrowdFlower(list(products.values()), [q for q in queries if q])


def variant(copy: int) -> str:
    """The title suffix of copy ``copy`` (1, 2, ...): a colour, then colour and size."""
    if copy < 1:
        msg = f"copy must be 1 or more, got {copy}"
        raise ValueError(msg)
    colour = COLOURS[(copy - 1) % len(COLOURS)]
    round_ = (copy - 1) // len(COLOURS)
    if round_ == 0:
        return f" - {colour}"
    return f" - {colour}, {SIZES[(round_ - 1) % len(SIZES)]}"


def expanded(products: list[dict[str, Any]], size: int) -> Iterator[dict[str, Any]]:
    """The first ``size`` products of copy 0, 1, 2, ... of ``products`` (see the module)."""
    if not products:
        return
    produced = 0
    copy = 0
    while produced < size:
        for product in products:
            if produced >= size:
                return
            if copy == 0:
                yield product
            else:
                yield {
                    **product,
                    "id": f"{product['id']}-v{copy}",
                    "title": product["title"] + variant(copy),
                }
            produced += 1
        copy += 1


def write_jsonl(products: Iterable[dict[str, Any]], path: Path) -> int:
    """Write a JSONL catalog; returns how many products."""
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for product in products:
            f.write(json.dumps(product, ensure_ascii=False) + "\n")
            count += 1
    return count
