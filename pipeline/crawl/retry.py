"""Retry and backoff: which failures are worth another try, and when.

Two clocks. Inside a run, a transient failure (5xx, 429, 408, timeout, connection error) is
retried ``retries`` times with exponential backoff and jitter; a ``Retry-After`` header wins when
it asks for longer (scrapy ignores it; we do not). Across runs, a URL that still fails is deferred
with its own exponential backoff and given up after ``max_attempts`` runs.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from pipeline.config import CrawlSettings

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


def is_retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_s(policy: CrawlSettings, attempt: int, retry_after: float | None = None) -> float:
    """Pause before in-run retry number ``attempt`` (1-based)."""
    base = policy.retry_backoff_s * (2 ** (attempt - 1))
    pause = min(policy.retry_backoff_max_s, base) + random.uniform(0, policy.retry_backoff_s / 2)
    return float(max(pause, retry_after or 0.0))


def next_try(policy: CrawlSettings, attempts: int, retry_after: float | None = None) -> str:
    """When a URL that failed in ``attempts`` runs so far is due again (ISO UTC)."""
    delay = min(policy.defer_max_s, policy.defer_base_s * (2 ** max(0, attempts - 1)))
    delay = max(delay, retry_after or 0.0)
    return (datetime.now(UTC) + timedelta(seconds=delay)).isoformat(timespec="seconds")
