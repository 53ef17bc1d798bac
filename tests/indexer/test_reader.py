import csv
import gzip
import json
from pathlib import Path

import pytest

from indexer.reader import Row, RowError, read_catalog
from tests.conftest import write_jsonl


def _split(rows: list) -> tuple[list[Row], list[RowError]]:
    good = [r for r in rows if isinstance(r, Row)]
    bad = [r for r in rows if isinstance(r, RowError)]
    return good, bad


class TestJsonl:
    def test_bad_rows_are_reported_with_line_and_reason_and_skipped(self, tmp_path: Path) -> None:
        path = write_jsonl(
            tmp_path / "c.jsonl",
            [
                {"id": "ok1", "title": "Fine"},
                "{broken json",
                {"title": "no id"},
                {"id": "no-title"},
                {"id": "p", "title": "Bad price", "price": "cheap"},
                {"id": "r", "title": "Bad rating", "rating": 9},
                ["not", "an", "object"],
                {"id": "ok2", "title": "Also fine", "price": "12.50"},
            ],
        )
        good, bad = _split(list(read_catalog(path)))
        assert [r.product.id for r in good] == ["ok1", "ok2"]
        assert good[1].product.price == 12.5
        reasons = {e.line: e.reason for e in bad}
        assert set(reasons) == {2, 3, 4, 5, 6, 7}
        assert "invalid JSON" in reasons[2]
        assert "id: Field required" in reasons[3]
        assert "title: Field required" in reasons[4]
        assert reasons[5].startswith("price:")
        assert reasons[6].startswith("rating:")
        assert "JSON object" in reasons[7]
        assert str(bad[0]).startswith(f"{path}:2: ")

    def test_only_id_and_title_are_required(self, tmp_path: Path) -> None:
        path = write_jsonl(tmp_path / "c.jsonl", [{"id": 7, "title": "  Numeric id  "}])
        (row,) = read_catalog(path)
        assert isinstance(row, Row)
        assert row.product.id == "7"
        assert row.product.title == "Numeric id"
        assert row.product.reviews == []

    def test_blank_lines_are_ignored_and_gzip_works(self, tmp_path: Path) -> None:
        path = tmp_path / "c.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(json.dumps({"id": "a", "title": "A"}) + "\n\n")
        assert [r.product.id for r in read_catalog(path)] == ["a"]  # type: ignore[union-attr]

    def test_streams_rows_lazily(self, tmp_path: Path) -> None:
        path = write_jsonl(tmp_path / "c.jsonl", [{"id": str(i), "title": "t"} for i in range(3)])
        rows = read_catalog(path)
        assert next(iter(rows)).product.id == "0"  # type: ignore[union-attr]


class TestCsv:
    def _write(self, path: Path, rows: list[dict[str, str]]) -> Path:
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path

    def test_csv_shapes_and_bad_cells(self, tmp_path: Path) -> None:
        base = {
            "id": "",
            "title": "",
            "price": "",
            "in_stock": "",
            "attributes": "",
            "reviews": "",
            "attr_color": "",
        }
        path = self._write(
            tmp_path / "c.csv",
            [
                {
                    **base,
                    "id": "a",
                    "title": "Kettle",
                    "price": "19.99",
                    "in_stock": "yes",
                    "attributes": '{"capacity_l": 1.7}',
                    "attr_color": "red",
                    "reviews": '[{"text": "Boils fast", "rating": 5}]',
                },
                {**base, "id": "b", "title": "Bad price", "price": "n/a"},
                {**base, "id": "c", "title": "Bad reviews", "reviews": "[not json"},
                {**base, "id": "d", "title": "Pairs", "attributes": "size=M; fit=slim"},
                {**base, "id": "", "title": "No id"},
            ],
        )
        good, bad = _split(list(read_catalog(path)))
        assert [r.product.id for r in good] == ["a", "d"]
        kettle = good[0].product
        assert kettle.price == 19.99 and kettle.in_stock is True
        assert kettle.attributes == {"color": "red", "capacity_l": 1.7}
        assert kettle.reviews[0].text == "Boils fast"
        assert good[1].product.attributes == {"size": "M", "fit": "slim"}
        assert [(e.line, e.reason.split(":")[0]) for e in bad] == [
            (3, "price"),
            (4, "column 'reviews' is not valid JSON"),
            (6, "id"),
        ]


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "c.xml").write_text("<x/>")
    with pytest.raises(ValueError, match="unknown catalog format"):
        read_catalog(tmp_path / "c.xml")
    with pytest.raises(FileNotFoundError, match="catalog not found"):
        read_catalog(tmp_path / "missing.jsonl")
