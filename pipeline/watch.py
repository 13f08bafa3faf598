"""Watchlists and their digests: what is new for the entities, queries and agreement types an
analyst follows (``defintel watch``; INTERFACE.md gives the JSON shape).

A watchlist is a row in the store (both backends): entities (any alias in any language, resolved
to canonical ids through the registry and the stored entities), search queries, agreement types,
and a *mark*, a position in the store's change log (``watch_events``). Storing a document logs it
once, when it is first stored; storing an agreement logs its facts (document, type, parties, date,
value, subject, quantity, local content) once, when they are first seen, so an article corrected
with a new value logs the agreement again. A digest covers the change log after the mark and moves
the mark to its end: a digest taken right after another lists nothing. ``--since`` looks back
(events logged on or after a date or time) and leaves the mark alone.

A digest lists

* new documents that mention a watched entity, match a watched query or report an agreement of a
  watched type, each with ``matched`` (why) and ``evidence`` (the sentence that shows it);
  republications (``duplicate_of`` set) are folded into their original;
* new or changed deals involving a watched entity or of a watched type (``digest_deals``: today
  the agreements table, one report per deal);
* entities first seen in the window that co-occur with a watched entity (``entities_new``).

Queries run on the search stack restricted to the window's documents: a document matches when
each word of the query (or, for a name, any alias of the entity it names, in any language) occurs
in it, or when its best passage's dense score, standardised per language as search does, reaches
``[watch] query_min_z`` (the cross-lingual path for queries that are not names).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.clock import now
from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.records import AGREEMENT_TYPES, sha1
from pipeline.segment import sentences
from pipeline.textnorm import normalize

log = logging.getLogger(__name__)

# Names become file names (<data_dir>/digests/NAME.md): letters, digits, - _ . only.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_WORD = re.compile(r"\w+")
DOC_FIELDS = ("doc_id", "url", "language", "title", "published", "author", "duplicate_of")


@dataclass(frozen=True, slots=True)
class WatchedEntity:
    name: str  # as the analyst wrote it
    canonical: str
    ids: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "canonical": self.canonical, "ids": list(self.ids)}


@dataclass(frozen=True, slots=True)
class Watchlist:
    name: str
    entities: tuple[WatchedEntity, ...] = ()
    queries: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    created: str = ""
    updated: str = ""
    mark: int = 0
    last_digest: str | None = None
    start_mark: int = 0  # the change log's end when the list was made
    visit_mark: int = 0  # the app's "seen up to here"

    @classmethod
    def of(cls, row: dict[str, Any]) -> Watchlist:
        return cls(
            row["name"],
            tuple(WatchedEntity(e["name"], e["canonical"], tuple(e["ids"])) for e in row["entities"]),
            tuple(row["queries"]),
            tuple(row["types"]),
            row["created"],
            row["updated"],
            int(row["mark"]),
            row["last_digest"],
            int(row["start_mark"]),
            int(row["visit_mark"]),
        )

    @property
    def entity_ids(self) -> dict[str, str]:
        """Watched entity id → the name it is watched under."""
        return {i: e.canonical for e in self.entities for i in e.ids}

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entities": [e.as_json() for e in self.entities],
            "queries": list(self.queries),
            "types": list(self.types),
            "created": self.created,
            "updated": self.updated,
            "last_digest": self.last_digest,
        }


@dataclass(frozen=True, slots=True)
class Digest:
    watchlist: str
    since: str | None
    until: str
    documents: tuple[dict[str, Any], ...] = ()
    deals: tuple[dict[str, Any], ...] = ()
    entities_new: tuple[dict[str, Any], ...] = ()
    mark: tuple[int, int] = (0, 0)  # change-log positions covered: (after, up to)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.documents or self.deals or self.entities_new)

    def as_json(self) -> dict[str, Any]:
        return {
            "watchlist": self.watchlist,
            "since": self.since,
            "until": self.until,
            "documents": list(self.documents),
            "deals": list(self.deals),
            "entities_new": list(self.entities_new),
        }


# -- managing lists ---------------------------------------------------------------------------------
def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"bad watchlist name {name!r}: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    return name


def get_watchlist(store: Any, name: str) -> Watchlist:
    row = store.watchlist(name)
    if row is None:
        raise UsageError(f"no watchlist named {name!r} (see `defintel watch list`)")
    return Watchlist.of(row)


def list_watchlists(store: Any) -> list[Watchlist]:
    return [Watchlist.of(r) for r in store.watchlists()]


def resolve_entity(store: Any, models_dir: str, name: str) -> WatchedEntity:
    """The canonical ids a name stands for: an id, a canonical name or any alias in any language,
    with Turkish/Azerbaijani suffixes (``Azərsilahın``), from the stored entities and the registry
    (so an entity the registry knows can be watched before any document names it)."""
    from pipeline.nlp.registry import load_registry

    name = name.strip()
    if not name:
        raise UsageError("empty --entity")
    registry = load_registry(models_dir)
    ids: set[str] = set()
    if store.entity_exists(name):
        ids.add(name)
    ids.update(store.entity_ids_matching(set(registry.variants(name)), normalize))
    found = registry.lookup(name)
    canonical = name
    if found is not None:
        ids.add(found.entity_id)
        canonical = found.canonical
    elif registry.get(name) is not None:
        entity = registry.get(name)
        assert entity is not None
        ids.add(entity.entity_id)
        canonical = entity.canonical
    if not ids:
        raise UsageError(f"unknown entity {name!r} (give an id, a canonical name or an alias)")
    if found is None:
        canonical = store.entity_canonical(sorted(ids)[0]) or canonical
    return WatchedEntity(name, canonical, tuple(sorted(ids)))


def _check_types(types: Sequence[str]) -> list[str]:
    bad = [t for t in types if t not in AGREEMENT_TYPES]
    if bad:
        raise UsageError(f"unknown agreement type {bad[0]!r} (choose from {', '.join(AGREEMENT_TYPES)})")
    return list(dict.fromkeys(types))


def _check_queries(queries: Sequence[str]) -> list[str]:
    out = [q.strip() for q in queries]
    if any(not q for q in out):
        raise UsageError("empty --query")
    return list(dict.fromkeys(out))


def save_watchlist(
    store: Any,
    settings: Settings,
    name: str,
    entities: Sequence[str] = (),
    queries: Sequence[str] = (),
    types: Sequence[str] = (),
    *,
    replace: bool = False,
) -> Watchlist:
    """Create a watchlist, or add to an existing one (``replace``: what it follows becomes exactly
    this). A new list reports what is stored after it was made."""
    check_name(name)
    resolved = [resolve_entity(store, settings.nlp.models_dir, e) for e in entities]
    new_queries = _check_queries(queries)
    new_types = _check_types(types)
    old = store.watchlist(name)
    if old is not None and not replace:
        known = {tuple(e["ids"]) for e in old["entities"]}
        kept = [e for e in old["entities"]]
        kept += [e.as_json() for e in resolved if e.ids not in known]
        ents = kept
        new_queries = list(dict.fromkeys([*old["queries"], *new_queries]))
        new_types = list(dict.fromkeys([*old["types"], *new_types]))
    else:
        seen: set[tuple[str, ...]] = set()
        ents = []
        for e in resolved:
            if e.ids not in seen:
                seen.add(e.ids)
                ents.append(e.as_json())
    if not (ents or new_queries or new_types):
        raise UsageError(f"watchlist {name!r} needs at least one --entity, --query or --type")
    with store.atomic():
        store.save_watchlist(name, ents, new_queries, new_types)
    return get_watchlist(store, name)


def remove_watchlist(store: Any, name: str) -> None:
    with store.atomic():
        if not store.delete_watchlist(name):
            raise UsageError(f"no watchlist named {name!r} (see `defintel watch list`)")


def parse_since(value: str) -> str:
    """``--since``: a date (YYYY-MM-DD) or an ISO time, as the change log's timestamps compare."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value).isoformat()
        return datetime.fromisoformat(value).isoformat(timespec="seconds")
    except ValueError:
        raise UsageError(f"--since must be a date YYYY-MM-DD or an ISO time, got {value!r}") from None


# -- the digest -----------------------------------------------------------------------------------
def take_digest(
    settings: Settings,
    store: Any,
    name: str,
    *,
    since: str | None = None,
    searcher: Any | None = None,
    advance: bool | None = None,
    from_start: bool = False,
    after: int | None = None,
) -> Digest:
    """The digest of one watchlist: since its mark (moved to the end of the window afterwards), or
    since ``since`` (a look-back; the mark stays unless ``advance``). ``from_start``: only what was
    stored after the list was made. ``after``: from this change-log position instead of the mark
    (the app's last visit); the mark stays."""
    wl = get_watchlist(store, name)
    upto = store.watch_mark()
    until = now()
    if since is not None:
        since = parse_since(since)
        after = wl.start_mark if from_start else 0
    elif after is not None:
        advance = bool(advance)
    else:
        after = wl.mark
    events = store.watch_events(after, upto, since)
    digest = build_digest(settings, store, wl, events, searcher=searcher)
    digest = Digest(
        wl.name,
        since or wl.last_digest or wl.created,
        until,
        digest.documents,
        digest.deals,
        digest.entities_new,
        (after, upto),
    )
    if advance if advance is not None else since is None:
        with store.atomic():
            store.set_watch_mark(wl.name, upto, until)
    return digest


def build_digest(
    settings: Settings,
    store: Any,
    wl: Watchlist,
    events: Sequence[dict[str, Any]],
    *,
    searcher: Any | None = None,
) -> Digest:
    """The digest of these change-log events for ``wl`` (writes nothing)."""
    watched = wl.entity_ids
    new_doc_ids = list(dict.fromkeys(e["doc_id"] for e in events if e["kind"] == "document"))
    docs = store.watch_documents(new_doc_ids)
    originals = [d for d in new_doc_ids if d in docs and not docs[d]["duplicate_of"]]
    republished: dict[str, list[str]] = {}
    for d in new_doc_ids:
        dup = docs.get(d, {}).get("duplicate_of")
        if dup:
            republished.setdefault(dup, []).append(docs[d]["url"])
    first_at = {e["doc_id"]: e["at"] for e in events if e["kind"] == "document"}

    reasons: dict[str, list[tuple[str, dict[str, Any]]]] = {d: [] for d in originals}
    mentions = store.watch_mentions(originals) if originals else []
    with_watched: set[str] = set()
    for doc_id, entity_id, start, end in mentions:
        if entity_id not in watched:
            continue
        with_watched.add(doc_id)
        why = f"entity:{watched[entity_id]}"
        have = [i for i, (w, _) in enumerate(reasons[doc_id]) if w == why]
        headline = (docs[doc_id]["title"] or "").strip()
        if not have:
            reasons[doc_id].append((why, sentence_at(docs[doc_id]["text"], start, end)))
        elif reasons[doc_id][have[0]][1]["text"].strip() == headline:
            # The headline repeats what the card shows: the first sentence of the body naming it.
            ev = sentence_at(docs[doc_id]["text"], start, end)
            if ev["text"].strip() != headline:
                reasons[doc_id][have[0]] = (why, ev)
    if wl.types and originals:
        for a in store.watch_agreements(originals):
            why = f"type:{a['type']}"
            if a["type"] in wl.types and all(w != why for w, _ in reasons[a["doc_id"]]):
                ev = {"text": a["evidence_text"], "start": a["evidence_start"], "end": a["evidence_end"]}
                reasons[a["doc_id"]].append((why, ev))
    if wl.queries and originals:
        searcher = searcher or open_digest_searcher(settings, store)
        for query in wl.queries:
            for doc_id, ev in match_query(searcher, query, docs, originals, settings.watch.query_min_z):
                reasons[doc_id].append((f"query:{query}", ev))

    rows = []
    for doc_id in originals:
        if not reasons[doc_id]:
            continue
        d = docs[doc_id]
        row = {k: d[k] for k in DOC_FIELDS}
        row["matched"] = [w for w, _ in reasons[doc_id]]
        row["evidence"] = [{"matched": w, **ev} for w, ev in reasons[doc_id]]
        row["first_seen"] = first_at.get(doc_id)
        row["republished"] = republished.get(doc_id, [])
        rows.append(row)
    rows.sort(key=lambda r: (r["published"] or "", r["first_seen"] or "", r["doc_id"]), reverse=True)

    deals = digest_deals(store, events, wl)
    entities_new = _entities_new(store, wl, mentions, with_watched, events)
    return Digest(wl.name, None, "", tuple(rows), tuple(deals), tuple(entities_new))


def digest_deals(store: Any, events: Sequence[dict[str, Any]], wl: Watchlist) -> list[dict[str, Any]]:
    """The deal section: the consolidated deals (``store.deals``, what ``defintel deals`` lists) that
    a report in the window made new or changed, involving a watched entity or of a watched type.

    A report is in the window when its agreement entered the change log there (a new document's
    agreement, or a corrected one: the change-log key is the agreement's content). ``change`` is
    ``new`` when every report of the deal is a new document's, else ``changed`` (a corrected figure,
    or a further report of a deal known before); ``version`` is a hash of the deal's state, so a
    feed shows a changed deal once more, and the same state once. The window's reports come first."""
    keys = {e["key"]: e for e in events if e["kind"] == "agreement"}
    if not keys:
        return []
    new_docs = {e["doc_id"] for e in events if e["kind"] == "document"}
    doc_ids = sorted({e["doc_id"] for e in keys.values()})
    seen_at = {
        a["agreement_id"]: keys[a["watch_key"]]["at"]
        for a in store.watch_agreements(doc_ids)
        if a["watch_key"] in keys
    }
    watched = wl.entity_ids
    out = []
    for deal in store.deals(doc_ids=doc_ids):
        fresh = [r for r in deal.reports if r.agreement_id in seen_at]
        if not fresh:
            continue
        hits = [watched[p] for p in deal.party_ids if p in watched]
        matched = [f"entity:{n}" for n in dict.fromkeys(hits)]
        if deal.type in wl.types:
            matched.append(f"type:{deal.type}")
        if not matched:
            continue
        row = deal.as_json()
        state = json.dumps(row, sort_keys=True, ensure_ascii=False)
        fresh.sort(key=lambda r: (r.published or "", seen_at[r.agreement_id]), reverse=True)
        others = [r for r in deal.reports if r.agreement_id not in seen_at]
        row["reports"] = [r.as_json() for r in (*fresh, *others)]
        everything_new = not others and all(r.doc_id in new_docs for r in fresh)
        row.update(
            matched=matched,
            change="new" if everything_new else "changed",
            version=sha1(state)[:16],  # this state of the deal (Atom entry ids)
            seen=max(seen_at[r.agreement_id] for r in fresh),
        )
        out.append(row)
    # The headline of each deal's newest report, read once for all of them.
    leads = store.watch_documents(sorted({r["reports"][0]["doc_id"] for r in out}))
    for r in out:
        r["title"] = leads.get(r["reports"][0]["doc_id"], {}).get("title")
    out.sort(key=lambda r: (r["signed"] or r["first_reported"] or "", r["seen"]), reverse=True)
    return out


def _entities_new(
    store: Any,
    wl: Watchlist,
    mentions: Sequence[tuple[str, str, int, int]],
    with_watched: set[str],
    events: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Entities whose first document is in the window, named beside a watched entity there."""
    watched = wl.entity_ids
    near: dict[str, set[str]] = {}
    by_doc: dict[str, set[str]] = {}
    for doc_id, entity_id, _, _ in mentions:
        by_doc.setdefault(doc_id, set()).add(entity_id)
    for doc_id in with_watched:
        here = by_doc.get(doc_id, set())
        names = {watched[e] for e in here if e in watched}
        for e in here - set(watched):
            near.setdefault(e, set()).update(names)
    if not near:
        return []
    window = [e["seq"] for e in events if e["kind"] == "document"]
    if not window:
        return []
    first = store.entities_first_seen(sorted(near))
    fresh = [e for e, (seq, _) in first.items() if seq >= min(window)]
    rows: list[dict[str, Any]] = store.entity_rows(fresh)
    for r in rows:
        r["cooccurs_with"] = sorted(near[r["id"]])
    return rows


# -- matching --------------------------------------------------------------------------------------
def open_digest_searcher(settings: Settings, store: Any) -> Any:
    from pipeline.backend import open_searcher

    return open_searcher(settings, store, one_shot=True)


def match_query(
    searcher: Any, query: str, docs: dict[str, dict[str, Any]], doc_ids: Sequence[str], min_z: float
) -> list[tuple[str, dict[str, Any]]]:
    """(doc_id, evidence) of the documents among ``doc_ids`` that ``query`` matches (module docstring)."""
    from pipeline.index.search import Filters

    norm = searcher.normaliser
    alternatives: list[frozenset[str]] = []
    for word in _WORD.findall(query):
        if norm.terms(word):
            alternatives.append(frozenset(searcher.query_terms(word).expanded))
    expanded = frozenset(searcher.query_terms(query).expanded)
    out: dict[str, dict[str, Any]] = {}
    for doc_id in doc_ids:
        text = docs[doc_id]["text"]
        have = set(norm.terms(text))
        if alternatives and all(alt & have for alt in alternatives):
            out[doc_id] = _best_sentence(text, norm.find(text, expanded))
    if min_z > 0:
        rest = frozenset(d for d in doc_ids if d not in out)
        if rest:
            for hit in searcher.search(query, k=len(rest), filters=Filters(doc_ids=rest), mode="dense"):
                if hit.score >= min_z and hit.doc_id in docs:
                    text = docs[hit.doc_id]["text"]
                    at = text.find(hit.snippet.strip("…").strip()[:60])
                    out[hit.doc_id] = sentence_at(text, max(0, at), max(0, at) + 1)
    return [(d, out[d]) for d in doc_ids if d in out]


def _best_sentence(text: str, spans: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """The sentence with the most query-term hits (the first on ties)."""
    best, best_n = (0, min(len(text), 300)), -1
    for s, e in sentences(text):
        n = sum(1 for a, b in spans if a >= s and b <= e)
        if n > best_n:
            best, best_n = (s, e), n
    return {"text": text[best[0] : best[1]], "start": best[0], "end": best[1]}


def sentence_at(text: str, start: int, end: int) -> dict[str, Any]:
    """The sentence holding ``start`` (the title when the span is in it)."""
    for s, e in sentences(text):
        if s <= start < e or start < s:
            return {"text": text[s:e], "start": s, "end": e}
    return {"text": text[start:end], "start": start, "end": end}


# -- nightly ---------------------------------------------------------------------------------------
def write_digests(settings: Settings, store: Any, folder: Path | None = None) -> list[Path]:
    """Every watchlist's digest since its mark into ``<data_dir>/digests/NAME.md`` and
    ``NAME.json``, and ``NAME.atom``: a feed of the last ``[watch] feed_days`` days since the list
    was made (entry ids stable, so a reader shows each item once). Files are replaced atomically."""
    from pipeline.watch_render import atom, markdown, write_atomic

    lists = list_watchlists(store)
    if not lists:
        return []
    folder = folder or settings.data_path / "digests"
    folder.mkdir(parents=True, exist_ok=True)
    searcher = None
    if any(wl.queries for wl in lists):
        searcher = open_digest_searcher(settings, store)
    written = []
    for wl in lists:
        digest = take_digest(settings, store, wl.name, searcher=searcher)
        written.append(write_atomic(folder / f"{wl.name}.md", markdown(digest)))
        written.append(
            write_atomic(
                folder / f"{wl.name}.json", json.dumps(digest.as_json(), ensure_ascii=False, indent=1) + "\n"
            )
        )
        since = (
            datetime.fromisoformat(digest.until) - timedelta(days=max(0, settings.watch.feed_days))
        ).isoformat(timespec="seconds")
        # The feed starts when the list was made, at most feed_days ago.
        feed = take_digest(
            settings, store, wl.name, since=since, searcher=searcher, advance=False, from_start=True
        )
        written.append(write_atomic(folder / f"{wl.name}.atom", atom(feed)))
        log.info(
            "watchlist %s: %d documents, %d deals, %d new entities",
            wl.name,
            len(digest.documents),
            len(digest.deals),
            len(digest.entities_new),
        )
    return written
