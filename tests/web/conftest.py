"""A real API server (embedded store, the test catalog, a scripted generator) on a free port,
and Debian's headless chromium driven by Playwright; each test's last screen is saved under
``test-artifacts/browser/``."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.main import create_app
from app.services import Services, build_services
from app.settings import Settings
from benchmarks.servers import free_port
from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import PRODUCTS, write_jsonl
from tests.quoting import QuotingLLM

playwright_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
]

# The scripted generator's answer unless a test queues another: a quote of the cited source
# (every headphone's attributes hold it), then the claim.
ANSWER = '[?] "noise cancelling: True" It has noise cancelling.'


@dataclass
class Served:
    """The running API."""

    url: str
    services: Services
    llm: QuotingLLM


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("web")
    settings = Settings(
        data_dir=folder,
        embedder="hashing-256",
        semantic_min_similarity=0.2,
        _env_file=None,  # type: ignore[call-arg]
    )
    store = EmbeddedStore(settings.data_dir / "index")
    catalog = write_jsonl(folder / "catalog.jsonl", PRODUCTS)
    index_catalog(read_catalog(catalog), store, HashingEmbedder(256), progress=False)
    store.close()
    llm = QuotingLLM(default=ANSWER)
    services = build_services(settings, llm=llm)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(services=services), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield Served(url, services, llm)
    server.should_exit = True
    thread.join(timeout=10)
    services.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(
    browser: playwright_api.Browser, served: Served, request: pytest.FixtureRequest
) -> Iterator[playwright_api.Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    page.set_default_timeout(15_000)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert errors == [], f"the page logged errors: {errors}"
