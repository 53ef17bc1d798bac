"""Smoke test of ``python -m benchmarks.indexing`` on a tiny catalog with the hashing embedder."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import crowdflower_catalog as cf
from benchmarks import indexing

CSV = (
    "id,query,product_title,product_description,median_relevance,relevance_variance\n"
    '1,pillow,Accent Pillow with Heart,"Red satin pillow, 8 x 8 inches.",1,0\n'
    "2,lights,LED Christmas Lights,Set of 10 battery lights,4,0\n"
    "3,projector,ViewSonic DLP Projector,,4,0.471\n"
    '4,pillow,Accent Pillow with Heart,"Red satin pillow, 8 x 8 inches.",2,0\n'
)


def test_crowdflower_catalog_and_expansion(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(CSV, encoding="utf-8")
    data = cf.load(path)
    assert [p["title"] for p in data.products] == [
        "Accent Pillow with Heart",
        "LED Christmas Lights",
        "ViewSonic DLP Projector",
    ]
    assert "description" not in data.products[2]
    assert data.queries == ["pillow", "lights", "projector"]
    products = list(cf.expanded(data.products, 8))
    assert len({p["id"] for p in products}) == 8
    assert len({p["title"] for p in products}) == 8
    assert products[3] == {
        **data.products[0],
        "id": data.products[0]["id"] + "-v1",
        "title": "Accent Pillow with Heart - Red",
    }
    assert cf.variant(13) == " - Red, Small"


def test_indexing_command_writes_the_figures(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(CSV, encoding="utf-8")
    out = tmp_path / "indexing.json"

    code = indexing.main(
        [
            "--catalog", str(path),
            "--sizes", "10",
            "--stores", "embedded",
            "--embedder", "hashing-256",
            "--out", str(out),
        ]
    )  # fmt: skip

    assert code == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["catalog"]["base_products"] == 3
    (raw,) = result["raw"]
    assert (raw["products"], raw["embedder"]) == (10, "hashing-256")
    (run,) = result["runs"]
    assert (run["store"], run["size"], run["products"]) == ("embedded", 10, 10)
    assert run["units"] == raw["units"] >= run["embedded"] > 0  # repeats embed once
    assert set(run["stages_s"]) == set(indexing.STAGES)
    assert run["dominant_stage"] in indexing.STAGES
    assert run["peak_rss_mb"] > 0 and run["ratio_to_raw"] > 0
