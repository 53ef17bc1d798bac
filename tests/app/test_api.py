import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.errors import public_message
from app.main import create_app
from app.services import Services, build_services
from app.settings import Settings
from generation.llm.base import GenerationError, GenerationTimeout
from generation.llm.fake import RecordingLLM
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH
from tests.quoting import BlockingLLM, QuotingLLM
from tests.sse import parse_sse

# The first source holding the quote is cited: the Anker Q30 for the headphones asked about.
ANKER = '[?] "noise cancelling: True" The Anker Q30 has noise cancelling.'
INDUCTION = '[?] "Yes, cast iron works on induction" Yes, it works on induction.'
FOLD = (
    '[?] "The ear cups swivel flat but do not fold" No, the ear cups swivel flat but do not fold.'
)


def _services(tmp_path: Path, llm: RecordingLLM, **values: Any) -> Services:
    settings = Settings(
        data_dir=tmp_path,
        embedder="hashing-256",
        semantic_min_similarity=0.2,
        _env_file=None,
        **values,
    )
    return build_services(settings, llm=llm)


def _client(tmp_path: Path, llm: RecordingLLM, **values: Any) -> TestClient:
    return TestClient(create_app(services=_services(tmp_path, llm, **values)), headers=AUTH)


def _assert_quotes_are_in_their_sources(body: dict[str, Any]) -> None:
    """Each claim carries its quote, and its span indexes the quote in its source's text."""
    assert body["claims"]
    by_number = {s["number"]: s for s in body["sources"]}
    for claim in body["claims"]:
        [number] = claim["sources"]
        start, end = claim["quote_span"]
        assert claim["quote"] and by_number[number]["text"][start:end] == claim["quote"]


@pytest.fixture
def llm() -> QuotingLLM:
    return QuotingLLM(default=ANKER)


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
        # the weights that fused this query's lists: its best BM25 hit holds all its terms,
        # so the cross-lingual list keeps its configured weight
        assert body["fusion"] == {
            "weights": {"lexical": 1.0, "semantic": 1.0, "crosslingual": 0.5},
            "lexical_coverage": 1.0,
        }

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

    def test_similar_products(self, client: TestClient) -> None:
        response = client.get("/products/hp-anker/similar", params={"same_price_band": "false"})
        assert response.status_code == 200
        body = response.json()
        assert [r["id"] for r in body["results"]] == ["hp-sony", "hp-jbl", "ear-sport"]
        assert body["product_id"] == "hp-anker" and body["price_band"] is None
        sony = body["results"][0]
        assert "pricier (+335%)" in sony["differences"] and sony["reasons"]
        assert not body["cached"]
        again = client.get("/products/hp-anker/similar", params={"same_price_band": "false"})
        assert again.json()["cached"] and again.json()["results"] == body["results"]

    def test_similar_products_with_filters_and_paging(self, client: TestClient) -> None:
        response = client.get(
            "/products/hp-anker/similar",
            params={"in_stock": "true", "price_max": 400, "size": 1, "page": 2},
        )
        assert response.status_code == 200
        assert [r["id"] for r in response.json()["results"]] == ["ear-sport"]
        banded = client.get("/products/hp-sony/similar").json()
        assert banded["price_band"] == [174.0, 696.0]
        assert [r["id"] for r in banded["results"]] == ["ear-sport"]

    @pytest.mark.parametrize(
        "params",
        [
            {"price_min": 10, "price_max": 1},
            {"size": 0},
            {"size": 51},
            {"price_max": "cheap"},
            {"price_max": "inf"},
            {"unknown": 1},
        ],
    )
    def test_bad_similar_requests_are_422(self, client: TestClient, params: dict[str, Any]) -> None:
        response = client.get("/products/hp-anker/similar", params=params)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["fields"]

    def test_review_summary(self, client: TestClient) -> None:
        response = client.get("/products/hp-sony/review-summary")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["product_id"], body["language"], body["reviews"]) == ("hp-sony", "en", 2)
        assert body["method"] == "extractive" and not body["cached"]
        aspects = {a["aspect"]: a for a in body["aspects"]}
        assert set(aspects) == {"noise", "battery"}
        assert aspects["noise"]["positive"] == 1 and aspects["noise"]["label"] == "noise"
        product = client.get("/products/hp-sony").json()["product"]
        passages = {f"hp-sony#review-{i}": r["text"] for i, r in enumerate(product["reviews"], 1)}
        for item in body["aspects"]:
            for quote in item["quotes"]:
                review = passages[quote["passage_id"]]  # cites a review the product has
                assert review[quote["start"] : quote["end"]] == quote["text"]
                assert quote["term"][0] >= quote["start"] and quote["term"][1] <= quote["end"]
        again = client.get("/products/hp-sony/review-summary")
        assert again.json()["cached"] and again.json()["aspects"] == body["aspects"]

    def test_review_summary_in_chinese_and_of_an_injected_review(self, client: TestClient) -> None:
        body = client.get("/products/zh-huawei/review-summary").json()
        assert body["language"] == "zh"
        assert [(a["label"], a["positive"]) for a in body["aspects"]] == [("降噪", 1)]
        # "IGNORE ALL PREVIOUS INSTRUCTIONS …" is neither followed nor taken for an aspect
        anker = client.get("/products/hp-anker/review-summary").json()
        assert [a["aspect"] for a in anker["aspects"]] == ["price"]
        assert "p999" not in anker["aspects"][0]["quotes"][0]["text"]

    @pytest.mark.parametrize("params", [{"quotes": -1}, {"quotes": 21}, {"unknown": 1}])
    def test_bad_review_summary_requests_are_422(
        self, client: TestClient, params: dict[str, Any]
    ) -> None:
        response = client.get("/products/hp-sony/review-summary", params=params)
        assert response.status_code == 422, response.text
        assert client.get("/products/nope/review-summary").status_code == 404

    def test_similar_to_an_unknown_product_is_404(self, client: TestClient) -> None:
        response = client.get("/products/nope/similar")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    def test_ask(self, client: TestClient, llm: QuotingLLM) -> None:
        llm.replies.append(INDUCTION)
        response = client.post(
            "/products/pan-lodge/ask", json={"question": "does it work on induction?"}
        )
        assert response.status_code == 200
        body = response.json()
        assert not body["abstained"]
        assert body["answer"] == "Yes. It works on induction [1]."
        assert (body["kind"], body["verdict"]) == ("yes_no", "yes")
        assert body["citations"][0]["id"] == "pan-lodge#qa-1"
        assert body["citations"][0]["kind"] == "qa"
        assert body["claims"][0]["quote"] == "Yes, cast iron works on induction"
        _assert_quotes_are_in_their_sources(body)

    def test_ask_unknown_product(self, client: TestClient) -> None:
        response = client.post("/products/nope/ask", json={"question": "q"})
        assert response.status_code == 404

    def test_ask_bad_input(self, client: TestClient) -> None:
        response = client.post("/products/hp-sony/ask", json={"question": "x" * 501})
        assert response.status_code == 422
        assert response.json()["error"]["fields"][0]["field"] == "body.question"

    def test_ask_streams_server_sent_events(self, client: TestClient, llm: QuotingLLM) -> None:
        llm.replies.append(FOLD)
        with client.stream(
            "POST", "/products/hp-sony/ask", json={"question": "does it fold?", "stream": True}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = parse_sse(response.read().decode())
        kinds = [kind for kind, _ in events]
        assert kinds[-1] == "final" and set(kinds[:-1]) == {"token"}
        streamed = "".join(data["text"] for kind, data in events if kind == "token")
        assert streamed == events[-1][1]["answer"]
        assert streamed == "No. The ear cups swivel flat but do not fold [1]."


def _stream(client: TestClient, path: str, question: str) -> list[tuple[str, dict]]:
    response = client.post(path, json={"question": question, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


class TestStreamedAnswers:
    """What is streamed is the answer: each token a checked claim, in both languages."""

    @pytest.mark.parametrize(
        ("path", "question", "reply", "answer"),
        [
            ("/advice", "headphones", ANKER, "The Anker Q30 has noise cancelling [1]."),
            ("/advice", "降噪耳机", '[?] "续航约30小时" 续航约30小时。', "续航约30小时[1]。"),
            (
                "/products/pan-lodge/ask",
                "does it work on induction?",
                INDUCTION,
                "Yes. It works on induction [1].",
            ),
            (
                "/products/zh-huawei/ask",
                "可以连接两台设备吗？",
                '[?] "可以，支持双设备连接" 可以，支持双设备连接。',
                "是的，支持双设备连接[1]。",
            ),
        ],
    )
    def test_the_tokens_are_the_final_answer(
        self,
        client: TestClient,
        llm: QuotingLLM,
        path: str,
        question: str,
        reply: str,
        answer: str,
    ) -> None:
        llm.replies.append(reply)
        events = _stream(client, path, question)
        kinds = [kind for kind, _ in events]
        assert kinds[-1] == "final" and set(kinds[:-1]) == {"token"}
        final = events[-1][1]
        assert not final["abstained"] and final["answer"] == answer
        tokens = [data["text"] for kind, data in events if kind == "token"]
        assert "".join(tokens) == final["answer"]
        assert len(tokens) == len(final["claims"])  # one token per checked claim
        _assert_quotes_are_in_their_sources(final)

    def test_a_dropped_claim_is_never_streamed(self, client: TestClient, llm: QuotingLLM) -> None:
        # Source 1 (the Anker) says 40 hours, not the Sony's 30; the Sony is not waterproof.
        llm.replies.append(
            f'{ANKER}\n[1] "battery life hours: 30" It lasts 30 hours.\n'
            '[2] "noise cancelling: True" The Sony has noise cancelling and is waterproof.'
        )
        events = _stream(client, "/advice", "headphones")
        final = events[-1][1]
        assert final["answer"] == (
            "The Anker Q30 has noise cancelling [1]. Sony WH-1000XM5 Wireless Noise Cancelling "
            "Headphones: “noise cancelling: True” [2]."  # only its quote: it said more
        )
        assert final["dropped_claims"] == 1
        assert final["dropped_reasons"] == ["quote_not_in_source"]
        for kind, data in events[:-1]:
            assert kind == "token"
            assert "30 hours" not in data["text"] and "waterproof" not in data["text"]
        assert "".join(data["text"] for _, data in events[:-1]) == final["answer"]

    def test_a_claim_that_does_not_answer_is_never_streamed(
        self, client: TestClient, llm: QuotingLLM
    ) -> None:
        llm.replies.append(
            '[?] "Pre-seasoned cast iron pan for stove, oven and campfire" Yes, it works on a '
            f"stove.\n{INDUCTION}"
        )
        events = _stream(client, "/products/pan-lodge/ask", "does it work on induction?")
        final = events[-1][1]
        assert final["answer"] == "Yes. It works on induction [1]."
        assert final["dropped_reasons"] == ["not_an_answer"]  # the quote is off the question
        tokens = [data["text"] for kind, data in events if kind == "token"]
        assert "".join(tokens) == final["answer"]
        assert not any("stove" in t or "[2]" in t for t in tokens)


class TestAdvice:
    def test_advice_json(self, client: TestClient) -> None:
        response = client.post(
            "/advice", json={"question": "noise cancelling headphones under $100"}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["answer"] == "The Anker Q30 has noise cancelling [1]."
        assert body["citations"][0]["product_id"] == "hp-anker"
        assert body["applied_constraints"] == ["price ≤ 100"]
        assert {"retrieval", "first_token", "total"} <= set(body["timings_ms"])
        [claim] = body["claims"]
        assert claim["text"] == "The Anker Q30 has noise cancelling."
        assert claim["sources"] == [1] and claim["quote"] == "noise cancelling: True"
        _assert_quotes_are_in_their_sources(body)
        assert body["abstained"] is False and body["abstain_reason"] is None
        assert body["dropped_claims"] == 0 and body["dropped_reasons"] == []
        assert body["kind"] is None and body["verdict"] is None  # asked of one product only
        assert "dropped_citations" not in body and "corrected_claims" not in body

    def test_advice_stream_via_accept_header(self, client: TestClient) -> None:
        response = client.post(
            "/advice",
            json={"question": "headphones"},
            headers={"accept": "text/event-stream"},
        )
        events = parse_sse(response.text)
        assert events[-1][0] == "final"
        assert events[-1][1]["citations"]
        assert events[-1][1]["answer"] == "The Anker Q30 has noise cancelling [1]."

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
            # A stream that fails before its first event is a plain HTTP error, not a 200.
            streamed = client.post("/advice", json={"question": "headphones", "stream": True})
            assert streamed.status_code == status
            assert streamed.headers["content-type"].startswith("application/json")
            assert streamed.json()["error"] == {"code": code, "message": public_message(error)}


class TestHealthAndDocs:
    def test_health(self, client: TestClient) -> None:
        body = client.get("/health").json()
        assert body["status"] == "ok"
        assert body["store"]["backend"] == "embedded"
        assert body["store"]["products"] == 9
        assert body["models"] == {
            "embedder": "hashing-256",
            "cross_embedder": "packaged:use-multilingual",
            "reranker": "none",
            "llm": "recording-fake",
        }
        assert body["store"]["cross_embedding_model"] is None  # indexed without it

    def test_openapi_documents_every_endpoint(self, client: TestClient) -> None:
        paths = client.get("/openapi.json").json()["paths"]
        assert {
            "/search",
            "/products/{product_id}",
            "/products/{product_id}/ask",
            "/advice",
            "/health",
        } <= set(paths)


ASK = "/products/pan-lodge/ask"
QUESTION = {"question": "does it work on induction?", "cache": False}


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    return thread, results


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


class TestBusyGenerator:
    """One answer at a time (llm_concurrency=1): askers beyond the line are refused at once;
    search and health never wait for the generator."""

    @pytest.fixture
    def blocking(self) -> Iterator[BlockingLLM]:
        llm = BlockingLLM(default=INDUCTION)
        yield llm
        llm.release.set()  # never leave a request hanging

    def _held(
        self, tmp_path: Path, llm: BlockingLLM, queue: int
    ) -> tuple[TestClient, Services, threading.Thread, list[Any]]:
        services = _services(tmp_path, llm, llm_concurrency=1, llm_queue=queue)
        client = TestClient(create_app(services=services), headers=AUTH)
        client.__enter__()
        first, results = _in_thread(lambda: client.post(ASK, json=QUESTION))
        assert llm.started.wait(10), "the first answer never reached the generator"
        return client, services, first, results

    def test_a_full_line_is_refused_at_once_with_retry_after(
        self, tmp_path: Path, store: EmbeddedStore, blocking: BlockingLLM
    ) -> None:
        client, _, first, results = self._held(tmp_path, blocking, queue=0)
        try:
            started = time.monotonic()
            refused = client.post(ASK, json=QUESTION)
            streamed = client.post(ASK, json={**QUESTION, "stream": True})
            assert time.monotonic() - started < 5  # at once, not after the first answer
            for response in (refused, streamed):
                assert response.status_code == 503
                assert response.headers["content-type"].startswith("application/json")
                assert response.json()["error"]["code"] == "model_busy"
                assert int(response.headers["retry-after"]) >= 1
            blocking.release.set()
            first.join(10)
            assert len(blocking.calls) == 1  # the refused never reached the model
            [answer] = results
            assert answer.status_code == 200
            assert answer.json()["answer"] == "Yes. It works on induction [1]."
            again = client.post(ASK, json=QUESTION)  # the place was given back
            assert again.status_code == 200
        finally:
            blocking.release.set()
            first.join(10)
            client.__exit__(None, None, None)

    def test_a_waiting_asker_is_told_its_place_then_answered(
        self, tmp_path: Path, store: EmbeddedStore, blocking: BlockingLLM
    ) -> None:
        client, services, first, first_results = self._held(tmp_path, blocking, queue=1)
        try:
            second, second_results = _in_thread(
                lambda: client.post(ASK, json={**QUESTION, "stream": True})
            )
            _until(lambda: services.answers.admission.state()["waiting"] == 1)
            full = client.post(ASK, json=QUESTION)  # one waits: the line is full
            assert full.status_code == 503 and full.json()["error"]["code"] == "model_busy"
            assert second.is_alive() and first.is_alive()
            blocking.release.set()
            first.join(10)
            second.join(10)
            assert first_results[0].status_code == 200
            [response] = second_results
            assert response.status_code == 200
            events = parse_sse(response.text)
            assert events[0] == ("queued", {"place": 1})
            assert [kind for kind, _ in events[1:]] == ["token", "final"]
            assert events[1][1]["text"] == events[-1][1]["answer"]
            assert events[-1][1]["answer"] == "Yes. It works on induction [1]."
            assert len(blocking.calls) == 2
        finally:
            blocking.release.set()
            first.join(10)
            client.__exit__(None, None, None)

    def test_search_and_health_answer_while_the_generator_is_held(
        self, tmp_path: Path, store: EmbeddedStore, blocking: BlockingLLM
    ) -> None:
        client, _, first, results = self._held(tmp_path, blocking, queue=0)
        try:
            started = time.monotonic()
            health = client.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            search = client.post("/search", json={"query": "headphones", "cache": False})
            assert search.status_code == 200 and search.json()["results"]
            assert client.get("/products/pan-lodge").status_code == 200
            assert time.monotonic() - started < 5
            assert first.is_alive()  # still held all along
            blocking.release.set()
            first.join(10)
            assert results[0].status_code == 200
        finally:
            blocking.release.set()
            first.join(10)
            client.__exit__(None, None, None)
