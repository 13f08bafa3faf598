"""The embedded backend's run coordination: one run at a time per data dir (a lock file), which
walks the frontier in the store alone, and a search snapshot prepared at its end."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from pipeline.config import CrawlSettings, Settings
from pipeline.crawl.sources import Seed
from pipeline.errors import UsageError
from pipeline.ingest.batches import IngestRun, progress
from pipeline.ingest.crawl_run import CrawlRun

if TYPE_CHECKING:
    from pipeline.backend.protocols import Store, VectorIndex
    from pipeline.backend.sqlite import Store as SqliteStore
    from pipeline.index.vectors import VectorIndex as FaissIndex


@contextmanager
def run_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "ingest.lock"
    handle: IO[str] = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise UsageError(
            f"another ingest is running on {data_dir} (pid {holder}, lock {path}); try again when it ends"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class LocalCoordinator:
    """A lone run over the embedded store (the data dir's lock is held by the caller)."""

    worker = ""
    concurrent = False
    transient: tuple[type[BaseException], ...] = ()

    def __init__(self, settings: Settings, store: Store, policy: CrawlSettings) -> None:
        self.settings = settings
        self.store = store
        self.policy = policy

    def start_run(self) -> int:
        return self.store.start_run()

    def working(self) -> AbstractContextManager[object]:
        return nullcontext()

    def files(self, run: IngestRun, paths: Sequence[Path]) -> None:
        run.known_files(paths)
        for path in progress(list(paths), "files"):
            run.local_file(path)

    def crawl(self, run: IngestRun, seeds: Sequence[Seed], allow_private: bool) -> None:
        CrawlRun(run, self.policy, allow_private).crawl(list(seeds))

    def last_worker(self) -> bool:
        return True

    def refresh_search(self, vectors: VectorIndex) -> None:
        """The search snapshot, prepared now: a first search then only loads it."""
        from pipeline.index.search import prepare_search

        prepare_search(self.settings, cast("SqliteStore", self.store), cast("FaissIndex", vectors))
