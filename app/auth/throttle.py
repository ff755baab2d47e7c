"""Failed-password throttling that cannot be turned against the account's owner.

Failures are counted twice, in the rate limiter's storage (shared by the workers):
- per (account, client address): past LOGIN_FAILURES_PER_CLIENT that address is refused
  (429) for that account. Another address is not: an attacker cannot lock the owner out;
- per account, a looser ceiling (LOGIN_FAILURES_PER_ACCOUNT in the window): past it every
  attempt on the account, from any address, waits before it is answered, twice as long
  per further failure up to LOGIN_DELAY_MAX_MS. The right password is still accepted:
  guessing from many addresses becomes slow, signing in stays possible.

Sign-in (`identity.sign_in`) and password change use it; `Throttle.of_app` builds it for
a request, and services receive it. Without the counters' storage it fails closed: a 503
with `Retry-After` (refusing a login is safer than letting passwords be guessed unlimited).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limits import parse

from app.config import Settings
from app.errors import ApiError
from app.health import Health
from app.ratelimit import guarded

PREFIX = "tenant-api/login-failures"


@dataclass
class Throttle:
    limiter: Any  # limits' strategy over the app's storage (app/ratelimit.py's Counters)
    settings: Settings
    health: Health
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def of_app(cls, extensions: dict[str, Any]) -> Throttle | None:
        """The app's throttle, None when rate limiting is off (tests, benchmarks)."""
        counters = extensions["ratelimit"]
        if not counters.enabled:
            return None
        return cls(counters.limiter, extensions["settings"], extensions["ratelimit.health"])

    def _keys(self, account: str, client: str) -> tuple[Any, tuple[str, ...], Any, tuple[str, ...]]:
        window = f"{self.settings.login_failures_per_account} per " \
                 f"{self.settings.login_failure_window_seconds} seconds"
        return (parse(self.settings.login_failures_per_client), ("pair", account, client),
                parse(window), ("account", account))

    def before(self, account: str, client: str) -> None:
        """Refuse an address that failed too often for this account; delay every attempt
        on an account that failed too often overall."""
        guarded(self.health, lambda: self._before(account, client), fails_open=False)

    def _before(self, account: str, client: str) -> None:
        pair_limit, pair, account_limit, whole = self._keys(account, client)
        if not self.limiter.test(pair_limit, PREFIX, *pair):
            reset = self.limiter.get_window_stats(pair_limit, PREFIX, *pair).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise ApiError.of(429, "Too many failed attempts from this address; retry later.",
                              headers={"Retry-After": str(wait)})
        if not self.limiter.test(account_limit, PREFIX, *whole):
            self.sleep(self.delay_seconds(account))

    def delay_seconds(self, account: str) -> float:
        """The wait past the account's ceiling: doubles with each failure beyond it."""
        over = int(self.limiter.storage.get(self._over(account)) or 0)
        base, cap = self.settings.login_delay_base_ms, self.settings.login_delay_max_ms
        return min(cap, base * 2 ** min(over, 30)) / 1000

    def failed(self, account: str, client: str) -> None:
        guarded(self.health, lambda: self._failed(account, client), fails_open=False)

    def _failed(self, account: str, client: str) -> None:
        pair_limit, pair, account_limit, whole = self._keys(account, client)
        self.limiter.hit(pair_limit, PREFIX, *pair)
        if not self.limiter.hit(account_limit, PREFIX, *whole):
            self.limiter.storage.incr(self._over(account),
                                      self.settings.login_failure_window_seconds)

    @staticmethod
    def _over(account: str) -> str:
        return f"{PREFIX}/over/{account}"
