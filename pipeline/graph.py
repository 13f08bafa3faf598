"""The entity graph from the store, and its exporters (GraphML, GEXF, Cytoscape.js, FtM, Neo4j CSV).

Nodes are canonical entities; edges are co-occurrence in a document (weight = number of documents)
and agreements (one edge per agreement and pair of parties). Every export is written to a
temporary file next to the target and renamed into place.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path
from typing import IO, Any

import networkx as nx

from pipeline.errors import UsageError
from pipeline.records import sha1
from pipeline.store import Store

FORMATS = ("graphml", "gexf", "cytoscape", "ftm", "csv")
FTM_SCHEMA = {"ORG": "Organization", "PERSON": "Person", "GPE": "Address"}


def build_graph(store: Store) -> nx.MultiGraph[str]:
    g: nx.MultiGraph[str] = nx.MultiGraph()
    for e in store.entities():
        g.add_node(
            e["id"],
            label=e["label"],
            name=e["canonical"],
            aliases=json.dumps(e["aliases"], ensure_ascii=False),
            mentions=int(e["mentions"]),
            documents=int(e["documents"]),
            qid=e["qid"] or "",
        )
    by_doc: dict[str, list[str]] = {}
    dates: dict[str, str | None] = {}
    for doc_id, entity_id, published in store.cooccurrences():
        by_doc.setdefault(doc_id, []).append(entity_id)
        dates[doc_id] = published
    weights: dict[tuple[str, str], list[str]] = {}
    for doc_id, ents in by_doc.items():
        for a, b in combinations(sorted(set(ents)), 2):
            weights.setdefault((a, b), []).append(doc_id)
    for (a, b), docs in weights.items():
        seen = sorted(d for d in (dates[x] for x in docs) if d)
        g.add_edge(
            a,
            b,
            key=f"cooc:{a}:{b}",
            kind="cooccurrence",
            weight=len(docs),
            documents=json.dumps(docs),
            first_seen=seen[0] if seen else "",
            last_seen=seen[-1] if seen else "",
        )
    for ag in store.agreements():
        for a, b in combinations(sorted(set(ag["party_ids"])), 2):
            if a in g and b in g:
                g.add_edge(
                    a,
                    b,
                    key=f"agr:{ag['agreement_id']}",
                    kind="agreement",
                    type=ag["type"],
                    signed=ag["signed"] or "",
                    amount=float(ag["amount"] or 0.0),
                    currency=ag["currency"] or "",
                    quantity=ag["quantity"] or "",
                    local_content_pct=float(ag["local_content_pct"] or -1),
                    doc_id=ag["doc_id"],
                    url=ag["url"],
                    evidence=ag["evidence_text"],
                    weight=1,
                )
    return g


@contextmanager
def atomic_text(path: Path) -> Iterator[IO[str]]:
    """A text file written to a temp name in the target folder and renamed into place."""
    parent = path.parent if str(path.parent) else Path()
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _graphml(g: nx.MultiGraph[str], fh: IO[str]) -> None:
    fh.write("\n".join(nx.generate_graphml(g, encoding="utf-8", prettyprint=True)))


def _gexf(g: nx.MultiGraph[str], fh: IO[str]) -> None:
    buf = io.BytesIO()
    nx.write_gexf(g, buf, encoding="utf-8")
    fh.write(buf.getvalue().decode("utf-8"))


def _cytoscape(g: nx.MultiGraph[str], fh: IO[str]) -> None:
    json.dump(nx.cytoscape_data(g), fh, ensure_ascii=False, indent=1)


def _ftm(g: nx.MultiGraph[str], fh: IO[str]) -> None:
    for node, a in g.nodes(data=True):
        names = [a["name"], *json.loads(a["aliases"])]
        props: dict[str, list[str]] = {"name": [a["name"]], "alias": sorted(set(names) - {a["name"]})}
        if a["label"] == "GPE":
            props = {"full": [a["name"]], "summary": sorted(set(names))}
        if a.get("qid"):
            props["wikidataId"] = [a["qid"]]
        fh.write(
            json.dumps(
                {"id": node, "schema": FTM_SCHEMA[a["label"]], "properties": props}, ensure_ascii=False
            )
            + "\n"
        )
    for u, v, key, a in g.edges(keys=True, data=True):
        if a["kind"] == "cooccurrence":
            row = {
                "id": sha1(key),
                "schema": "UnknownLink",
                "properties": {"subject": [u], "object": [v], "role": ["co-mentioned"]},
            }
        else:
            row = {
                "id": sha1(key),
                "schema": "Contract",
                "properties": {
                    "title": [f"{a['type']} {u}–{v}"],
                    "authority": [u],
                    "type": [a["type"]],
                    "contractDate": [a["signed"]] if a["signed"] else [],
                    "sourceUrl": [a["url"]],
                    "amount": [str(a["amount"])] if a["currency"] else [],
                    "currency": [a["currency"]] if a["currency"] else [],
                    "description": [a["evidence"]],
                },
            }
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _csv(g: nx.MultiGraph[str], out: Path) -> None:
    """Neo4j ``neo4j-admin database import`` files: ``nodes.csv`` and ``edges.csv`` in folder ``out``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out}: {exc.strerror}") from None
    with atomic_text(out / "nodes.csv") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["entityId:ID", "name", "aliases:string[]", "mentions:int", "documents:int", "qid", ":LABEL"]
        )
        for node, a in g.nodes(data=True):
            w.writerow(
                [
                    node,
                    a["name"],
                    ";".join(json.loads(a["aliases"])),
                    a["mentions"],
                    a["documents"],
                    a["qid"],
                    "Entity;" + a["label"],
                ]
            )
    with atomic_text(out / "edges.csv") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                ":START_ID",
                ":END_ID",
                ":TYPE",
                "weight:int",
                "agreementType",
                "signed",
                "amount:float",
                "currency",
                "docId",
                "evidence",
            ]
        )
        for u, v, a in g.edges(data=True):
            w.writerow(
                [
                    u,
                    v,
                    "AGREEMENT" if a["kind"] == "agreement" else "CO_OCCURS",
                    a.get("weight", 1),
                    a.get("type", ""),
                    a.get("signed", ""),
                    a.get("amount", ""),
                    a.get("currency", ""),
                    a.get("doc_id", ""),
                    a.get("evidence", ""),
                ]
            )


_WRITERS: dict[str, Callable[[nx.MultiGraph[str], IO[str]], None]] = {
    "graphml": _graphml,
    "gexf": _gexf,
    "cytoscape": _cytoscape,
    "ftm": _ftm,
}


def export(g: nx.MultiGraph[str], fmt: str, output: Path) -> Path:
    if fmt not in FORMATS:
        raise UsageError(f"unknown graph format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "csv":
        _csv(g, output)
        return output
    with atomic_text(output) as fh:
        _WRITERS[fmt](g, fh)
    return output


def summary(g: nx.MultiGraph[str]) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for _, _, a in g.edges(data=True):
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    return {"nodes": g.number_of_nodes(), "edges": g.number_of_edges(), "edge_kinds": kinds}
