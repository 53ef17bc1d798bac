"""Smoke test of ``python -m benchmarks.load``: a tiny catalog, a real server, a second of load."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import load

PRODUCTS = [
    {"id": "p1", "title": "Wireless noise cancelling headphones", "description": "Over-ear."},
    {"id": "p2", "title": "Stainless steel espresso machine", "description": "15 bar pump."},
    {"id": "p3", "title": "Lightweight running shoes", "brand": "Acme"},
    {"id": "p4", "title": "Cast iron frying pan", "price": 29.5},
]


def test_load_command_writes_the_figures(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(p) + "\n" for p in PRODUCTS), encoding="utf-8")
    queries = tmp_path / "queries.txt"
    queries.write_text("headphones\nespresso machine\nrunning shoes\n", encoding="utf-8")
    out = tmp_path / "load.json"

    code = load.main(
        [
            "--catalog", str(catalog),
            "--queries", str(queries),
            "--store", "embedded",
            "--cache", "memory",
            "--embedder", "hashing-256",
            "--reranker", "none",
            "--duration", "0.3",
            "--concurrency", "1,2",
            "--startup-timeout", "120",
            "--embedding-cache", str(tmp_path / "vectors"),
            "--out", str(out),
        ]
    )  # fmt: skip

    assert code == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["failed_requests"] == 0
    assert result["catalog"] == {"source": str(catalog), "products": 4, "queries": 3}
    assert result["index_builds"][1]["products"] == 4
    assert list((tmp_path / "vectors").glob("hashing-256-*/documents.v*.npz"))
    (server,) = result["servers"]
    assert (server["store"], server["cache"]) == ("embedded", "memory")
    runs = server["runs"]
    combos = {(r["mode"], r["rerank"], r["concurrency"]) for r in runs}
    assert combos == {
        (mode, rerank, c)
        for mode in ("uncached", "cached")
        for rerank in (False, True)
        for c in (1, 2)
    }
    for run in runs:
        assert run["requests"] > 0 and run["failed"] == 0
        assert run["requests_per_s"] > 0
        assert run["latency_ms"]["p50"] <= run["latency_ms"]["p95"] <= run["latency_ms"]["p99"]
        if run["mode"] == "cached":
            assert run["cached_responses"] == run["requests"]
        else:
            assert run["cached_responses"] == 0
            assert run["server_stage_ms_p50"]["total"] > 0
