"""Retry policy of the DA client: exponential backoff with bounded jitter."""

from __future__ import annotations

from attribution.da.client import RetryPolicy


def test_backoff_grows_exponentially_within_jitter_bounds() -> None:
    policy = RetryPolicy(max_retries=5, backoff=0.1, max_backoff=1.0)
    for attempt in range(6):
        base = min(1.0, 0.1 * 2**attempt)
        for _ in range(50):
            assert 0.5 * base <= policy.delay(attempt) < 1.5 * base


def test_retry_after_is_a_lower_bound_capped_by_max_backoff() -> None:
    policy = RetryPolicy(backoff=0.01, max_backoff=2.0)
    assert policy.delay(0, retry_after=1.0) >= 1.0
    assert policy.delay(0, retry_after=100.0) <= 2.0 * 1.5
