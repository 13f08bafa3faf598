"""The typed reason a fetch failed: what went wrong, and whether trying again later may help."""

from __future__ import annotations

from pipeline.errors import DocumentError


class FetchError(DocumentError):
    """One URL could not be fetched. ``kind`` names the reason; ``retryable`` says whether a
    retry (now, after a backoff, or on a later run) may succeed."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.attempts = 1  # HTTP attempts made, retries included


class RobotsDisallowed(FetchError):
    """robots.txt forbids the URL for our user agent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="robots")
