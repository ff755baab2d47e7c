"""Throttling of the endpoints that guess or mint credentials (flask-limiter).

Limits apply per client IP and per account (the email of a login, the user creating a
key), and answer 429 problem+json with `Retry-After`. Counters live in
`RATELIMIT_STORAGE_URI`: `memory://` for one process, `redis://` when processes share them.

Views only declare their limits (`limit_by_ip`, `limit_by_account`); `init_app` gives each
app its own `Limiter` and applies the declared limits to that app's view functions. A
flask-limiter `Limiter` keeps its switch, storage and counters on the instance, so one
module-level instance shared by several apps would let the last app built decide for all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Rule:
    setting: str  # the Settings field holding the limit, e.g. "ratelimit_per_ip"
    key_func: Callable[[], str]
    scope: str


def init_app(app: Flask) -> Limiter:
    """Give `app` its own limiter; call it after the blueprints are registered."""
    settings = app.extensions["settings"]
    app.config.update(
        RATELIMIT_ENABLED=settings.ratelimit_enabled,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_KEY_PREFIX="tenant-api",
        RATELIMIT_SWALLOW_ERRORS=False,
    )
    limiter = Limiter(key_func=get_remote_address)
    limiter.init_app(app)
    app.extensions["ratelimit"] = limiter
    for endpoint, registered in list(app.view_functions.items()):
        view: Any = registered
        rules: list[tuple[_Rule, list[str] | None]] = [
            (rule, None) for rule in getattr(view, "_ratelimits", ())
        ]
        view_class = getattr(view, "view_class", None)
        for method in sorted(getattr(view_class, "methods", None) or ()):
            handler = getattr(view_class, method.lower(), None)
            rules += [(rule, [method]) for rule in getattr(handler, "_ratelimits", ())]
        for rule, methods in rules:
            view = limiter.limit(
                _setting(rule.setting), key_func=rule.key_func, scope=rule.scope, methods=methods
            )(view)
        if rules:
            app.view_functions[endpoint] = view
    return limiter


def _setting(name: str) -> Callable[[], str]:
    return lambda: getattr(current_app.extensions["settings"], name)


def _ip() -> str:
    return f"ip:{get_remote_address()}"


def _account() -> str:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    if isinstance(email, str) and email:
        return "email:" + email.strip().lower()[:320]
    actor = g.get("actor")
    if actor is not None:
        return f"actor:{actor.id}"
    return "ip:" + get_remote_address()


def _declare(rule: _Rule) -> Callable[[F], F]:
    """Record `rule` on a view function or a MethodView method (see init_app)."""

    def mark(func: F) -> F:
        func._ratelimits = (*getattr(func, "_ratelimits", ()), rule)  # type: ignore[attr-defined]
        return func

    return mark


def limit_by_ip(scope: str) -> Callable[[F], F]:
    """`RATELIMIT_PER_IP` on this endpoint, per client address."""
    return _declare(_Rule("ratelimit_per_ip", _ip, f"{scope}:ip"))


def limit_by_account(scope: str) -> Callable[[F], F]:
    """`RATELIMIT_PER_ACCOUNT` on this endpoint, per email given or actor calling."""
    return _declare(_Rule("ratelimit_per_account", _account, f"{scope}:account"))


def consume(limit: str, scope: str, key: str, cost: int) -> int | None:
    """Spend `cost` of `key`'s budget under `limit` in this app's storage. Returns the
    seconds to wait when the budget is spent, else None."""
    limiter: Limiter = current_app.extensions["ratelimit"]
    if not limiter.enabled or cost <= 0:
        return None
    item = parse(limit)
    if limiter.limiter.hit(item, scope, key, cost=cost):
        return None
    reset = limiter.limiter.get_window_stats(item, scope, key).reset_time
    return max(1, math.ceil(reset - time.time()))
