"""The entity graph from the store, and its exporters (GraphML, GEXF, Cytoscape.js, FtM, Neo4j CSV).

One undirected ``networkx.MultiGraph`` feeds every format, so all exports carry the same facts:

* **nodes** are canonical entities, keyed by entity id, with ``label`` (the display name, as Gephi,
  Cytoscape and yEd expect), ``canonical``, ``type`` (ORG | PERSON | GPE — the ``label`` of
  ``defintel entities``), ``aliases_en`` / ``aliases_tr`` / ``aliases_az`` (JSON arrays: registry
  aliases for listed entities, the names as written in that language's pages for unlisted ones),
  ``mentions``, ``documents``, ``first_seen`` / ``last_seen`` (publication dates), ``qid``,
  ``in_registry``;
* **co-occurrence edges** (``kind="cooccurrence"``, key ``cooc:A:B``) join entities named in the
  same document: ``weight`` = number of documents, ``documents`` (JSON array of doc ids),
  ``first_seen`` / ``last_seen``;
* **agreement edges** (``kind="agreement"``, key ``deal:ID:A:B``), one per deal (an agreement
  consolidated across every document reporting it, ``pipeline/deals.py``) and pair of parties:
  ``deal_id``, ``agreement_type``, ``signed``, ``amount`` + ``currency``, ``quantity``,
  ``local_content_pct``, ``reports`` (= ``weight``), ``languages``, ``sources`` (JSON: every
  report's document, language, date and sentence), ``first_reported`` / ``last_reported``,
  ``conflicts`` (JSON, when reports disagree), and the document of the report whose figures the
  deal shows (``doc_id``, ``url``, ``title``) and its ``sentence`` with its character span.

An attribute the text does not state is left out (not written as an empty or sentinel value).
Republished near-duplicates are left out unless asked for: a copy is not a second piece of
evidence. Dates are publication dates of the source documents; undated documents count for
counts and edges but not for ``first_seen``/``last_seen``, and are dropped by a date range.

Every export is written to a temporary file next to the target and renamed into place.
"""

from __future__ import annotations

import csv
import json
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from pathlib import Path
from typing import Any

import networkx as nx

from pipeline import __version__
from pipeline.backend.protocols import Store
from pipeline.backend.rows import EntityNode
from pipeline.errors import UsageError
from pipeline.nlp.registry import load_registry, strip_suffix
from pipeline.records import LABELS, sha1
from pipeline.textnorm import normalize

log = logging.getLogger(__name__)

FORMATS = ("graphml", "gexf", "cytoscape", "ftm", "csv")
LANGUAGES = ("en", "tr", "az")
# FollowTheMoney schemata (validated against followthemoney 4.11). Territory covers countries,
# cities and regions; FtM keeps Address for postal addresses.
FTM_SCHEMA = {"ORG": "Organization", "PERSON": "Person", "GPE": "Territory"}
NEO4J_LABEL = {"ORG": "Organization", "PERSON": "Person", "GPE": "Place"}


@dataclass(frozen=True, slots=True)
class GraphFilter:
    """What part of the store goes into the graph.

    ``since``/``until`` bound the publication date of the documents (inclusive); ``types`` keeps
    entities of these labels; ``min_weight`` drops co-occurrence edges seen in fewer documents
    (agreement edges are single facts and always kept); ``ego`` keeps the entities within
    ``depth`` hops of the named entity (an id, a canonical name or any alias).
    """

    since: str | None = None
    until: str | None = None
    types: tuple[str, ...] = ()
    min_weight: int = 1
    ego: str | None = None
    depth: int = 1
    include_duplicates: bool = False

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise UsageError(f"--{name} must be a date YYYY-MM-DD, got {value!r}") from None
        if self.since and self.until and self.since > self.until:
            raise UsageError(f"--since {self.since} is after --until {self.until}")
        bad = sorted(set(self.types) - set(LABELS))
        if bad:
            raise UsageError(f"unknown entity type(s) {', '.join(bad)} (choose from {', '.join(LABELS)})")
        if self.min_weight < 1:
            raise UsageError(f"--min-weight must be at least 1, got {self.min_weight}")
        if self.depth < 0:
            raise UsageError(f"--depth must be 0 or more, got {self.depth}")

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "types": list(self.types),
            "min_weight": self.min_weight,
            "ego": self.ego,
            "depth": self.depth if self.ego else None,
            "include_duplicates": self.include_duplicates,
        }


@dataclass(frozen=True, slots=True)
class _Doc:
    doc_id: str
    url: str
    title: str
    language: str
    published: str | None


@dataclass(slots=True)
class _Node:
    """Per-entity tallies while the graph is built."""

    mentions: int = 0
    docs: set[str] = field(default_factory=set)
    dates: list[str] = field(default_factory=list)
    names: dict[str, dict[str, None]] = field(default_factory=lambda: defaultdict(dict))


# -- read-only queries over the store ----------------------------------------------------------
def _documents(store: Store, flt: GraphFilter) -> dict[str, _Doc]:
    rows = store.graph_documents(include_duplicates=flt.include_duplicates, since=flt.since, until=flt.until)
    return {r["doc_id"]: _Doc(r["doc_id"], r["url"], r["title"], r["language"], r["published"]) for r in rows}


@dataclass(frozen=True, slots=True)
class _Names:
    """What the entity registry adds: aliases per language, and suffix-aware name variants."""

    aliases: Mapping[str, Mapping[str, Sequence[str]]]
    variants: Callable[[str], list[str]]


def _registry(models_dir: str | Path | None) -> _Names:
    """The registry of ``models_dir`` (``entities.jsonl`` + ``suffixes.txt``).

    The graph is a read of the store, so a missing registry is not fatal: entities then go by
    the names their mentions were written with (logged as a warning).
    """

    def plain(name: str) -> list[str]:
        return list(dict.fromkeys([normalize(name), normalize(strip_suffix(name))]))

    if models_dir is None:
        return _Names({}, plain)
    try:
        registry = load_registry(str(models_dir))
    except UsageError as exc:
        log.warning("%s; aliases come from the mention texts only", exc)
        return _Names({}, plain)
    aliases = {eid: dict(entry.aliases_by_lang) for eid, entry in registry.entries.items()}
    return _Names(aliases, registry.variants)


def _surface(text: str) -> str:
    """A mention as a name: without a suffix behind an apostrophe or hyphen (``Baykar'ın``)."""
    return strip_suffix(text)


# -- building -----------------------------------------------------------------------------------
def build_graph(
    store: Store,
    flt: GraphFilter | None = None,
    *,
    models_dir: str | Path | None = None,
) -> nx.MultiGraph[str]:
    """The entity graph of the store, filtered; ``models_dir`` holds the entity registry."""
    flt = flt or GraphFilter()
    names = _registry(models_dir)
    docs = _documents(store, flt)
    entities = store.entity_nodes()
    keep_types = set(flt.types or LABELS)
    tallies: dict[str, _Node] = {}
    by_doc: dict[str, dict[str, None]] = defaultdict(dict)
    for doc_id, entity_id, text, count in store.surface_forms():
        doc = docs.get(doc_id)
        ent = entities.get(entity_id)
        if doc is None or ent is None or ent["label"] not in keep_types:
            continue
        node = tallies.setdefault(entity_id, _Node())
        node.mentions += count
        if doc_id not in node.docs:
            node.docs.add(doc_id)
            if doc.published:
                node.dates.append(doc.published)
        node.names[doc.language][_surface(text)] = None
        by_doc[doc_id][entity_id] = None

    g: nx.MultiGraph[str] = nx.MultiGraph(
        name="defintel entity graph",
        generator=f"defintel {__version__}",
        filters=json.dumps(flt.as_json(), ensure_ascii=False),
    )
    for entity_id in sorted(tallies):
        g.add_node(
            entity_id, **_node_attrs(entity_id, entities[entity_id], tallies[entity_id], names.aliases)
        )
    _add_cooccurrences(g, by_doc, docs, flt.min_weight)
    _add_agreements(g, store, docs)
    if flt.ego is not None:
        g = _ego(g, resolve_entity(store, flt.ego, names.variants), flt.ego, flt.depth)
    log.info("graph: %d nodes, %d edges", g.number_of_nodes(), g.number_of_edges())
    return g


def _node_attrs(
    entity_id: str, ent: EntityNode, t: _Node, aliases: Mapping[str, Mapping[str, Sequence[str]]]
) -> dict[str, Any]:
    registered = aliases.get(entity_id)
    attrs: dict[str, Any] = {
        "label": ent["canonical"],
        "canonical": ent["canonical"],
        "type": ent["label"],
        "in_registry": ent["in_registry"],
        "mentions": t.mentions,
        "documents": len(t.docs),
    }
    for lang in LANGUAGES:
        # An unlisted entity has no curated aliases: the names it goes by are how the pages in
        # each language wrote it.
        names = list(registered.get(lang, ())) if registered is not None else list(t.names.get(lang, {}))
        attrs[f"aliases_{lang}"] = json.dumps(names, ensure_ascii=False)
    if t.dates:
        attrs["first_seen"] = min(t.dates)
        attrs["last_seen"] = max(t.dates)
    if ent["qid"]:
        attrs["qid"] = ent["qid"]
    return attrs


def _add_cooccurrences(
    g: nx.MultiGraph[str], by_doc: Mapping[str, Mapping[str, None]], docs: Mapping[str, _Doc], min_weight: int
) -> None:
    pairs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for doc_id in sorted(by_doc):
        for a, b in combinations(sorted(by_doc[doc_id]), 2):
            pairs[(a, b)].append(doc_id)
    for (a, b), doc_ids in sorted(pairs.items()):
        if len(doc_ids) < min_weight:
            continue
        attrs: dict[str, Any] = {
            "kind": "cooccurrence",
            "label": "co-occurrence",
            "weight": len(doc_ids),
            "documents": json.dumps(doc_ids),
        }
        dates = sorted(d for d in (docs[x].published for x in doc_ids) if d)
        if dates:
            attrs["first_seen"], attrs["last_seen"] = dates[0], dates[-1]
        g.add_edge(a, b, key=f"cooc:{a}:{b}", **attrs)


def _add_agreements(g: nx.MultiGraph[str], store: Store, docs: Mapping[str, _Doc]) -> None:
    """One edge per deal (agreements consolidated across their reports) and pair of parties.

    The edge carries the deal's values and its sources (the reports whose documents pass the
    filters); the evidence attributes (``doc_id``, ``url``, ``sentence`` …) are those of the report
    whose figures the deal shows (else the earliest that passes). A deal none of whose reports passes the filters is left out."""
    for deal in store.deals():
        sources = [r for r in deal.reports if r.doc_id in docs]
        if not sources:
            continue
        lead = deal.lead_report
        first = lead if lead.doc_id in docs else sources[0]
        doc = docs[first.doc_id]
        attrs: dict[str, Any] = {
            "kind": "agreement",
            "label": deal.type,
            "weight": len(sources),
            "deal_id": deal.deal_id,
            "agreement_id": first.agreement_id,
            "agreement_type": deal.type,
            "parties": json.dumps(list(deal.parties), ensure_ascii=False),
            "party_ids": json.dumps(list(deal.party_ids)),
            "reports": len(sources),
            "languages": json.dumps(sorted({r.language for r in sources})),
            "sources": json.dumps(
                [
                    {
                        "doc_id": r.doc_id,
                        "url": r.url,
                        "language": r.language,
                        "published": r.published,
                        "sentence": r.evidence.text,
                    }
                    for r in sources
                ],
                ensure_ascii=False,
            ),
            "doc_id": doc.doc_id,
            "url": doc.url,
            "title": doc.title,
            "language": doc.language,
            "sentence": first.evidence.text,
            "evidence_start": first.evidence.start,
            "evidence_end": first.evidence.end,
        }
        dates = sorted(r.published for r in sources if r.published)
        optional = {
            "signed": deal.signed,
            "published": doc.published,
            "first_reported": dates[0] if dates else None,
            "last_reported": dates[-1] if dates else None,
            "amount": None if deal.value is None else float(deal.value.amount),
            "currency": None if deal.value is None else deal.value.currency,
            "quantity": deal.quantity,
            "subject": deal.subject,
            "local_content_pct": deal.local_content_pct,
            "conflicts": json.dumps([c.as_json() for c in deal.conflicts], ensure_ascii=False)
            if deal.conflicts
            else None,
        }
        attrs.update({k: v for k, v in optional.items() if v is not None})
        # One edge per pair of parties that are in the graph (a deal with one known party has no
        # edge; the FtM export still lists every party an edge carries).
        party_ids = list(dict.fromkeys(deal.party_ids))
        for a, b in combinations(sorted(p for p in party_ids if p in g), 2):
            g.add_edge(a, b, key=f"deal:{deal.deal_id}:{a}:{b}", **attrs)


def _ego(g: nx.MultiGraph[str], centres: Sequence[str], name: str, depth: int) -> nx.MultiGraph[str]:
    present = [c for c in centres if c in g]
    if not present:
        raise UsageError(f"entity {name!r} is not in the graph with these filters")
    keep: set[str] = set()
    for centre in present:
        keep.update(nx.single_source_shortest_path_length(g, centre, cutoff=depth))
    sub: nx.MultiGraph[str] = g.subgraph(sorted(keep)).copy()
    sub.graph["ego"] = json.dumps(present)
    return sub


def resolve_entity(store: Store, name: str, variants: Callable[[str], list[str]]) -> list[str]:
    """Entity ids an --ego argument names: an id, a canonical name or any alias, suffixes allowed
    (``Azərsilahın`` → azersilah)."""
    if store.entity_exists(name):
        return [name]
    found = store.entity_ids_matching(set(variants(name)), normalize)
    if not found:
        raise UsageError(f"unknown entity {name!r} (give an id, a canonical name or an alias)")
    return sorted(found)


# -- writing ------------------------------------------------------------------------------------
@contextmanager
def staged(paths: Sequence[Path]) -> Iterator[list[Path]]:
    """Temp files next to ``paths`` to write; renamed into place only when the block succeeds,
    removed otherwise, so a reader never sees a half-written export."""
    temps: list[Path] = []
    try:
        for path in paths:
            if path.is_dir():
                raise UsageError(f"cannot write {path}: it is a folder")
            parent = path.parent
            if not parent.is_dir():
                raise UsageError(f"cannot write {path}: folder {parent} does not exist")
            # open(..., "x") rather than mkstemp: the file gets the umask's permissions (mkstemp
            # makes it private), and "x" still refuses to reuse an existing name.
            tmp = parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
            try:
                open(tmp, "xb").close()
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror}") from None
            temps.append(tmp)
        yield temps
        for tmp, path in zip(temps, paths, strict=True):
            try:
                tmp.replace(path)
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def _graphml(g: nx.MultiGraph[str], path: Path) -> None:
    # The lxml writer streams; it is about 1.6x faster than the ElementTree one at 100k edges.
    nx.write_graphml_lxml(g, path, encoding="utf-8", prettyprint=True)


def gexf_graph(g: nx.MultiGraph[str]) -> nx.MultiGraph[str]:
    """The graph as written to GEXF: ``start`` dates make it dynamic for Gephi's timeline.

    An entity appears when it is first reported and stays (no ``end``), so scrubbing the timeline
    shows the network growing; a co-occurrence edge appears with its first shared document, an
    agreement edge on its signing date (else the publication date of its source). Edge ids are
    the multigraph keys, unique in the file.
    """
    out: nx.MultiGraph[str] = nx.MultiGraph()
    out.graph.update(g.graph)
    for node, attrs in g.nodes(data=True):
        extra = {"start": attrs["first_seen"]} if "first_seen" in attrs else {}
        out.add_node(node, **attrs, **extra)
    for u, v, key, attrs in g.edges(keys=True, data=True):
        start = attrs.get("signed") or attrs.get("published") or attrs.get("first_seen")
        extra = {"start": start} if start else {}
        out.add_edge(u, v, key=key, id=key, **attrs, **extra)
    return out


def _gexf(g: nx.MultiGraph[str], path: Path) -> None:
    nx.write_gexf(gexf_graph(g), path, encoding="utf-8")


def _cytoscape(g: nx.MultiGraph[str], path: Path) -> None:
    data = nx.cytoscape_data(g)
    # Cytoscape.js and Cytoscape desktop read network attributes from an object and want an id
    # on every edge; networkx's reader accepts both.
    data["data"] = dict(g.graph)
    for node in data["elements"]["nodes"]:
        node["data"]["name"] = node["data"]["label"]  # Cytoscape's display column
    for edge in data["elements"]["edges"]:
        edge["data"]["id"] = edge["data"]["key"]
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, separators=(",", ":"))


# -- FollowTheMoney ------------------------------------------------------------------------------
def ftm_entities(g: nx.MultiGraph[str]) -> Iterator[dict[str, Any]]:
    """FollowTheMoney entities: one per node, one Contract per deal with a link to each party, and
    an UnknownLink per co-occurring pair."""
    for node, a in g.nodes(data=True):
        yield _ftm_node(node, a)
    contracts: dict[str, tuple[dict[str, Any], set[str]]] = {}
    for u, v, key, a in g.edges(keys=True, data=True):
        if a["kind"] == "agreement":
            contracts.setdefault(a["deal_id"], (a, set()))[1].update((u, v))
            continue
        props = {
            "subject": [u],
            "object": [v],
            "role": ["co-mentioned"],
            "summary": [f"named together in {a['weight']} document(s)"],
            "recordId": json.loads(a["documents"]),
        }
        if "first_seen" in a:
            props["startDate"] = [a["first_seen"]]
            props["endDate"] = [a["last_seen"]]
        yield {"id": "cooc-" + sha1(key), "schema": "UnknownLink", "properties": props}
    for deal_id, (a, parties) in contracts.items():
        yield from _ftm_contract(g, deal_id, a, sorted(parties))


def _ftm_node(node: str, a: Mapping[str, Any]) -> dict[str, Any]:
    names = [name for lang in LANGUAGES for name in json.loads(a[f"aliases_{lang}"])]
    props: dict[str, list[str]] = {"name": [a["canonical"]]}
    alias = sorted(set(names) - {a["canonical"]})
    if alias:
        props["alias"] = alias
    if a.get("qid"):
        props["wikidataId"] = [a["qid"]]
    seen = [f"{a['documents']} document(s), {a['mentions']} mention(s)"]
    if "first_seen" in a:
        seen.append(f"first seen {a['first_seen']}, last seen {a['last_seen']}")
    props["notes"] = ["; ".join(seen)]
    return {"id": node, "schema": FTM_SCHEMA[a["type"]], "properties": props}


def _ftm_contract(
    g: nx.MultiGraph[str], deal_id: str, a: Mapping[str, Any], parties: Sequence[str]
) -> Iterator[dict[str, Any]]:
    contract_id = "deal-" + deal_id
    sources = json.loads(a["sources"])
    names = [g.nodes[p]["canonical"] for p in parties]
    props: dict[str, list[str]] = {
        "title": [f"{a['agreement_type'].replace('_', ' ')}: {' – '.join(names)}"],
        "type": [a["agreement_type"]],
        "sourceUrl": list(dict.fromkeys(r["url"] for r in sources)),
        "description": [a["sentence"]],
    }
    if "signed" in a:
        props["contractDate"] = [a["signed"]]
    if "amount" in a:
        props["amount"] = [_number(a["amount"])]
    if "currency" in a:
        props["currency"] = [a["currency"]]
    notes = []
    if "quantity" in a:
        notes.append(f"quantity: {a['quantity']}")
    if "local_content_pct" in a:
        notes.append(f"local content: {_number(a['local_content_pct'])}%")
    notes.append(f"reported by {len(sources)} document(s) in {', '.join(json.loads(a['languages']))}")
    for c in json.loads(a.get("conflicts", "[]")):
        values = "; ".join(
            f"{json.dumps(v['value'], ensure_ascii=False)} ({len(v['doc_ids'])})" for v in c["values"]
        )
        notes.append(f"reports disagree on {c['field']}: {values}")
    if notes:
        props["notes"] = notes
    if "subject" in a:
        props["summary"] = [a["subject"]]
    yield {"id": contract_id, "schema": "Contract", "properties": props}
    for party in parties:
        common = {
            "role": ["party"],
            "sourceUrl": props["sourceUrl"],
            "recordId": [r["doc_id"] for r in sources],
        }
        if "signed" in a:
            common["date"] = [a["signed"]]
        if g.nodes[party]["type"] == "GPE":
            # A country (an export's buyer) is a Territory, not a LegalEntity, so it cannot be a
            # ContractAward supplier; an UnknownLink still ties it to the contract.
            link = {"subject": [party], "object": [contract_id], **common}
            yield {"id": "party-" + sha1(deal_id, party), "schema": "UnknownLink", "properties": link}
        else:
            award = {"contract": [contract_id], "supplier": [party], **common}
            yield {"id": "party-" + sha1(deal_id, party), "schema": "ContractAward", "properties": award}


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _ftm(g: nx.MultiGraph[str], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in ftm_entities(g):
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


# -- Neo4j CSV -----------------------------------------------------------------------------------
NODE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("entityId:ID", "@id"),
    ("name", "canonical"),
    ("type", "type"),
    ("aliasesEn:string[]", "aliases_en"),
    ("aliasesTr:string[]", "aliases_tr"),
    ("aliasesAz:string[]", "aliases_az"),
    ("mentions:int", "mentions"),
    ("documents:int", "documents"),
    ("firstSeen:date", "first_seen"),
    ("lastSeen:date", "last_seen"),
    ("qid", "qid"),
    ("inRegistry:boolean", "in_registry"),
    (":LABEL", "@label"),
)
EDGE_COLUMNS: tuple[tuple[str, str], ...] = (
    (":START_ID", "@start"),
    (":END_ID", "@end"),
    (":TYPE", "@type"),
    ("key", "@key"),
    ("weight:int", "weight"),
    ("documents:string[]", "documents"),
    ("firstSeen:date", "first_seen"),
    ("lastSeen:date", "last_seen"),
    ("dealId", "deal_id"),
    ("agreementId", "agreement_id"),
    ("agreementType", "agreement_type"),
    ("signed:date", "signed"),
    ("amount:double", "amount"),
    ("currency", "currency"),
    ("quantity", "quantity"),
    ("localContentPct:double", "local_content_pct"),
    ("reports:int", "reports"),
    ("languages:string[]", "languages"),
    ("firstReported:date", "first_reported"),
    ("lastReported:date", "last_reported"),
    ("docId", "doc_id"),
    ("url", "url"),
    ("sentence", "sentence"),
    ("evidenceStart:int", "evidence_start"),
    ("evidenceEnd:int", "evidence_end"),
)


def _cell(value: Any) -> str:
    """A CSV cell for neo4j-admin: arrays joined by its default ``;``, one line per record."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith("["):
        return ";".join(" ".join(str(x).replace(";", ",").split()) for x in json.loads(value))
    return " ".join(str(value).split())


def _csv(g: nx.MultiGraph[str], out: Path) -> None:
    """``nodes.csv`` + ``edges.csv`` in folder ``out`` for ``neo4j-admin database import full
    --nodes=nodes.csv --relationships=edges.csv``; both are swapped in only when both are written."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"cannot write {out}: csv output is a folder and {out} is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out}: {exc.strerror}") from None
    with (
        staged([out / "nodes.csv", out / "edges.csv"]) as (nodes_tmp, edges_tmp),
        open(nodes_tmp, "w", encoding="utf-8", newline="") as nodes_fh,
        open(edges_tmp, "w", encoding="utf-8", newline="") as edges_fh,
    ):
        w = csv.writer(nodes_fh, lineterminator="\n")
        w.writerow([c for c, _ in NODE_COLUMNS])
        for node, a in g.nodes(data=True):
            special = {"@id": node, "@label": f"Entity;{NEO4J_LABEL[a['type']]}"}
            w.writerow([_cell(special[k] if k in special else a.get(k)) for _, k in NODE_COLUMNS])
        w = csv.writer(edges_fh, lineterminator="\n")
        w.writerow([c for c, _ in EDGE_COLUMNS])
        for u, v, key, a in g.edges(keys=True, data=True):
            rel = "AGREEMENT" if a["kind"] == "agreement" else "CO_OCCURS_WITH"
            special = {"@start": u, "@end": v, "@type": rel, "@key": key}
            w.writerow([_cell(special[k] if k in special else a.get(k)) for _, k in EDGE_COLUMNS])


_WRITERS: dict[str, Callable[[nx.MultiGraph[str], Path], None]] = {
    "graphml": _graphml,
    "gexf": _gexf,
    "cytoscape": _cytoscape,
    "ftm": _ftm,
}


def export(g: nx.MultiGraph[str], fmt: str, output: Path) -> Path:
    """Write ``g`` as ``fmt`` to ``output`` (a folder for ``csv``), atomically."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown graph format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "csv":
        _csv(g, output)
        return output
    with staged([output]) as (tmp,):
        _WRITERS[fmt](g, tmp)
    return output


def output_files(fmt: str, output: Path) -> list[Path]:
    """The files an export writes."""
    return [output / "nodes.csv", output / "edges.csv"] if fmt == "csv" else [output]


def summary(g: nx.MultiGraph[str]) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for _, _, a in g.edges(data=True):
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    return {"nodes": g.number_of_nodes(), "edges": g.number_of_edges(), "edge_kinds": kinds}


def parse_types(value: str | None) -> tuple[str, ...]:
    """``--types org,gpe`` → ("ORG", "GPE")."""
    return tuple(dict.fromkeys(t.strip().upper() for t in (value or "").split(",") if t.strip()))
