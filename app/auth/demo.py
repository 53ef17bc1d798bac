"""Demo shopper sessions for the web page on a laptop or a trial (``WEB_DEMO``): short-lived
HS256 tokens for random demo shoppers (``demo-`` and 16 hex digits), signed with a secret made
on first use in ``DATA_DIR/web-demo-secret`` (owner only) and shared by every worker. Verified
like any shopper token (`app.auth.tokens.ShopperTokens`), with their own issuer."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

import jwt

DEMO_ISSUER = "shopguide-web-demo"
DEMO_USER_PATTERN = r"^demo-[0-9a-f]{16}$"
DEMO_LIFETIME_S = 12 * 3600
_DEMO_USER = re.compile(DEMO_USER_PATTERN)


def demo_secret(path: Path) -> str:
    """The demo signing secret in ``path``, made (owner-only, without racing another worker)
    when there is none."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it first
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    return secret


def new_demo_user() -> str:
    """A fresh demo shopper id."""
    return f"demo-{secrets.token_hex(8)}"


def is_demo_user(user_id: str) -> bool:
    """Whether ``user_id`` is a demo shopper's id."""
    return _DEMO_USER.fullmatch(user_id) is not None


def demo_token(secret: str, user_id: str, *, lifetime_s: int = DEMO_LIFETIME_S) -> str:
    """A shopper token for the demo shopper ``user_id``."""
    if not is_demo_user(user_id):
        msg = f"not a demo shopper id: {user_id!r}"
        raise ValueError(msg)
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + lifetime_s, "iss": DEMO_ISSUER}
    return jwt.encode(claims, secret, algorithm="HS256")
