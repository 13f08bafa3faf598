"""The command line as nightly jobs and external checks call it (subprocesses, INTERFACE.md shapes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

REPORT_KEYS = {
    "seen",
    "fetched",
    "new",
    "updated",
    "unchanged",
    "duplicates",
    "failed",
    "skipped_robots",
    "not_modified",
    "seconds",
}


def cli(env: dict[str, str], *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        input=None if stdin is None else stdin.decode(),
    )


def test_help_lists_every_command(cli_env: dict[str, str]) -> None:
    out = cli(cli_env, "--help")
    assert out.returncode == 0
    for command in ("ingest", "extract", "search", "documents", "entities", "export-graph", "app"):
        assert command in out.stdout


def test_extract_a_turkish_page(cli_env: dict[str, str], corpus_dir: Path) -> None:
    page = corpus_dir / "tr-01-mka-azersilah-fisek-hatti.html"
    gold = json.loads((corpus_dir / "gold" / "tr-01-mka-azersilah-fisek-hatti.json").read_text())
    out = cli(cli_env, "extract", str(page), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["language"], doc["title"], doc["published"]) == (
        gold["language"],
        gold["title"],
        gold["published"],
    )
    assert doc["text"].startswith(doc["title"] + "\n\n")
    assert doc["entities"] and doc["agreements"]
    for e in doc["entities"]:
        assert doc["text"][e["start"] : e["end"]] == e["text"]
        assert e["label"] in ("ORG", "PERSON", "GPE")
    for a in doc["agreements"]:
        ev = a["evidence"]
        assert doc["text"][ev["start"] : ev["end"]] == ev["text"]
    assert not (cli_env["DEFINTEL_DATA_DIR"] and Path(cli_env["DEFINTEL_DATA_DIR"]).exists()), (
        "extract wrote data"
    )


def test_extract_reads_stdin(cli_env: dict[str, str], corpus_dir: Path) -> None:
    page = (corpus_dir / "en-01-mke-baku-cartridge-line.html").read_bytes()
    out = cli(cli_env, "extract", "-", "--format", "json", stdin=page)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["language"] == "en"


def test_ingest_is_idempotent_and_every_read_command_works(
    cli_env: dict[str, str], corpus_dir: Path, tmp_path: Path
) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    for name in (
        "tr-01-mka-azersilah-fisek-hatti",
        "az-01-mka-azersilah-patron-xetti",
        "en-01-mke-baku-cartridge-line",
        "en-11-mke-azersilah-republished",
    ):
        shutil.copy(corpus_dir / f"{name}.html", pages)
    first = cli(cli_env, "ingest", str(pages), "--format", "json")
    assert first.returncode == 0, first.stderr
    rep1 = json.loads(first.stdout)
    assert set(rep1) >= REPORT_KEYS and rep1["new"] == 4 and rep1["duplicates"] == 1
    second = json.loads(cli(cli_env, "ingest", str(pages), "--format", "json").stdout)
    assert second["new"] == 0 and second["unchanged"] == 4
    docs = json.loads(cli(cli_env, "documents", "--format", "json").stdout)
    assert len(docs) == 4 and sum(1 for d in docs if d["duplicate_of"]) == 1
    assert {"doc_id", "url", "language", "title", "published", "author", "duplicate_of"} <= set(docs[0])
    ents = json.loads(cli(cli_env, "entities", "--format", "json").stdout)
    azersilah = next(e for e in ents if e["id"] == "azersilah")
    assert azersilah["documents"] == 4 and {"Azersilah", "Azərsilah"} <= set(azersilah["aliases"])
    hits = json.loads(cli(cli_env, "search", "Azersilah", "--k", "3", "--format", "json").stdout)
    assert len(hits) == 3 and {"doc_id", "url", "title", "language", "published", "score", "snippet"} <= set(
        hits[0]
    )
    only_az = json.loads(cli(cli_env, "search", "cartridge", "--lang", "az", "--format", "json").stdout)
    assert only_az and all(h["language"] == "az" for h in only_az)
    graph = tmp_path / "g.graphml"
    assert cli(cli_env, "export-graph", "--format", "graphml", "--output", str(graph)).returncode == 0
    assert b"azersilah" in graph.read_bytes()


def _one_line_error(out: subprocess.CompletedProcess[str]) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["missing", "empty", "binary", "bad-format", "bad-date", "bad-type"])
def test_bad_input_is_a_one_line_error(cli_env: dict[str, str], tmp_path: Path, kind: str) -> None:
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"")
    blob = tmp_path / "blob.html"
    blob.write_bytes(os.urandom(4096))
    args = {
        "missing": ["extract", str(tmp_path / "nope.html"), "--format", "json"],
        "empty": ["extract", str(empty), "--format", "json"],
        "binary": ["extract", str(blob), "--format", "json"],
        "bad-format": ["documents", "--format", "yaml"],
        "bad-date": ["search", "x", "--since", "yesterday"],
        "bad-type": ["search", "x", "--type", "alliance"],
    }[kind]
    if kind == "bad-type":
        ingest = cli(cli_env, "ingest", str(ROOT / "corpus" / "en-01-mke-baku-cartridge-line.html"))
        assert ingest.returncode == 0, ingest.stderr
    _one_line_error(cli(cli_env, *args))


def test_ingest_of_a_missing_path_loses_nothing(cli_env: dict[str, str], tmp_path: Path) -> None:
    _one_line_error(cli(cli_env, "ingest", str(tmp_path / "nope")))
    assert not Path(cli_env["DEFINTEL_DATA_DIR"], "defintel.sqlite3").exists()


def test_bad_document_in_a_directory_is_counted_and_the_rest_stored(
    cli_env: dict[str, str], corpus_dir: Path, tmp_path: Path
) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(corpus_dir / "az-02-azersilah-patron-lisenziya.html", mixed)
    (mixed / "blob.html").write_bytes(os.urandom(4096))
    (mixed / "empty.html").write_bytes(b"")
    out = cli(cli_env, "ingest", str(mixed), "--format", "json")
    assert out.returncode == 3
    report = json.loads(out.stdout)
    assert report["failed"] == 2 and report["new"] == 1
    assert {Path(f["source"]).name for f in report["failures"]} == {"blob.html", "empty.html"}
