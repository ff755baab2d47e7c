"""Throttling of the endpoints that guess or mint credentials (flask-limiter).

Limits apply per client IP and per account (the email of a login, the user creating a
key), and answer 429 problem+json with `Retry-After`. Counters live in
`RATELIMIT_STORAGE_URI`: `memory://` for one process, `redis://` when processes share them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address)


def init_app(app: Flask) -> None:
    settings = app.extensions["settings"]
    app.config.update(
        RATELIMIT_ENABLED=settings.ratelimit_enabled,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_KEY_PREFIX="tenant-api",
        RATELIMIT_SWALLOW_ERRORS=False,
    )
    limiter.init_app(app)


def _setting(name: str) -> Callable[[], str]:
    return lambda: getattr(current_app.extensions["settings"], name)


def _account() -> str:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    if isinstance(email, str) and email:
        return "email:" + email.strip().lower()[:320]
    actor = g.get("actor")
    if actor is not None:
        return f"actor:{actor.id}"
    return "ip:" + get_remote_address()


def limit_by_ip(scope: str) -> Any:
    """`RATELIMIT_PER_IP` on this endpoint, per client address."""
    return limiter.limit(
        _setting("ratelimit_per_ip"),
        key_func=lambda: f"ip:{get_remote_address()}",
        scope=f"{scope}:ip",
    )


def limit_by_account(scope: str) -> Any:
    """`RATELIMIT_PER_ACCOUNT` on this endpoint, per email given or actor calling."""
    return limiter.limit(
        _setting("ratelimit_per_account"), key_func=_account, scope=f"{scope}:account"
    )
