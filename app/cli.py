"""The ``shopguide`` command: index a catalog, serve the API, try a search or a question.

shopguide index CATALOG [--prune]     read, validate, embed and write a catalog
shopguide serve                       start the API
shopguide start CATALOG               index when the index is empty or older, then serve
shopguide models                      assemble and verify the offline generator model
shopguide search QUERY                print the results of a search
shopguide ask PRODUCT_ID QUESTION     answer a question about a product
shopguide advise QUESTION             shopping advice
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from app.logs import configure_logging
from app.settings import Settings
from generation.llm.base import GenerationError
from retrieval.stores.base import StoreError

logger = logging.getLogger("app.cli")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _index(settings: Settings, catalog: Path, *, prune: bool, batch_size: int) -> int:
    from app.services import build_embedder, build_store, configure_threads
    from indexer.indexer import index_catalog
    from indexer.reader import read_catalog

    configure_threads(settings)
    store = build_store(settings)
    report = index_catalog(
        read_catalog(catalog),
        store,
        build_embedder(settings),
        prune=prune,
        batch_size=batch_size,
        progress=sys.stderr.isatty(),
    )
    for error in report.errors[:20]:
        _out(f"  skipped {error}")
    if len(report.errors) > 20:
        _out(f"  … and {report.skipped - 20} more skipped rows (see the log)")
    _out(
        f"read {report.read}, indexed {report.indexed}, skipped {report.skipped}, "
        f"removed {report.removed}; {report.units} units, {report.embedded} embedded, "
        f"{report.reused_embeddings} reused; {report.seconds:.1f} s; index {report.version}"
    )
    return 0 if report.ok else 1


def _serve(settings: Settings) -> int:
    import uvicorn

    from app.main import create_app

    app = create_app(settings)
    url = f"http://{settings.host}:{settings.port}"
    _out(f"Shopping guide API on {url}  (docs: {url}/docs)")
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    return 0


def _models(settings: Settings) -> int:
    from generation.llm.gguf import resolve_model_path

    if settings.llm_backend != "llama-cpp":
        _out(f"the generator is served by {settings.llm_base_url}: nothing to assemble")
        return 0
    path = resolve_model_path(settings.llm_model, settings.models_dir)
    _out(f"generator model ready: {path}")
    return 0


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
    commands.add_parser("serve", help="start the API")
    start = commands.add_parser("start", help="index the catalog if needed, then serve")
    start.add_argument("catalog", type=Path)
    commands.add_parser("models", help="assemble and verify the generator model")
    search = commands.add_parser("search", help="search products")
    search.add_argument("query")
    search.add_argument("--size", type=int, default=5)
    ask = commands.add_parser("ask", help="ask about a product")
    ask.add_argument("product_id")
    ask.add_argument("question")
    advise = commands.add_parser("advise", help="shopping advice")
    advise.add_argument("question")
    args = parser.parse_args(argv)

    try:
        settings = Settings()
    except ValueError as exc:
        _out(f"configuration error: {exc}")
        return 2
    configure_logging(settings.log_level, json_lines=settings.log_json)
    try:
        return _run(args, settings)
    except (FileNotFoundError, ValueError, GenerationError, StoreError) as exc:
        _out(f"error: {exc}")
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "index":
        return _index(settings, args.catalog, prune=args.prune, batch_size=args.batch_size)
    if args.command == "serve":
        return _serve(settings)
    if args.command == "start":
        from app.services import build_store

        stats = build_store(settings).stats()
        if stats.products == 0:
            code = _index(settings, args.catalog, prune=True, batch_size=256)
            if code:
                return code
        else:
            _out(f"index {stats.version}: {stats.products} products (re-index with 'index')")
        _models(settings)
        return _serve(settings)
    if args.command == "models":
        return _models(settings)
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
