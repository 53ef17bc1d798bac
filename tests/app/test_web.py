"""The web page's server side: the page and its assets, and demo shopper sessions."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import build_services
from app.settings import Settings
from generation.llm.fake import RecordingLLM
from retrieval.stores.embedded import EmbeddedStore


def _client(tmp_path: Path, **values: Any) -> TestClient:
    settings = Settings(data_dir=tmp_path, embedder="hashing-256", _env_file=None, **values)
    return TestClient(create_app(services=build_services(settings, llm=RecordingLLM())))


@pytest.fixture
def client(tmp_path: Path, store: EmbeddedStore) -> Iterator[TestClient]:
    with _client(tmp_path) as client:  # no credentials: what a browser opening the page has
        yield client


def test_the_page_is_served_at_the_root_with_a_policy_that_lets_it_run(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/web/assets/app.js"' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy


@pytest.mark.parametrize(
    ("name", "kind"),
    [("app.js", "text/javascript"), ("i18n.js", "text/javascript"), ("style.css", "text/css")],
)
def test_assets_come_from_the_package(client: TestClient, name: str, kind: str) -> None:
    response = client.get(f"/web/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(kind)
    assert response.content


@pytest.mark.parametrize("name", ["nope.js", "index.html", "..%2F__init__.py", "__init__.py"])
def test_only_the_shipped_assets_are_served(client: TestClient, name: str) -> None:
    response = client.get(f"/web/assets/{name}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_demo_session_is_a_shopper_who_can_see_only_their_own_data(
    client: TestClient, tmp_path: Path
) -> None:
    body = client.post("/web/session", json={}).json()
    user, token = body["user_id"], body["token"]
    assert user.startswith("demo-") and len(user) == 21 and body["expires_in"] == 12 * 3600
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/users/{user}/profile", headers=auth).status_code == 200
    assert client.get("/users/demo-0000000000000000/profile", headers=auth).status_code == 403
    assert client.post("/search", json={"query": "headphones"}, headers=auth).status_code == 200
    # the same shopper again, with a fresh token
    again = client.post("/web/session", json={"user_id": user}).json()
    assert again["user_id"] == user
    secret = tmp_path / "web-demo-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "body", [{"user_id": "alice"}, {"user_id": "demo-XYZ"}, {"user": "demo-0123456789abcdef"}]
)
def test_a_session_only_for_demo_shoppers(client: TestClient, body: dict[str, str]) -> None:
    response = client.post("/web/session", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "values",
    [
        {"web_demo": False},
        {"local_key": False},
        {"shopper_token_secret": "s" * 32},
    ],
)
def test_no_demo_sessions_where_the_shop_signs_its_shoppers_tokens(
    tmp_path: Path, store: EmbeddedStore, values: dict[str, Any]
) -> None:
    with _client(tmp_path, **values) as client:
        response = client.post("/web/session", json={})
        assert response.status_code == 404
        assert "shopper token" in response.json()["error"]["message"]
        assert client.get("/").status_code == 200  # the page itself still loads
    assert not (tmp_path / "web-demo-secret").exists()
