"""A real uvicorn server, as `shopguide serve` runs it, answers a 100 KB URL as JSON."""

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import uvicorn

from app.api.middleware import STRICT_CSP
from app.api.server import MAX_URL_BYTES, server_config
from app.main import create_app
from app.services import build_services
from app.settings import Settings
from benchmarks.servers import free_port
from generation.llm.fake import RecordingLLM
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH


@pytest.fixture
def base_url(tmp_path: Path, store: EmbeddedStore) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path, embedder="hashing-256", _env_file=None)
    app = create_app(services=build_services(settings, llm=RecordingLLM(default="ok")))
    port = free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def _request(base_url: str, target: str) -> tuple[int, dict[str, str], dict]:
    """GET over a plain connection (httpx refuses URLs over 64 KB before sending them)."""
    connection = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=30)
    try:
        connection.request("GET", target, headers=AUTH)
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, json.loads(response.read())
    finally:
        connection.close()


def _get(base_url: str, target: str) -> tuple[int, str, dict]:
    status, headers, body = _request(base_url, target)
    return status, headers.get("content-type", ""), body


def test_a_100_kb_query_is_a_json_414(base_url: str) -> None:
    status, content_type, body = _get(base_url, "/search?" + urlencode({"q": "x" * 100_000}))
    assert (status, content_type) == (414, "application/json")
    assert body["error"]["code"] == "uri_too_long"
    assert str(MAX_URL_BYTES) in body["error"]["message"]


def test_the_414_carries_the_security_headers(base_url: str) -> None:
    """Answered before the app's own middleware, it still tells a browser not to sniff it."""
    _, headers, _ = _request(base_url, "/search?" + urlencode({"q": "x" * 100_000}))
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"] == STRICT_CSP


def test_a_url_under_the_limit_is_served(base_url: str) -> None:
    q = "headphones " + "x" * (MAX_URL_BYTES - 100)
    status, _, body = _get(base_url, "/search?" + urlencode({"q": q}))
    assert status == 422  # it reached the API: q is over 500 characters
    assert body["error"]["fields"][0]["field"] == "query.q"
    status, _, body = _get(base_url, "/search?q=headphones")
    assert status == 200 and body["results"]
