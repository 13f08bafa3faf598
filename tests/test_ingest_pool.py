"""The batched ingest: worker processes give the same store as one process; unchanged files are
not re-extracted; a bad page in a worker's batch is counted and the run goes on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.backend.sqlite import Store
from pipeline.config import Settings
from pipeline.extract import extract
from pipeline.jobs import ingest
from pipeline.prepare import worker_count
from pipeline.records import Page
from tests.conftest import CORPUS, make_settings

PAGES = len(list(CORPUS.glob("*.html")))


def _snapshot(settings: Settings) -> dict[str, object]:
    store = Store(settings.data_path, readonly=True)
    try:
        docs = sorted((d["doc_id"], d["duplicate_of"], d["language"], d["title"]) for d in store.documents())
        mentions = sorted(
            (d[0], m["start"], m["end"], m["entity_id"]) for d in docs for m in store.mentions(d[0])
        )
        agreements = sorted((a["doc_id"], a["type"], a["evidence_start"]) for a in store.agreements())
        chunks = sorted((c["chunk_id"], c["vec_id"]) for c in store.chunks())
        # Deals and stories recomputed batch by batch come out as one run over everything.
        deals = sorted(sorted(r.agreement_id for r in d.reports) for d in store.deals())
        stories: dict[str, list[str]] = {}
        for d in store.documents():
            stories.setdefault(d["story_id"], []).append(d["doc_id"])
        return {
            "docs": docs,
            "mentions": mentions,
            "agreements": agreements,
            "chunks": chunks,
            "deals": deals,
            "stories": sorted(sorted(v) for v in stories.values()),
        }
    finally:
        store.close()


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, object]]:
    """The corpus ingested by two worker processes, batches of 4 (so several are in flight)."""
    settings = make_settings(tmp_path_factory.mktemp("pool"), **{"ingest.workers": 2, "nlp.batch_size": 4})
    report = ingest(settings, [str(CORPUS)])
    assert report.failed == 0, report.failures
    return settings, report.as_json()


def test_workers_store_what_one_process_stores(
    pooled: tuple[Settings, dict[str, object]], ingested: Settings
) -> None:
    settings, report = pooled
    assert report["new"] == PAGES and report["duplicates"] == 3
    assert _snapshot(settings) == _snapshot(ingested)
    stages = report["stages"]
    assert isinstance(stages, dict)
    assert stages["extract"] > 0 and stages["nlp"] > 0 and stages["store"] > 0


def test_unchanged_files_are_not_extracted_again(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    shutil.copytree(CORPUS, pages, ignore=shutil.ignore_patterns("gold", "*.toml", "*.md"))
    settings = make_settings(tmp_path / "data")
    first = ingest(settings, [str(pages)])
    assert first.new == PAGES

    again = ingest(settings, [str(pages)])
    assert (again.new, again.updated, again.unchanged, again.failed) == (0, 0, PAGES, 0)
    assert "extract" not in again.stages  # no page went to the prepare stage

    # A changed file is prepared again and stored as an update; a file's new bytes that give the
    # same document (a comment added) are extracted but change nothing.
    changed = sorted(pages.glob("en-*.html"))[0]
    html = changed.read_text(encoding="utf-8")
    body = extract(Page(url=changed.as_uri(), html=html)).text.split("\n\n")[1]
    anchor = body[:40]
    assert anchor in html
    changed.write_text(html.replace(anchor, anchor + " (synthetic addendum)", 1), encoding="utf-8")
    touched = sorted(pages.glob("tr-*.html"))[0]
    touched.write_text(touched.read_text(encoding="utf-8") + "\n<!-- synthetic -->\n", encoding="utf-8")
    third = ingest(settings, [str(pages)])
    assert (third.new, third.updated, third.unchanged) == (0, 1, PAGES - 1)
    assert third.stages["extract"] > 0


def test_bad_pages_in_worker_batches_are_counted(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    for p in sorted(CORPUS.glob("*.html"))[:6]:
        shutil.copy(p, pages / p.name)
    (pages / "a-empty.html").write_text("<html><body><p>too short</p></body></html>", encoding="utf-8")
    (pages / "b-binary.html").write_bytes(b"\x00\x01\x02" * 100)
    settings = make_settings(tmp_path / "data", **{"ingest.workers": 2, "nlp.batch_size": 2})
    report = ingest(settings, [str(pages)])
    assert report.new == 6 and report.failed == 2
    assert {Path(f["source"]).name for f in report.failures} == {"a-empty.html", "b-binary.html"}


def test_worker_count() -> None:
    assert worker_count(3) == 3
    assert worker_count(0) == 0
    assert 1 <= worker_count(-1) <= 4


def _blas_threads() -> list[int]:
    """(In a worker.) Threads of every BLAS/OpenMP library the worker has loaded."""
    from threadpoolctl import threadpool_info

    return [int(info["num_threads"]) for info in threadpool_info()]


def test_workers_run_one_blas_thread_and_leave_the_parents_environment(tmp_path: Path) -> None:
    import os

    from pipeline.prepare import PreparePool, Preparer

    settings = make_settings(tmp_path)
    Store(settings.data_path).close()  # the workers open it read-only
    before = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    pool = PreparePool(settings, Preparer(settings, lambda _: None), workers=1)
    try:
        threads = pool._pool().submit(_blas_threads).result(timeout=300)
    finally:
        pool.close()
    assert threads and set(threads) == {1}
    assert {v: os.environ.get(v) for v in before} == before
