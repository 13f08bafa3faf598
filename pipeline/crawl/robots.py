"""robots.txt: one fetch per host and run, shared by every request to that host (protego).

2xx → the rules apply; 4xx → no rules (allowed, as RFC 9309 says); 5xx or unreachable → the host
is treated as fully disallowed for this run and its URLs are retried on a later run (RFC 9309
§2.3.1.3), never fetched blind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from pipeline.crawl.errors import FetchError, RobotsDisallowed

log = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 512_000  # Google reads the first 500 KiB


@dataclass(frozen=True, slots=True)
class RobotsRules:
    parser: Protego | None  # None: no rules (robots.txt absent)
    unreachable: str | None = None  # why the host is off limits this run


class RobotsCache:
    """``fetch_text(url) -> (status, text)`` does the HTTP; this class decides and remembers."""

    def __init__(self, fetch_text: Callable[[str], tuple[int, str]], user_agent: str) -> None:
        self._fetch_text = fetch_text
        self.user_agent = user_agent
        self._rules: dict[str, RobotsRules] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def rules(self, url: str) -> RobotsRules:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        with self._guard:
            lock = self._locks.setdefault(origin, threading.Lock())
        with lock:  # concurrent askers for one host wait for the single fetch
            if origin not in self._rules:
                self._rules[origin] = self._load(origin)
            return self._rules[origin]

    def _load(self, origin: str) -> RobotsRules:
        try:
            status, text = self._fetch_text(origin + "/robots.txt")
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                return RobotsRules(None)
            log.warning("robots.txt of %s unreachable (%s): host skipped this run", origin, exc)
            return RobotsRules(None, unreachable=str(exc))
        if 400 <= status < 500:
            return RobotsRules(None)
        return RobotsRules(Protego.parse(text))

    def check(self, url: str) -> None:
        """Raise RobotsDisallowed, or a retryable FetchError when robots.txt could not be read."""
        rules = self.rules(url)
        if rules.unreachable is not None:
            raise FetchError(
                f"robots.txt unreachable, not fetching: {rules.unreachable}",
                kind="robots_unreachable",
                retryable=True,
            )
        if rules.parser is not None and not rules.parser.can_fetch(url, self.user_agent):
            raise RobotsDisallowed(f"robots.txt disallows {url}")

    def delay(self, url: str) -> float:
        """The gap robots.txt asks for (Crawl-delay, or Request-rate as seconds per request)."""
        parser = self.rules(url).parser
        if parser is None:
            return 0.0
        delay = float(parser.crawl_delay(self.user_agent) or 0.0)
        rate = parser.request_rate(self.user_agent)
        if rate is not None and rate.requests:
            delay = max(delay, float(rate.seconds) / float(rate.requests))
        return delay
