"""Opaque secrets: refresh tokens, API keys (`sk_`), ingest keys (`ik_`).

A key reads `<prefix><32 hex id>_<secret>`: the id finds the row, then the SHA-256 of
the secret is compared in constant time. Secrets carry 256 bits of randomness, so a
fast hash is the right one (no password stretching needed), and only the hash is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid

API_KEY_PREFIX = "sk_"
INGEST_KEY_PREFIX = "ik_"
_KEY = re.compile(r"^(sk_|ik_)([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


def format_key(prefix: str, key_id: uuid.UUID, secret: str) -> str:
    return f"{prefix}{key_id.hex}_{secret}"


def parse_key(token: str) -> tuple[str, uuid.UUID, str] | None:
    """(prefix, key id, secret) of a well-formed key, else None."""
    match = _KEY.match(token)
    if match is None:
        return None
    return match.group(1), uuid.UUID(match.group(2)), match.group(3)
