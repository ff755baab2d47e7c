"""Signed JWT access tokens (RFC 9068 profile): issue and verify.

Verification trusts nothing the token says about how to verify it: the algorithm must be
in the configured allowlist, the key is chosen by `kid` among our own keys only, headers
that point elsewhere (`jwk`, `jku`, `x5u`, `x5c`, `crit`) are refused, and `iss`, `aud`,
`exp`, `iat`, `sub`, `sid` are required.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from app.auth.keys import KeyStore
from app.config import Settings

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
ALLOWED_HEADERS = {"alg", "kid", "typ"}
MAX_TOKEN_LENGTH = 4096
# Tokens whose signature was verified, per process: a client sends the same token with
# every request until it expires, and the signature check is most of a request's
# authentication (see TokenService.verify_access_token).
VERIFIED_TOKENS = 4096


class InvalidToken(Exception):
    """The token must be refused; the message is for logs, never for the client."""


@dataclass(frozen=True)
class AccessClaims:
    """A verified token. `user_id` is its subject: a person, or for a client credentials
    token the OAuth client itself (then `client_id == user_id` and `session_id` too).
    `scope`: the OAuth scopes capping it (None: a first-party login, unrestricted)."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: int
    client_id: uuid.UUID | None = None
    scope: str | None = None

    @property
    def for_client_itself(self) -> bool:
        return self.client_id is not None and self.client_id == self.user_id


class TokenService:
    def __init__(self, settings: Settings, keys: KeyStore,
                 now: Callable[[], int] | None = None) -> None:
        """`now`: the clock claims are validated on (seconds; the system's by default)."""
        self.settings = settings
        self.keys = keys
        self.algorithms = list(settings.jwt_algorithms)
        self.registry = JWTClaimsRegistry(
            now=now,
            leeway=settings.jwt_leeway_seconds,
            iss={"essential": True, "value": settings.jwt_issuer},
            aud={"essential": True, "value": settings.jwt_audience},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            sid={"essential": True},
        )
        # token -> (kid, the key that verified it, its claims, what they say)
        self._verified: dict[str, tuple[Any, Any, dict[str, Any], AccessClaims]] = {}
        self._verified_lock = threading.Lock()

    def issue_access_token(
        self, user_id: uuid.UUID, session_id: uuid.UUID, *,
        client_id: uuid.UUID | None = None, scope: str | None = None,
    ) -> tuple[str, int]:
        """A person's token (a login's, or an OAuth client's with its `client_id` and
        `scope`, RFC 9068), or with `user_id == session_id == client_id` a client
        credentials token: the client acting with its own role."""
        now = int(time.time())
        ttl = self.settings.jwt_access_ttl_seconds
        key = self.keys.ring().signing
        header = {"alg": self.algorithms[0], "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
        claims = {
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "sub": str(user_id),
            "sid": str(session_id),
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        if client_id is not None:
            claims["client_id"] = str(client_id)
            claims["scope"] = scope or ""
        return jwt.encode(header, claims, key, algorithms=self.algorithms), ttl

    def verify_access_token(self, token: str) -> AccessClaims:
        """The claims of a valid token, else InvalidToken. A token verified before (the
        very same string, signature included) is not decoded and its signature not checked
        again, as long as the key that verified it is still the ring's key of that `kid`
        (a key rotated out refuses it); its time claims (`exp`, `iat`, `nbf`) are validated
        again, on today's clock."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidToken("not a compact JWS")
        known = self._verified.get(token)
        if known is not None:
            kid, key, claims, access = known
            if self.keys.ring().by_kid.get(kid) is key:
                try:  # the clock's claims: the others were checked and cannot change
                    self.registry.validate_exp(claims["exp"])
                    self.registry.validate_iat(claims["iat"])
                    if "nbf" in claims:
                        self.registry.validate_nbf(claims["nbf"])
                except JoseError as exc:
                    raise InvalidToken(type(exc).__name__) from exc
                return access
        return self._verify(token)

    def _verify(self, token: str) -> AccessClaims:
        header = _header(token)
        unexpected = set(header) - ALLOWED_HEADERS
        if unexpected:
            raise InvalidToken(f"unexpected header parameters {sorted(unexpected)}")
        if header.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidToken("not an access token")
        if header.get("alg") not in self.algorithms:
            raise InvalidToken("algorithm not allowed")
        kid = header.get("kid")
        key = self.keys.ring().by_kid.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("unknown key id")
        try:
            decoded = jwt.decode(token, key, algorithms=self.algorithms)
            self.registry.validate(decoded.claims)
            claims = decoded.claims
            client_id = claims.get("client_id")
            scope = claims.get("scope")
            if client_id is not None and not isinstance(scope, str):
                raise InvalidToken("a client's token without its scope")
            access = AccessClaims(
                user_id=uuid.UUID(str(claims["sub"])),
                session_id=uuid.UUID(str(claims["sid"])),
                expires_at=int(claims["exp"]),
                client_id=None if client_id is None else uuid.UUID(str(client_id)),
                scope=scope if client_id is not None else None,
            )
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(type(exc).__name__) from exc
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_TOKENS:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = (kid, key, claims, access)
        return access


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = json.loads(raw)
    # RecursionError: a deeply nested JSON header; it must be a 401, not a 500.
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidToken("unreadable header") from exc
    if not isinstance(header, dict):
        raise InvalidToken("header is not an object")
    return header
