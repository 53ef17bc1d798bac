"""The ``shopguide`` command: index a catalog, serve the API, try a search or a question.

shopguide index CATALOG [--prune]     read, validate, embed and write a catalog
shopguide serve                       start the API
shopguide start CATALOG               index when the index is empty or older, then serve
shopguide models                      assemble and verify the offline generator model
shopguide search QUERY                print the results of a search
shopguide ask PRODUCT_ID QUESTION     answer a question about a product
shopguide advise QUESTION             shopping advice
shopguide adapt-reranker CATALOG --out DIR [--onnx]
                                      fine-tune a cross-encoder re-ranker on the catalog's own
                                      synthetic queries (no labels); SHOPGUIDE_RERANKER=DIR uses it
shopguide export-reranker DIR         export a cross-encoder folder to ONNX (fp32 and int8) and
                                      check it against torch; SHOPGUIDE_RERANKER_RUNTIME=onnx-int8
shopguide export-embedder [--int8]    export the embedder to ONNX into MODEL_DIR/embedders and
                                      check it against torch (SHOPGUIDE_EMBEDDER_RUNTIME=onnx
                                      exports on first use too)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.logs import configure_logging
from app.settings import Settings
from generation.llm.base import GenerationError
from retrieval.stores.base import StoreError
from training.errors import TrainingError

if TYPE_CHECKING:
    from training.onnx_export import OnnxExport

logger = logging.getLogger("app.cli")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _skipped(errors: Sequence[object], skipped: int) -> None:
    """The first 20 skipped catalog rows, and how many more the log holds."""
    for error in errors[:20]:
        _out(f"  skipped {error}")
    if len(errors) > 20:
        _out(f"  … and {skipped - 20} more skipped rows (see the log)")


def _index(settings: Settings, catalog: Path, *, prune: bool, batch_size: int) -> int:
    from app.services import build_cross_embedder, build_embedder, build_store, configure_threads
    from indexer.indexer import index_catalog
    from indexer.reader import read_catalog

    configure_threads(settings)
    store = build_store(settings)
    report = index_catalog(
        read_catalog(catalog),
        store,
        build_embedder(settings),
        cross_embedder=build_cross_embedder(settings),
        prune=prune,
        batch_size=batch_size,
        progress=sys.stderr.isatty(),
    )
    _skipped(report.errors, report.skipped)
    cross = (
        f" (cross-lingual: {report.cross_embedded} embedded, "
        f"{report.reused_cross_embeddings} reused)"
        if report.cross_embedded or report.reused_cross_embeddings
        else ""
    )
    _out(
        f"read {report.read}, indexed {report.indexed}, skipped {report.skipped}, "
        f"removed {report.removed}; {report.units} units, {report.embedded} embedded, "
        f"{report.reused_embeddings} reused{cross}; {report.seconds:.1f} s; "
        f"index {report.version}"
    )
    return 0 if report.ok else 1


LOCAL_KEY_ID = "local"


def _local_key(settings: Settings) -> None:
    """With no key and no shopper tokens configured, make an admin key for this machine:
    its digest goes to the key file, the key itself to DATA_DIR/local-api-key (owner only).
    Where keys are required (``local_key`` off), say how to add one instead."""
    from app.auth.access import build_access
    from app.auth.keys import add_key

    if settings.insecure_local:
        return
    access = build_access(settings)
    saved = settings.data_dir / "local-api-key"
    if len(access.keys) or settings.shopper_tokens_configured:  # demo sessions do not count
        if saved.exists():
            _out(f"API key: in {saved}")
        return
    if not settings.local_key:
        logger.warning(
            "no API key or shopper-token key is configured: every request but /health and the "
            "docs is refused (401) until one is added to %s, which is re-read while serving: "
            "shopguide keys new NAME --scopes search,events (in the compose stack: docker "
            "compose run --rm api shopguide keys new NAME --scopes ...)",
            settings.keys_file,
        )
        return
    key = add_key(settings.keys_file, LOCAL_KEY_ID, ["admin"])
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.touch(mode=0o600)
    saved.write_text(key + "\n", encoding="utf-8")
    if sys.stdout.isatty():  # shown on a terminal; never into a log collector's stream
        _out(f"API key made for this machine (admin; also in {saved}): {key}")
    else:
        _out(f"API key made for this machine (admin): in {saved}")
    _out(
        "  send it as 'Authorization: Bearer <key>'; revoke it with "
        f"'shopguide keys revoke {LOCAL_KEY_ID}'"
    )


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from app.auth.keys import add_key, list_keys, revoke_key

    path = settings.keys_file
    if args.keys_command == "new":
        key = add_key(path, args.id, [s.strip() for s in args.scopes.split(",") if s.strip()])
        _out(key)
        logger.info("API key %s added to %s", args.id, path)
    elif args.keys_command == "revoke":
        if not revoke_key(path, args.id):
            _out(f"no key named {args.id!r} in {path}")
            return 1
        _out(f"revoked {args.id} (a running server stops accepting it within a second)")
    else:
        for known in list_keys(path):
            _out(f"{known.id}\t{','.join(sorted(known.scopes))}")
    return 0


def _serve(settings: Settings) -> int:
    from app.api.server import serve
    from app.main import create_app

    _local_key(settings)
    # With several workers each process builds its own app (app.api.server.worker_app).
    app = create_app(settings) if settings.workers == 1 else None
    url = f"http://{settings.host}:{settings.port}"
    workers = f", {settings.workers} workers" if settings.workers > 1 else ""
    _out(f"Shopping guide API on {url}  (docs: {url}/docs{workers})")
    if settings.web_demo_sessions:
        _out(f"The shopper's web page: {url}/  (a demo session starts in the browser)")
    return serve(app, settings)


def _models(settings: Settings) -> int:
    from generation.llm.gguf import resolve_model_path

    if settings.llm_backend != "llama-cpp":
        _out(f"the generator is served by {settings.llm_base_url}: nothing to assemble")
        return 0
    path = resolve_model_path(settings.llm_model, settings.models_dir)
    _out(f"generator model ready: {path}")
    return 0


def _adapt(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import (
        build_embedder,
        build_llm,
        build_store,
        configure_threads,
        search_config,
    )
    from retrieval.search import HybridSearch
    from training.adapt import AdaptOptions, adapt_reranker
    from training.cross_encoder import TrainingOptions

    options = AdaptOptions(
        queries_per_product=args.queries_per_product,
        max_queries=args.max_queries,
        llm_queries=args.llm_queries,
        training=TrainingOptions(
            base_model=args.base_model,
            max_length=args.max_length,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            head_learning_rate=args.head_learning_rate,
            warmup_ratio=args.warmup_ratio,
            epochs=args.epochs,
            max_steps=args.max_steps,
            time_budget_s=args.time_budget_min * 60 if args.time_budget_min else None,
            save_steps=args.save_steps,
            seed=args.seed,
            device=settings.device,
        ),
    )
    configure_threads(settings)  # every core for training unless SHOPGUIDE_TORCH_THREADS
    store = build_store(settings)
    embedder = build_embedder(settings)
    search = HybridSearch(store, embedder, None, search_config(settings))
    llm = build_llm(settings) if args.llm_queries else None
    try:
        report = adapt_reranker(
            args.catalog,
            args.out,
            store=store,
            embedder=embedder,
            search=search,
            options=options,
            llm=llm,
            resume=args.resume,
            progress=sys.stderr.isatty(),
        )
    finally:
        if llm is not None:
            llm.close()
        store.close()
    _skipped(report.errors, report.skipped)
    index = (
        "pairs of the earlier run reused"
        if report.reused_pairs
        else "already indexed"
        if report.indexed is None
        else f"indexed {report.indexed} products first"
    )
    templates = ", ".join(f"{name} {count}" for name, count in report.queries.items())
    pairs = report.pairs
    result = report.training
    stopped = "complete" if result.complete else "stopped by the time budget (--resume goes on)"
    resumed = f", resumed at step {result.resumed_from}" if result.resumed_from else ""
    loss = f", last loss {result.loss:.4f}" if result.loss is not None else ""
    _out(f"catalog: {report.products} products, {report.skipped} skipped; {index}")
    _out(f"queries: {sum(report.queries.values())} ({templates})")
    _out(
        f"pairs: {pairs['total']} ({pairs['positive']} positive, {pairs['hard']} hard and "
        f"{pairs['random']} random negatives)"
    )
    _out(
        f"training: step {result.steps} of {result.max_steps}{resumed}, {result.seconds:.0f} s, "
        f"{result.pairs_per_second:.1f} pairs/s{loss}; {stopped}"
    )
    _out(f"model: {report.out_dir}  ({report.wall_s:.0f} s in all)")
    _out(f"use it: SHOPGUIDE_RERANKER={report.out_dir.resolve()}")
    if args.onnx:
        from training.onnx_export import export_onnx

        _print_export(export_onnx(report.out_dir))
    return 0


def _print_export(report: OnnxExport) -> None:
    _out(
        f"onnx: {report.out_dir}, checked against torch on {report.pairs} pairs "
        f"({report.max_length} tokens), {report.seconds:.0f} s"
    )
    for check in report.checks:
        _out(
            f"  {check.file}: {check.megabytes:.1f} MB, max |logit difference| "
            f"{check.max_abs_logit_diff:.2g} (score {check.max_abs_score_diff:.2g}), "
            f"Spearman {check.spearman:.3f}, Kendall {check.kendall:.3f}"
        )
    _out(
        f"use it: SHOPGUIDE_RERANKER={report.out_dir.resolve()} SHOPGUIDE_RERANKER_RUNTIME=onnx "
        "(torch's scores), or =onnx-int8 (faster; it ranks differently: measure relevance first)"
    )


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import configure_threads
    from training.onnx_export import export_onnx

    configure_threads(settings)
    _print_export(
        export_onnx(args.model, args.out, int8=not args.no_int8, max_length=args.max_length)
    )
    return 0


def _export_embedder(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import configure_threads, embedder_exports
    from retrieval.embedders.onnx_export import ensure_export
    from retrieval.embedders.onnx_sentence import read_config

    if settings.embedder.startswith("hashing") or settings.embedder.endswith(".onnx"):
        _out(f"the embedder {settings.embedder} has no torch model to export")
        return 2
    configure_threads(settings)
    int8 = args.int8 or settings.embedder_runtime == "onnx-int8"
    folder = ensure_export(settings.embedder, embedder_exports(settings), int8=int8)
    config = read_config(folder)
    _out(
        f"onnx: {folder} ({config['dim']}-d, {config['pooling']} pooling, "
        f"{config['max_seq_length']} tokens), checked against torch on its check texts"
    )
    for name, check in config.get("checks", {}).items():
        _out(
            f"  {name}: {check['megabytes']:.1f} MB, cosine to torch min "
            f"{check['min_cosine']:.6f} (one text a run {check['single_min_cosine']:.6f}), "
            f"mean {check['mean_cosine']:.6f}"
        )
    _out(
        f"use it: SHOPGUIDE_EMBEDDER={settings.embedder} SHOPGUIDE_EMBEDDER_RUNTIME=onnx "
        "(torch's vectors: the index stays valid), or =onnx-int8 (other vectors: re-index)"
    )
    return 0


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        msg = f"must be at least 1, got {number}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _add_adapt_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    adapt = commands.add_parser(
        "adapt-reranker",
        help="fine-tune a cross-encoder re-ranker on synthetic queries from the catalog",
        description="Builds shopper queries from each product (title, brand, category, "
        "attributes, reviews, Q&A), mines hard negatives with the configured search (indexing "
        "the catalog first if the store does not hold it), and fine-tunes a cross-encoder. "
        "No labels needed.",
    )
    adapt.add_argument("catalog", type=Path)
    adapt.add_argument("--out", type=Path, required=True, help="folder for the model")
    adapt.add_argument("--queries-per-product", type=_positive_int, default=4)
    adapt.add_argument(
        "--max-queries",
        type=_positive_int,
        default=5000,
        help="keep at most this many template queries, drawn at random (default 5000)",
    )
    adapt.add_argument(
        "--llm-queries",
        type=int,
        default=0,
        help="also ask the generator for queries about this many products (slow locally)",
    )
    adapt.add_argument("--time-budget-min", type=float, default=None)
    adapt.add_argument("--max-steps", type=_positive_int, default=None)
    adapt.add_argument(
        "--epochs",
        type=float,
        default=None,
        help="passes over the pairs (default: enough for 200 steps, 1 to 4)",
    )
    adapt.add_argument("--batch-size", type=_positive_int, default=16)
    adapt.add_argument(
        "--max-length",
        type=_positive_int,
        default=256,
        help="tokens per pair, in training and then at search time (default 256)",
    )
    adapt.add_argument("--learning-rate", type=float, default=1e-4)
    adapt.add_argument(
        "--head-learning-rate",
        type=float,
        default=1e-3,
        help="for the untrained classification head and pooler (default 1e-3)",
    )
    adapt.add_argument("--warmup-ratio", type=float, default=0.1)
    adapt.add_argument("--save-steps", type=_positive_int, default=100)
    adapt.add_argument("--seed", type=int, default=42)
    adapt.add_argument(
        "--base-model",
        default="packaged:all-minilm-l6-v2",
        help="model to start from: packaged:<name>, a folder, or a hub name",
    )
    adapt.add_argument(
        "--resume", action="store_true", help="go on with the interrupted run in --out"
    )
    adapt.add_argument(
        "--onnx",
        action="store_true",
        help="then export the model to ONNX, fp32 and int8 (as export-reranker does)",
    )


def _add_export_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export-reranker",
        help="export a cross-encoder folder to ONNX (fp32 and int8) and check it against torch",
        description="Writes model.onnx and model.int8.onnx (dynamic int8) into the folder, or "
        "into --out with the tokenizer, and prints how far their scores are from torch's on "
        "pairs of the folder's pairs.jsonl (or built-in ones). SHOPGUIDE_RERANKER_RUNTIME=onnx "
        "or onnx-int8 then serves them.",
    )
    export.add_argument("model", type=Path, help="a CrossEncoder folder (adapt-reranker's --out)")
    export.add_argument("--out", type=Path, default=None, help="folder for the ONNX files")
    export.add_argument("--no-int8", action="store_true", help="skip the int8 file")
    export.add_argument(
        "--max-length",
        type=_positive_int,
        default=256,
        help="tokens per checked pair, capped by the model's own (default 256, as served)",
    )


def _add_export_embedder_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    export = commands.add_parser(
        "export-embedder",
        help="export the configured embedder to ONNX and check it against torch",
        description="Exports SHOPGUIDE_EMBEDDER (a sentence-transformers model) to ONNX in "
        "MODEL_DIR/embedders, in a folder named after the model's checksum, and prints how "
        "close its vectors are to torch's. SHOPGUIDE_EMBEDDER_RUNTIME=onnx or onnx-int8 then "
        "uses it (and would export on first use otherwise).",
    )
    export.add_argument(
        "--int8",
        action="store_true",
        help="also write the int8 graph (needs the onnx package; implied by "
        "SHOPGUIDE_EMBEDDER_RUNTIME=onnx-int8)",
    )


def _services(settings: Settings):  # type: ignore[no-untyped-def]
    from app.services import build_services

    return build_services(settings)


def _dump(data: object) -> None:
    _out(json.dumps(data, ensure_ascii=False, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line."""
    parser = argparse.ArgumentParser(prog="shopguide", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    index = commands.add_parser("index", help="index a JSONL or CSV catalog")
    index.add_argument("catalog", type=Path)
    index.add_argument("--prune", action="store_true", help="remove products not in the file")
    index.add_argument("--batch-size", type=int, default=256)
    serve = commands.add_parser("serve", help="start the API")
    start = commands.add_parser("start", help="index the catalog if needed, then serve")
    start.add_argument("catalog", type=Path)
    for parser_ in (serve, start):
        parser_.add_argument(
            "--insecure-local",
            action="store_true",
            help="let every request in without credentials (a laptop demo only)",
        )
        parser_.add_argument(
            "--workers",
            type=int,
            help="API worker processes (default: SHOPGUIDE_WORKERS, else 1); more than 1 "
            "needs SHOPGUIDE_CACHE=redis (see README.md, Several API workers)",
        )
    keys = commands.add_parser("keys", help="API keys of the shop's services")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_commands.add_parser("new", help="make a key; prints it once")
    new.add_argument("id", help="its name: 1-32 lowercase letters, digits and '-'")
    new.add_argument(
        "--scopes", required=True, help="comma-separated: search,events,profiles,admin"
    )
    revoke = keys_commands.add_parser("revoke", help="remove a key")
    revoke.add_argument("id")
    keys_commands.add_parser("list", help="the keys' names and scopes")
    commands.add_parser("models", help="assemble and verify the generator model")
    search = commands.add_parser("search", help="search products")
    search.add_argument("query")
    search.add_argument("--size", type=int, default=5)
    ask = commands.add_parser("ask", help="ask about a product")
    ask.add_argument("product_id")
    ask.add_argument("question")
    advise = commands.add_parser("advise", help="shopping advice")
    advise.add_argument("question")
    _add_adapt_parser(commands)
    _add_export_parser(commands)
    _add_export_embedder_parser(commands)
    args = parser.parse_args(argv)

    try:
        overrides: dict[str, Any] = {}
        if getattr(args, "insecure_local", False):
            overrides["insecure_local"] = True
        if getattr(args, "workers", None) is not None:
            overrides["workers"] = args.workers  # validated with the rest (shared state)
        settings = Settings(**overrides)
    except ValueError as exc:
        _out(f"configuration error: {exc}")
        return 2
    configure_logging(settings.log_level, json_lines=settings.log_json)
    try:
        return _run(args, settings)
    except (FileNotFoundError, ValueError, GenerationError, StoreError, TrainingError) as exc:
        _out(f"error: {exc}")
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "index":
        return _index(settings, args.catalog, prune=args.prune, batch_size=args.batch_size)
    if args.command == "serve":
        return _serve(settings)
    if args.command == "start":
        from app.services import build_cross_embedder, build_embedder, build_store

        stats = build_store(settings).stats()
        embedder = build_embedder(settings).name  # its name: nothing loads
        cross = build_cross_embedder(settings)
        cross_name = cross.name if cross is not None else None
        stale = stats.embedding_model not in (None, embedder)
        if stats.products and stale:
            # An upgrade or a new SHOPGUIDE_EMBEDDER(_RUNTIME): the stored vectors are not the
            # embedder's, so the whole catalog is embedded again (the old index serves until
            # the new one is committed).
            _out(
                f"index {stats.version} holds vectors of '{stats.embedding_model}', the "
                f"embedder is '{embedder}': re-indexing {args.catalog}"
            )
        elif stats.products and stats.cross_embedding_model != cross_name:
            stale = True
            held = stats.cross_embedding_model
            holds = f"cross-lingual vectors of '{held}'" if held else "no cross-lingual vectors"
            _out(
                f"index {stats.version} holds {holds}, the cross-lingual embedder is "
                f"'{cross_name or 'none'}': re-indexing {args.catalog}"
            )
        if stats.products == 0 or stale:
            code = _index(settings, args.catalog, prune=True, batch_size=256)
            if code:
                return code
        else:
            _out(f"index {stats.version}: {stats.products} products (re-index with 'index')")
        # The generator is assembled and loaded in the background: search is served meanwhile.
        return _serve(settings)
    if args.command == "models":
        return _models(settings)
    if args.command == "keys":
        return _keys(settings, args)
    if args.command == "adapt-reranker":
        return _adapt(settings, args)
    if args.command == "export-reranker":
        return _export(settings, args)
    if args.command == "export-embedder":
        return _export_embedder(settings, args)
    if args.command == "search":
        from app.api.routes.search import run_search
        from app.api.schemas import SearchRequest

        services = _services(settings)
        response = run_search(services, SearchRequest(query=args.query, size=args.size))
        _dump(response.model_dump(mode="json"))
        return 0
    from app.api.schemas import AnswerResponse

    services = _services(settings)
    if args.command == "ask":
        answer = services.answers.ask(args.product_id, args.question)
    else:
        answer = services.answers.advise(args.question)
    _dump(AnswerResponse.of(answer).model_dump(mode="json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
