"""The command line on the PostgreSQL backend (subprocesses against the session's real server):
``defintel migrate --to`` (idempotent, counts of both sides), and ``documents``, ``entities``,
``search`` and ``export-graph`` answering from the database as they answer from the data dir."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import Settings
from tests.test_cli import cli


def _env(cli_env: dict[str, str], data_dir: Path, url: str | None = None) -> dict[str, str]:
    env = {**cli_env, "DEFINTEL_DATA_DIR": str(data_dir)}
    if url is not None:
        env["DEFINTEL_DATABASE_URL"] = url
    return env


def test_migrate_copies_everything_idempotently_and_reads_work_unchanged(
    ingested: Settings, pg_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    lite = _env(cli_env, ingested.data_path)
    first = cli(lite, "migrate", "--to", pg_url, "--format", "json")
    assert first.returncode == 0, first.stderr
    tables = json.loads(first.stdout)["tables"]
    for name in ("documents", "chunks", "vectors", "entities", "mentions", "agreements", "runs"):
        assert tables[name]["source"] == tables[name]["target"] > 0, name
        assert tables[name]["missing"] == 0
    again = cli(lite, "migrate", "--to", pg_url)  # the table view; nothing new the second time
    assert again.returncode == 0, again.stderr
    assert "every row is in the database" in again.stderr
    assert again.stdout.splitlines()[0].split() == ["table", "source", "target", "missing"]
    assert json.loads(cli(lite, "migrate", "--to", pg_url, "--format", "json").stdout)["tables"] == tables

    pg = _env(cli_env, tmp_path / "unused", pg_url)  # the database answers; the data dir is not read
    for command in ("documents", "entities", "deals"):  # deals and stories recomputed in the database
        a, b = cli(lite, command, "--format", "json"), cli(pg, command, "--format", "json")
        assert a.returncode == b.returncode == 0, b.stderr
        assert json.loads(a.stdout) == json.loads(b.stdout)
    for args in (["Azersilah patron"], ["Azərsilah", "--lang", "tr,az", "--since", "2024-01-01"]):
        a = cli(lite, "search", *args, "--k", "5", "--format", "json")
        b = cli(pg, "search", *args, "--k", "5", "--format", "json")
        assert a.returncode == b.returncode == 0, b.stderr
        assert [h["doc_id"] for h in json.loads(a.stdout)] == [h["doc_id"] for h in json.loads(b.stdout)]
    out_lite, out_pg = tmp_path / "lite.graphml", tmp_path / "pg.graphml"
    assert cli(lite, "export-graph", "--format", "graphml", "--output", str(out_lite)).returncode == 0
    b = cli(pg, "export-graph", "--format", "graphml", "--output", str(out_pg))
    assert b.returncode == 0, b.stderr
    assert out_pg.read_bytes() == out_lite.read_bytes()
    # --store sqlite overrides a configured database URL.
    c = cli(pg, "--store", "sqlite", "--data-dir", str(ingested.data_path), "documents", "--format", "json")
    assert c.returncode == 0 and json.loads(c.stdout) == json.loads(
        cli(lite, "documents", "--format", "json").stdout
    )


def test_bad_database_settings_are_one_line_errors(cli_env: dict[str, str], tmp_path: Path) -> None:
    cases = [
        (_env(cli_env, tmp_path), ["--store", "postgres", "documents"], "needs a database URL"),
        (_env(cli_env, tmp_path, "mysql://x/y"), ["documents"], "must start with postgresql://"),
        (
            _env(cli_env, tmp_path, f"postgresql://u:secret@/none?host={tmp_path}"),
            ["documents"],
            "cannot connect",
        ),
        (_env(cli_env, tmp_path), ["migrate", "--to", "sqlite:///x"], "--to must be a postgresql://"),
    ]
    for env, args, message in cases:
        out = cli(env, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "secret" not in out.stderr


def test_migrate_needs_an_embedded_store(pg_url: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    out = cli(_env(cli_env, tmp_path / "empty"), "migrate", "--to", pg_url)
    assert out.returncode == 2 and "no defintel store" in out.stderr


def test_migrate_carries_watchlists_change_log_and_linking_decisions(
    ingested: Settings, pg_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    import shutil

    shutil.copytree(ingested.data_path, tmp_path / "lite")
    lite = _env(cli_env, tmp_path / "lite")
    assert cli(lite, "watch", "add", "caspian", "--entity", "Azərsilah", "--type", "contract").returncode == 0
    split = cli(lite, "entities", "split", "mke", "MKA", "--reason", "the Baku subsidiary")
    assert split.returncode == 0, split.stderr
    out = cli(lite, "migrate", "--to", pg_url, "--format", "json")
    assert out.returncode == 0, out.stderr
    tables = json.loads(out.stdout)["tables"]
    for name in ("watchlists", "watch_events", "link_decisions"):
        assert tables[name]["source"] == tables[name]["target"] > 0 and tables[name]["missing"] == 0, name

    pg = _env(cli_env, tmp_path / "unused", pg_url)
    a, b = cli(lite, "watch", "list", "--format", "json"), cli(pg, "watch", "list", "--format", "json")
    assert a.returncode == b.returncode == 0 and json.loads(a.stdout) == json.loads(b.stdout)
    # The change log kept its positions: the same look-back digest from either store.
    digests = []
    for env in (lite, pg):
        d = cli(env, "watch", "digest", "caspian", "--since", "2000-01-01", "--format", "json")
        assert d.returncode == 0, d.stderr
        digests.append({k: v for k, v in json.loads(d.stdout).items() if k != "until"})
    assert digests[0] == digests[1] and digests[0]["documents"] and digests[0]["deals"]
    # Nothing pending after the copy: the next digest in the database is empty, as in the data dir.
    d = cli(pg, "watch", "digest", "caspian", "--format", "json")
    assert d.returncode == 0 and json.loads(d.stdout)["documents"] == []
