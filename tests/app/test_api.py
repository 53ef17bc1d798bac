from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.errors import public_message
from app.main import create_app
from app.services import build_services
from app.settings import Settings
from generation.llm.base import GenerationError, GenerationTimeout
from generation.llm.fake import RecordingLLM
from retrieval.stores.embedded import EmbeddedStore
from tests.sse import parse_sse


def _client(tmp_path: Path, llm: RecordingLLM) -> TestClient:
    settings = Settings(
        data_dir=tmp_path, embedder="hashing-256", semantic_min_similarity=0.2, _env_file=None
    )
    return TestClient(create_app(services=build_services(settings, llm=llm)))


@pytest.fixture
def llm() -> RecordingLLM:
    return RecordingLLM(default="The Anker Q30 is a good choice [1].")


@pytest.fixture
def client(tmp_path: Path, store: EmbeddedStore, llm: RecordingLLM) -> Iterator[TestClient]:
    with _client(tmp_path, llm) as client:
        yield client


class TestSearch:
    def test_post_search_with_filters_and_explanations(self, client: TestClient) -> None:
        response = client.post(
            "/search",
            json={"query": "noise cancelling headphones", "filters": {"price_max": 100}},
        )
        assert response.status_code == 200
        body = response.json()
        assert body["results"][0]["id"] == "hp-anker"
        assert all(r["price"] <= 100 for r in body["results"])
        why = body["results"][0]["why"]
        assert "lexical" in why["retrievers"] and why["matched_terms"]["title"]
        assert "found by" in why["summary"]
        assert body["timings_ms"]["total"] > 0

    def test_query_constraints_become_filters(self, client: TestClient) -> None:
        body = client.post("/search", json={"query": "headphones under $50"}).json()
        assert body["applied_constraints"] == ["price ≤ 50"]
        assert body["searched_for"] == "headphones"
        assert [r["id"] for r in body["results"]] == ["hp-jbl"]

    def test_constraint_parsing_can_be_off(self, client: TestClient) -> None:
        body = client.post(
            "/search", json={"query": "headphones under $50", "parse_constraints": False}
        ).json()
        assert body["applied_constraints"] == []
        assert len(body["results"]) > 1

    def test_get_search(self, client: TestClient) -> None:
        response = client.get(
            "/search", params={"q": "耳机", "brand": ["华为"], "in_stock": "true"}
        )
        assert response.status_code == 200
        assert [r["id"] for r in response.json()["results"]] == ["zh-huawei"]

    def test_pagination(self, client: TestClient) -> None:
        first = client.post("/search", json={"query": "headphones", "size": 1}).json()
        second = client.post("/search", json={"query": "headphones", "size": 1, "page": 2}).json()
        assert first["results"][0]["id"] != second["results"][0]["id"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "body.query"),
            ({"query": ""}, "body.query"),
            ({"query": "x", "size": 0}, "body.size"),
            ({"query": "x", "size": 500}, "body.size"),
            ({"query": "x", "page": "two"}, "body.page"),
            ({"query": "x", "filters": {"price_min": -1}}, "body.filters.price_min"),
            ({"query": "x", "filters": {"colour": "red"}}, "body.filters.colour"),
            ({"query": "x", "filters": {"min_rating": 6}}, "body.filters.min_rating"),
            ({"query": "x", "filters": {"price_min": 50, "price_max": 10}}, "body.filters"),
        ],
    )
    def test_bad_input_names_the_field(self, client: TestClient, body: dict, field: str) -> None:
        response = client.post("/search", json=body)
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "invalid_request"
        assert field in [f["field"] for f in error["fields"]]

    def test_bad_query_parameter(self, client: TestClient) -> None:
        response = client.get("/search", params={"q": "x", "price_max": "cheap"})
        assert response.status_code == 422
        assert response.json()["error"]["fields"][0]["field"] == "query.price_max"


class TestProducts:
    def test_get_product(self, client: TestClient) -> None:
        response = client.get("/products/hp-sony")
        assert response.status_code == 200
        product = response.json()["product"]
        assert product["title"].startswith("Sony")
        assert product["reviews"][0]["text"]

    def test_unknown_product_is_404(self, client: TestClient) -> None:
        response = client.get("/products/nope")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    def test_ask(self, client: TestClient, llm: RecordingLLM) -> None:
        llm.replies.append("Yes, cast iron works on induction [1].")
        response = client.post("/products/pan-lodge/ask", json={"question": "induction?"})
        assert response.status_code == 200
        body = response.json()
        assert not body["abstained"]
        assert body["citations"][0]["id"] == "pan-lodge#qa-1"
        assert body["citations"][0]["kind"] == "qa"

    def test_ask_unknown_product(self, client: TestClient) -> None:
        response = client.post("/products/nope/ask", json={"question": "q"})
        assert response.status_code == 404

    def test_ask_bad_input(self, client: TestClient) -> None:
        response = client.post("/products/hp-sony/ask", json={"question": "x" * 501})
        assert response.status_code == 422
        assert response.json()["error"]["fields"][0]["field"] == "body.question"

    def test_ask_streams_server_sent_events(self, client: TestClient, llm: RecordingLLM) -> None:
        llm.replies.append("Battery lasts a week [1].")
        with client.stream(
            "POST", "/products/hp-sony/ask", json={"question": "battery life?", "stream": True}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = parse_sse(response.read().decode())
        kinds = [kind for kind, _ in events]
        assert kinds[-1] == "final" and set(kinds[:-1]) == {"token"}
        streamed = "".join(data["text"] for kind, data in events if kind == "token")
        assert streamed == events[-1][1]["answer"]


class TestAdvice:
    def test_advice_json(self, client: TestClient) -> None:
        response = client.post(
            "/advice", json={"question": "noise cancelling headphones under $100"}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["answer"] == "The Anker Q30 is a good choice [1]."
        assert body["citations"][0]["product_id"] == "hp-anker"
        assert body["applied_constraints"] == ["price ≤ 100"]
        assert {"retrieval", "first_token", "total"} <= set(body["timings_ms"])
        assert body["claims"] == [{"text": "The Anker Q30 is a good choice.", "sources": [1]}]
        assert body["abstained"] is False and body["abstain_reason"] is None

    def test_advice_stream_via_accept_header(self, client: TestClient) -> None:
        response = client.post(
            "/advice",
            json={"question": "headphones"},
            headers={"accept": "text/event-stream"},
        )
        events = parse_sse(response.text)
        assert events[-1][0] == "final"
        assert events[-1][1]["citations"]

    def test_a_conversation_continues_and_compares(self, client: TestClient) -> None:
        first = client.post("/advice", json={"question": "headphones", "conversation_id": "t-1"})
        assert first.status_code == 200 and first.json()["follow_up"] == "new"
        compared = client.post(
            "/advice", json={"question": "compare the first two", "conversation_id": "t-1"}
        ).json()
        assert compared["follow_up"] == "compare" and compared["conversation_id"] == "t-1"
        shown = [s["product_id"] for s in first.json()["sources"][:2]]
        assert compared["comparison"]["product_ids"] == shown
        assert compared["comparison"]["rows"][0]["attribute"] == "Brand"
        bad = client.post("/advice", json={"question": "x", "conversation_id": "no spaces!"})
        assert bad.status_code == 422

    def test_advice_bad_input(self, client: TestClient) -> None:
        response = client.post("/advice", json={"question": "x", "filters": {"in_stock": "maybe"}})
        assert response.status_code == 422
        assert response.json()["error"]["fields"][0]["field"] == "body.filters.in_stock"


class TestModelFailure:
    @pytest.mark.parametrize(
        ("error", "status", "code"),
        [
            (GenerationError("llama crashed"), 503, "model_unavailable"),
            (GenerationTimeout("no answer in 120 s"), 504, "model_timeout"),
        ],
    )
    def test_model_errors_are_5xx_with_a_reason(
        self, tmp_path: Path, store: EmbeddedStore, error: Exception, status: int, code: str
    ) -> None:
        with _client(tmp_path, RecordingLLM(fail_with=error)) as client:
            response = client.post("/advice", json={"question": "headphones"})
            assert response.status_code == status
            assert response.json()["error"] == {"code": code, "message": public_message(error)}
            streamed = client.post("/advice", json={"question": "headphones", "stream": True})
            kind, data = parse_sse(streamed.text)[-1]
            assert kind == "error" and data["error"]["code"] == code


class TestHealthAndDocs:
    def test_health(self, client: TestClient) -> None:
        body = client.get("/health").json()
        assert body["status"] == "ok"
        assert body["store"]["backend"] == "embedded"
        assert body["store"]["products"] == 9
        assert body["models"] == {
            "embedder": "hashing-256",
            "reranker": "none",
            "llm": "recording-fake",
        }

    def test_openapi_documents_every_endpoint(self, client: TestClient) -> None:
        paths = client.get("/openapi.json").json()["paths"]
        assert {
            "/search",
            "/products/{product_id}",
            "/products/{product_id}/ask",
            "/advice",
            "/health",
        } <= set(paths)
