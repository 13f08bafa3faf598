"""Read-only queries the app's pages are drawn from: plain rows, no Streamlit, no HTML."""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.app.rates import UsdRates
from pipeline.backend.protocols import Store
from pipeline.backend.rows import AgreementRow, DocumentRow, Json
from pipeline.records import Deal

if TYPE_CHECKING:  # imported where used, so the search page loads without networkx
    import networkx as nx

PAIR_KINDS = ("any", "countries", "organisations", "mixed")
EXPORT_FILES = {
    "graphml": ("defintel-graph.graphml", "application/xml"),
    "gexf": ("defintel-graph.gexf", "application/xml"),
    "cytoscape": ("defintel-graph.cyjs.json", "application/json"),
    "ftm": ("defintel-graph.ftm.jsonl", "application/x-ndjson"),
    "csv": ("defintel-graph-csv.zip", "application/zip"),
}


@dataclass(frozen=True, slots=True)
class Overview:
    """What the search page shows before a query: store counts and the entity filter's choices."""

    documents: int
    entities: int
    agreements: int
    entity_names: tuple[str, ...]


def _title(store: Store, doc_id: str) -> str | None:
    meta = store.document_meta([doc_id]).get(doc_id)
    return None if meta is None else meta["title"]


def _label(entity: Mapping[str, Any] | None) -> str:
    return "" if entity is None else str(entity["label"])


def overview(store: Store) -> Overview:
    entities = store.entities()
    return Overview(
        documents=len(store.documents()),
        entities=len(entities),
        agreements=len(store.agreements()),
        entity_names=tuple(sorted({e["canonical"] for e in entities})),
    )


@dataclass(frozen=True, slots=True)
class DocFacts:
    """What the NLP stage found in one document, for a search card."""

    entities: tuple[dict[str, str], ...]
    agreement_types: tuple[str, ...]


def doc_facts(store: Store, doc_id: str, limit: int = 12) -> DocFacts:
    """Distinct entities (most mentioned first) and agreement types of a document."""
    counts: Counter[str] = Counter()
    info: dict[str, dict[str, str]] = {}
    for m in store.mentions(doc_id):
        counts[m["entity_id"]] += 1
        info.setdefault(
            m["entity_id"],
            {"entity_id": m["entity_id"], "canonical": m["canonical"] or m["text"], "label": m["label"]},
        )
    entities = tuple(info[e] for e, _ in counts.most_common(limit))
    types = tuple(dict.fromkeys(a["type"] for a in store.agreements(doc_id)))
    return DocFacts(entities, types)


def near_duplicates(store: Store, doc_id: str) -> list[DocumentRow]:
    """Documents marked as copies of this one, the one it copies, and that one's other copies."""
    docs = store.documents()
    by_id = {d["doc_id"]: d for d in docs}
    this = by_id.get(doc_id)
    if this is None:
        return []
    root = this["duplicate_of"] or doc_id
    group = [d for d in docs if d["doc_id"] == root or d["duplicate_of"] == root]
    return [d for d in group if d["doc_id"] != doc_id]


def agreement_rows(store: Store, rates: UsdRates) -> list[dict[str, Any]]:
    """Every agreement as a flat row; ``value_usd`` only when a rate table is configured."""
    rows = []
    for ag in store.agreements():
        row: dict[str, Any] = {
            "type": ag["type"],
            "parties": " · ".join(ag["parties"]),
            "value": ag["amount"],
            "currency": ag["currency"],
        }
        if rates:
            row["value_usd"] = rates.to_usd(ag["amount"], ag["currency"])
        row.update(
            {
                "signed": ag["signed"],
                "quantity": ag["quantity"],
                "local_content_pct": ag["local_content_pct"],
                "language": ag["language"],
                "published": ag["published"],
                "title": ag["title"],
                "url": ag["url"],
                "evidence": ag["evidence_text"],
                "doc_id": ag["doc_id"],
                "party_ids": list(ag["party_ids"]),
            }
        )
        rows.append(row)
    return rows


def deal_rows(store: Store, rates: UsdRates, entity_id: str | None = None) -> list[dict[str, Any]]:
    """One row per deal (an agreement consolidated across its reports), latest first.

    ``reports`` counts the documents reporting it, ``languages`` their languages, ``conflicts``
    names the fields the reports disagree on ("" when they agree); ``evidence``, ``title`` and
    ``url`` are the report whose figures the row shows. ``deal_id`` keys the sources list."""
    rows = []
    for deal in store.deals(entity_ids=None if entity_id is None else [entity_id]):
        lead = deal.lead_report
        amount = None if deal.value is None else deal.value.amount
        currency = None if deal.value is None else deal.value.currency
        row: dict[str, Any] = {
            "date": deal.signed or deal.first_reported,
            "type": deal.type,
            "parties": " · ".join(deal.parties),
            "value": amount,
            "currency": currency,
        }
        if rates:
            row["value_usd"] = rates.to_usd(amount, currency)
        row.update(
            {
                "reports": len(deal.reports),
                "languages": ", ".join(deal.languages),
                "conflicts": ", ".join(c.field for c in deal.conflicts),
                "signed": deal.signed,
                "quantity": deal.quantity,
                "local_content_pct": deal.local_content_pct,
                "first_reported": deal.first_reported,
                "last_reported": deal.last_reported,
                "title": _title(store, lead.doc_id),
                "url": lead.url,
                "evidence": lead.evidence.text,
                "deal_id": deal.deal_id,
                "party_ids": list(deal.party_ids),
            }
        )
        rows.append(row)
    return rows


def filter_deals(
    rows: Sequence[Mapping[str, Any]],
    *,
    types: Sequence[str] = (),
    languages: Sequence[str] = (),
    party: str = "",
    since: date | None = None,
    until: date | None = None,
) -> list[dict[str, Any]]:
    """Deal rows passing every filter: a language when any report is in it; the date is the
    signing date, else the first report's."""
    shaped = [{**r, "language": r["languages"], "published": r["first_reported"]} for r in rows]
    wanted = set(languages)
    kept = filter_agreements(shaped, types=types, party=party, since=since, until=until)
    out = []
    for r in kept:
        if wanted and not wanted & {x.strip() for x in r["languages"].split(",")}:
            continue
        del r["language"], r["published"]
        out.append(r)
    return out


def deal_sources(store: Store, deal: Deal) -> list[dict[str, Any]]:
    """The reports of one deal: document, language, date and the sentence stating it."""
    meta = store.document_meta([r.doc_id for r in deal.reports])
    return [
        {
            "doc_id": r.doc_id,
            "title": meta[r.doc_id]["title"] if r.doc_id in meta else "",
            "language": r.language,
            "published": r.published,
            "url": r.url,
            "evidence": r.evidence.text,
        }
        for r in deal.reports
    ]


def story_groups(store: Store, docs: Sequence[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """Document rows grouped by story, in the order of each story's first row (a story's reports
    shown together as one card)."""
    story_of = store.story_ids([d["doc_id"] for d in docs])
    groups: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        groups.setdefault(story_of.get(d["doc_id"], d["doc_id"]), []).append(dict(d))
    return list(groups.values())


def filter_agreements(
    rows: Sequence[Mapping[str, Any]],
    *,
    types: Sequence[str] = (),
    languages: Sequence[str] = (),
    party: str = "",
    since: date | None = None,
    until: date | None = None,
) -> list[dict[str, Any]]:
    """Rows passing every filter; the date is the signing date, else the publication date."""
    needle = party.strip().casefold()
    out = []
    for r in rows:
        when = r["signed"] or r["published"]
        if types and r["type"] not in types:
            continue
        if languages and r["language"] not in languages:
            continue
        if needle and needle not in r["parties"].casefold():
            continue
        if since and (not when or when < since.isoformat()):
            continue
        if until and (not when or when > until.isoformat()):
            continue
        out.append(dict(r))
    return out


def _pair_kind(labels: tuple[str, str]) -> str:
    if labels == ("GPE", "GPE"):
        return "countries"
    if "GPE" not in labels:
        return "organisations"
    return "mixed"


def timeline_events(store: Store, pair_kind: str = "any") -> list[dict[str, Any]]:
    """One event per agreement and pair of its parties, dated by signing (else publication) date.

    Countries, ministries and companies all count as parties; ``pair_kind`` keeps pairs of
    countries, pairs of organisations, or mixed pairs. Undated agreements cannot be placed, and
    agreements read from a near-duplicate copy are left out.
    """
    entities = {e["id"]: e for e in store.entities()}
    copies = {d["doc_id"] for d in store.documents() if d["duplicate_of"]}
    events = []
    for ag in store.agreements():
        if ag["doc_id"] in copies:  # a republished copy is not a second event
            continue
        when = ag["signed"] or ag["published"]
        if not when:
            continue
        names = dict(zip(ag["party_ids"], ag["parties"], strict=False))
        for a, b in combinations(sorted(names, key=lambda i: names[i]), 2):
            labels = tuple(sorted((_label(entities.get(a)), _label(entities.get(b)))))
            kind = _pair_kind((labels[0], labels[1]))
            if pair_kind != "any" and kind != pair_kind:
                continue
            events.append(
                {
                    "date": when,
                    "pair": f"{names[a]} – {names[b]}",
                    "kind": kind,
                    "type": ag["type"],
                    "title": ag["title"],
                    "doc_id": ag["doc_id"],
                }
            )
    return sorted(events, key=lambda e: (e["date"], e["pair"]))


@dataclass(frozen=True, slots=True)
class EntityProfile:
    entity_id: str
    canonical: str
    label: str
    in_registry: bool
    aliases: dict[str, list[str]]
    documents: list[dict[str, Any]]
    cooccurring: list[dict[str, Any]]
    agreements: list[AgreementRow]


def entity_profile(store: Store, graph: nx.MultiGraph[str], entity_id: str) -> EntityProfile | None:
    """Everything the entity page shows; ``graph`` is the unfiltered entity graph (for aliases)."""
    ent = next((e for e in store.entities() if e["id"] == entity_id), None)
    if ent is None:
        return None
    node = graph.nodes[entity_id] if entity_id in graph else {}
    aliases = {lang: json.loads(node.get(f"aliases_{lang}", "[]")) for lang in ("en", "tr", "az")}
    if not any(aliases.values()):
        aliases = {"any": list(ent["aliases"])}
    docs = {d["doc_id"]: d for d in store.documents()}
    doc_rows = [
        {**{k: docs[d][k] for k in ("doc_id", "title", "language", "published", "url")}}
        for d, e, _ in store.cooccurrences()
        if e == entity_id and d in docs
    ]
    doc_rows.sort(key=lambda r: (r["published"] or "9999", r["doc_id"]))
    co: list[dict[str, Any]] = []
    if entity_id in graph:
        weights: Counter[str] = Counter()
        for _, other, attrs in graph.edges(entity_id, data=True):
            if attrs.get("kind") == "cooccurrence" and other != entity_id:
                weights[other] += int(attrs.get("weight", 1))
        for other, w in weights.most_common():
            o = graph.nodes[other]
            co.append(
                {"entity_id": other, "name": o.get("canonical", other), "type": o.get("type"), "documents": w}
            )
    agreements = [a for a in store.agreements() if entity_id in a["party_ids"]]
    return EntityProfile(
        entity_id, ent["canonical"], ent["label"], bool(ent["in_registry"]), aliases, doc_rows, co, agreements
    )


def run_rows(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """The last runs with their report counters flattened into columns."""
    rows = []
    for r in store.runs(limit):
        report = r["report"] or {}
        rows.append(
            {
                "run_id": r["run_id"],
                "started": r["started"],
                "finished": r["finished"],
                "status": r.get("status"),
                **{k: v for k, v in report.items() if k not in ("failures", "run_id")},
            }
        )
    return rows


def run_failures(store: Store, limit: int = 20) -> list[dict[str, Json]]:
    """Failures with their reasons: from the runs' reports and from the crawl frontier."""
    out = []
    for r in store.runs(limit):
        failures = (r["report"] or {}).get("failures")
        for f in failures if isinstance(failures, list) else []:
            if isinstance(f, dict):
                out.append(
                    {
                        "run_id": r["run_id"],
                        "source": f.get("source"),
                        "error": f.get("error"),
                        "retry": f.get("retry"),
                    }
                )
    # The frontier keeps the last error of every URL that has not (yet) made it into the store.
    for row in store.frontier_errors(200):
        out.append(
            {
                "run_id": None,
                "source": row["url"],
                "error": row["last_error"],
                "retry": row["next_try"],
                "status": row["status"],
                "attempts": row["attempts"],
                "http_status": row["http_status"],
            }
        )
    return out


def layout(g: nx.MultiGraph[str], seed: int = 7) -> dict[str, tuple[float, float]]:
    """Node positions (spring layout on the weighted simple graph), reproducible by seed."""
    import networkx as nx

    if g.number_of_nodes() == 0:
        return {}
    simple: nx.Graph[str] = nx.Graph()
    simple.add_nodes_from(g.nodes)
    for a, b, attrs in g.edges(data=True):
        w = float(attrs.get("weight", 1))
        if simple.has_edge(a, b):
            simple[a][b]["weight"] += w
        else:
            simple.add_edge(a, b, weight=w)
    # Each connected component is laid out on its own (a spring layout pushes separate components
    # far apart, shrinking the main one to a dot): the largest in the middle, the others on a ring
    # around it, each scaled by its size. Unweighted, so heavy co-occurrence weights do not fling
    # the partners of a single agreement to the rim.
    comps = sorted((sorted(c) for c in nx.connected_components(simple)), key=lambda c: (-len(c), c[0]))
    out: dict[str, tuple[float, float]] = {}
    ring = len(comps) - 1
    for i, comp in enumerate(comps):
        sub = simple.subgraph(comp)
        scale = 1.0 if i == 0 else min(0.35, 0.08 * len(comp) ** 0.5)
        if i == 0:
            cx, cy = 0.0, 0.0
        else:
            angle = 2 * math.pi * (i - 1) / ring
            cx, cy = 1.45 * math.cos(angle), 1.45 * math.sin(angle)
        if len(comp) == 1:
            out[comp[0]] = (cx, cy)
            continue
        pos = nx.spring_layout(sub, seed=seed, weight=None, iterations=80, scale=scale, center=(cx, cy))
        out.update({n: (float(x), float(y)) for n, (x, y) in pos.items()})
    return out


def graph_frames(
    g: nx.MultiGraph[str], *, drop_isolated: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(nodes, edges) rows with positions, for drawing the network as a chart.

    ``drop_isolated`` leaves out entities with no edge (they only crowd the picture's rim; the
    export keeps them)."""
    if drop_isolated:
        g = g.subgraph([n for n in g if g.degree(n) > 0])
    pos = layout(g)
    nodes = [
        {
            "id": n,
            "name": a.get("canonical", n),
            "type": a.get("type", ""),
            "documents": a.get("documents", 0),
            "x": pos[n][0],
            "y": pos[n][1],
        }
        for n, a in g.nodes(data=True)
    ]
    edges = []
    for i, (u, v, attrs) in enumerate(g.edges(data=True)):
        for end, node in (("a", u), ("b", v)):
            edges.append(
                {
                    "edge": i,
                    "end": end,
                    "x": pos[node][0],
                    "y": pos[node][1],
                    "kind": attrs.get("kind", ""),
                    "label": attrs.get("label", ""),
                    "weight": attrs.get("weight", 1),
                }
            )
    return nodes, edges


def export_bytes(g: nx.MultiGraph[str], fmt: str) -> tuple[str, bytes, str]:
    """(file name, content, MIME type) of the graph in ``fmt``; the CSV folder comes zipped."""
    from pipeline.graph import FORMATS, export

    if fmt not in FORMATS:
        raise ValueError(f"unknown graph format {fmt!r}")
    name, mime = EXPORT_FILES[fmt]
    with tempfile.TemporaryDirectory(prefix="defintel-export-") as tmp:
        target = Path(tmp) / ("csv" if fmt == "csv" else name)
        export(g, fmt, target)
        if fmt != "csv":
            return name, target.read_bytes(), mime
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(target.iterdir()):
                zf.write(f, f.name)
        return name, buf.getvalue(), mime


def _csv_cell(value: Any) -> Any:
    # A cell that starts like a formula would run in a spreadsheet: crawled text is untrusted.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None or (isinstance(value, float) and value != value) else value


def csv_bytes(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> bytes:
    """Rows as UTF-8 CSV (with BOM, so spreadsheets read Turkish/Azerbaijani letters right)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_csv_cell(r.get(c)) for c in columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
