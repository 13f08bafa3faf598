"""``defintel migrate --to postgresql://…``: copy an embedded data dir into a PostgreSQL store.

Everything the embedded store holds is copied — documents, chunks with their vectors (read from
the FAISS index in the data dir) and BM25 terms, entities, mentions, agreements, runs and the crawl
frontier — as upserts keyed by the same content-derived ids, in one transaction per batch. Running
it again copies nothing new and changes nothing: it is idempotent. Rows the database holds that the
data dir does not (another source's documents) are left alone. The copy is then verified: every id
of the data dir must be in the database, and the counts of both sides are reported.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.backend.pg.store import (
    AGREEMENT_UPSERT,
    CHUNK_INSERT,
    ENTITY_UPSERT,
    FRONTIER_SELECT,
    PgStore,
    table_counts,
    vector_literal,
)
from pipeline.backend.pg.terms import chunk_terms
from pipeline.backend.sqlite import AGREEMENT_KEY, COUNTED_TABLES, DB_NAME, Store
from pipeline.config import Settings
from pipeline.errors import UsageError

log = logging.getLogger(__name__)

BATCH = 500
# What the report lists: the counted tables, and the stored vectors after the chunks.
TABLES = (*COUNTED_TABLES[:2], "vectors", *COUNTED_TABLES[2:])


@dataclass(slots=True)
class MigrateReport:
    source: dict[str, int] = field(default_factory=dict)  # rows in the data dir
    target: dict[str, int] = field(default_factory=dict)  # rows in the database after the copy
    missing: dict[str, int] = field(default_factory=dict)  # data-dir rows not found in the database
    embedder: str | None = None

    @property
    def ok(self) -> bool:
        return not any(self.missing.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "embedder": self.embedder,
            "tables": {
                t: {
                    "source": self.source.get(t, 0),
                    "target": self.target.get(t, 0),
                    "missing": self.missing.get(t, 0),
                }
                for t in TABLES
            },
            "ok": self.ok,
        }


def _index_vectors(data_dir: Path) -> tuple[str | None, int, dict[int, np.ndarray[Any, Any]]]:
    """(embedder, dim, vec_id → vector) from the data dir's FAISS index (empty when there is none)."""
    root = data_dir / "index"
    pointer = root / "CURRENT"
    if not pointer.exists():
        return None, 0, {}
    config_path = root / pointer.read_text(encoding="utf-8").strip() / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"unreadable index config {config_path}: {exc}") from None
    from pipeline.index.vectors import VectorIndex

    name, dim = str(config["embedder"]), int(config["dimension"])
    index = VectorIndex.load(root, name, dim)
    ids, matrix = index.contents()
    return name, dim, {int(i): np.array(matrix[n]) for n, i in enumerate(ids)}


def _batches(rows: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def migrate_to_postgres(
    settings: Settings, dsn: str, *, progress: Callable[[str, int], None] | None = None
) -> MigrateReport:
    """Copy ``settings.data_dir`` into the database at ``dsn`` (see the module docstring)."""
    if not (settings.data_path / DB_NAME).exists():
        raise UsageError(f"no defintel store in {settings.data_dir} to migrate (run `defintel ingest` first)")
    src = Store(settings.data_path, readonly=True)
    dst = PgStore(dsn, pool_size=2)
    report = MigrateReport()
    try:
        name, dim, vectors = _index_vectors(settings.data_path)
        report.embedder = name
        if name is not None:
            dst.ensure_embedder(name, dim)
        _copy(src, dst, vectors, progress or (lambda table, n: None))
        _copy_watch(src, dst, progress or (lambda table, n: None))
        _consolidate(settings, src, dst, name)
        from pipeline.backend.pg import stats

        stats.refresh(dst)
        _verify(src, dst, vectors, report)
    finally:
        src.close()
        dst.close()
    return report


def _copy(src: Store, dst: PgStore, vectors: dict[int, Any], progress: Callable[[str, int], None]) -> None:
    docs = [dict(r) for r in src.db.execute("SELECT * FROM documents ORDER BY doc_id")]
    columns = list(docs[0]) if docs else []
    if docs:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "doc_id")
        sql = (
            f"INSERT INTO documents ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT (doc_id) DO UPDATE SET {updates}"
        )
        for part in _batches(docs):
            with dst.atomic():
                dst.db.executemany(sql, [tuple(d[c] for c in columns) for d in part])
            progress("documents", len(part))
    language = {d["doc_id"]: (d["language"], d["published"], d["title"]) for d in docs}

    entities = src.db.execute(
        "SELECT entity_id, label, canonical, aliases, qid, in_registry FROM entities"
    ).fetchall()
    for part in _batches(entities):
        with dst.atomic():
            dst.db.executemany(ENTITY_UPSERT, [tuple(r) for r in part])
        progress("entities", len(part))

    mentions = src.db.execute('SELECT doc_id, start, "end", text, label, entity_id FROM mentions').fetchall()
    for part in _batches(mentions):
        with dst.atomic():
            dst.db.executemany(
                """INSERT INTO mentions (doc_id, start, "end", text, label, entity_id) VALUES (?,?,?,?,?,?)
                   ON CONFLICT (doc_id, start, "end") DO UPDATE SET text = excluded.text,
                       label = excluded.label, entity_id = excluded.entity_id""",
                [tuple(r) for r in part],
            )
        progress("mentions", len(part))

    agreements = src.db.execute(
        """SELECT agreement_id, doc_id, type, parties, party_ids, signed, amount, currency, subject, quantity,
                  local_content_pct, evidence_text, evidence_start, evidence_end FROM agreements"""
    ).fetchall()
    for part in _batches(agreements):
        with dst.atomic():
            dst.db.executemany(AGREEMENT_UPSERT, [tuple(r) for r in part])
        progress("agreements", len(part))

    # In the order their vectors entered the FAISS index (vectorless last): equal search scores then
    # rank in the same order on both backends.
    position = {v: i for i, v in enumerate(vectors)}
    chunks = sorted(src.chunks(), key=lambda c: position.get(int(c["vec_id"]), len(position)))
    for part in _batches(chunks):
        rows = []
        for c in part:
            lang, published, title = language.get(c["doc_id"], ("", None, ""))
            terms, n_terms, tf = chunk_terms(title, c["text"])
            vec = vectors.get(int(c["vec_id"]))
            emb = None if vec is None else vector_literal(vec)
            chunk = (c["chunk_id"], c["doc_id"], c["n"], c["vec_id"], c["text"], c["start"], c["end"])
            rows.append((*chunk, lang, published, terms, n_terms, tf, emb))
        with dst.atomic():
            dst.db.executemany(CHUNK_INSERT, rows)
        progress("chunks", len(part))

    runs = src.db.execute("SELECT run_id, started, finished, report, status, pid FROM runs").fetchall()
    if runs:
        with dst.atomic():
            dst.db.executemany(
                """INSERT INTO runs (run_id, started, finished, report, status, pid) VALUES (?,?,?,?,?,?)
                   ON CONFLICT (run_id) DO UPDATE SET finished = excluded.finished, report = excluded.report,
                       status = excluded.status""",
                [tuple(r) for r in runs],
            )
            # New runs must number after the copied ones.
            dst.db.execute(
                "SELECT setval(pg_get_serial_sequence('runs', 'run_id'), (SELECT MAX(run_id) FROM runs))"
            )
        progress("runs", len(runs))

    frontier = [dict(r) for r in src.db.execute(f"SELECT {FRONTIER_SELECT} FROM frontier")]
    if frontier:
        cols = list(frontier[0])
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "url")
        sql = (
            f"INSERT INTO frontier ({', '.join(cols)}, host) VALUES ({', '.join('?' * (len(cols) + 1))}) "
            f"ON CONFLICT (url) DO UPDATE SET {updates}"
        )
        from urllib.parse import urlsplit

        for part in _batches(frontier):
            with dst.atomic():
                dst.db.executemany(
                    sql, [(*(r[c] for c in cols), urlsplit(r["url"]).netloc.lower()) for r in part]
                )
            progress("frontier", len(part))


def _copy_watch(src: Store, dst: PgStore, progress: Callable[[str, int], None]) -> None:
    """Watchlists, their change log and the analyst's linking decisions.

    Into a database whose change log is empty (the usual first migration) the events keep their
    positions, so every watchlist's mark still points where it did and the next digest lists what
    it would have listed in the data dir. Into one that already has events, the missing ones are
    appended and a copied watchlist starts from the database's end (nothing pending), as a list
    made there would. Linking decisions not already in the database are appended in their order."""
    # An agreement event's key is the agreement's content as the backend's SQL writes it (numbers
    # print differently): the keys of the agreements stored now are rewritten in the database's form.
    key_sql = f"SELECT a.agreement_id, {AGREEMENT_KEY} FROM agreements a"
    ids = {str(r[1]): str(r[0]) for r in src.db.execute(key_sql)}
    in_db = {str(r[0]): str(r[1]) for r in dst.db.execute(key_sql)}
    rekey = {key: in_db[aid] for key, aid in ids.items() if aid in in_db}
    events = [
        (r[0], r[1], rekey.get(r[2], r[2]) if r[1] == "agreement" else r[2], r[3], r[4])
        for r in src.db.execute("SELECT seq, kind, key, doc_id, at FROM watch_events ORDER BY seq")
    ]
    fresh = dst.watch_mark() == 0  # the database's change log is empty
    for part in _batches(events):
        with dst.atomic():
            if fresh:
                dst.db.executemany(
                    "INSERT INTO watch_events (seq, kind, key, doc_id, at) VALUES (?,?,?,?,?)",
                    [tuple(r) for r in part],
                )
            else:
                dst.db.executemany(
                    """INSERT INTO watch_events (kind, key, doc_id, at) VALUES (?,?,?,?)
                       ON CONFLICT (kind, key) DO NOTHING""",
                    [tuple(r)[1:] for r in part],
                )
        progress("watch_events", len(part))
    with dst.atomic():
        if fresh and events:
            dst.db.execute(
                "SELECT setval(pg_get_serial_sequence('watch_events', 'seq'), (SELECT MAX(seq) FROM watch_events))"
            )
        end = dst.watch_mark()
        lists = [dict(r) for r in src.db.execute("SELECT * FROM watchlists ORDER BY name")]
        for w in lists:
            if not fresh:
                w["mark"] = w["start_mark"] = w["visit_mark"] = end
            cols = list(w)
            updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "name")
            dst.db.execute(
                f"INSERT INTO watchlists ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                f"ON CONFLICT (name) DO UPDATE SET {updates}",
                tuple(w[c] for c in cols),
            )
        if lists:
            progress("watchlists", len(lists))
        have = {tuple(r) for r in dst.db.execute("SELECT action, entity_id, other FROM link_decisions")}
        decisions = [
            tuple(r)
            for r in src.db.execute(
                "SELECT action, entity_id, other, reason, decided_at FROM link_decisions ORDER BY seq"
            )
            if tuple(r)[:3] not in have
        ]
        dst.db.executemany(
            "INSERT INTO link_decisions (action, entity_id, other, reason, decided_at) VALUES (?,?,?,?,?)",
            decisions,
        )
        if decisions:
            progress("link_decisions", len(decisions))


def _consolidate(settings: Settings, src: Store, dst: PgStore, embedder: str | None) -> None:
    """Deals and stories of the copied documents, computed in the database (where other sources'
    documents may join them); the data dir's embeddings of evidence and leads are copied first, so
    nothing is embedded again when the embedders agree."""
    from pipeline.backend.pg.schema import CONSOLIDATE_LOCK
    from pipeline.consolidate import Consolidator
    from pipeline.index.embedders import make_embedder

    rows = src.db.execute("SELECT key, doc_id, embedder, vector FROM signal_vectors").fetchall()
    for part in _batches(rows):
        with dst.atomic():
            dst.put_signal_vectors([(r[0], r[1], r[2], bytes(r[3])) for r in part])
    ix = settings.index
    model = make_embedder(embedder or ix.embedder, ix.e5_model_dir, ix.e5_runtime, threads=ix.threads)
    doc_ids = [str(r[0]) for r in src.db.execute("SELECT doc_id FROM documents ORDER BY doc_id")]
    with dst.atomic():
        Consolidator(dst, model, lock=CONSOLIDATE_LOCK).update(doc_ids, changed=False)


def _keys(db: Any, sql: str) -> set[Any]:
    return {tuple(r) if len(r) > 1 else r[0] for r in db.execute(sql)}


KEY_QUERIES = {
    "documents": "SELECT doc_id FROM documents",
    "chunks": "SELECT chunk_id FROM chunks",
    "entities": "SELECT entity_id FROM entities",
    "mentions": 'SELECT doc_id, start, "end" FROM mentions',
    "agreements": "SELECT agreement_id FROM agreements",
    "runs": "SELECT run_id FROM runs",
    "frontier": "SELECT url FROM frontier",
    "watchlists": "SELECT name FROM watchlists",
    "watch_events": "SELECT kind, doc_id, at FROM watch_events",  # agreement keys are rewritten
    "link_decisions": "SELECT action, entity_id, other FROM link_decisions",
}


def _verify(src: Store, dst: PgStore, vectors: dict[int, Any], report: MigrateReport) -> None:
    report.source = table_counts(src.db)
    report.target = table_counts(dst.db)
    for table, sql in KEY_QUERIES.items():
        have = _keys(dst.db, sql)
        report.missing[table] = len(_keys(src.db, sql) - have)
    stored = {int(r[0]) for r in src.db.execute("SELECT vec_id FROM chunks")}
    report.source["vectors"] = len(stored & set(vectors))
    report.target["vectors"] = len(dst.vector_ids())
    report.missing["vectors"] = len((stored & set(vectors)) - dst.vector_ids())
