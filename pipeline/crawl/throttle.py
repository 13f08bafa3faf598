"""Per-host politeness: one request in flight per host, and a minimum gap between requests to it.

The gap is the largest of the configured delay, the source's ``crawl_delay_s`` and robots.txt's
Crawl-delay; Retry-After and backoff push the next slot further. The gap counts from the end of
the previous response, so a slow host is never asked faster than it answers. Different hosts
proceed concurrently.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class CrawlStopped(Exception):
    """The run is stopping: a waiting request gives up its slot."""


class HostThrottle:
    def __init__(self, default_delay_s: float, stop: threading.Event | None = None) -> None:
        self.default_delay_s = default_delay_s
        self._delay: dict[str, float] = {}
        self._next: dict[str, float] = {}
        self._busy: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.stop = stop or threading.Event()

    def delay(self, host: str) -> float:
        with self._lock:
            return self._delay.get(host, self.default_delay_s)

    def raise_delay(self, host: str, seconds: float) -> None:
        """Make the gap for ``host`` at least ``seconds``."""
        with self._lock:
            self._delay[host] = max(self._delay.get(host, self.default_delay_s), seconds)

    def hold(self, host: str, seconds: float) -> None:
        """No request to ``host`` for the next ``seconds`` (Retry-After, backoff)."""
        with self._lock:
            self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + seconds)

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Wait for ``host``'s turn, hold it for one request; raises CrawlStopped when stopping."""
        with self._lock:
            busy = self._busy.setdefault(host, threading.Lock())
        while not busy.acquire(timeout=0.2):
            if self.stop.is_set():
                raise CrawlStopped
        try:
            while True:
                with self._lock:
                    pause = self._next.get(host, 0.0) - time.monotonic()
                if pause <= 0:
                    break
                if self.stop.wait(pause):
                    raise CrawlStopped
            if self.stop.is_set():
                raise CrawlStopped
            yield
        finally:
            with self._lock:
                gap = self._delay.get(host, self.default_delay_s)
                self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + gap)
            busy.release()
