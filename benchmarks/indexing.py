"""Indexing throughput, time per stage and peak memory at 1k, 10k and 100k products.

    python -m benchmarks.indexing [--sizes 1000,10000,100000] [--stores embedded,elasticsearch]
        [--embedder packaged:all-minilm-l6-v2] [--embedder-runtime torch|onnx|onnx-int8]
        [--fast-embedder hashing-256] [--budget-min 20]
        [--catalog ../shared/datasets/crowdflower/train.csv] [--out bench-results/indexing.json]

Catalogs. The base catalog is the CrowdFlower one of `benchmarks.crowdflower_catalog` (9,913
distinct title + description products; another CSV in that format, or a project JSONL/CSV
catalog, with ``--catalog``). A catalog of N products is the first N products of copy 0, 1,
2, ... of the base catalog: copy 0 is the base catalog as it is; copy k >= 1 gives each product
the id ``{id}-v{k}`` and appends a variant to its title: " - Red", " - Navy Blue", ... (12
colours for copies 1-12), then " - Red, Small" and so on (colour and size, copies 13-108).
Every product unit's text is therefore new; description units repeat the base text under a new
unit id: `index_catalog` embeds a text repeated within one embedding group (about
`indexer.indexer.EMBED_BATCH` units) once, so the raw-throughput
ratio can exceed 1.0 on expanded catalogs. Each catalog is written as JSONL to a temporary folder
and read back with `indexer.reader.read_catalog`, as ``shopguide index`` does.

Method. Every measurement runs in a fresh subprocess (``--job``), one after the other, so peak
memory is that run's alone: the parent reads the child's ``ru_maxrss`` (``os.wait4``) and the
child reports VmHWM and its RSS after loading the model (before indexing). An indexing run calls
`indexer.indexer.index_catalog` (``prune=True``, ``--batch-size`` products a batch, the model
loaded beforehand) and reports the stage clocks it keeps (`IndexReport.stage_seconds`):

    read    time spent pulling rows from `read_catalog` (JSONL parsing, validation)
    units   `indexer.units.product_units`
    lookup  `store.known_vectors` (vectors to reuse; none in a fresh index)
    embed   `embedder.embed_documents`
    write   `writer.write` (embedded: tokenizing and staging; Elasticsearch: building the
            documents and the bulk requests, server-side indexing included)
    commit  `writer.commit` (embedded: postings, snapshot, files and fsync; Elasticsearch:
            refresh, count and sample-query checks, alias swap) plus opening the writer
            (Elasticsearch creates the index there)
    other   the rest of the wall time (batching, assembling vectors per product, ...)

Reading, embedding and writing overlap (`indexer.indexer`: a read thread, the embedder, one
write thread), so the stage clocks are busy time per stage and can add up to more than the wall
time; "other" is then 0 and the dominant stage's share is its busy time over the wall time.
``waits`` says which side held the embedder up: ``batches`` (reading was behind) and
``writer`` (writing was behind).

A raw run embeds the same unit texts alone, in the groups the indexer makes (whole batches of
``--batch-size`` products until `EMBED_BATCH` units wait; a text repeated in a group once) and
times only those `embed_documents` calls; ratio = indexing units/s /
raw units/s (1.0: no cost beyond embedding); ``--raw-once`` measures raw at the smallest size
only and takes larger sizes' ratios from it. For Elasticsearch the client's memory is reported;
the server's JVM heap (used before and after, the maximum) and its CPU time and index size are
noted apart, from the nodes and index stats. Indices use an alias ``bench-idx-<pid>-...`` and are
deleted by their exact names after each run.

Budget. The raw speed of ``--embedder`` is measured first, at the smallest size; a size whose
estimated embedding time for one pass (its units / the measured raw units/s) exceeds
``--budget-min`` runs only with ``--fast-embedder`` (hashing-256: no model, so what remains is
store cost), and then the fast embedder runs at every size, for comparison. The output says so.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks import crowdflower_catalog as cf

STAGES = ("read", "units", "lookup", "embed", "write", "commit", "other")
DEFAULT_EMBEDDER = "packaged:all-minilm-l6-v2"
MB = 1024 * 1024


# -- catalogs ------------------------------------------------------------------------------


def _is_crowdflower(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    with path.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader(f), [])
    return "product_title" in header


def base_products(path: Path) -> list[dict[str, Any]]:
    """The base catalog: CrowdFlower's distinct products, or a project catalog's valid rows."""
    if _is_crowdflower(path):
        return cf.load(path).products
    from indexer.reader import Row, read_catalog

    return [
        row.product.model_dump(mode="json", exclude_defaults=True)
        for row in read_catalog(path)
        if isinstance(row, Row)
    ]


# -- the child: one measurement ------------------------------------------------------------


def _proc_status() -> dict[str, float]:
    """VmRSS and VmHWM of this process in MiB."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    return found


class _Progress:
    """A line on stderr every few seconds: products done, rate, time left."""

    def __init__(self, label: str, total: int, every_s: float = 5.0) -> None:
        self.label = label
        self.total = total
        self.every_s = every_s
        self.done = 0
        self.started = time.perf_counter()
        self.shown = self.started

    def add(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self.shown >= self.every_s or self.done >= self.total:
            self.shown = now
            rate = self.done / max(now - self.started, 1e-9)
            left = (self.total - self.done) / rate if rate else float("inf")
            sys.stderr.write(
                f"  [{self.label}] {self.done}/{self.total} products, {rate:.1f}/s, "
                f"~{left:.0f} s left\n"
            )
            sys.stderr.flush()


def _progress_rows(rows: Iterable[Any], progress: _Progress) -> Iterator[Any]:
    """``rows``, counted into ``progress`` as the indexer reads them."""
    for row in rows:
        yield row
        progress.add(1)


def _build_embedder(spec: str, runtime: str | None = None) -> Any:
    """As `app.services.build_embedder` builds it for indexing (hashing without importing the
    app); ``runtime`` as SHOPGUIDE_EMBEDDER_RUNTIME (None: that setting)."""
    if spec.startswith("hashing"):
        from retrieval.embedders.hashing import HashingEmbedder

        _, _, dim = spec.partition("-")
        return HashingEmbedder(int(dim) if dim else 256)
    from app.services import build_embedder, configure_threads
    from app.settings import Settings

    values: dict[str, Any] = {"embedder": spec}
    if runtime:
        values["embedder_runtime"] = runtime
    settings = Settings(**values)
    configure_threads(settings)
    return build_embedder(settings)


def _es_node_stats(es: Any) -> dict[str, float]:
    nodes = es.nodes.stats(metric="jvm,process")["nodes"]
    node = next(iter(nodes.values()))
    gcs = node["jvm"]["gc"]["collectors"]
    return {
        "heap_used_mb": round(node["jvm"]["mem"]["heap_used_in_bytes"] / MB, 1),
        "heap_max_mb": round(node["jvm"]["mem"]["heap_max_in_bytes"] / MB, 1),
        "cpu_s": node["process"]["cpu"]["total_in_millis"] / 1000,
        "gc_s": sum(c["collection_time_in_millis"] for c in gcs.values()) / 1000,
    }


def _es_indices_of(es: Any, alias: str) -> list[str]:
    """Indices behind ``alias`` and any ``{alias}-*`` left by an interrupted run."""
    names: set[str] = set()
    with contextlib.suppress(Exception):
        names.update(es.indices.get_alias(name=alias).body)
    with contextlib.suppress(Exception):
        names.update(row["index"] for row in es.cat.indices(index=f"{alias}-*", format="json"))
    return sorted(n for n in names if n.startswith(alias))


def drop_es_indices(url: str, alias: str) -> list[str]:
    """Delete the indices behind ``alias`` (and ``{alias}-*`` leftovers) by their exact
    names; returns them."""
    from elasticsearch import Elasticsearch

    es = Elasticsearch(url, request_timeout=60)
    try:
        names = _es_indices_of(es, alias)
        for name in names:
            es.indices.delete(index=name, ignore_unavailable=True)
        return names
    finally:
        es.close()


def _run_index_job(job: dict[str, Any]) -> dict[str, Any]:
    from indexer.indexer import index_catalog
    from indexer.reader import read_catalog

    started = time.perf_counter()
    embedder = _build_embedder(job["embedder"], job.get("runtime"))
    embedder.warm_up()
    load_s = time.perf_counter() - started
    es = None
    if job["store"] == "elasticsearch":
        from elasticsearch import Elasticsearch

        from retrieval.stores.elasticsearch import ElasticsearchStore

        es = Elasticsearch(job["es_url"], request_timeout=60)
        store: Any = ElasticsearchStore(job["es_url"], alias=job["alias"])
    else:
        from retrieval.stores.embedded import EmbeddedStore

        store = EmbeddedStore(Path(job["data_dir"]) / "index")
    rss_before = _proc_status().get("VmRSS", 0.0)
    es_before = _es_node_stats(es) if es is not None else None
    progress = _Progress(job["label"], job["size"])
    load = os.getloadavg()
    cpu = os.times()
    start = time.perf_counter()
    report = index_catalog(
        _progress_rows(read_catalog(job["catalog"]), progress),
        store,
        embedder,
        prune=True,
        batch_size=job["batch_size"],
        progress=False,
    )
    seconds = time.perf_counter() - start
    cpu_after = os.times()
    result: dict[str, Any] = {
        "job": "index",
        "label": job["label"],
        "store": job["store"],
        "embedder": job["embedder"],
        "embedder_runtime": job.get("runtime"),
        "size": job["size"],
        "products": report.indexed,
        "skipped": report.skipped,
        "units": report.units,
        "embedded": report.embedded,
        "seconds": round(seconds, 3),
        "products_per_s": round(report.indexed / seconds, 1),
        "units_per_s": round(report.units / seconds, 1),
        "model_load_s": round(load_s, 2),
        "cpu_s": round(cpu_after.user + cpu_after.system - cpu.user - cpu.system, 2),
        "loadavg_1m": [round(load[0], 2), round(os.getloadavg()[0], 2)],
        "rss_before_index_mb": round(rss_before, 1),
        "vm_hwm_mb": round(_proc_status().get("VmHWM", 0.0), 1),
    }
    stages = {name: report.stage_seconds.get(name, 0.0) for name in STAGES if name != "other"}
    stages["other"] = max(seconds - sum(stages.values()), 0.0)
    result["stages_s"] = {name: round(stages[name], 3) for name in STAGES}
    dominant = max(stages, key=lambda name: stages[name])
    result["dominant_stage"] = dominant
    result["dominant_share"] = round(stages[dominant] / seconds, 3) if seconds else 0.0
    result["waits_s"] = {
        "batches": round(report.stage_seconds.get("waiting_for_batches", 0.0), 3),
        "writer": round(report.stage_seconds.get("waiting_for_writer", 0.0), 3),
    }
    if es is not None:
        after = _es_node_stats(es)
        assert es_before is not None
        names = _es_indices_of(es, job["alias"])
        size_mb = 0.0
        with contextlib.suppress(Exception):
            for name in names:
                stats = es.indices.stats(index=name, metric="store")
                size_mb += stats["_all"]["primaries"]["store"]["size_in_bytes"] / MB
        result["elasticsearch_server"] = {
            "heap_used_before_mb": es_before["heap_used_mb"],
            "heap_used_after_mb": after["heap_used_mb"],
            "heap_max_mb": after["heap_max_mb"],
            "server_cpu_s": round(after["cpu_s"] - es_before["cpu_s"], 2),
            "gc_s": round(after["gc_s"] - es_before["gc_s"], 2),
            "index_size_mb": round(size_mb, 1),
            "indices": names,
        }
        es.close()
        store.close()
    return result


def _run_raw_job(job: dict[str, Any]) -> dict[str, Any]:
    from indexer.indexer import EMBED_BATCH
    from indexer.reader import Row, read_catalog
    from indexer.units import product_units

    started = time.perf_counter()
    embedder = _build_embedder(job["embedder"], job.get("runtime"))
    embedder.warm_up()
    load_s = time.perf_counter() - started
    progress = _Progress(job["label"], job["size"])
    seconds = 0.0
    units = calls = 0
    batch: list[str] = []
    count = 0

    def embed(texts: list[str]) -> float:
        start = time.perf_counter()
        embedder.embed_documents(list(dict.fromkeys(texts)))  # a repeated text: once
        return time.perf_counter() - start

    pending = 0
    for row in read_catalog(job["catalog"]):
        if not isinstance(row, Row):
            continue
        batch.extend(unit.text for unit in product_units(row.product))
        count += 1
        pending += 1
        if count % job["batch_size"] == 0 and len(batch) >= EMBED_BATCH:
            seconds += embed(batch)
            units += len(batch)
            calls += 1
            progress.add(pending)
            batch, pending = [], 0
    if batch:
        seconds += embed(batch)
        units += len(batch)
        calls += 1
        progress.add(pending)
    return {
        "job": "raw",
        "label": job["label"],
        "embedder": job["embedder"],
        "embedder_runtime": job.get("runtime"),
        "size": job["size"],
        "products": count,
        "units": units,
        "calls": calls,
        "seconds": round(seconds, 3),
        "units_per_s": round(units / seconds, 1) if seconds else 0.0,
        "model_load_s": round(load_s, 2),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "vm_hwm_mb": round(_proc_status().get("VmHWM", 0.0), 1),
    }


def _child(job_path: Path) -> int:
    from app.logs import configure_logging

    configure_logging("WARNING", json_lines=False)
    job = json.loads(job_path.read_text(encoding="utf-8"))
    try:
        result = _run_raw_job(job) if job["kind"] == "raw" else _run_index_job(job)
    finally:
        if job["kind"] == "index" and job["store"] == "elasticsearch":
            drop_es_indices(job["es_url"], job["alias"])
    Path(job["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


# -- the parent ----------------------------------------------------------------------------


def _spawn(job: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run one job in a fresh interpreter; its result plus the child's ru_maxrss."""
    name = job["label"].replace(" ", "_").replace("/", "_").replace(":", "_")
    job_path = folder / f"{name}.job.json"
    job["result"] = str(folder / f"{name}.result.json")
    job_path.write_text(json.dumps(job), encoding="utf-8")
    sys.stderr.write(f"-> {job['label']}\n")
    sys.stderr.flush()
    wall = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 - our own module, same interpreter
        [sys.executable, "-m", "benchmarks.indexing", "--job", str(job_path)],
        stdin=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - wall
    if proc.returncode != 0 or not Path(job["result"]).is_file():
        msg = f"{job['label']} failed with exit status {proc.returncode}"
        raise RuntimeError(msg)
    result: dict[str, Any] = json.loads(Path(job["result"]).read_text(encoding="utf-8"))
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # KiB on Linux
    result["process_wall_s"] = round(wall, 1)
    sys.stderr.write(f"   done in {wall:.1f} s\n")
    return result


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] <= 0:
        msg = "--sizes needs positive integers"
        raise argparse.ArgumentTypeError(msg)
    return sizes


def _stores(text: str) -> list[str]:
    stores = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(stores) - {"embedded", "elasticsearch"}
    if not stores or unknown:
        msg = f"--stores takes embedded and/or elasticsearch, not {sorted(unknown)}"
        raise argparse.ArgumentTypeError(msg)
    return stores


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements (or, with ``--job``, one of them)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=cf.DEFAULT_TRAIN_CSV)
    parser.add_argument("--sizes", type=_sizes, default=[1_000, 10_000, 100_000])
    parser.add_argument("--stores", type=_stores, default=["embedded", "elasticsearch"])
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument(
        "--embedder-runtime",
        choices=("torch", "onnx", "onnx-int8"),
        default=None,
        help="as SHOPGUIDE_EMBEDDER_RUNTIME for --embedder (default: that setting)",
    )
    parser.add_argument("--fast-embedder", default="hashing-256")
    parser.add_argument(
        "--budget-min",
        type=float,
        default=20.0,
        help="largest estimated embedding time of one pass for --embedder, in minutes",
    )
    parser.add_argument(
        "--raw-once",
        action="store_true",
        help="measure the raw embedder at the smallest size only; larger sizes take their "
        "ratio from it (halves a 100k run's time)",
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--es-url", default=None, help="default: SHOPGUIDE_ELASTICSEARCH_URL")
    parser.add_argument("--out", type=Path, default=Path("bench-results/indexing.json"))
    parser.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job is not None:
        return _child(args.job)

    from app.settings import Settings

    es_url = args.es_url or Settings().elasticsearch_url
    started = time.perf_counter()
    base = base_products(args.catalog)
    if not base:
        sys.stderr.write(f"no products in {args.catalog}\n")
        return 2
    result: dict[str, Any] = {
        "benchmark": "indexing",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "catalog": {
            "source": str(args.catalog),
            "base_products": len(base),
            "expansion": (
                "first N products of copies 0, 1, 2, ... of the base catalog; copy 0 as it "
                "is; copy k >= 1: id '{id}-v{k}', title + variant(k): ' - <colour>' for "
                f"k = 1..{len(cf.COLOURS)} (colours {', '.join(cf.COLOURS)}), then "
                "' - <colour>, <size>' (sizes " + ", ".join(cf.SIZES) + "); descriptions "
                "unchanged"
            ),
        },
        "settings": {
            "sizes": args.sizes,
            "stores": args.stores,
            "embedder": args.embedder,
            "embedder_runtime": args.embedder_runtime,
            "fast_embedder": args.fast_embedder,
            "budget_min": args.budget_min,
            "batch_size": args.batch_size,
            "elasticsearch_url": es_url if "elasticsearch" in args.stores else None,
        },
        "notes": [],
        "raw": [],
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-indexing-") as tmp:
        folder = Path(tmp)
        catalogs: dict[int, Path] = {}
        for size in args.sizes:
            catalogs[size] = folder / f"catalog-{size}.jsonl"
            cf.write_jsonl(cf.expanded(base, size), catalogs[size])

        from app.settings import Settings

        default_runtime = Settings().embedder_runtime

        def job(kind: str, embedder: str, size: int, store: str = "") -> dict[str, Any]:
            runtime = None
            if embedder == args.embedder and not embedder.startswith("hashing"):
                runtime = args.embedder_runtime or default_runtime  # named in every table
            short = embedder.rsplit(":", 1)[-1] + (f"@{runtime}" if runtime else "")
            label = f"{kind} {short} {size}" + (f" {store}" if store else "")
            return {
                "kind": kind,
                "label": label,
                "embedder": embedder,
                "runtime": runtime,
                "size": size,
                "store": store,
                "catalog": str(catalogs[size]),
                "batch_size": args.batch_size,
                "es_url": es_url,
                "alias": f"bench-idx-{os.getpid()}-{size}-{re.sub('[_@]', '-', short)}".lower(),
                "data_dir": str(folder / f"data-{short}-{size}-{store}"),
            }

        def measure(embedder: str, size: int) -> dict[str, Any]:
            earlier = [r for r in result["raw"] if r["embedder"] == embedder]
            if args.raw_once and earlier:
                raw = earlier[0]
            else:
                raw = _spawn(job("raw", embedder, size), folder)
                result["raw"].append(raw)
            for store in args.stores:
                run = _spawn(job("index", embedder, size, store), folder)
                run["raw_units_per_s"] = raw["units_per_s"]
                run["raw_size"] = raw["size"]
                run["ratio_to_raw"] = (
                    round(run["units_per_s"] / raw["units_per_s"], 3)
                    if raw["units_per_s"]
                    else None
                )
                result["runs"].append(run)
            return raw

        skipped: list[int] = []
        rate: float | None = None
        units_per_product: float | None = None
        for size in args.sizes:
            if rate is not None and units_per_product is not None:
                estimate = size * units_per_product / rate
                if estimate > args.budget_min * 60:
                    skipped.append(size)
                    result["notes"].append(
                        f"{args.embedder} at {size} products skipped: one embedding pass "
                        f"estimated at {estimate / 60:.0f} min (raw {rate:.1f} units/s, "
                        f"{units_per_product:.2f} units/product) > {args.budget_min:g} min"
                    )
                    sys.stderr.write(result["notes"][-1] + "\n")
                    continue
            raw = measure(args.embedder, size)
            if raw["units_per_s"] and raw["products"]:
                rate = raw["units_per_s"]
                units_per_product = raw["units"] / raw["products"]
        if skipped and args.fast_embedder != args.embedder:
            result["notes"].append(
                f"{args.fast_embedder} (no model: the cost left is reading, units and the "
                f"store) runs at every size, as {args.embedder} could not run at "
                f"{', '.join(map(str, skipped))} products"
            )
            sys.stderr.write(result["notes"][-1] + "\n")
            for size in args.sizes:
                measure(args.fast_embedder, size)
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    _print(result)
    sys.stdout.write(f"\nwritten to {args.out}\n")
    return 0


def _short(run: dict[str, Any]) -> str:
    """The embedder's name without a ``packaged:`` prefix, with its runtime if set."""
    runtime = run.get("embedder_runtime")
    return run["embedder"].rsplit(":", 1)[-1] + (f"@{runtime}" if runtime else "")


def _print(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    catalog = result["catalog"]
    out(f"base catalog {catalog['source']}: {catalog['base_products']} products\n\n")
    out(
        f"{'embedder':<26} {'store':<13} {'products':>8} {'units':>7} {'wall s':>8} "
        f"{'prod/s':>8} {'units/s':>8} {'raw u/s':>8} {'ratio':>6} {'RSS MB':>7} "
        f"{'(before)':>8}  dominant stage\n"
    )
    for run in result["runs"]:
        name = _short(run)[:26]
        out(
            f"{name:<26} {run['store']:<13} {run['products']:>8} {run['units']:>7} "
            f"{run['seconds']:>8.2f} {run['products_per_s']:>8.1f} {run['units_per_s']:>8.1f} "
            f"{run['raw_units_per_s']:>8.1f} {run['ratio_to_raw'] or 0:>6.2f} "
            f"{run['peak_rss_mb']:>7.0f} {run['rss_before_index_mb']:>8.0f}  "
            f"{run['dominant_stage']} ({run['dominant_share']:.0%})\n"
        )
    out(
        f"\n{'seconds per stage (busy; stages overlap)':<44}"
        + "".join(f"{s:>9}" for s in STAGES)
        + f"{'wait:rows':>10}{'wait:write':>11}\n"
    )
    for run in result["runs"]:
        name = f"{_short(run)[:26]} {run['store'][:8]} {run['size']}"
        waits = run.get("waits_s", {})
        out(
            f"{name:<44}"
            + "".join(f"{run['stages_s'][s]:>9.2f}" for s in STAGES)
            + f"{waits.get('batches', 0.0):>10.2f}{waits.get('writer', 0.0):>11.2f}\n"
        )
    es_runs = [r for r in result["runs"] if "elasticsearch_server" in r]
    if es_runs:
        out(
            f"\n{'Elasticsearch server':<32} {'heap before':>11} {'heap after':>10} "
            f"{'heap max':>8} {'CPU s':>7} {'GC s':>6} {'index MB':>9}\n"
        )
        for run in es_runs:
            server = run["elasticsearch_server"]
            name = f"{run['embedder'].rsplit(':', 1)[-1][:20]} {run['size']}"
            out(
                f"{name:<32} {server['heap_used_before_mb']:>11.0f} "
                f"{server['heap_used_after_mb']:>10.0f} {server['heap_max_mb']:>8.0f} "
                f"{server['server_cpu_s']:>7.1f} {server['gc_s']:>6.1f} "
                f"{server['index_size_mb']:>9.1f}\n"
            )
    for note in result["notes"]:
        out(f"\nnote: {note}")
    out(
        f"\n\nwall time {result['wall_s']} s; load average at start/end "
        f"{result['machine']['loadavg_at_start'][0]}/{result['machine']['loadavg_at_end'][0]}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
