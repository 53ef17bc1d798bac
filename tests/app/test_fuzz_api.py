"""A property-based fuzzer driven by the API's own OpenAPI schema (schemathesis), against the
real app built in process (embedded store, hashing embedder, an LLM double): every operation,
with the admin key, with no credentials, and with a shopper token for the shopper the request
names and for somebody else. For every request: no 5xx, an answer within a time bound, and a
status, content type, headers and body the schema documents; a server-sent stream ends in one
``final`` (or ``error``) event that conforms too. Without credentials every operation but
``/health`` is a 401 (once routed: a 404 or 405 comes first, and so do a 413 for a body over
the limit and a 422 for one that is not JSON at all, read before the credentials).

Deterministic: a fixed seed, derandomized Hypothesis, no example database, a bounded number of
examples per operation (schemathesis' coverage phase, its schema examples, then fuzzing)."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import hypothesis.configuration
import jsonschema
import jwt
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from app.main import create_app
from app.services import build_services
from app.settings import Settings
from generation.llm.base import ChatMessage, GenerationOptions
from generation.llm.fake import RecordingLLM
from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH, PRODUCTS, write_jsonl
from tests.quoting import sources_in
from tests.sse import parse_sse

# Hypothesis' own caches (Unicode tables, constants) outside the working tree.
hypothesis.configuration.set_hypothesis_home_dir(
    Path(tempfile.gettempdir()) / "shopguide-hypothesis"
)

SECRET = "f" * 40  # the shopper tokens' HS256 secret
SOMEONE_ELSE = "someone-else"
# and the docs, which the schema does not list; the web page's demo sessions are how a browser
# without credentials gets some
PUBLIC = {"/health", "/web/session"}
MAX_RESPONSE_S = 10.0  # schemathesis' max_response_time check, on every response
REQUEST_TIMEOUT_S = 10.0  # the transport's read timeout (a stream is cut there)
HANG_S = 30.0  # no answer at all by then: a hang, reported without waiting for it

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20250101,
        "generation": {
            "mode": "all",  # valid requests, and requests the schema rules out
            "max-examples": 15,  # fuzzing, per operation and caller; coverage adds its own
            "deterministic": True,
            "database": "none",
            "with-security-parameters": False,  # the credentials are the test's
        },
        "phases": {"stateful": {"enabled": False}},
        # Half the product ids drawn are the catalog's: a product found, not only 404s.
        "dictionaries": {"products": {"values": [p["id"] for p in PRODUCTS]}},
        "parameters": {"path.product_id": {"dictionary": "products", "probability": 0.5}},
        "request-timeout": REQUEST_TIMEOUT_S,
        "max-stream-events": 1000,  # read a stream to its end
        "checks": {
            "max_response_time": MAX_RESPONSE_S,
            # Pydantic's lax mode takes 0 for false and a number for a time: leniency, no bug.
            "negative_data_rejection": {"enabled": False},
            # Replaced by `valid_requests_are_accepted`: JSON Schema cannot say every rule.
            "positive_data_acceptance": {"enabled": False},
        },
    }
)


def _schema_document() -> dict[str, Any]:
    """The OpenAPI document: it depends on no service, so an app that never starts gives it."""
    return create_app(Settings(_env_file=None)).openapi()


DOCUMENT = _schema_document()


class DeferredApp:
    """The ASGI app the schema's cases go to: the fuzzed app, which the ``api`` fixture builds
    and starts (the lifespan is the fixture's: this one answers schemathesis' at once)."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.app is not None, "the api fixture sets the app"
        await self.app(scope, receive, send)


APP = DeferredApp()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
SCHEMA.app = APP  # the checks' own requests (ignored_auth's probes) go there too


class CitingLLM(RecordingLLM):
    """Answers by quoting the first words of the first source the prompt shows (or says it
    cannot tell), whatever the question: the answer's checks then keep or drop the claim."""

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        prompt = messages[-1].content if messages else ""
        shown = sources_in(prompt) if "<sources>" in prompt else {}
        reply = "I cannot tell from these sources."
        for number, (title, text) in sorted(shown.items()):
            words = " ".join((text or title).replace('"', " ").split()[:4])
            if words:
                reply = f'[{number}] "{words}" {words}.'
                break
        self.calls.clear()  # nothing to inspect here: keep memory flat
        self.replies.append(reply)
        yield from super().stream(messages, options, cancelled=cancelled)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The app over an embedded index of the test catalog, with shopper tokens, and without
    rate limits: the fuzzer would spend them at once (429 is tested in test_limits)."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    store = EmbeddedStore(data_dir / "index")
    catalog = read_catalog(write_jsonl(data_dir / "catalog.jsonl", PRODUCTS))
    index_catalog(catalog, store, HashingEmbedder(256), progress=False)
    store.close()
    settings = Settings(
        data_dir=data_dir,
        embedder="hashing-256",
        semantic_min_similarity=0.2,
        shopper_token_secret=SECRET,
        rate_limit_search_per_minute=0,
        rate_limit_answers_per_minute=0,
        max_body_bytes=1024,  # the least allowed: the larger bodies drawn are a 413
        _env_file=None,
    )
    services = build_services(settings, llm=CitingLLM())
    app = create_app(services=services)
    try:
        with TestClient(app):  # runs the app's lifespan: access rules, then closing the limits
            APP.app = app
            yield app
    finally:
        APP.app = None
        services.close()


# -- credentials -------------------------------------------------------------------------------


def _token(subject: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": subject, "iat": now, "exp": now + 3600}, SECRET, algorithm="HS256")


def _named_user(case: schemathesis.Case) -> str | None:
    """The shopper a request is about: its path's, else its body's (the first event's)."""
    named = (case.path_parameters or {}).get("user_id")
    body = case.body if isinstance(case.body, dict) else {}
    if named is None:
        named = body.get("user_id")
    events = body.get("events")
    if named is None and isinstance(events, list) and events and isinstance(events[0], dict):
        named = events[0].get("user_id")
    return named if isinstance(named, str) and named else None


def _credentials(who: str, case: schemathesis.Case) -> dict[str, str]:
    if who == "admin":
        return dict(AUTH)
    if who == "anonymous":
        return {}
    subject = _named_user(case) if who == "shopper-self" else None
    return {"Authorization": f"Bearer {_token(subject or SOMEONE_ELSE)}"}


# -- checks beyond schemathesis' own ---------------------------------------------------------

# The request rules JSON Schema cannot express (between fields, or a time's range): a
# schema-valid request may break them (422), and nothing else.
UNDOCUMENTED_RULES = (
    "price_min must not be greater than price_max",
    "event needs a product_id",
    "event needs its query",
    "event time must not be before 1970",
)


def valid_requests_are_accepted(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A request the schema allows is not a 422, unless it breaks one of the rules JSON Schema
    cannot express: any other 422 is a rule the schema should document."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    fields = response.json()["error"].get("fields") or []
    unexplained = [f for f in fields if not any(r in f["reason"] for r in UNDOCUMENTED_RULES)]
    assert not unexplained, f"a request the schema allows was refused: {unexplained}"
    return None


_FINAL = jsonschema.Draft202012Validator(
    {"$ref": "#/components/schemas/AnswerResponse", "components": DOCUMENT["components"]}
)


def streams_end_in_one_final_or_error(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A server-sent stream (the schema cannot describe its events): ``queued`` and ``token``
    events, then one ``final`` event that is an AnswerResponse, or one ``error`` event."""
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("text/event-stream"):
        return None
    assert not response.stream_cut_short, "the stream did not end in time"
    events = parse_sse(response.content.decode("utf-8"))
    names = [name for name, _ in events]
    assert names and names[-1] in ("final", "error"), f"no final event: {names}"
    assert set(names[:-1]) <= {"queued", "token"}, f"unexpected events: {names}"
    name, data = events[-1]
    if name == "final":
        errors = [e.message for e in _FINAL.iter_errors(data)]
        assert not errors, f"the final event does not conform to AnswerResponse: {errors}"
    else:
        error = data["error"]
        assert {"code", "message", "status"} <= set(error) and error["status"] >= 500, error
    return None


def a_405_allows_the_documented_methods(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A 405's Allow lists the methods the schema documents at the path (schemathesis' own
    checks want the header, but take an empty one)."""
    if response.status_code != 405 or not _names_its_path(case):
        return None
    allow = ",".join(response.headers.get("allow") or []).split(",")
    allowed = {method.strip() for method in allow if method.strip()} - {"HEAD", "OPTIONS"}
    documented = {method.upper() for method in DOCUMENT["paths"][case.operation.path]}
    assert allowed == documented, f"Allow: {sorted(allowed)}, documented: {sorted(documented)}"
    return None


CHECKS = [
    valid_requests_are_accepted,
    streams_end_in_one_final_or_error,
    a_405_allows_the_documented_methods,
]


# -- the fuzzer --------------------------------------------------------------------------------


def _call_and_validate(case: schemathesis.Case, headers: dict[str, str]) -> schemathesis.Response:
    """``case.call_and_validate``, with the checks above and a bound on hangs."""
    response = _call(case, headers)
    case.validate_response(
        response, additional_checks=CHECKS, headers=headers, transport_kwargs={"headers": headers}
    )
    return response


def _call(case: schemathesis.Case, headers: dict[str, str]) -> schemathesis.Response:
    """``case.call``, failing after ``HANG_S`` without waiting for it: the transport's own
    timeout cannot cut a sync endpoint stuck in its worker thread."""
    outcome: dict[str, Any] = {}

    def send() -> None:
        try:
            outcome["response"] = case.call(headers=headers)
        except BaseException as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    sender.join(HANG_S)
    if sender.is_alive():
        pytest.fail(f"no response in {HANG_S} s to {case.as_curl_command(headers=headers)}")
    if "error" in outcome:
        raise outcome["error"]
    response: schemathesis.Response = outcome["response"]
    return response


def _names_its_path(case: schemathesis.Case) -> bool:
    """Whether a request's URL is its operation's path: not with a path parameter that is
    empty or holds a '/' (another path, or none: 404)."""
    return all(
        isinstance(value, str) and value and "/" not in value
        for value in (case.path_parameters or {}).values()
    )


def _reaches_the_route(case: schemathesis.Case) -> bool:
    """Whether a request is routed to its operation: routing answers first (405 for another
    method, 404 for another path), then credentials count."""
    return case.method.upper() == case.operation.method.upper() and _names_its_path(case)


def _is_unreadable_body(response: schemathesis.Response) -> bool:
    """A 422 for a body that is not JSON at all: FastAPI reads the body before the
    credentials (a well-formed body is validated after them)."""
    if response.status_code != 422:
        return False
    fields = response.json()["error"].get("fields") or []
    return bool(fields) and all(
        f["field"] == "body" and f["reason"].startswith("invalid JSON") for f in fields
    )


@pytest.mark.parametrize("who", ["admin", "anonymous", "shopper-self", "shopper-other"])
@SCHEMA.parametrize()
def test_api(case: schemathesis.Case, who: str, api: FastAPI) -> None:
    response = _call_and_validate(case, _credentials(who, case))
    if who == "anonymous" and case.operation.path not in PUBLIC and _reaches_the_route(case):
        assert response.status_code in (401, 413) or _is_unreadable_body(response), (
            response.status_code,
            response.content[:300],
        )


@SCHEMA.include(path_regex="^/(advice|products/.+/ask)$").parametrize()
def test_answers_stream(case: schemathesis.Case, api: FastAPI) -> None:
    """The answers again, asked for as server-sent events (the other way to ask is the body's
    ``stream``, which the first test draws)."""
    _call_and_validate(case, {**AUTH, "Accept": "text/event-stream"})
