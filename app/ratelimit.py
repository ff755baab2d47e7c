"""Rate limits: flask-limiter's storage and counters, checked by the request pipeline.

Views declare their limits (`@blp.needs(limits=(per_ip("login"), per_account("login")))`,
app/needs.py); step 5 of the pipeline (`check`) spends one unit of each before the view
runs and answers 429 problem+json with `Retry-After` once one is spent. Services spend
budgets of their own with `consume` (events per ingest key, audited probes per actor).
Counters live in `RATELIMIT_STORAGE_URI`: `memory://` for one process, `redis://` when
processes share them. Each app gets its own `Limiter`: one shared module-level instance
would let the last app built decide for all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from limits.errors import StorageError

from app.config import Settings
from app.errors import ApiError, Unavailable
from app.needs import Limit

if TYPE_CHECKING:  # annotations only: nothing here can test an actor's class
    from app.authz.actors import Principal

PREFIX = "tenant-api"


def init_app(app: Flask) -> Limiter:
    settings = app.extensions["settings"]
    app.config.update(
        RATELIMIT_ENABLED=settings.ratelimit_enabled,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
        RATELIMIT_HEADERS_ENABLED=False,  # Retry-After is set on the 429 itself
        RATELIMIT_KEY_PREFIX=PREFIX,
        RATELIMIT_SWALLOW_ERRORS=False,
        # Counters unreachable: `consume` answers 503 rather than hang or fail with a 500.
        RATELIMIT_STORAGE_OPTIONS=_storage_options(settings),
    )
    limiter = Limiter(key_func=get_remote_address)
    limiter.init_app(app)
    app.extensions["ratelimit"] = limiter
    return limiter


def _storage_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {"wrap_exceptions": True}
    if not settings.ratelimit_storage_uri.startswith("memory://"):
        timeout = settings.ratelimit_storage_timeout_seconds
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout)
    return options


def storage_check() -> Callable[[], bool] | None:
    """Readiness: a check that the counters' storage answers; None when the counters live
    in this process or limits are off (nothing to check)."""
    limiter: Limiter = current_app.extensions["ratelimit"]
    uri = current_app.extensions["settings"].ratelimit_storage_uri
    if not limiter.enabled or uri.startswith("memory://"):
        return None
    return limiter.storage.check


def _client() -> str:
    return f"ip:{get_remote_address()}"


def _account() -> str:
    """The account a request is about: the email its body names (login, register), else
    the actor calling."""
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    if isinstance(email, str) and email:
        return "email:" + email.strip().lower()[:320]
    actor: Principal | None = g.get("actor")
    if actor is not None:
        return f"actor:{actor.id}"
    return _client()


def _oauth_client() -> str:
    """The OAuth client a token request names (HTTP Basic, else its form), else the IP."""
    auth = request.authorization
    named = auth.username if auth is not None and auth.username else request.form.get(
        "client_id") if g.get("needs") is not None and g.needs.forms else None
    return f"client:{named[:64]}" if named else _client()


KEYS = {"ip": _client, "account": _account, "client": _oauth_client}


def check(limits: tuple[Limit, ...]) -> None:
    """Pipeline step 5: spend one of each declared limit; 429 when one is spent."""
    settings = current_app.extensions["settings"]
    for limit in limits:
        wait = consume(getattr(settings, limit.setting), f"{limit.name}:{limit.per}",
                       KEYS[limit.per](), 1)
        if wait is not None:
            raise ApiError.of(429, "Too many requests; retry later.",
                              headers={"Retry-After": str(wait)})


def consume(limit: str, scope: str, key: str, cost: int) -> int | None:
    """Spend `cost` of `key`'s budget under `limit` in this app's storage. Returns the
    seconds to wait when the budget is spent, else None."""
    limiter: Limiter = current_app.extensions["ratelimit"]
    if not limiter.enabled or cost <= 0:
        return None
    item = parse(limit)
    try:
        if limiter.limiter.hit(item, PREFIX, scope, key, cost=cost):
            return None
        reset = limiter.limiter.get_window_stats(item, PREFIX, scope, key).reset_time
    except StorageError as exc:
        # What each limit should do without its counters (refuse, or let through) is a
        # decision of its own; until it is made, refusing is the safe answer.
        raise Unavailable("The rate-limit storage is unavailable; retry later.") from exc
    return max(1, math.ceil(reset - time.time()))
