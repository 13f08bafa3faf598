"""Recompute the deals and stories that new or changed documents touch (part of every ingest).

``Consolidator.update(doc_ids)`` runs inside the transaction that stored those documents, so a run
killed at any moment leaves deals and stories in step with the documents that were committed. Only
the neighbourhood of the changed documents is recomputed: for deals, the agreements that share a
party with theirs and could still score as the same instrument (``deals.could_match``: the hard
limits, and a stated fact that agrees), with every report of the deals those belong to; for stories, the documents published within the
story window of theirs, with every member of their stories. ``docs_to_consolidate`` (called at the
start of a run) catches documents stored before this existed or whose consolidation was lost.

On PostgreSQL, workers consolidate one at a time (an advisory lock taken in the transaction).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from pipeline.backend.protocols import Store
from pipeline.deals import build_deal, cluster_agreements, could_match
from pipeline.index.embedders import Embedder, Vectors
from pipeline.records import StoredAgreement
from pipeline.stories import (
    WINDOW_DAYS,
    cluster_stories,
    figures,
    figures_blob,
    figures_from_blob,
    lead_text,
    story_id,
)

log = logging.getLogger(__name__)

FIGURES = "figures"  # the signal_vectors "embedder" under which each document's figures are kept


@dataclass(frozen=True, slots=True)
class Consolidation:
    deals_changed: int = 0
    stories_changed: int = 0


def _could_match(seed: StoredAgreement, other: StoredAgreement) -> bool:
    """A candidate for the same deal as a changed agreement: it could reach the threshold, or one
    document republishes the other (their pages may state less, the link makes up for it)."""
    if other.doc_id in (seed.duplicate_of, seed.doc_id) or seed.doc_id == other.duplicate_of:
        return True
    if seed.duplicate_of is not None and seed.duplicate_of == other.duplicate_of:
        return True
    return could_match(seed, other)


def _windows(days: Sequence[str]) -> list[tuple[str, str]]:
    """Merged [day - window, day + window] ranges around these publication dates."""
    out: list[tuple[date, date]] = []
    for d in sorted({date.fromisoformat(x[:10]) for x in days}):
        lo, hi = d - timedelta(days=WINDOW_DAYS), d + timedelta(days=WINDOW_DAYS)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return [(lo.isoformat(), hi.isoformat() + "\uffff") for lo, hi in out]


class Consolidator:
    """Keeps the deal and story tables in step with the documents (see the module docstring)."""

    def __init__(self, store: Store, embedder: Embedder, *, lock: int | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.lock = lock  # PostgreSQL advisory lock key, or None

    def update(self, doc_ids: Sequence[str], *, changed: bool = True) -> Consolidation:
        """Recompute what these documents touch (caller holds the transaction).

        ``changed``: the documents' text may have changed since their signals (lead vector,
        figures, evidence vectors) were kept, so those are computed again; False when only their
        deals and stories are missing (a migrated store)."""
        if not doc_ids:
            return Consolidation()
        self.store.serialize(self.lock)  # PostgreSQL: one consolidation at a time
        if changed:
            self.store.delete_signal_vectors(doc_ids)
        deals = self._deals(doc_ids)
        stories = self._stories(doc_ids)
        return Consolidation(deals, stories)

    # -- vectors --------------------------------------------------------------------------------
    def _vectors(self, keys: dict[str, str], text_of: Callable[[str], str]) -> dict[str, Vectors]:
        """Embeddings for {key: doc_id}: stored ones read, the missing ones embedded (``text_of(key)``)."""
        name = self.embedder.name
        stored = self.store.signal_vectors(list(keys), name)
        out = {k: np.frombuffer(v, dtype=np.float32) for k, v in stored.items()}
        missing = [k for k in sorted(keys) if k not in out]
        if missing:
            vecs = self.embedder.passages([text_of(k) for k in missing])
            self.store.put_signal_vectors(
                [
                    (k, keys[k], name, np.asarray(v, dtype=np.float32).tobytes())
                    for k, v in zip(missing, vecs, strict=True)
                ]
            )
            out.update({k: np.asarray(v, dtype=np.float32) for k, v in zip(missing, vecs, strict=True)})
        return out

    def _figures(self, doc_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        """Each document's figures (``stories.figures``) outside its agreements' evidence sentences,
        kept beside the vectors once computed."""
        keys = {f"fig:{d}": d for d in doc_ids}
        stored = self.store.signal_vectors(list(keys), FIGURES)
        out = {keys[k]: figures_from_blob(v) for k, v in stored.items()}
        missing = [k for k in sorted(keys) if k not in stored]
        # Figures of a document's agreements are the deal signal's: counted there, not twice (an
        # article recalling a deal's value and quantity is not therefore the same story).
        stated: dict[str, set[str]] = {}
        for a in self.store.stored_agreements([keys[k] for k in missing]):
            stated.setdefault(a.doc_id, set()).update(figures(a.evidence.text))
        rows = []
        for k in missing:
            values = figures(self.store.document_text(keys[k])) - stated.get(keys[k], set())
            out[keys[k]] = values
            rows.append((k, keys[k], FIGURES, figures_blob(values)))
        self.store.put_signal_vectors(rows)
        return out

    # -- deals ----------------------------------------------------------------------------------
    def _deals(self, doc_ids: Sequence[str]) -> int:
        store = self.store
        seeds = store.stored_agreements(doc_ids)
        former = store.deal_reports_of(doc_ids=doc_ids)
        old_deals = {deal for _, deal, _ in former}
        # Agreements that could be the same instrument as a changed one.
        candidates = {a.agreement_id: a for a in seeds}
        for a in store.agreements_with_parties({p for s in seeds for p in s.party_ids}):
            if a.agreement_id not in candidates and any(_could_match(s, a) for s in seeds):
                candidates[a.agreement_id] = a
        # Their deals and the former deals of the changed documents are recomputed whole.
        touched = store.deal_reports_of(doc_ids=sorted({a.doc_id for a in candidates.values()}))
        old_deals |= {deal for aid, deal, _ in touched if aid in candidates}
        members = store.deal_reports_of(deal_ids=sorted(old_deals))
        member_ids = {aid for aid, _, _ in members}
        for a in store.stored_agreements(sorted({doc for _, _, doc in members})):
            if a.agreement_id in member_ids:
                candidates.setdefault(a.agreement_id, a)
        items = list(candidates.values())
        evidence = {f"agr:{a.agreement_id}": a.evidence.text for a in items}
        vectors = self._vectors({f"agr:{a.agreement_id}": a.doc_id for a in items}, evidence.__getitem__)
        by_key = {a.agreement_id: vectors[f"agr:{a.agreement_id}"] for a in items}
        clusters = cluster_agreements(items, by_key, self.embedder.name)
        deals = [build_deal(c) for c in clusters]
        stale = {aid for aid, _, _ in former} | member_ids | set(candidates)
        changed = store.replace_deals(old_deals, stale, deals)
        log.debug(
            "deals: %d agreements re-matched into %d deals (%d changed)", len(items), len(deals), changed
        )
        return changed

    # -- stories --------------------------------------------------------------------------------
    def _stories(self, doc_ids: Sequence[str]) -> int:
        store = self.store
        seeds = store.story_docs(doc_ids=doc_ids)
        docs = {d.doc_id: d for d in seeds}
        for lo, hi in _windows([d.published for d in seeds if d.published]):
            docs.update({d.doc_id: d for d in store.story_docs(since=lo, until=hi)})
        current = store.story_ids(sorted(docs))
        members = store.story_members(sorted(set(current.values())))
        extra = sorted({m.doc_id for ms in members.values() for m in ms} - set(docs))
        if extra:
            docs.update({d.doc_id: d for d in store.story_docs(doc_ids=extra)})

        def lead(key: str) -> str:
            d = docs[key.removeprefix("doc:")]
            return lead_text(d.title, store.document_text(d.doc_id))

        vectors = self._vectors({f"doc:{d.doc_id}": d.doc_id for d in docs.values()}, lead)
        clusters = cluster_stories(
            list(docs.values()), vectors, self.embedder.name, self._figures(sorted(docs))
        )
        assignment = {d.doc_id: story_id(c) for c in clusters for d in c}
        return store.set_stories(assignment)


def reconsolidate_entities(
    store: Store, embedder: Embedder, entity_ids: Sequence[str], *, lock: int | None = None
) -> Consolidation:
    """Deals and stories of the documents naming these entities, after an analyst's merge or split
    rewrote their mentions and agreement parties (caller holds the transaction)."""
    ids = sorted(set(entity_ids))
    docs = {r.doc_id for d in store.deals(entity_ids=ids) for r in d.reports}
    docs |= store.docs_naming(ids)
    return Consolidator(store, embedder, lock=lock).update(sorted(docs), changed=False)


def consolidate_lock(store: object) -> int | None:
    """The advisory lock consolidation takes on PostgreSQL (None on SQLite)."""
    from pipeline.backend import is_postgres

    if not is_postgres(store):
        return None
    from pipeline.backend.pg.schema import CONSOLIDATE_LOCK

    return CONSOLIDATE_LOCK
