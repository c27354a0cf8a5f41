"""Per-API-key rate limits (requests and tokens per minute) with the `limits` library's moving windows."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

__all__ = ["RateLimits"]


class RateLimits:
    """Two moving-window limits per key: requests/min and tokens/min (prompt + max_tokens, charged up front)."""

    def __init__(self, requests_per_minute: int, tokens_per_minute: int) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.requests = RateLimitItemPerMinute(requests_per_minute)
        self.tokens = RateLimitItemPerMinute(tokens_per_minute)

    def _retry_after(self, item: RateLimitItemPerMinute, key: str) -> int:
        reset = self._limiter.get_window_stats(item, key).reset_time
        return max(1, math.ceil(reset - time.time()))

    def check(self, key: str, tokens: int) -> tuple[str, int] | None:
        """Charge one request and `tokens`; None if allowed, else (which limit, retry-after seconds)."""
        if tokens > self.tokens.amount:
            return "tokens", 60
        if not self._limiter.hit(self.requests, key):
            return "requests", self._retry_after(self.requests, key)
        if not self._limiter.hit(self.tokens, key, cost=max(1, tokens)):
            return "tokens", self._retry_after(self.tokens, key)
        return None
