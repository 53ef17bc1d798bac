"""``/docs`` works offline: Swagger UI's assets come from the API, not from a CDN."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from swagger_ui_bundle import swagger_ui_path

from app.main import create_app
from app.settings import Settings
from tests.conftest import AUTH


class _Links(HTMLParser):
    """The URLs of a page's scripts, style sheets and icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    # No `with`: the lifespan, which builds the services, does not run; the docs need none.
    settings = Settings(data_dir=tmp_path, embedder="hashing-256", _env_file=None)
    return TestClient(create_app(settings), headers=AUTH)


def test_docs_page_loads_no_asset_from_another_host(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = _links(response.text)
    assert any(u.endswith(".js") for u in urls) and any(u.endswith(".css") for u in urls)
    external = [u for u in urls if re.match(r"(https?:)?//", u)]
    assert not external, f"/docs loads {external} from another host: serve them from /docs/assets"


def test_docs_assets_are_served(client: TestClient) -> None:
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in _links(client.get("/docs").text):
        response = client.get(url)
        assert response.status_code == 200, url
        kind = kinds[Path(url).suffix]
        assert kind in response.headers["content-type"], (url, response.headers["content-type"])
        assert len(response.content) > (100 if kind == "image/png" else 10_000), url


def test_the_bundled_swagger_ui_renders_openapi_3_1(client: TestClient) -> None:
    version = re.fullmatch(r"swagger-ui-(\d+)\.\d+\.\d+", Path(str(swagger_ui_path)).name)
    assert version, swagger_ui_path
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert int(version.group(1)) >= 5, "Swagger UI 4 shows 'Unable to render' for OpenAPI 3.1"


def test_openapi_schema_loads_without_the_docs_routes(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/search" in paths
    assert not any(path.startswith("/docs") for path in paths)


def test_oauth2_redirect_is_served_and_redoc_is_not(client: TestClient) -> None:
    response = client.get("/docs/oauth2-redirect")
    assert response.status_code == 200 and "oauth2" in response.text
    assert not _links(response.text)
    assert client.get("/redoc").status_code == 404
