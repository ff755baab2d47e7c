"""Rate limits: flask-limiter's storage and counters, checked by the request pipeline.

Views declare their limits (`@blp.needs(limits=(per_ip("login"), per_account("login")))`,
app/needs.py); step 5 of the pipeline (`check`) spends one unit of each before the view
runs and answers 429 problem+json with `Retry-After` once one is spent. Services spend
budgets of their own with `consume` (events per ingest key, audited probes per actor).
Counters live in `RATELIMIT_STORAGE_URI`: `memory://` for one process, `redis://` when
processes share them. Each app gets its own `Limiter`: one shared module-level instance
would let the last app built decide for all.

Without the counters (Redis down or unreachable), each limit does what was decided for it
(README, Operating it): the credential and mail limits, and failed-password throttling,
fail closed (503 with `Retry-After`: refusing a login is safer than unlimited guessing);
event ingestion and the audit-probe cap fail open (losing analytics or an audit line is
worse, and the body limits still bound a batch). The storage is asked with a short socket
timeout and no retry; once it failed, `Health` skips it for
RATELIMIT_STORAGE_RETRY_SECONDS and logs `ratelimit.storage_unavailable` once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from limits.errors import StorageError
from redis.backoff import NoBackoff
from redis.retry import Retry

from app import metrics
from app.config import Settings
from app.errors import ApiError, Unavailable
from app.health import Health
from app.needs import Limit

if TYPE_CHECKING:  # annotations only: nothing here can test an actor's class
    from app.authz.actors import Principal

PREFIX = "tenant-api"
T = TypeVar("T")


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
    # flask-limiter's own request hooks check the limits its decorators and defaults set;
    # this app sets none (limits are the pipeline's step 5, and `consume`), so they would
    # only cost every request ~0.1 ms of CPU. `init_app` adds them unless the app already
    # lists the limiter: listed first, it configures the storage and adds no hook.
    app.extensions.setdefault("limiter", set()).add(limiter)
    limiter.init_app(app)
    app.extensions["ratelimit"] = limiter
    app.extensions["ratelimit.health"] = Health(
        "ratelimit.storage", settings.ratelimit_storage_retry_seconds)
    return limiter


def _storage_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {"wrap_exceptions": True}
    if not settings.ratelimit_storage_uri.startswith("memory://"):
        timeout = settings.ratelimit_storage_timeout_seconds
        # redis-py retries a failed command 3 times with backoff by default: a dead Redis
        # would hold each request for seconds. One try; `Health` decides when to try again.
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))
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
                       KEYS[limit.per](), 1, fails_open=limit.fails_open)
        if wait is not None:
            raise ApiError.of(429, "Too many requests; retry later.",
                              headers={"Retry-After": str(wait)})


def consume(limit: str, scope: str, key: str, cost: int, *, fails_open: bool) -> int | None:
    """Spend `cost` of `key`'s budget under `limit` in this app's storage. Returns the
    seconds to wait when the budget is spent, else None. Without the storage: None when
    the limit `fails_open`, else Unavailable (503)."""
    limiter: Limiter = current_app.extensions["ratelimit"]
    if not limiter.enabled or cost <= 0:
        return None
    item = parse(limit)

    def spend() -> int | None:
        if limiter.limiter.hit(item, PREFIX, scope, key, cost=cost):
            return None
        reset = limiter.limiter.get_window_stats(item, PREFIX, scope, key).reset_time
        metrics.rate_limited(scope)
        return max(1, math.ceil(reset - time.time()))

    return guarded(current_app.extensions["ratelimit.health"], spend, fails_open=fails_open)


def guarded(health: Health, call: Callable[[], T], *, fails_open: bool) -> T | None:
    """`call()` on the counters' storage, unless it is known to be down; when it is, or
    the call fails: None (let through) if `fails_open`, else a 503 with `Retry-After`."""
    if health.known() is not False:
        try:
            result = call()
        except StorageError as exc:
            health.record(False, type(exc.storage_error).__name__)
        else:
            if not health.up:
                health.record(True)
            return result
    if fails_open:
        return None
    raise Unavailable("The rate-limit storage is unavailable; retry later.",
                      headers={"Retry-After": str(health.retry_after())}, logged=True)
