"""The API's edges: one model for GET and POST search, non-finite numbers, blank queries,
malformed JSON, and 5xx errors that are logged in full but tell the client only what failed."""

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.errors import public_message
from app.main import create_app
from app.services import Services, build_services
from app.settings import Settings
from generation.answers import TokenEvent
from generation.llm.base import GenerationError
from retrieval.stores.base import StoreError, StoreUnavailable
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH
from tests.quoting import QuotingLLM
from tests.sse import parse_sse

SECRET = "http://10.0.0.5:9200"


@pytest.fixture
def services(tmp_path: Path, store: EmbeddedStore) -> Services:
    settings = Settings(
        data_dir=tmp_path, embedder="hashing-256", semantic_min_similarity=0.2, _env_file=None
    )
    llm = QuotingLLM(default='[?] "noise cancelling: True" The Anker Q30 has noise cancelling.')
    return build_services(settings, llm=llm)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    app = create_app(services=services)
    with TestClient(app, raise_server_exceptions=False, headers=AUTH) as client:
        yield client


def _fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    return {f["field"]: f["reason"] for f in error["fields"]}


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200
    return [r["id"] for r in response.json()["results"]]


class TestGetSearchIsThePostModel:
    def test_brands_repeat_and_exclude_brands_filter(self, client: TestClient) -> None:
        q = "wireless headphones"
        assert _ids(client.get("/search", params={"q": q, "brands": ["JBL", "Anker"]})) == (
            _ids(client.post("/search", json={"query": q, "filters": {"brands": ["JBL", "Anker"]}}))
        )
        assert set(_ids(client.get("/search", params={"q": q, "brands": ["JBL", "Anker"]}))) == {
            "hp-jbl",
            "hp-anker",
        }
        excluded = _ids(client.get("/search", params={"q": q, "exclude_brands": ["Sony"]}))
        assert excluded and "hp-sony" not in excluded
        assert "hp-sony" in _ids(client.get("/search", params={"q": q}))

    def test_get_and_post_give_the_same_page(self, client: TestClient) -> None:
        params = {"q": "headphones", "price_max": "100", "in_stock": "true", "size": "1"}
        body = {
            "query": "headphones",
            "filters": {"price_max": 100, "in_stock": True},
            "size": 1,
        }
        got, posted = client.get("/search", params=params), client.post("/search", json=body)
        assert _ids(got) == _ids(posted) == ["hp-anker"]
        assert got.json()["filters"] == posted.json()["filters"]

    def test_an_unknown_parameter_is_a_422_that_names_it(self, client: TestClient) -> None:
        fields = _fields(client.get("/search", params={"q": "headphones", "colour": "red"}))
        assert list(fields) == ["query.colour"]

    def test_brand_is_still_accepted_but_not_with_brands(self, client: TestClient) -> None:
        assert _ids(client.get("/search", params={"q": "耳机", "brand": ["华为"]})) == ["zh-huawei"]
        both = _fields(client.get("/search", params={"q": "x", "brand": "A", "brands": "B"}))
        assert list(both) == ["query.brand"]

    def test_the_get_price_range_is_checked_like_the_body(self, client: TestClient) -> None:
        fields = _fields(client.get("/search", params={"q": "x", "price_min": 50, "price_max": 9}))
        assert "price_min must not be greater than price_max" in " ".join(fields.values())


class TestLongBrands:
    """A brand of 100,000 characters reached Elasticsearch and failed there (500); the embedded
    store took it. Now both answer 422, before any store."""

    def test_get_and_bodies_reject_a_brand_over_256_characters(self, client: TestClient) -> None:
        long = "a" * 257
        assert (
            "at most 256"
            in _fields(client.get("/search", params={"q": "x", "brand": long}))["query.brand.0"]
        )
        for path, text in (("/search", "query"), ("/advice", "question")):
            for name in ("brands", "exclude_brands"):
                body = {text: "headphones", "filters": {name: ["Sony", long]}}
                assert f"body.filters.{name}.1" in _fields(client.post(path, json=body))
        assert _ids(client.get("/search", params={"q": "耳机", "brand": ["华为"]})) == ["zh-huawei"]


class TestNonFiniteNumbers:
    @pytest.mark.parametrize("value", ["Infinity", "inf", "-inf", "1e309", "NaN", "nan"])
    @pytest.mark.parametrize("name", ["price_min", "price_max", "min_rating"])
    def test_get_rejects_them(self, client: TestClient, name: str, value: str) -> None:
        fields = _fields(client.get("/search", params={"q": "headphones", name: value}))
        assert "finite number" in fields[f"query.{name}"]

    @pytest.mark.parametrize("value", ["Infinity", "-Infinity", "1e309", "NaN"])
    @pytest.mark.parametrize("name", ["price_min", "price_max", "min_rating"])
    @pytest.mark.parametrize("path", ["/search", "/advice"])
    def test_bodies_reject_them(self, client: TestClient, path: str, name: str, value: str) -> None:
        text = "query" if path == "/search" else "question"
        body = f'{{"{text}": "headphones", "filters": {{"{name}": {value}}}}}'
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        reason = _fields(response)[f"body.filters.{name}"]
        assert "finite number" in reason and "greater than" not in reason


class TestBlankText:
    @pytest.mark.parametrize("text", [" ", "   ", "\t\n", "\u3000"])
    def test_a_blank_query_or_question_is_a_422(self, client: TestClient, text: str) -> None:
        requests = {
            "query.q": client.get("/search", params={"q": text}),
            "body.query": client.post("/search", json={"query": text}),
            "body.question": client.post("/advice", json={"question": text}),
        }
        for field, response in requests.items():
            assert _fields(response) == {field: "must not be blank"}
        asked = client.post("/products/hp-sony/ask", json={"question": text, "stream": True})
        assert _fields(asked) == {"body.question": "must not be blank"}

    def test_text_with_spaces_around_it_is_fine(self, client: TestClient) -> None:
        assert "hp-jbl" in _ids(client.post("/search", json={"query": "  jbl  "}))


class TestMalformedJson:
    @pytest.mark.parametrize(
        "body",
        ['{"query": "x" "size": 3}', '{\n  "query": "x",\n  "size": 3,,\n}', '{"query": '],
    )
    def test_the_reason_gives_line_and_column(self, client: TestClient, body: str) -> None:
        response = client.post(
            "/search", content=body, headers={"content-type": "application/json"}
        )
        with pytest.raises(json.JSONDecodeError) as expected:
            json.loads(body)
        error = expected.value
        assert _fields(response) == {
            "body": f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        }

    def test_example(self, client: TestClient) -> None:
        body = '{"query": "headphones" "size": 3}'
        response = client.post(
            "/search", content=body, headers={"content-type": "application/json"}
        )
        assert _fields(response) == {
            "body": "invalid JSON at line 1, column 24: Expecting ',' delimiter"
        }

    def test_a_body_that_is_not_utf8_is_a_422_too(self, client: TestClient) -> None:
        # Found by the fuzzer (test_fuzz_api): FastAPI answers such a body with a 400 that the
        # schema does not document; it is malformed JSON like the rest.
        response = client.post(
            "/search",
            content=b'{"query": "\xff\xfe"}',
            headers={"content-type": "application/json"},
        )
        assert _fields(response) == {"body": "invalid JSON: the body is not UTF-8 (byte 11)"}


class TestMethodNotAllowed:
    # Found by the fuzzer (test_fuzz_api): a 405 had no Allow header, then only the methods of
    # the first route at the path (POST of /search, which has a GET too).
    @pytest.mark.parametrize(
        ("method", "path", "allow"),
        [
            ("PUT", "/search", "GET, POST"),
            ("OPTIONS", "/search", "GET, POST"),
            ("HEAD", "/search", "GET, POST"),
            ("TRACE", "/health", "GET"),
            ("GET", "/users/alice", "DELETE"),
            ("PATCH", "/products/hp-jbl", "GET"),
        ],
    )
    def test_a_405_lists_every_method_of_the_path(
        self, client: TestClient, method: str, path: str, allow: str
    ) -> None:
        response = client.request(method, path)
        assert response.status_code == 405
        assert response.headers["allow"] == allow
        if method != "HEAD":
            assert response.json() == {
                "error": {"code": "http_error", "message": "Method Not Allowed"}
            }


def test_every_operation_with_a_body_documents_its_413(client: TestClient) -> None:
    # Found by the fuzzer (test_fuzz_api): the body limit's 413 was not in the schema.
    paths = client.get("/openapi.json").json()["paths"]
    with_body = {
        (method.upper(), path): operation["responses"]
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }
    assert set(with_body) == {
        ("POST", "/search"),
        ("POST", "/products/{product_id}/ask"),
        ("POST", "/advice"),
        ("POST", "/events"),
        ("PUT", "/users/{user_id}/personalization"),
        ("POST", "/web/session"),
    }
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for operation, responses in with_body.items():
        assert responses["413"]["content"]["application/json"]["schema"] == error, operation


def _fail_search(services: Services, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def search(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(services.search, "search", search)


class TestServerErrors:
    @pytest.mark.parametrize(
        ("error", "status", "code", "message"),
        [
            (
                StoreUnavailable(f"Elasticsearch at {SECRET} cannot be reached (search): refused"),
                503,
                "store_unavailable",
                "the product store is unavailable",
            ),
            (
                StoreError(f"Elasticsearch at {SECRET} could not search: bad"),
                500,
                "store_error",
                "the product store failed",
            ),
            (RuntimeError(f"a bug near {SECRET}"), 500, "internal_error", "internal error"),
        ],
    )
    def test_the_client_is_told_what_failed_and_the_log_has_the_rest(
        self,
        client: TestClient,
        services: Services,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        error: Exception,
        status: int,
        code: str,
        message: str,
    ) -> None:
        _fail_search(services, monkeypatch, error)
        with caplog.at_level(logging.ERROR, logger="app.api.errors"):
            response = client.post("/search", json={"query": "headphones", "cache": False})
        assert response.status_code == status
        assert response.json() == {"error": {"code": code, "message": message}}
        assert SECRET not in response.text
        assert public_message(error) == message
        [record] = [r for r in caplog.records if r.name == "app.api.errors"]
        assert record.levelno == logging.ERROR
        assert SECRET in record.getMessage() and "POST /search" in record.getMessage()
        assert record.exc_info is not None and record.exc_info[1] is error

    def test_a_4xx_keeps_its_message(self) -> None:
        from generation.answers import UnknownProduct

        assert public_message(UnknownProduct("no product with id 'x'")) == "no product with id 'x'"


class TestStreamErrors:
    @pytest.mark.parametrize("at_once", [True, False], ids=["before-the-stream", "mid-stream"])
    @pytest.mark.parametrize(
        ("error", "status", "code", "message"),
        [
            (
                GenerationError(f"cannot connect to {SECRET}"),
                503,
                "model_unavailable",
                "the generator is unavailable",
            ),
            (RuntimeError(f"a bug near {SECRET}"), 500, "internal_error", "internal error"),
        ],
    )
    def test_a_failing_stream_is_logged_and_what_the_client_gets_is_safe(
        self,
        client: TestClient,
        services: Services,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        error: Exception,
        status: int,
        code: str,
        message: str,
        at_once: bool,
    ) -> None:
        """Failing before the first event is a plain HTTP error; failing after it, with the
        response under way, an ``error`` event. Neither tells the client the library's
        message."""

        def stream_advice(*args: object, **kwargs: object) -> Iterator[object]:
            if not at_once:
                yield TokenEvent("The Anker Q30 has noise cancelling [1].")
            raise error

        monkeypatch.setattr(services.answers, "stream_advice", stream_advice)
        with caplog.at_level(logging.ERROR, logger="app.api.errors"):
            response = client.post("/advice", json={"question": "headphones", "stream": True})
        if at_once:
            assert response.status_code == status
            assert response.json() == {"error": {"code": code, "message": message}}
        else:
            assert response.status_code == 200
            events = parse_sse(response.text)
            assert events[0] == ("token", {"text": "The Anker Q30 has noise cancelling [1]."})
            kind, data = events[-1]
            assert kind == "error"
            assert data == {"error": {"code": code, "message": message, "status": status}}
        assert SECRET not in response.text
        [record] = [r for r in caplog.records if r.name == "app.api.errors"]
        assert "POST /advice" in record.getMessage() and SECRET in record.getMessage()
        assert record.exc_info is not None and record.exc_info[1] is error
