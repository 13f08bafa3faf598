"""Process-wide state that only the command line's entry point changes (``pipeline/cli.py``).

Library code never installs log or signal handlers or sets environment variables: a long-lived
process that imports it (the app, a test, a benchmark) keeps its own. The CLI wraps a command's
work in these.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOG_NAME = "ingest.log"


def offline_models() -> None:
    """Models load from local folders only: sentence-transformers never asks a hub (an explicit
    setting in the environment wins)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@contextmanager
def run_log(data_dir: Path, level: int = logging.INFO) -> Iterator[Path]:
    """Also log the ``pipeline`` loggers to ``<data_dir>/logs/ingest.log`` (rotated, 5 × 5 MB)."""
    folder = data_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_NAME
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=5, encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("pipeline")
    old_level = logger.level
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)  # stderr handlers keep their own, higher, level
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd's stop) unwinds like Ctrl-C: a run records how it ended and a PostgreSQL
    worker gives its leases back. Only the main thread can install a handler; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def ingest_process(data_dir: Path) -> Iterator[None]:
    """What ``defintel ingest`` wraps its run in, once the sources are valid and the data dir
    locked: the run's log file and SIGTERM as an interrupt."""
    with run_log(data_dir), terminate_as_interrupt():
        yield
