"""Streaming catalog readers for JSONL and CSV, reporting bad rows instead of stopping."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from retrieval.schema import Product

_JSON_COLUMNS = ("attributes", "reviews", "qa")
_OPTIONAL_SCALARS = (
    "description",
    "brand",
    "category",
    "price",
    "currency",
    "rating",
    "review_count",
    "in_stock",
)
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True)
class RowError:
    """A catalog row that could not be read, and where."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class Row:
    """A valid product and the line it starts on."""

    path: str
    line: int
    product: Product


def _open(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    if last in (".jsonl", ".ndjson"):
        return "jsonl"
    if last in (".csv", ".tsv"):
        return last[1:]
    msg = f"{path}: unknown catalog format '{last}' (expected .jsonl, .ndjson, .csv or .tsv)"
    raise ValueError(msg)


def describe_validation_error(exc: ValidationError) -> str:
    """A short reason naming each bad field."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "row"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _validate(path: str, line: int, data: Any) -> Row | RowError:
    if not isinstance(data, dict):
        return RowError(path, line, f"expected a JSON object, got {type(data).__name__}")
    try:
        return Row(path, line, Product.model_validate(data))
    except ValidationError as exc:
        return RowError(path, line, describe_validation_error(exc))


def _read_jsonl(path: Path) -> Iterator[Row | RowError]:
    with _open(path) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RowError(str(path), line_no, f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            yield _validate(str(path), line_no, data)


def _csv_row(raw: dict[str, Any]) -> dict[str, Any]:
    """Turn CSV strings into the product's shapes; JSON columns must hold JSON."""
    data: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for key, value in raw.items():
        if key is None:
            msg = "more values than header columns"
            raise ValueError(msg)
        key = key.strip()
        value = (value or "").strip()
        if key.startswith("attr_") or key.startswith("attribute_"):
            if value:
                attributes[key.split("_", 1)[1]] = value
        elif key in _JSON_COLUMNS:
            if value:
                data[key] = _json_cell(key, value)
        elif key in _OPTIONAL_SCALARS and not value:
            continue
        else:
            data[key] = value
    if attributes:
        data["attributes"] = {**attributes, **data.get("attributes", {})}
    return data


def _json_cell(column: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        if column == "attributes":  # "key=value; key2=value2"
            pairs = [p.split("=", 1) for p in value.split(";") if p.strip()]
            if all(len(p) == 2 for p in pairs):
                return {k.strip(): v.strip() for k, v in pairs}
        msg = f"column '{column}' is not valid JSON"
        raise ValueError(msg) from None


def _read_csv(path: Path, delimiter: str) -> Iterator[Row | RowError]:
    with _open(path) as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        while True:
            try:
                raw = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RowError(str(path), reader.line_num, f"unreadable CSV: {exc}")
                continue
            try:
                data = _csv_row(raw)
            except ValueError as exc:
                yield RowError(str(path), reader.line_num, str(exc))
                continue
            yield _validate(str(path), reader.line_num, data)


def read_catalog(path: Path | str) -> Iterator[Row | RowError]:
    """Every row of a JSONL or CSV catalog (optionally gzipped), one at a time."""
    path = Path(path)
    if not path.is_file():
        msg = f"catalog not found: {path}"
        raise FileNotFoundError(msg)
    kind = _format(path)
    if kind == "jsonl":
        return _read_jsonl(path)
    return _read_csv(path, "\t" if kind == "tsv" else ",")
