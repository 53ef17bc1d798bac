"""Shoppers' tokens: short-lived JWTs the shop signs (HS256 with a shared secret, or RS256,
ES256 or EdDSA with its private key, checked here with the public key) whose subject is the
shopper's user id. Checked with PyJWT: signature, expiry (required), and the issuer and
audience when configured."""

from __future__ import annotations

import re

import jwt

from personalization.events import USER_ID_PATTERN

ASYMMETRIC = ("RS256", "ES256", "EdDSA")
MAX_LIFETIME_S = 24 * 3600


class InvalidToken(ValueError):
    """A token that is not a valid shopper token, and why (safe to tell the caller)."""


class ShopperTokens:
    """Verifies shopper tokens against ``key`` (an HS256 secret, or a PEM public key)."""

    def __init__(
        self,
        key: str,
        *,
        asymmetric: bool,
        issuer: str | None = None,
        audience: str | None = None,
        leeway_s: float = 30.0,
    ) -> None:
        if not asymmetric and len(key.encode()) < 32:
            msg = "the shopper token secret must be at least 32 bytes"
            raise ValueError(msg)
        self.key = key
        self.algorithms = list(ASYMMETRIC) if asymmetric else ["HS256"]
        self.issuer, self.audience, self.leeway_s = issuer, audience, leeway_s

    def subject(self, token: str) -> str:
        """The user id ``token`` is for, or `InvalidToken`."""
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"invalid token: {exc}") from exc
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_S:
            msg = f"the token lives longer than {MAX_LIFETIME_S} s: shopper tokens are short-lived"
            raise InvalidToken(msg)
        subject = claims["sub"]
        if not isinstance(subject, str) or not re.match(USER_ID_PATTERN, subject):
            raise InvalidToken("the token's subject is not a user id")
        return subject
