"""Nobody but the shop and the shopper: API keys with scopes, shopper tokens for their own
data, 401 and 403 in the API's error shape, keys that rotate without a restart, and keys
that never reach the logs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient

from app.auth import keys as keys_module
from app.auth.keys import KeyFileError, KeyRing, add_key, key_entry, new_key, parse_keys, revoke_key
from app.auth.tokens import InvalidToken, ShopperTokens
from app.cli import main as cli_main
from app.main import create_app
from app.services import build_services
from app.settings import Settings
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH as TEST_AUTH
from tests.quoting import QuotingLLM

SECRET = "s" * 40
SEARCH_KEY = new_key("front-end")
EVENTS_KEY = new_key("tracker")
ADMIN_KEY = new_key("back-office")
KEYS = json.dumps(
    [
        key_entry(SEARCH_KEY, ["search"]),
        key_entry(EVENTS_KEY, ["events"]),
        key_entry(ADMIN_KEY, ["admin"]),
    ]
)
ALICE, BOB = "alice", "bob"
# /web/session: how the web page gets credentials on a laptop (tests/app/test_web.py)
PUBLIC = {"/health", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/web/session"}


def _token(subject: str, *, key: str = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": subject, "iat": now, "exp": now + 600, **claims}
    return jwt.encode(body, key, algorithm=algorithm)


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _client(tmp_path: Path, **settings: Any) -> TestClient:
    config = Settings(
        data_dir=tmp_path,
        embedder="hashing-256",
        semantic_min_similarity=0.2,
        api_keys=KEYS,
        shopper_token_secret=SECRET,
        _env_file=None,
        **settings,
    )
    llm = QuotingLLM(default='[?] "Headphones" These are headphones.')
    return TestClient(create_app(services=build_services(config, llm=llm)))


@pytest.fixture
def client(tmp_path: Path, store: EmbeddedStore) -> Iterator[TestClient]:
    with _client(tmp_path) as client:
        yield client


def _event(user: str, number: int = 0) -> dict[str, Any]:
    return {"event_id": f"{user}-{number}", "user_id": user, "type": "view", "product_id": "hp-jbl"}


# -- who gets in -------------------------------------------------------------------------------


def _routes(client: TestClient) -> list[tuple[str, str]]:
    """Every operation the API documents, with its path filled in."""
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), path.replace("{user_id}", ALICE).replace("{product_id}", "hp-jbl"))
        for path, operations in paths.items()
        for method in operations
        if path not in PUBLIC
    ]


def test_no_credentials_is_401_on_every_endpoint_but_health_and_the_docs(
    client: TestClient,
) -> None:
    routes = _routes(client)
    assert {("POST", "/search"), ("DELETE", f"/users/{ALICE}"), ("POST", "/events")} <= set(routes)
    for method, path in routes:
        response = client.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    for path in ("/health", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize(
    "credential",
    [
        "sg_front-end_" + "x" * 43,  # a known id, a wrong secret
        "sg_nobody_" + "x" * 43,
        "not-a-token",
        _token(ALICE, key="t" * 40),  # signed by someone else
        _token(ALICE, exp=int(time.time()) - 3600),  # expired
    ],
)
def test_a_wrong_key_or_token_is_401(client: TestClient, credential: str) -> None:
    response = client.get("/search", params={"q": "headphones"}, headers=_bearer(credential))
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


def test_a_search_key_searches_and_cannot_erase_post_or_read_profiles(client: TestClient) -> None:
    auth = _bearer(SEARCH_KEY)
    assert (
        client.get("/search", params={"q": "headphones", "user_id": BOB}, headers=auth).status_code
        == 200
    )
    assert client.get("/products/hp-jbl", headers=auth).status_code == 200
    for method, path, body in [
        ("DELETE", f"/users/{ALICE}", None),
        ("GET", f"/users/{ALICE}/profile", None),
        ("POST", "/events", {"events": [_event(ALICE)]}),
    ]:
        response = client.request(method, path, json=body, headers=auth)
        assert response.status_code == 403, (method, path)
        assert "lacks the scope" in response.json()["error"]["message"]


def test_an_events_key_posts_events_and_cannot_search(client: TestClient) -> None:
    auth = _bearer(EVENTS_KEY)
    response = client.post("/events", json={"events": [_event(ALICE), _event(BOB)]}, headers=auth)
    assert response.status_code == 200 and response.json()["accepted"] == 2
    assert client.get("/search", params={"q": "headphones"}, headers=auth).status_code == 403


def test_a_shopper_token_reaches_its_own_data_and_nobody_elses(client: TestClient) -> None:
    alice = _bearer(_token(ALICE))
    admin = _bearer(ADMIN_KEY)
    assert client.post("/events", json={"events": [_event(BOB)]}, headers=admin).status_code == 200
    assert (
        client.post("/events", json={"events": [_event(ALICE)]}, headers=alice).status_code == 200
    )
    # another shopper: read, switch off, erase, post for, search as: all 403
    for method, path, body in [
        ("GET", f"/users/{BOB}/profile", None),
        ("PUT", f"/users/{BOB}/personalization", {"enabled": False}),
        ("DELETE", f"/users/{BOB}", None),
        ("POST", "/events", {"events": [_event(ALICE, 1), _event(BOB, 1)]}),
        ("POST", "/search", {"query": "headphones", "user_id": BOB}),
    ]:
        response = client.request(method, path, json=body, headers=alice)
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "forbidden"
    # nothing of the refused batch was recorded, and Bob is untouched
    bob = client.get(f"/users/{BOB}/profile", headers=admin).json()
    assert bob["personalization"] is True and len(bob["recent_events"]) == 1
    own = client.get(f"/users/{ALICE}/profile", headers=alice).json()
    assert [e["event_id"] for e in own["recent_events"]] == [f"{ALICE}-0"]
    assert (
        client.post(
            "/search", json={"query": "headphones", "user_id": ALICE}, headers=alice
        ).status_code
        == 200
    )
    assert client.get("/products/hp-jbl", headers=alice).status_code == 200
    erased = client.delete(f"/users/{ALICE}", headers=alice)
    assert erased.status_code == 200 and erased.json()["events"] == 1


def test_an_erasure_is_audited_without_personal_data(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.post("/events", json={"events": [_event(BOB)]}, headers=_bearer(ADMIN_KEY))
    with caplog.at_level(logging.INFO, logger="app.audit"):
        assert client.delete(f"/users/{BOB}", headers=_bearer(ADMIN_KEY)).status_code == 200
    (record,) = [r for r in caplog.records if r.name == "app.audit"]
    assert record.getMessage() == "erasure"
    assert record.by == "key:back-office" and record.events == 1  # type: ignore[attr-defined]
    assert BOB not in json.dumps(record.__dict__, default=str)


def test_keys_and_tokens_never_reach_the_logs(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = _token(ALICE)
    wrong = "sg_front-end_" + "y" * 43
    with caplog.at_level(logging.DEBUG):
        for credential in (SEARCH_KEY, token, wrong):
            client.get("/search", params={"q": "headphones"}, headers=_bearer(credential))
    text = "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert "request" in text
    for secret in (SEARCH_KEY, token, wrong, SEARCH_KEY.removeprefix("sg_front-end_")):
        assert secret not in text
    assert "key:front-end" in text  # the key's id names the caller


def test_insecure_local_lets_everyone_in(tmp_path: Path, store: EmbeddedStore) -> None:
    with _client(tmp_path, insecure_local=True) as client:
        assert client.get("/search", params={"q": "headphones"}).status_code == 200
        assert client.delete(f"/users/{ALICE}").status_code == 200


def test_eddsa_tokens_with_a_public_key(tmp_path: Path, store: EmbeddedStore) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    public = tmp_path / "shop.pem"
    public.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with _client(
        tmp_path, shopper_token_public_key=public, shopper_token_issuer="shop.example"
    ) as client:
        good = _token(ALICE, key=pem.decode(), algorithm="EdDSA", iss="shop.example")
        assert client.get(f"/users/{ALICE}/profile", headers=_bearer(good)).status_code == 200
        other_issuer = _token(ALICE, key=pem.decode(), algorithm="EdDSA", iss="evil.example")
        assert (
            client.get(f"/users/{ALICE}/profile", headers=_bearer(other_issuer)).status_code == 401
        )
        hs256 = _token(ALICE, iss="shop.example")  # an HMAC token is not accepted for it
        assert client.get(f"/users/{ALICE}/profile", headers=_bearer(hs256)).status_code == 401


# -- tokens ------------------------------------------------------------------------------------


def test_a_token_must_be_short_lived_and_name_a_user() -> None:
    tokens = ShopperTokens(SECRET, asymmetric=False)
    with pytest.raises(InvalidToken, match="longer than"):
        tokens.subject(_token(ALICE, exp=int(time.time()) + 7 * 86400))
    with pytest.raises(InvalidToken, match="not a user id"):
        tokens.subject(_token("no spaces allowed"))
    with pytest.raises(InvalidToken, match="exp"):
        tokens.subject(jwt.encode({"sub": ALICE, "iat": int(time.time())}, SECRET, "HS256"))
    with pytest.raises(ValueError, match="32 bytes"):
        ShopperTokens("short", asymmetric=False)


# -- keys --------------------------------------------------------------------------------------


def test_a_key_is_stored_as_a_digest_and_checked_whole() -> None:
    ring = KeyRing(KEYS)
    found = ring.check(SEARCH_KEY)
    assert found is not None and found.id == "front-end" and found.scopes == {"search"}
    assert SEARCH_KEY not in KEYS
    assert ring.check(SEARCH_KEY[:-1] + ("A" if SEARCH_KEY[-1] != "A" else "B")) is None
    assert ring.check("sg_front-end") is None and ring.check("") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('[{"id": "Bad Id", "sha256": "' + "0" * 64 + '", "scopes": ["search"]}]', "'id'"),
        ('[{"id": "a", "sha256": "xyz", "scopes": ["search"]}]', "sha256"),
        ('[{"id": "a", "sha256": "' + "0" * 64 + '", "scopes": ["root"]}]', "scopes"),
    ],
)
def test_a_bad_key_list_says_what_and_where(text: str, message: str) -> None:
    with pytest.raises(KeyFileError, match=message) as caught:
        parse_keys(text, "keys.json")
    assert str(caught.value).startswith("keys.json")


def test_keys_rotate_without_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys_module, "RELOAD_EVERY_S", 0.0)
    path = tmp_path / "api-keys.json"
    old = add_key(path, "front-end", ["search"])
    ring = KeyRing("", path)
    assert ring.check(old) is not None
    new = add_key(path, "front-end-2", ["search"])
    assert revoke_key(path, "front-end")
    assert ring.check(old) is None and ring.check(new) is not None
    path.write_text("{ broken", encoding="utf-8")  # a bad edit keeps the keys last read
    assert ring.check(new) is not None
    assert oct(path.stat().st_mode & 0o777) != "0o644"


def test_the_keys_command_prints_a_key_once_and_revokes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOPGUIDE_DATA_DIR", str(tmp_path))
    assert cli_main(["keys", "new", "indexer", "--scopes", "admin"]) == 0
    key = capsys.readouterr().out.strip()
    assert KeyRing("", tmp_path / "api-keys.json").check(key) is not None
    assert key not in (tmp_path / "api-keys.json").read_text()
    assert cli_main(["keys", "list"]) == 0
    assert capsys.readouterr().out.strip() == "indexer\tadmin"
    assert cli_main(["keys", "new", "x", "--scopes", "root"]) == 2
    assert cli_main(["keys", "revoke", "indexer"]) == 0
    assert cli_main(["keys", "revoke", "indexer"]) == 1


def test_the_first_start_makes_one_admin_key_for_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import _local_key

    monkeypatch.delenv("SHOPGUIDE_API_KEYS", raising=False)
    settings = Settings(data_dir=tmp_path, _env_file=None)
    _local_key(settings)
    saved = tmp_path / "local-api-key"
    key = saved.read_text().strip()
    found = KeyRing("", settings.keys_file).check(key)
    assert found is not None and found.scopes == {"admin"}
    assert saved.stat().st_mode & 0o077 == 0 and settings.keys_file.stat().st_mode & 0o077 == 0
    printed = capsys.readouterr().out
    assert str(saved) in printed and key not in printed  # not a terminal: where, not what
    _local_key(settings)  # a second start keeps it
    assert saved.read_text().strip() == key and len(KeyRing("", settings.keys_file)) == 1
    _local_key(Settings(data_dir=tmp_path / "demo", insecure_local=True, _env_file=None))
    assert not (tmp_path / "demo").exists()


def test_where_keys_are_required_none_is_made_and_the_log_says_how_to_add_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The compose stack (``SHOPGUIDE_LOCAL_KEY=false``) starts closed, not with a key."""
    from app.cli import _local_key

    monkeypatch.delenv("SHOPGUIDE_API_KEYS", raising=False)
    monkeypatch.setenv("SHOPGUIDE_LOCAL_KEY", "false")
    settings = Settings(data_dir=tmp_path, _env_file=None)
    _local_key(settings)
    assert not (tmp_path / "local-api-key").exists() and not settings.keys_file.exists()
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "refused (401)" in record.getMessage() and "shopguide keys new" in record.getMessage()
    services = build_services(settings.model_copy(update={"embedder": "hashing-256"}))
    with TestClient(create_app(services=services)) as client:
        assert client.get("/search?q=jbl").status_code == 401
        assert client.get("/search?q=jbl", headers=TEST_AUTH).status_code == 401  # none at all
        assert client.get("/health").status_code == 200


def _follow_up(client: TestClient, credential: str, question: str, conversation: str) -> str:
    body = {"question": question, "conversation_id": conversation}
    response = client.post("/advice", json=body, headers=_bearer(credential))
    assert response.status_code == 200, response.text
    return str(response.json()["follow_up"])


def test_a_conversation_is_continued_only_by_the_caller_that_started_it(
    client: TestClient,
) -> None:
    """The same conversation id from another key, or another shopper, starts afresh: it never
    reads what was shown to someone else. A shopper's is erased with them."""
    alice, bob = _token(ALICE), _token(BOB)
    assert _follow_up(client, SEARCH_KEY, "headphones", "c-1") == "new"
    assert _follow_up(client, ADMIN_KEY, "compare the first two", "c-1") == "new"
    assert _follow_up(client, SEARCH_KEY, "compare the first two", "c-1") == "compare"
    assert _follow_up(client, alice, "headphones", "c-2") == "new"
    assert _follow_up(client, bob, "compare the first two", "c-2") == "new"
    assert _follow_up(client, SEARCH_KEY, "compare the first two", "c-2") == "new"
    assert _follow_up(client, alice, "compare the first two", "c-2") == "compare"
    assert client.delete(f"/users/{ALICE}", headers=_bearer(ADMIN_KEY)).status_code == 200
    assert _follow_up(client, alice, "compare the first two", "c-2") == "new"
