"""The store's deal and story tables (migration ``…_deals_stories``): the SQL both backends share.

``DealStoryQueries`` is a mixin of ``pipeline.backend.sqlite.StoreQueries`` (so of the SQLite ``Store`` and the
PostgreSQL ``PgStore``): every statement is written once with ``?`` placeholders and portable SQL.
The tables are derived data, recomputed by ``pipeline.consolidate`` from ``agreements`` and
``documents`` at each ingest; nothing else writes them.

* ``deals``: one row per deal; ``body`` is the deal as its JSON row (``Deal.as_json``), ``day`` the
  date it is listed and filtered by (signed, else first reported), ``content_hash`` tells a changed
  deal from a recomputed identical one, so ``updated`` moves only when the deal did.
* ``deal_reports``: which agreement (of which document) reports which deal. No foreign keys: the
  agreements of an updated document are deleted and re-inserted by ``save_analysis``, and the
  consolidation notices rows whose agreement is gone.
* ``deal_parties``: the deal's party ids, for ``--entity`` filters and entity pages.
* ``stories``: the story id of every document.
* ``signal_vectors``: what matching compares, kept so a re-consolidation does not compute it again:
  embeddings of evidence sentences (``agr:<agreement_id>``) and of document leads
  (``doc:<doc_id>``), keyed by embedder name, and each document's figures (``fig:<doc_id>``,
  "embedder" ``figures``, a JSON list). A document's rows are dropped when it changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline.records import (
    Conflict,
    ConflictValue,
    Deal,
    DealReport,
    Money,
    Span,
    StoredAgreement,
    StoryDoc,
    StoryMember,
    sha1,
)

# The migration, for both backends: ``{T}`` is the text column type, ``{B}`` the bytes type.
DEALS_STORIES_SQL = """
CREATE TABLE deals (
    deal_id {T} PRIMARY KEY,
    type {T} NOT NULL,
    day {T},
    first_reported {T},
    last_reported {T},
    n_reports INTEGER NOT NULL,
    body {T} NOT NULL,
    content_hash {T} NOT NULL,
    first_seen {T} NOT NULL,
    updated {T} NOT NULL
);
CREATE INDEX deals_day ON deals(day);
CREATE INDEX deals_updated ON deals(updated);
CREATE TABLE deal_reports (
    agreement_id {T} PRIMARY KEY,
    deal_id {T} NOT NULL,
    doc_id {T} NOT NULL
);
CREATE INDEX deal_reports_deal ON deal_reports(deal_id);
CREATE INDEX deal_reports_doc ON deal_reports(doc_id);
CREATE TABLE deal_parties (
    deal_id {T} NOT NULL,
    entity_id {T} NOT NULL,
    PRIMARY KEY (deal_id, entity_id)
);
CREATE INDEX deal_parties_entity ON deal_parties(entity_id);
CREATE TABLE stories (
    doc_id {T} PRIMARY KEY,
    story_id {T} NOT NULL,
    updated {T} NOT NULL
);
CREATE INDEX stories_story ON stories(story_id);
CREATE TABLE signal_vectors (
    key {T} PRIMARY KEY,
    doc_id {T} NOT NULL,
    embedder {T} NOT NULL,
    vector {B} NOT NULL
);
CREATE INDEX signal_vectors_doc ON signal_vectors(doc_id)
"""

_AGREEMENT_SELECT = """SELECT a.agreement_id, a.doc_id, a.type, a.parties, a.party_ids, a.signed, a.amount,
       a.currency, a.quantity, a.local_content_pct, a.subject, a.evidence_text, a.evidence_start,
       a.evidence_end, d.url, d.language, d.published, d.duplicate_of
   FROM agreements a JOIN documents d ON d.doc_id = a.doc_id"""

_CHUNK = 400  # bound parameters per IN (...) list: under SQLite's limit on every build


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield list(items[i : i + _CHUNK])


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _agreement(r: Any) -> StoredAgreement:
    amount, currency = r["amount"], r["currency"]
    return StoredAgreement(
        agreement_id=str(r["agreement_id"]),
        doc_id=str(r["doc_id"]),
        type=str(r["type"]),
        parties=tuple(json.loads(r["parties"])),
        party_ids=tuple(json.loads(r["party_ids"])),
        signed=r["signed"],
        value=None if amount is None or currency is None else Money(float(amount), str(currency)),
        quantity=r["quantity"],
        local_content_pct=None if r["local_content_pct"] is None else float(r["local_content_pct"]),
        subject=r["subject"],
        evidence=Span(str(r["evidence_text"]), int(r["evidence_start"]), int(r["evidence_end"])),
        url=str(r["url"]),
        language=str(r["language"]),
        published=r["published"],
        duplicate_of=r["duplicate_of"],
    )


def deal_from_json(body: str, first_seen: str | None = None, updated: str | None = None) -> Deal:
    """A deal row's stored JSON back into its record."""
    d = json.loads(body)
    value = d["value"]
    reports = tuple(
        DealReport(
            r.get("agreement_id", ""),
            r["doc_id"],
            r["url"],
            r["language"],
            r["published"],
            Span(r["evidence"]["text"], r["evidence"]["start"], r["evidence"]["end"]),
        )
        for r in d["reports"]
    )
    conflicts = tuple(
        Conflict(
            c["field"],
            tuple(ConflictValue(v["value"], tuple(v["doc_ids"])) for v in c["values"]),
        )
        for c in d["conflicts"]
    )
    lc = d["local_content_pct"]
    return Deal(
        deal_id=d["deal_id"],
        type=d["type"],
        parties=tuple(d["parties"]),
        party_ids=tuple(d["party_ids"]),
        signed=d["signed"],
        value=None if value is None else Money(float(value["amount"]), value["currency"]),
        quantity=d["quantity"],
        local_content_pct=None if lc is None else float(lc),
        subject=d["subject"],
        first_reported=d["first_reported"],
        last_reported=d["last_reported"],
        reports=reports,
        conflicts=conflicts,
        first_seen=first_seen,
        updated=updated,
        lead=d.get("lead"),
    )


def deal_body(deal: Deal) -> str:
    """The stored JSON of a deal: its public row plus each report's agreement id."""
    out = deal.as_json()
    out["reports"] = [{**r.as_json(), "agreement_id": r.agreement_id} for r in deal.reports]
    out["lead"] = deal.lead
    return json.dumps(out, ensure_ascii=False, sort_keys=True)


class DealStoryQueries:
    """Reads and writes of the deal and story tables (see the module docstring)."""

    db: Any

    def entity_ids_matching(self, normalized_names: set[str], normalize: Any) -> list[str]:
        raise NotImplementedError  # StoreQueries'

    # -- what consolidation reads ------------------------------------------------------------
    def stored_agreements(self, doc_ids: Sequence[str]) -> list[StoredAgreement]:
        out: list[StoredAgreement] = []
        for part in _chunks(sorted(set(doc_ids))):
            sql = f"{_AGREEMENT_SELECT} WHERE a.doc_id IN ({_marks(len(part))})"
            out.extend(_agreement(r) for r in self.db.execute(sql, part))
        return out

    def agreements_with_parties(self, party_ids: Iterable[str]) -> list[StoredAgreement]:
        """Agreements naming any of these parties (the candidates a deal can be matched among)."""
        ids = sorted(set(party_ids))
        out: dict[str, StoredAgreement] = {}
        for part in _chunks(ids):
            # party_ids is a JSON list; the LIKE pre-filters, the exact test below decides.
            where = " OR ".join("a.party_ids LIKE ?" for _ in part)
            rows = self.db.execute(f"{_AGREEMENT_SELECT} WHERE {where}", [f'%"{p}"%' for p in part])
            for r in rows:
                a = _agreement(r)
                if set(a.party_ids) & set(part):
                    out[a.agreement_id] = a
        return [out[k] for k in sorted(out)]

    def deal_reports_of(
        self, *, doc_ids: Sequence[str] = (), deal_ids: Sequence[str] = ()
    ) -> list[tuple[str, str, str]]:
        """(agreement_id, deal_id, doc_id) rows of these documents' or these deals' reports."""
        out: set[tuple[str, str, str]] = set()
        for column, values in (("doc_id", doc_ids), ("deal_id", deal_ids)):
            for part in _chunks(sorted(set(values))):
                rows = self.db.execute(
                    f"SELECT agreement_id, deal_id, doc_id FROM deal_reports WHERE {column} IN ({_marks(len(part))})",
                    part,
                )
                out.update((str(r[0]), str(r[1]), str(r[2])) for r in rows)
        return sorted(out)

    def docs_naming(self, entity_ids: Sequence[str]) -> set[str]:
        """Documents with a mention of, or an agreement with, one of these entities."""
        out: set[str] = set()
        for part in _chunks(sorted(set(entity_ids))):
            marks = _marks(len(part))
            out.update(
                str(r[0])
                for r in self.db.execute(
                    f"SELECT DISTINCT doc_id FROM mentions WHERE entity_id IN ({marks})", part
                )
            )
            for p in part:
                rows = self.db.execute(
                    "SELECT DISTINCT doc_id FROM agreements WHERE party_ids LIKE ?", (f'%"{p}"%',)
                )
                out.update(str(r[0]) for r in rows)
        return out

    def document_text(self, doc_id: str) -> str:
        row = self.db.execute("SELECT text FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return "" if row is None else str(row[0])

    def docs_to_consolidate(self) -> list[str]:
        """Documents whose deals or story were never computed, or whose agreements changed under
        them (a store migrated from an older version, or an interrupted consolidation)."""
        rows = self.db.execute(
            """SELECT doc_id FROM documents WHERE doc_id NOT IN (SELECT doc_id FROM stories)
               UNION SELECT a.doc_id FROM agreements a
                   WHERE a.agreement_id NOT IN (SELECT agreement_id FROM deal_reports)
               UNION SELECT r.doc_id FROM deal_reports r
                   WHERE r.agreement_id NOT IN (SELECT agreement_id FROM agreements)"""
        )
        return sorted(str(r[0]) for r in rows)

    # -- deals --------------------------------------------------------------------------------
    def replace_deals(
        self, old_deal_ids: Iterable[str], agreement_ids: Iterable[str], deals: Sequence[Deal]
    ) -> int:
        """Replace these deals (and any report rows of these agreements) by ``deals``.

        A deal that comes back with the same id keeps its ``first_seen``, and its ``updated`` unless
        its content changed. Returns how many deals are new or changed."""
        # New ids too: a recomputed deal can come back under an id still stored.
        old = sorted(set(old_deal_ids) | {d.deal_id for d in deals})
        kept: dict[str, tuple[str, str, str]] = {}
        for part in _chunks(old):
            found = self.db.execute(
                f"SELECT deal_id, content_hash, first_seen, updated FROM deals WHERE deal_id IN ({_marks(len(part))})",
                part,
            )
            kept.update({str(r[0]): (str(r[1]), str(r[2]), str(r[3])) for r in found})
        for part in _chunks(old):
            marks = _marks(len(part))
            self.db.execute(f"DELETE FROM deals WHERE deal_id IN ({marks})", part)
            self.db.execute(f"DELETE FROM deal_parties WHERE deal_id IN ({marks})", part)
            self.db.execute(f"DELETE FROM deal_reports WHERE deal_id IN ({marks})", part)
        for part in _chunks(sorted(set(agreement_ids))):
            self.db.execute(f"DELETE FROM deal_reports WHERE agreement_id IN ({_marks(len(part))})", part)
        ts = _now()
        changed = 0
        rows: list[tuple[str | int | None, ...]] = []
        parties: list[tuple[str, str]] = []
        reports: list[tuple[str, str, str]] = []
        for deal in deals:
            body = deal_body(deal)
            digest = sha1(body)
            before = kept.get(deal.deal_id)
            first_seen = before[1] if before else ts
            updated = before[2] if before and before[0] == digest else ts
            changed += updated == ts
            day = deal.signed or deal.first_reported
            rows.append(
                (
                    deal.deal_id,
                    deal.type,
                    day,
                    deal.first_reported,
                    deal.last_reported,
                    len(deal.reports),
                    body,
                    digest,
                    first_seen,
                    updated,
                )
            )
            parties.extend((deal.deal_id, p) for p in dict.fromkeys(deal.party_ids))
            reports.extend((r.agreement_id, deal.deal_id, r.doc_id) for r in deal.reports)
        self.db.executemany(
            """INSERT INTO deals (deal_id, type, day, first_reported, last_reported, n_reports, body,
                   content_hash, first_seen, updated) VALUES (?,?,?,?,?,?,?,?,?,?)""",
            rows,
        )
        self.db.executemany("INSERT INTO deal_parties (deal_id, entity_id) VALUES (?, ?)", parties)
        self.db.executemany(
            "INSERT INTO deal_reports (agreement_id, deal_id, doc_id) VALUES (?, ?, ?)", reports
        )
        return changed

    def deals(
        self,
        *,
        entity_ids: Sequence[str] | None = None,
        agreement_type: str | None = None,
        since: str | None = None,
        until: str | None = None,
        changed_since: str | None = None,
        doc_ids: Sequence[str] | None = None,
        deal_ids: Sequence[str] | None = None,
    ) -> list[Deal]:
        """Stored deals passing every filter, latest first (by signing date, else first report).

        ``entity_ids``: a party is one of them (an empty list matches nothing); ``since`` /
        ``until``: the deal's date (signed, else first reported) in the range; ``changed_since``:
        created or changed at or after this timestamp; ``doc_ids``: reported by one of these documents;
        ``deal_ids``: one of these deals."""
        where: list[str] = []
        params: list[str] = []
        if entity_ids is not None:
            ids = sorted(set(entity_ids))
            where.append(
                f"deal_id IN (SELECT deal_id FROM deal_parties WHERE entity_id IN ({_marks(len(ids)) or 'NULL'}))"
            )
            params.extend(ids)
        if agreement_type:
            where.append("type = ?")
            params.append(agreement_type)
        if since:
            where.append("day >= ?")
            params.append(since)
        if until:
            where.append("day <= ?")
            params.append(until)
        if changed_since:
            where.append("updated >= ?")
            params.append(changed_since)
        if doc_ids is not None:
            ids = sorted(set(doc_ids))
            where.append(
                f"deal_id IN (SELECT deal_id FROM deal_reports WHERE doc_id IN ({_marks(len(ids)) or 'NULL'}))"
            )
            params.extend(ids)
        if deal_ids is not None:
            ids = sorted(set(deal_ids))
            where.append(f"deal_id IN ({_marks(len(ids)) or 'NULL'})")
            params.extend(ids)
        sql = "SELECT body, first_seen, updated FROM deals" + (
            " WHERE " + " AND ".join(where) if where else ""
        )
        # Latest first; undated deals last (both backends: NULL sorts as the empty string here).
        sql += " ORDER BY COALESCE(day, '') DESC, deal_id"
        return [deal_from_json(r[0], r[1], r[2]) for r in self.db.execute(sql, params)]

    def deal_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM deals").fetchone()[0])

    # -- stories ------------------------------------------------------------------------------
    def story_docs(
        self, *, doc_ids: Sequence[str] = (), since: str | None = None, until: str | None = None
    ) -> list[StoryDoc]:
        """Documents (these, or those published in [since, until]) with their entities and deals."""
        rows: dict[str, Any] = {}
        select = "SELECT doc_id, language, title, published, duplicate_of, minhash FROM documents"
        for part in _chunks(sorted(set(doc_ids))):
            for r in self.db.execute(f"{select} WHERE doc_id IN ({_marks(len(part))})", part):
                rows[str(r[0])] = r
        if since is not None and until is not None:
            for r in self.db.execute(f"{select} WHERE published >= ? AND published <= ?", (since, until)):
                rows[str(r[0])] = r
        ids = sorted(rows)
        entities: dict[str, set[str]] = {i: set() for i in ids}
        deals: dict[str, set[str]] = {i: set() for i in ids}
        for part in _chunks(ids):
            marks = _marks(len(part))
            for r in self.db.execute(
                f"""SELECT DISTINCT m.doc_id, m.entity_id FROM mentions m
                    WHERE m.doc_id IN ({marks}) AND m.label != 'GPE'""",
                part,
            ):
                entities[str(r[0])].add(str(r[1]))
            for r in self.db.execute(
                f"SELECT DISTINCT doc_id, deal_id FROM deal_reports WHERE doc_id IN ({marks})", part
            ):
                deals[str(r[0])].add(str(r[1]))
        return [
            StoryDoc(
                doc_id=i,
                language=str(rows[i]["language"]),
                title=str(rows[i]["title"]),
                published=rows[i]["published"],
                duplicate_of=rows[i]["duplicate_of"],
                minhash=None if rows[i]["minhash"] is None else bytes(rows[i]["minhash"]),
                entity_ids=frozenset(entities[i]),
                deal_ids=frozenset(deals[i]),
            )
            for i in ids
        ]

    def story_ids(self, doc_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in _chunks(sorted(set(doc_ids))):
            rows = self.db.execute(
                f"SELECT doc_id, story_id FROM stories WHERE doc_id IN ({_marks(len(part))})", part
            )
            out.update({str(r[0]): str(r[1]) for r in rows})
        return out

    def story_members(self, story_ids: Sequence[str]) -> dict[str, list[StoryMember]]:
        """Every document of these stories, oldest first."""
        out: dict[str, list[StoryMember]] = {s: [] for s in story_ids}
        for part in _chunks(sorted(set(story_ids))):
            rows = self.db.execute(
                f"""SELECT s.story_id, d.doc_id, d.url, d.title, d.language, d.published
                    FROM stories s JOIN documents d ON d.doc_id = s.doc_id
                    WHERE s.story_id IN ({_marks(len(part))})
                    ORDER BY COALESCE(d.published, '9999'), d.doc_id""",
                part,
            )
            for r in rows:
                out[str(r[0])].append(
                    StoryMember(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), r[5])
                )
        return out

    def set_stories(self, assignment: dict[str, str]) -> int:
        """Store each document's story id; returns how many changed."""
        before = self.story_ids(sorted(assignment))
        rows = [(d, s, _now()) for d, s in sorted(assignment.items()) if before.get(d) != s]
        self.db.executemany(
            """INSERT INTO stories (doc_id, story_id, updated) VALUES (?, ?, ?)
               ON CONFLICT (doc_id) DO UPDATE SET story_id = excluded.story_id, updated = excluded.updated""",
            rows,
        )
        return len(rows)

    # -- signal vectors -----------------------------------------------------------------------
    def signal_vectors(self, keys: Sequence[str], embedder: str) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for part in _chunks(sorted(set(keys))):
            rows = self.db.execute(
                f"SELECT key, vector FROM signal_vectors WHERE embedder = ? AND key IN ({_marks(len(part))})",
                [embedder, *part],
            )
            out.update({str(r[0]): bytes(r[1]) for r in rows})
        return out

    def delete_signal_vectors(self, doc_ids: Sequence[str]) -> None:
        """Forget the kept signals of these documents (their text changed)."""
        for part in _chunks(sorted(set(doc_ids))):
            self.db.execute(f"DELETE FROM signal_vectors WHERE doc_id IN ({_marks(len(part))})", part)

    def put_signal_vectors(self, rows: Sequence[tuple[str, str, str, bytes]]) -> None:
        """(key, doc_id, embedder, float32 bytes) rows."""
        self.db.executemany(
            """INSERT INTO signal_vectors (key, doc_id, embedder, vector) VALUES (?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET doc_id = excluded.doc_id, embedder = excluded.embedder,
                   vector = excluded.vector""",
            rows,
        )
