"""Watchlists end to end over a local synthetic site (tests/watch_site.py): two nightly runs, the
digest in JSON, Markdown and Atom, an empty third digest, stable Atom ids; both store backends;
the command line's one-line errors; known articles revisited with conditional GET."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import feedparser
import pytest
from pytest_httpserver import HTTPServer

from pipeline import cli
from pipeline.backend import open_store
from pipeline.config import Settings
from pipeline.crawl.frontier import revisit_due
from pipeline.watch import save_watchlist, take_digest
from pipeline.watch_render import atom, markdown, md_text
from tests.test_crawl import run, settings_for
from tests.watch_site import NEW_ENTITY_TR, NEW_QUERY_EN, RUN1, RUN2, Site

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.DependencyWarning")

QUERY = "unmanned surface vessel"


def _digest_files(settings: Settings, name: str) -> tuple[dict[str, Any], str, Any]:
    folder = settings.data_path / "digests"
    data = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    md = (folder / f"{name}.md").read_text(encoding="utf-8")
    feed = feedparser.parse((folder / f"{name}.atom").read_text(encoding="utf-8"))
    assert not feed.bozo, feed.get("bozo_exception")
    return data, md, feed


def _two_nightly_runs(site: HTTPServer, settings: Settings) -> None:
    s = Site(site, dict(RUN1))
    s.serve()
    first = run(settings, s.sitemap_url)
    assert first.new == 3 and first.failed == 0, first.failures
    store = open_store(settings, readonly=False)
    try:
        # The watched entity written in Azerbaijani; the new Turkish article spells it "Azersilah'ın".
        save_watchlist(store, settings, "caspian", entities=["Azərsilah"], queries=[QUERY])
    finally:
        store.close()

    # Night 2: three new articles (tr, en, az) and the old article's value corrected.
    s.pages = dict(RUN2)
    second = run(settings, s.sitemap_url)
    assert (second.new, second.updated, second.revisited, second.digests) == (3, 1, 3, 1)
    assert second.not_modified == 2  # the two unchanged old articles answered 304
    data, md, feed = _digest_files(settings, "caspian")
    urls = {d["url"]: d for d in data["documents"]}
    assert set(urls) == {site.url_for(NEW_ENTITY_TR), site.url_for(NEW_QUERY_EN)}
    tr, en = urls[site.url_for(NEW_ENTITY_TR)], urls[site.url_for(NEW_QUERY_EN)]
    assert tr["matched"] == ["entity:Azersilah"] and tr["language"] == "tr"
    assert "Azersilah'ın" in tr["evidence"][0]["text"]
    assert tr["evidence"][0]["text"] != tr["title"]  # the body's sentence, not the headline again
    assert en["matched"] == [f"query:{QUERY}"] and QUERY in en["evidence"][0]["text"]
    for d in (tr, en):  # INTERFACE documents rows + matched
        assert {
            "doc_id",
            "url",
            "language",
            "title",
            "published",
            "author",
            "duplicate_of",
            "matched",
        } <= set(d)
    [deal] = data["deals"]
    assert deal["change"] == "changed" and deal["type"] == "contract"
    assert deal["value"] == {"amount": 150000000, "currency": "USD"}
    assert set(deal["party_ids"]) == {"roketsan", "azersilah"} and len(deal["reports"]) == 1
    assert "$150 million" in deal["reports"][0]["evidence"]["text"]
    assert [e["id"] for e in data["entities_new"]] == ["sumgait"]  # first named beside Azersilah tonight
    assert "### Azersilah" in md and "Language: tr" in md and "Date: 2025\\-06\\-02" not in md
    assert "Date: 2025-06-02" in md and f"<{site.url_for(NEW_QUERY_EN)}>" in md and "(corrected)" in md
    ids = {e.id for e in feed.entries}
    assert (
        len(ids) == 3
        and {f"urn:defintel:document:{tr['doc_id']}", f"urn:defintel:document:{en['doc_id']}"} < ids
    )

    # Night 3: nothing new. The digest is empty; the feed (last 30 days) keeps the same entries, same ids.
    third = run(settings, s.sitemap_url)
    assert (third.new, third.updated, third.not_modified) == (0, 0, 6)
    data3, md3, feed3 = _digest_files(settings, "caspian")
    assert (data3["documents"], data3["deals"], data3["entities_new"]) == ([], [], [])
    assert data3["since"] == data["until"] and "Nothing new." in md3
    assert {e.id for e in feed3.entries} == ids


def test_two_nightly_runs_sqlite(site: HTTPServer, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, **{"crawl.revisit_after_s": 0.0})
    _two_nightly_runs(site, settings)
    # A digest taken right after another lists nothing; a look-back lists the same items again.
    store = open_store(settings, readonly=False)
    try:
        assert take_digest(settings, store, "caspian").empty
        again = take_digest(settings, store, "caspian", since="2000-01-01")
        assert {d["url"] for d in again.documents} >= {
            site.url_for(NEW_ENTITY_TR),
            site.url_for(NEW_QUERY_EN),
        }
        assert not take_digest(settings, store, "caspian").documents  # the look-back kept the mark
    finally:
        store.close()


def test_two_nightly_runs_postgres(site: HTTPServer, tmp_path: Path, pg_url: str) -> None:
    settings = settings_for(
        tmp_path, **{"crawl.revisit_after_s": 0.0, "store.backend": "postgres", "store.database_url": pg_url}
    )
    _two_nightly_runs(site, settings)


def test_revisits_ask_known_articles_with_validators(site: HTTPServer, tmp_path: Path) -> None:
    s = Site(site, dict(RUN2))
    s.serve()
    settings = settings_for(tmp_path, **{"watch.write_after_ingest": False})
    assert run(settings, s.sitemap_url).new == 6
    # Default schedule: an immediate second run asks none of them again.
    s.answers.clear()
    again = run(settings, s.sitemap_url)
    assert (again.revisited, again.seen - 1, s.answers) == (0, 0, [])  # only the sitemap was fetched
    # revisit_after_s = 0: every known article asked again with its validator; unchanged ones: 304.
    eager = settings_for(tmp_path, **{"crawl.revisit_after_s": 0.0, "watch.write_after_ingest": False})
    report = run(eager, s.sitemap_url)
    assert report.revisited == 6 and len(s.answers) == 6
    assert all(had for _, _, had in s.answers)
    assert sum(1 for _, status, _ in s.answers if status == 304) / len(s.answers) >= 0.8
    assert report.not_modified == 6 and report.updated == 0


def test_revisit_schedule_decays_with_age() -> None:
    from datetime import UTC, datetime, timedelta

    from pipeline.config import CrawlSettings

    at = datetime(2025, 6, 30, 12, tzinfo=UTC)
    policy = CrawlSettings()  # daily in the first week, weekly up to 30 days, then never

    def due(age_days: float, since_fetch_days: float, published: bool = True) -> bool:
        born = (at - timedelta(days=age_days)).isoformat()
        fetched = (at - timedelta(days=since_fetch_days)).isoformat()
        return revisit_due(fetched, born, born[:10] if published else None, at, policy)

    assert due(3, 1.01) and not due(3, 0.5)
    assert not due(10, 2) and due(10, 7.01)
    assert not due(40, 30)
    assert due(3, 1.01, published=False)
    assert revisit_due(at.isoformat(), None, None, at, CrawlSettings(revisit_after_s=0))
    assert not revisit_due(None, None, None, at, CrawlSettings(revisit_until_days=0))


# -- command line ------------------------------------------------------------------------------------
def _cli(monkeypatch: pytest.MonkeyPatch, settings: Settings, *argv: str) -> int:
    for key in list(__import__("os").environ):
        if key.startswith("DEFINTEL_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DEFINTEL_DATA_DIR", settings.data_dir)
    monkeypatch.setenv("DEFINTEL_INDEX__EMBEDDER", "hashing")
    monkeypatch.setenv("DEFINTEL_NLP__MODELS_DIR", settings.nlp.models_dir)
    try:
        return cli.main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code or 0)


def test_cli_watch_commands_and_errors(
    ingested: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(ingested.data_path, data)
    settings = settings_for(tmp_path)

    def out(*argv: str) -> tuple[int, str, str]:
        rc = _cli(monkeypatch, settings, *argv)
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    rc, text, _ = out(
        "watch", "add", "mine", "--entity", "Bakı", "--entity", "Azərsilahın", "--type", "contract"
    )
    assert rc == 0 and text.startswith("mine: entity Baku; entity Azersilah; type contract")
    rc, text, _ = out("watch", "add", "mine", "--query", "fişek hattı", "--format", "json")
    assert rc == 0 and json.loads(text)["queries"] == ["fişek hattı"]
    rc, text, _ = out("watch", "list", "--format", "json")
    assert [w["name"] for w in json.loads(text)] == ["mine"]
    for bad in (
        ("watch", "add", "x", "--entity", "Nosuchcompanyatall"),
        ("watch", "add", "x", "--type", "barter"),
        ("watch", "add", "bad name", "--query", "a"),
        ("watch", "add", "x"),
        ("watch", "add", "x", "--query", " "),
        ("watch", "digest", "nosuchlist", "--format", "json"),
        ("watch", "digest", "mine", "--since", "yesterday", "--format", "json"),
        ("watch", "digest", "mine", "--format", "pdf"),
        ("watch", "remove", "nosuchlist"),
    ):
        rc, _, err = out(*bad)
        assert rc == 2, bad
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    # The corpus was stored before the list was made: nothing new; a look-back finds it.
    rc, text, _ = out("watch", "digest", "mine", "--format", "json")
    assert rc == 0 and json.loads(text)["documents"] == []
    rc, text, _ = out("watch", "digest", "mine", "--since", "2000-01-01", "--format", "json")
    back = json.loads(text)
    assert set(back) == {"watchlist", "since", "until", "documents", "deals", "entities_new"}
    assert back["documents"] and back["deals"]
    assert all(d["duplicate_of"] is None and d["matched"] and d["evidence"] for d in back["documents"])
    # The corpus's republished article (en-11) is folded into its original's row.
    assert any("mke-azerbaijani-arm-azersilah" in url for d in back["documents"] for url in d["republished"])
    assert all(
        "type:contract" in d["matched"] or set(d["party_ids"]) & {"baku", "azersilah"} for d in back["deals"]
    )
    # Deals are the consolidated ones (`defintel deals`): one row per deal, every report a source.
    rc, text, _ = out("deals", "--format", "json")
    stored = {d["deal_id"]: d for d in json.loads(text)}
    assert rc == 0 and {d["deal_id"] for d in back["deals"]} <= set(stored)
    assert any(len(d["reports"]) > 1 for d in back["deals"])
    assert all(len(d["reports"]) == len(stored[d["deal_id"]]["reports"]) for d in back["deals"])
    rc, text, _ = out("watch", "digest", "mine", "--since", "2000-01-01", "--format", "atom")
    feed = feedparser.parse(text)
    assert rc == 0 and not feed.bozo and len(feed.entries) == len(back["documents"]) + len(back["deals"])
    rc, text, _ = out("watch", "digest", "mine", "--since", "2000-01-01", "--format", "md")
    assert rc == 0 and text.startswith("# Watchlist mine:")
    rc, _, _ = out("watch", "remove", "mine")
    rc2, text, _ = out("watch", "list", "--format", "json")
    assert rc == 0 and rc2 == 0 and json.loads(text) == []


def test_markdown_and_atom_keep_crawled_text_inert() -> None:
    from pipeline.watch import Digest

    evil = "<script>alert(1)</script> [click](javascript:alert(1)) **bold**"
    doc = {
        "doc_id": "d1",
        "url": "javascript:alert(1)",
        "language": "en",
        "title": evil,
        "published": None,
        "author": None,
        "duplicate_of": None,
        "matched": ["entity:X"],
        "evidence": [{"matched": "entity:X", "text": evil, "start": 0, "end": 1}],
        "first_seen": "2025-01-01T00:00:00+00:00",
        "republished": [],
    }
    digest = Digest("w", None, "2025-01-02T00:00:00+00:00", (doc,))
    md = markdown(digest)
    assert "<script>" not in md and "javascript:" not in md.replace(md_text("javascript:"), "")
    assert "](" not in md and "**bold**" not in md
    feed = feedparser.parse(atom(digest))
    assert not feed.bozo and feed.entries[0].id == "urn:defintel:document:d1"
    assert "link" not in feed.entries[0] or not feed.entries[0].link.startswith("javascript")
