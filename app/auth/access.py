"""Who is calling, and what they may do.

- A **service** (the shop's front-end server, back-office, indexer job) presents an API key
  (`app.auth.keys`) and may do what its scopes allow: ``search`` (search, products, ask,
  advice, for any shopper), ``events`` (write any shopper's events), ``profiles`` (read a
  shopper's profile, switch their personalization), ``admin`` (all of it, and erasure).
- A **shopper** presents a token the shop signed (`app.auth.tokens`) and may search and ask for
  themselves, and read, opt out, erase and post events for their own user id, nobody else's.
- **insecure-local** mode (a laptop demo, logged loudly at start) lets every call in as admin.

Credentials come as ``Authorization: Bearer <key or token>``. None, or one that is not valid,
is `Unauthenticated` (401); a valid one without the right is `Forbidden` (403).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from app.auth.demo import DEMO_ISSUER, demo_secret
from app.auth.keys import KeyRing, key_id
from app.auth.tokens import InvalidToken, ShopperTokens
from app.settings import Settings

logger = logging.getLogger(__name__)


class Unauthenticated(Exception):
    """No credentials, or credentials that are not valid (401)."""


class Forbidden(Exception):
    """Valid credentials without the right to this (403)."""


@dataclass(frozen=True)
class Caller:
    """Who is calling: a service by its key id and scopes, or a shopper by their user id."""

    kind: Literal["service", "shopper", "local"]
    id: str
    scopes: frozenset[str] = frozenset()

    @property
    def user_id(self) -> str | None:
        """The shopper a shopper token is for (None for a service)."""
        return self.id if self.kind == "shopper" else None

    def require(self, scope: str) -> None:
        """`Forbidden` unless a service holding ``scope`` (or ``admin``), or local mode."""
        if self.kind == "local" or scope in self.scopes or "admin" in self.scopes:
            return
        if self.kind == "shopper":
            msg = f"a shopper token cannot do this (it needs a service key with scope '{scope}')"
        else:
            msg = f"key '{self.id}' lacks the scope '{scope}'"
        raise Forbidden(msg)

    def require_for(self, scope: str, user_id: str | None) -> None:
        """`Forbidden` unless allowed ``scope`` for the shopper ``user_id``: a service with the
        scope for anyone, a shopper for themselves (``search``, ``events``, ``profiles`` and
        erasure; None: nobody in particular, allowed for ``search`` only)."""
        if self.kind == "shopper":
            if user_id is None and scope == "search":
                return
            if user_id != self.id:
                msg = f"this token is for user '{self.id}', not '{user_id}'"
                raise Forbidden(msg)
            return
        self.require(scope)

    def owner(self) -> str:
        """The namespace of what this caller keeps for nobody in particular (a conversation
        without a user id): ``key-<key id>`` for a service (``user-<id>`` for a shopper, whose
        things go under their user id instead)."""
        return {"service": "key", "shopper": "user", "local": "local"}[self.kind] + "-" + self.id

    def label(self) -> str:
        """How the caller is named in logs: a service by its key id; a shopper not by name
        (logs hold no personal data); never a key or a token."""
        return {"service": f"key:{self.id}", "shopper": "shopper", "local": "insecure-local"}[
            self.kind
        ]


class Access:
    """Turns an ``Authorization`` header into a `Caller`."""

    def __init__(
        self,
        keys: KeyRing,
        tokens: ShopperTokens | None = None,
        *,
        insecure_local: bool = False,
    ) -> None:
        self.keys, self.tokens, self.insecure_local = keys, tokens, insecure_local

    def caller(self, authorization: str | None) -> Caller:
        """The caller an ``Authorization`` header names, or `Unauthenticated`."""
        if self.insecure_local:
            return Caller("local", "insecure-local", frozenset({"admin"}))
        scheme, _, credential = (authorization or "").strip().partition(" ")
        credential = credential.strip()
        if scheme.casefold() != "bearer" or not credential:
            msg = "credentials required: 'Authorization: Bearer <API key or shopper token>'"
            raise Unauthenticated(msg)
        if key_id(credential) is not None:
            key = self.keys.check(credential)
            if key is None:
                raise Unauthenticated("unknown or revoked API key")
            return Caller("service", key.id, key.scopes)
        if self.tokens is None:
            raise Unauthenticated("not an API key, and shopper tokens are not configured")
        try:
            return Caller("shopper", self.tokens.subject(credential))
        except InvalidToken as exc:
            raise Unauthenticated(str(exc)) from exc


def build_access(settings: Settings) -> Access:
    """The access rules ``settings`` configure: the keys of API_KEYS and of the keys file,
    shopper tokens when a secret or a public key is set (otherwise the web page's demo
    sessions, where they are on), or insecure-local mode."""
    keys = KeyRing(settings.api_keys, settings.keys_file)
    tokens = None
    if settings.shopper_token_public_key is not None:
        tokens = ShopperTokens(
            settings.shopper_token_public_key.read_text(encoding="utf-8"),
            asymmetric=True,
            issuer=settings.shopper_token_issuer,
            audience=settings.shopper_token_audience,
        )
    elif settings.shopper_token_secret is not None:
        tokens = ShopperTokens(
            settings.shopper_token_secret.get_secret_value(),
            asymmetric=False,
            issuer=settings.shopper_token_issuer,
            audience=settings.shopper_token_audience,
        )
    elif settings.web_demo_sessions:
        tokens = ShopperTokens(
            demo_secret(settings.web_demo_secret_file), asymmetric=False, issuer=DEMO_ISSUER
        )
    return Access(keys, tokens, insecure_local=settings.insecure_local)


def log_access(access: Access) -> None:
    """Say at start how callers get in: loudly when anyone does, or nobody can."""
    if access.insecure_local:
        logger.warning(
            "INSECURE-LOCAL MODE: every request is let in as admin without credentials. "
            "For a laptop demo only; never expose this server."
        )
    elif not len(access.keys) and access.tokens is None:
        logger.warning(
            "no API keys and no shopper tokens configured: every request but /health and the "
            "docs gets 401 (`shopguide keys new` makes a key; see README)"
        )
    else:
        logger.info(
            "access: %d API keys, shopper tokens %s",
            len(access.keys),
            "on" if access.tokens is not None else "off",
        )
