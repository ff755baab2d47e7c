"""A clock a test moves by hand: `clock.now += 6` instead of sleeping through a timeout."""

from __future__ import annotations

import time


class Clock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now
