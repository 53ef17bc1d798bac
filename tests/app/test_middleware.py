"""Request hardening (`app.api.middleware`): a body over MAX_BODY_BYTES is a JSON 413, whether
it declares its length or streams in chunks; CORS only for configured origins; security headers
on JSON, on the docs pages (whose inline scripts are allowed by hash) and on a live stream."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.api.middleware import STRICT_CSP
from app.api.server import server_config
from app.main import create_app
from app.services import Services, build_services
from app.settings import Settings
from benchmarks.servers import free_port
from generation.answers import TokenEvent
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH
from tests.quoting import QuotingLLM
from tests.sse import parse_sse

LIMIT = 4096
SHOP, ADMIN, OTHER = "https://shop.example", "https://admin.example", "https://evil.example"
SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
JSON = {"content-type": "application/json"}


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        embedder="hashing-256",
        semantic_min_similarity=0.2,
        _env_file=None,
        **values,
    )


def _services(tmp_path: Path, **values: Any) -> Services:
    reply = '[?] "The noise cancelling is superb on flights." Its noise cancelling is superb.'
    llm = QuotingLLM(default=reply)
    return build_services(_settings(tmp_path, **values), llm=llm)


@pytest.fixture
def services(tmp_path: Path, store: EmbeddedStore) -> Services:
    return _services(tmp_path, max_body_bytes=LIMIT)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), headers=AUTH) as client:
        yield client


def _search_body(size: int) -> bytes:
    """A valid search body of exactly ``size`` bytes (padded with JSON whitespace)."""
    body = json.dumps({"query": "headphones"}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def _chunks(total: int, size: int = 1000) -> Iterator[bytes]:
    body = _search_body(total)
    for start in range(0, total, size):
        yield body[start : start + size]


def _assert_413(response: Any, size: str) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    message = f"the request body is {size}, over the limit of {LIMIT} bytes"
    assert response.json() == {"error": {"code": "payload_too_large", "message": message}}


class TestBodyLimit:
    def test_a_declared_length_over_the_limit_is_a_json_413(self, client: TestClient) -> None:
        response = client.post("/search", content=_search_body(LIMIT + 1), headers=JSON)
        _assert_413(response, f"{LIMIT + 1} bytes")

    def test_a_chunked_body_over_the_limit_is_a_json_413(self, client: TestClient) -> None:
        request = client.build_request("POST", "/search", content=_chunks(3 * LIMIT), headers=JSON)
        assert "content-length" not in request.headers  # counted as it comes, not declared
        response = client.send(request)
        # TestClient hands the app the whole body at once; the real server in chunks, below.
        _assert_413(response, f"at least {3 * LIMIT} bytes")

    @pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
    def test_a_body_at_the_limit_is_served(self, client: TestClient, chunked: bool) -> None:
        content = _chunks(LIMIT) if chunked else _search_body(LIMIT)
        response = client.post("/search", content=content, headers=JSON)
        assert response.status_code == 200, response.text
        assert response.json()["results"]

    def test_the_413_carries_the_security_headers(self, client: TestClient) -> None:
        response = client.post("/events", content=b"{" + b" " * LIMIT + b"}", headers=JSON)
        assert response.status_code == 413
        assert {k: response.headers.get(k) for k in SECURITY} == SECURITY
        assert response.headers["content-security-policy"] == STRICT_CSP

    def test_the_default_limit_is_1_mib_and_at_least_1_kib(self, tmp_path: Path) -> None:
        assert _settings(tmp_path).max_body_bytes == 1024 * 1024
        with pytest.raises(ValidationError, match="max_body_bytes"):
            _settings(tmp_path, max_body_bytes=1023)


@pytest.fixture
def server(services: Services) -> Iterator[tuple[str, int]]:
    """The app under uvicorn, as `shopguide serve` runs it."""
    port = free_port()
    server = uvicorn.Server(server_config(create_app(services=services), "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.02)
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=30)


def _exchange(address: tuple[str, int], head: dict[str, str], body: bytes) -> tuple[int, dict]:
    """Send a POST /search head and ``body`` (not necessarily all of the body it announces);
    the status and JSON of the answer, read until the server closes the connection."""
    lines = ["POST /search HTTP/1.1", "Host: test", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in {**AUTH, **head}.items()]
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        received = b""
        while chunk := sock.recv(65536):  # a timeout here: the server waited for more body
            received += chunk
    head_text, _, payload = received.partition(b"\r\n\r\n")
    return int(head_text.split()[1]), json.loads(payload)


class TestBodyLimitOverTheWire:
    def test_a_declared_length_is_refused_before_the_body_is_sent(
        self, server: tuple[str, int]
    ) -> None:
        status, body = _exchange(server, {"Content-Length": "10000000"}, b"")
        assert status == 413
        assert body["error"]["message"] == (
            f"the request body is 10000000 bytes, over the limit of {LIMIT} bytes"
        )

    def test_a_chunked_body_is_refused_once_over_without_reading_the_rest(
        self, server: tuple[str, int]
    ) -> None:
        # Six chunks of 1000 bytes and no last chunk: the body never ends, the 413 comes anyway.
        chunks = b"".join(b"3e8\r\n" + b" " * 1000 + b"\r\n" for _ in range(6))
        status, body = _exchange(server, {"Transfer-Encoding": "chunked"}, chunks)
        assert status == 413
        assert body["error"]["code"] == "payload_too_large"
        pattern = r"the request body is at least (\d+) bytes, over the limit of (\d+) bytes"
        got = re.fullmatch(pattern, body["error"]["message"])
        assert got is not None and LIMIT < int(got[1]) <= 6000 and int(got[2]) == LIMIT


def _preflight(client: TestClient, origin: str) -> Any:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    return client.options("/search", headers=headers)


def _cors_headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


class TestCors:
    def test_off_by_default(self, client: TestClient) -> None:
        assert _cors_headers(_preflight(client, SHOP)) == {}
        assert _cors_headers(client.get("/health", headers={"Origin": SHOP})) == {}

    @pytest.fixture
    def cors_client(
        self, tmp_path: Path, store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[TestClient]:
        monkeypatch.setenv("SHOPGUIDE_CORS_ORIGINS", f"{SHOP},{ADMIN}")
        services = _services(tmp_path)
        assert services.settings.cors_origins == [SHOP, ADMIN]
        with TestClient(create_app(services=services), headers=AUTH) as client:
            yield client

    def test_a_preflight_from_an_allowed_origin_is_allowed(self, cors_client: TestClient) -> None:
        response = _preflight(cors_client, ADMIN)
        assert response.status_code == 200
        headers = _cors_headers(response)
        assert headers["access-control-allow-origin"] == ADMIN
        assert "POST" in headers["access-control-allow-methods"]
        allowed = headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert "access-control-allow-credentials" not in headers

    def test_a_preflight_from_another_origin_is_not(self, cors_client: TestClient) -> None:
        response = _preflight(cors_client, OTHER)
        assert response.status_code != 200
        assert "access-control-allow-origin" not in response.headers

    def test_a_request_from_an_allowed_origin_may_read_the_answer(
        self, cors_client: TestClient
    ) -> None:
        response = cors_client.post("/search", json={"query": "jbl"}, headers={"Origin": SHOP})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == SHOP
        assert "retry-after" in response.headers["access-control-expose-headers"].lower()
        other = cors_client.post("/search", json={"query": "jbl"}, headers={"Origin": OTHER})
        assert "access-control-allow-origin" not in other.headers

    @pytest.mark.parametrize(
        "value",
        [f"{SHOP}, {ADMIN}/", f'["{SHOP}", "{ADMIN}"]', f"{SHOP},,{ADMIN},"],
        ids=["comma-separated", "json", "empty-items"],
    )
    def test_origins_from_the_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
    ) -> None:
        monkeypatch.setenv("SHOPGUIDE_CORS_ORIGINS", value)
        assert _settings(tmp_path).cors_origins == [SHOP, ADMIN]

    def test_none_by_default_and_an_origin_must_be_one(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert _settings(tmp_path).cors_origins == []
        monkeypatch.setenv("SHOPGUIDE_CORS_ORIGINS", "")
        assert _settings(tmp_path).cors_origins == []
        for wrong in ("shop.example", "https://shop.example/path"):
            monkeypatch.setenv("SHOPGUIDE_CORS_ORIGINS", wrong)
            with pytest.raises(ValidationError, match="cors_origins"):
                _settings(tmp_path)


def _sha256(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def _inline_scripts(html: str) -> list[str]:
    scripts = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, re.S)
    return [s for s in scripts if s.strip()]


def _directives(csp: str) -> dict[str, list[str]]:
    parts = [part.split() for part in csp.split(";") if part.strip()]
    return {part[0]: part[1:] for part in parts}


class TestSecurityHeaders:
    def test_json_gets_the_strict_policy(self, client: TestClient) -> None:
        for response in (
            client.post("/search", json={"query": "jbl"}),
            client.get("/products/no-such-product"),
            client.get("/openapi.json"),
        ):
            assert {k: response.headers.get(k) for k in SECURITY} == SECURITY
            assert response.headers["content-security-policy"] == STRICT_CSP

    @pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect"])
    def test_the_docs_pages_may_run_their_own_scripts_and_nothing_else(
        self, client: TestClient, path: str
    ) -> None:
        response = client.get(path)
        assert response.status_code == 200
        assert {k: response.headers.get(k) for k in SECURITY} == SECURITY
        policy = _directives(response.headers["content-security-policy"])
        inline = _inline_scripts(response.text)
        assert inline, f"{path} has no inline script: the test no longer checks its hash"
        assert sorted(policy["script-src"]) == sorted(["'self'", *map(_sha256, inline)])
        assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
        assert policy["connect-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
        assert not any("unsafe" in v or "*" in v for values in policy.values() for v in values)

    def test_the_docs_assets_load_under_the_policy(self, client: TestClient) -> None:
        policy = _directives(client.get("/docs").headers["content-security-policy"])
        for url in re.findall(r'(?:src|href)="([^"]+)"', client.get("/docs").text):
            assert url.startswith("/"), f"/docs loads {url}, which its policy does not allow"
            assert client.get(url).status_code == 200
        assert "'self'" in policy["img-src"]

    def test_an_answer_streams_with_the_headers(self, client: TestClient) -> None:
        question = {"question": "How good is the noise cancelling?", "stream": True}
        response = client.post("/products/hp-sony/ask", json=question)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert {k: response.headers.get(k) for k in SECURITY} == SECURITY
        assert response.headers["content-security-policy"] == STRICT_CSP
        kinds = [kind for kind, _ in parse_sse(response.text)]
        assert kinds[0] == "token" and kinds[-1] == "final"

    def test_a_stream_is_not_held_back(
        self, client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The first event reaches the client while the generator still waits for it."""
        read_first, waited = threading.Event(), []

        def stream_advice(*args: object, **kwargs: object) -> Iterator[object]:
            yield TokenEvent("first")
            waited.append(read_first.wait(10))  # False: the first event was held back
            yield TokenEvent("second")

        monkeypatch.setattr(services.answers, "stream_advice", stream_advice)
        body = {"question": "headphones", "stream": True}
        with client.stream("POST", "/advice", json=body) as response:
            assert response.headers["x-content-type-options"] == "nosniff"
            lines = response.iter_lines()
            assert next(lines) == "event: token"
            assert next(lines) == 'data: {"text": "first"}'
            read_first.set()
            rest = "\n".join(lines)
        assert waited == [True]
        assert 'data: {"text": "second"}' in rest


class TestServerErrors:
    """An error no handler knows is a JSON 500 inside the middleware: with the security
    headers, CORS for an allowed origin, logged with its traceback, no library message out."""

    @pytest.fixture
    def failing(self, tmp_path: Path, store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch):
        services = _services(tmp_path, cors_origins=[SHOP])

        def search(*args: object, **kwargs: object) -> object:
            raise ZeroDivisionError("a bug near http://10.0.0.7:9200")

        monkeypatch.setattr(services.search, "search", search)
        with TestClient(create_app(services=services), headers=AUTH) as client:
            yield client

    def test_an_unhandled_error_is_a_json_500_with_the_headers(
        self, failing: TestClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        response = failing.post("/search", json={"query": "jbl"}, headers={"origin": SHOP})
        assert response.status_code == 500
        assert response.json() == {"error": {"code": "internal_error", "message": "internal error"}}
        assert {k: response.headers.get(k) for k in SECURITY} == SECURITY
        assert response.headers["content-security-policy"] == STRICT_CSP
        assert response.headers["access-control-allow-origin"] == SHOP
        (record,) = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
        assert "POST /search failed (internal_error)" in record.getMessage()

    def test_the_request_is_logged_with_its_500(
        self, failing: TestClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        failing.get("/search?q=jbl")
        (line,) = [r for r in caplog.records if r.getMessage() == "request"]
        assert line.__dict__["status"] == 500 and line.__dict__["path"] == "/search"
