"""Concurrent, polite fetching: one worker thread per host (so one request in flight per host),
up to ``max_hosts`` hosts at once; outcomes come back to the calling thread, which alone talks to
the store. New URLs can be submitted while outcomes are consumed."""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pipeline.crawl.errors import FetchError
from pipeline.crawl.fetch import Fetcher, Response
from pipeline.crawl.frontier import FrontierItem
from pipeline.crawl.throttle import CrawlStopped
from pipeline.crawl.urls import host_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    item: FrontierItem
    response: Response | None = None
    error: FetchError | None = None


class Crawler:
    def __init__(
        self, fetcher: Fetcher, max_hosts: int, on_idle: Callable[[str], None] | None = None
    ) -> None:
        self.fetcher = fetcher
        # Called from the host's fetch thread once everything queued for the host was fetched.
        self.on_idle = on_idle
        self.stop_event = fetcher.throttle.stop
        self._queues: dict[str, deque[FrontierItem]] = {}
        self._active: set[str] = set()
        self._lock = threading.Lock()
        self._results: queue.Queue[Outcome] = queue.Queue(maxsize=64)  # bounds pages held in memory
        self._scheduled: set[str] = set()
        self._outstanding = 0
        self._pool = ThreadPoolExecutor(max_workers=max(1, max_hosts), thread_name_prefix="crawl")

    def submit(self, item: FrontierItem) -> bool:
        """Queue a URL for this run; False when it was already queued."""
        if item.url in self._scheduled:
            return False
        self._scheduled.add(item.url)
        self._outstanding += 1
        host = host_of(item.url)
        with self._lock:
            self._queues.setdefault(host, deque()).append(item)
            start = host not in self._active
            if start:
                self._active.add(host)
        if start:
            self._pool.submit(self._drain, host)
        return True

    @property
    def outstanding(self) -> int:
        return self._outstanding

    def outcomes(self) -> Iterator[Outcome]:
        """Every submitted URL's outcome, until nothing is left (submit more while iterating)."""
        while self._outstanding > 0:
            outcome = self._results.get()
            self._outstanding -= 1
            yield outcome

    def next(self, timeout: float) -> Outcome | None:
        """The next outcome, or None when none came within ``timeout`` seconds (or none is due)."""
        if self._outstanding == 0:
            return None
        try:
            outcome = self._results.get(timeout=timeout)
        except queue.Empty:
            return None
        self._outstanding -= 1
        return outcome

    def close(self) -> None:
        self.stop_event.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def busy(self, host: str) -> bool:
        """Whether URLs of ``host`` are queued or being fetched."""
        with self._lock:
            return host in self._active

    def _drain(self, host: str) -> None:
        while not self.stop_event.is_set():
            with self._lock:
                todo = self._queues[host]
                if not todo:
                    self._active.discard(host)
                    break
                item = todo.popleft()
            self._put(self._fetch(item))
        else:  # stopping
            with self._lock:
                self._active.discard(host)
            return
        if self.on_idle is not None:
            self.on_idle(host)

    def _fetch(self, item: FrontierItem) -> Outcome:
        try:
            return Outcome(
                item, self.fetcher.fetch(item.url, etag=item.etag, last_modified=item.last_modified)
            )
        except FetchError as exc:
            return Outcome(item, error=exc)
        except CrawlStopped:
            return Outcome(item, error=FetchError("run stopped", kind="stopped", retryable=True))
        except Exception as exc:  # a bug must cost one URL, not hang the run waiting for its outcome
            log.debug("fetch crashed on %s", item.url, exc_info=True)
            return Outcome(
                item, error=FetchError(f"{type(exc).__name__}: {exc}", kind="internal", retryable=True)
            )

    def _put(self, outcome: Outcome) -> None:
        while not self.stop_event.is_set():
            try:
                self._results.put(outcome, timeout=0.2)
                return
            except queue.Full:
                continue
