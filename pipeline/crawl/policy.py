"""The crawl policy: every knob of the crawler in one frozen record, built once from the Settings.

Keys that ``CrawlSettings`` does not (yet) declare fall back to the defaults below, so the crawler
works whatever the config owner has added; tests and benchmarks pass a ``dataclasses.replace``-d
policy to tighten delays without touching the shipped defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config import CrawlSettings


@dataclass(frozen=True, slots=True)
class CrawlPolicy:
    user_agent: str = "defintel/0.1"
    timeout_s: float = 20.0
    delay_s: float = 1.0  # minimum seconds between two requests to one host (politeness floor)
    max_bytes: int = 5_000_000
    retries: int = 2  # extra HTTP attempts inside one run on 5xx/429/timeouts
    retry_backoff_s: float = 2.0  # first in-run backoff; doubles per attempt
    retry_backoff_max_s: float = 60.0
    max_retry_after_s: float = 120.0  # a longer Retry-After defers the URL to a later run instead
    max_attempts: int = 5  # failed runs before a URL is given up ("dead") for good
    defer_base_s: float = 3600.0  # next-run backoff after a failed run; doubles per attempt
    defer_max_s: float = 7 * 86400.0
    robots_recheck_s: float = 86400.0  # a robots-disallowed URL is looked at again after this
    max_hosts: int = 8  # hosts crawled concurrently (one in-flight request per host)
    max_redirects: int = 5
    max_links_per_page: int = 500  # links taken from one site root / hub page
    allow_private_hosts: bool = False

    @classmethod
    def from_settings(cls, crawl: CrawlSettings) -> CrawlPolicy:
        default = cls()
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            values[name] = getattr(crawl, name, getattr(default, name))
        return cls(**values)
