"""``python -m benchmarks.ingest``: tiny runs into the file store (no Redis), the counts verified
and the JSON's shape."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from benchmarks import ingest

PRODUCTS = [
    {"id": "p1", "title": "Wireless noise cancelling headphones", "brand": "Sony", "price": 99.0},
    {"id": "p2", "title": "Stainless steel espresso machine", "category": "Kitchen > Coffee"},
    {"id": "p3", "title": "Lightweight running shoes", "brand": "Acme"},
]


def test_ingest_command_on_the_file_store_verifies_the_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ingest.json"

    code = ingest.main(
        [
            "--stores", "file",
            "--shoppers", "5",
            "--workers", "1,2",
            "--events", "41",
            "--batch", "10",
            "--products", "30",
            "--out", str(out),
        ]
    )  # fmt: skip

    assert code == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["benchmark"] == "ingest"
    assert result["settings"]["events_per_run"] == 41
    assert result["catalog"]["products"] == 30
    assert result["catalog"]["embedder"] == "hashing-384"
    assert result["machine"]["cpu_count"] >= 1
    assert "redis" not in result
    assert result["goal"]["met"] is None  # no Redis run
    runs = result["runs"]
    assert [(r["store"], r["shoppers"], r["workers"]) for r in runs] == [
        ("file", 5, 1),
        ("file", 5, 2),
    ]
    for run in runs:
        assert run["events"] == 41 and run["accepted"] == 41
        assert run["failed_batches"] == run["rejected"] == run["duplicates"] == 0
        assert run["verify"] == {
            "counted": 41,
            "sent": 41,
            "accepted": 41,
            "shoppers_with_profile": run["verify"]["shoppers_with_profile"],
            "ok": True,
            "verdict": "ok",
        }
        assert 1 <= run["verify"]["shoppers_with_profile"] <= run["shoppers"]
        assert run["events_per_s"] > 0 and run["wall_s"] > 0
        assert [w["events"] for w in run["per_worker"]] == ingest.shares(41, run["workers"])
        assert run["batch_ms"]["n"] == sum(-(-n // 10) for n in ingest.shares(41, run["workers"]))
        assert set(run["time_share"]) == {"catalog", "profile_store", "rest_of_record"}
        assert "redis_commands" not in run
        assert run["cpu_us_per_event"]["workers"] > 0 and "redis" not in run["cpu_us_per_event"]
    printed = capsys.readouterr().out
    assert "events/s" in printed and "written to" in printed


def test_the_catalog_file_can_replace_the_synthetic_one(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(p) + "\n" for p in PRODUCTS), encoding="utf-8")
    out = tmp_path / "ingest.json"

    argv = ["--stores", "file", "--shoppers", "3", "--workers", "1", "--events", "12"]
    code = ingest.main([*argv, "--batch", "5", "--catalog", str(catalog), "--out", str(out)])

    assert code == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["catalog"]["products"] == 3
    assert result["catalog"]["source"] == str(catalog)
    (run,) = result["runs"]
    assert run["verify"]["ok"]


def test_quick_and_full_defaults_and_shares() -> None:
    parser = ingest._parser()
    full = parser.parse_args([])
    ingest._resolve(full)
    assert (full.events, full.shoppers, full.batch, full.products) == (
        60_000,
        [1, 10_000],
        1000,
        5000,
    )
    assert (full.stores, full.workers, full.redis_fsync) == (["file", "redis"], [1, 2], "everysec")
    quick = parser.parse_args(["--quick", "--batch", "7"])
    ingest._resolve(quick)
    assert (quick.events, quick.shoppers, quick.batch) == (2000, [1, 200], 7)
    assert ingest.shares(10, 3) == [4, 3, 3]
    assert ingest.shares(2, 4) == [1, 1, 0, 0]
    assert ingest.goal_met([{"store": "redis", "shoppers": 10_000, "events_per_s": 12_000.0}])
    assert ingest.goal_met([{"store": "file", "shoppers": 10_000, "events_per_s": 9.0}]) is None


@pytest.mark.parametrize(
    "argv", [["--stores", "postgres"], ["--workers", "0"], ["--shoppers", "x"], ["--events", "0"]]
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        ingest._parser().parse_args(argv)


def test_int_list_parses_and_sorts() -> None:
    assert ingest._int_list("10000, 1,1") == [1, 10_000]
    with pytest.raises(argparse.ArgumentTypeError):
        ingest._int_list("0")
