"""The API serves search while the generator is installed or loaded, and says when to come back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import build_services
from app.settings import Settings
from generation.llm.base import GenerationError
from generation.llm.deferred import DeferredLLM
from generation.llm.fake import RecordingLLM
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH
from tests.quoting import QuotingLLM


class Installing:
    """A generator factory that fails as a missing package does until ``install`` is set."""

    def __init__(self) -> None:
        self.install = threading.Event()

    def __call__(self) -> RecordingLLM:
        if not self.install.is_set():
            msg = "cannot load model /srv/models/x.gguf: llama-cpp-python is not installed"
            raise GenerationError(msg)
        return QuotingLLM(default='[?] "noise cancelling: True" It has noise cancelling.')


@pytest.fixture
def installing() -> Installing:
    return Installing()


@pytest.fixture
def client(tmp_path: Path, store: EmbeddedStore, installing: Installing) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path, embedder="hashing-256", semantic_min_similarity=0.2, _env_file=None
    )
    llm = DeferredLLM(installing, name="x.gguf", retry_s=0.01, max_retry_s=0.05)
    with TestClient(create_app(services=build_services(settings, llm=llm)), headers=AUTH) as client:
        yield client


def test_search_is_served_while_the_generator_is_missing(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    generator = health.json()["generator"]
    assert generator["state"] in ("starting", "loading", "waiting")
    assert client.post("/search", json={"query": "headphones"}).json()["results"]
    assert client.get("/products/hp-anker").status_code == 200


def test_answers_say_when_to_come_back(client: TestClient) -> None:
    response = client.post("/advice", json={"question": "good headphones"})
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "model_not_ready" and "Retry-After" in error["message"]
    assert "/srv/models" not in response.text  # no internal path reaches the client


def test_a_streamed_answer_says_when_to_come_back(client: TestClient) -> None:
    """As a plain HTTP error, not a stream: nothing was streamed before it failed."""
    response = client.post("/advice", json={"question": "good headphones", "stream": True})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "model_not_ready"
    asked = client.post(
        "/products/pan-lodge/ask", json={"question": "does it work on induction?", "stream": True}
    )
    assert asked.status_code == 503 and int(asked.headers["retry-after"]) >= 1


def test_answers_once_installed(client: TestClient, installing: Installing) -> None:
    installing.install.set()
    llm = client.app.state.services.llm  # type: ignore[attr-defined]
    assert llm.wait(10)
    health = client.get("/health").json()["generator"]
    assert health["state"] == "ready" and health["attempts"] >= 1
    answer = client.post("/advice", json={"question": "good headphones"})
    assert answer.status_code == 200 and answer.json()["citations"]
    assert answer.json()["answer"] == "It has noise cancelling [1]."
