"""A token bucket: a steady rate with room for short bursts, kept in memory by its owner.

The annotation socket keeps one per connection. Nothing waits: a caller over the limit is told
how long until the next token and refuses the work, so an overloaded client cannot queue any.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; starts full."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(
                f"a token bucket needs rate > 0 and burst >= 1, not {rate} and {burst}"
            )
        self.rate, self.burst, self.clock = float(rate), float(burst), clock
        self.tokens = self.burst
        self.updated = clock()

    def take(self, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens (capped at the burst, so any message can pass eventually):
        0.0 when there were that many, else the seconds until there are (nothing is spent)."""
        cost = min(float(cost), self.burst)
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate
