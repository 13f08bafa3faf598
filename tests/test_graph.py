"""The entity graph and its exporters: round trips, FtM validity, Neo4j CSV headers, filters, errors."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from pipeline.backend.sqlite import Store
from pipeline.cli import main
from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.graph import GraphFilter, build_graph, export, ftm_entities, parse_types
from tests.conftest import ROOT

MODELS = ROOT / "models"
TRIO = {"mke", "mka", "azersilah"}


@pytest.fixture(scope="module")
def graph(ingested: Settings) -> nx.MultiGraph[str]:
    return build_graph(Store(ingested.data_path), models_dir=MODELS)


def _edges(g: nx.MultiGraph[str]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {k: (u, v, a) for u, v, k, a in g.edges(keys=True, data=True)}


def _same_nodes_and_edges(g: nx.MultiGraph[str], back: nx.MultiGraph[str]) -> None:
    assert set(back.nodes) == set(g.nodes)
    assert set(_edges(back)) == set(_edges(g))
    for k, (u, v, _) in _edges(back).items():
        assert {u, v} == set(_edges(g)[k][:2])


# -- the corpus graph --------------------------------------------------------------------------
def test_corpus_graph_links_mke_mka_azersilah_by_their_agreements(graph: nx.MultiGraph[str]) -> None:
    assert set(graph.nodes) >= TRIO
    found = {
        (frozenset((u, v)), a["agreement_type"], a.get("amount"), a.get("currency"), a.get("signed"))
        for u, v, a in graph.edges(data=True)
        if a["kind"] == "agreement"
    }
    expected = {
        (frozenset({"mka", "azersilah"}), "contract", 412_000_000.0, "USD", "2025-02-04"),
        (frozenset({"mka", "azersilah"}), "contract", 48_500_000.0, "USD", "2024-10-07"),
        (frozenset({"mke", "azersilah"}), "licence_production", 23_400_000.0, "EUR", "2025-05-08"),
        (frozenset({"mke", "azersilah"}), "training", None, None, "2024-10-07"),
    }
    assert expected <= found
    contract = next(
        a
        for u, v, a in graph.edges(data=True)
        if a.get("amount") == 412_000_000.0 and {u, v} == {"mka", "azersilah"}
    )
    assert "412 milyon" in contract["sentence"] and contract["url"].startswith("https://")
    assert contract["evidence_end"] > contract["evidence_start"]
    # co-occurrence weight is the number of (non-duplicate) documents naming both
    cooc = graph.edges["mka", "azersilah", "cooc:azersilah:mka"]
    assert cooc["weight"] == len(json.loads(cooc["documents"])) >= 3
    assert cooc["first_seen"] <= cooc["last_seen"]


def test_node_attributes(graph: nx.MultiGraph[str], ingested: Settings) -> None:
    az = graph.nodes["azersilah"]
    assert az["label"] == az["canonical"] == "Azersilah" and az["type"] == "ORG" and az["in_registry"]
    assert "Azərsilah" in json.loads(az["aliases_az"]) and "Azersilah" in json.loads(az["aliases_en"])
    assert az["documents"] <= az["mentions"] and az["first_seen"] <= az["last_seen"]
    baku = graph.nodes["baku"]
    assert (json.loads(baku["aliases_tr"]), json.loads(baku["aliases_az"])) == (["Bakü"], ["Bakı"])
    assert baku["qid"] == "Q9248" and baku["type"] == "GPE"
    # an unlisted entity goes by the names its mentions were written with, per page language
    unlisted = [a for _, a in graph.nodes(data=True) if not a["in_registry"]]
    assert unlisted
    for a in unlisted:
        names = [n for lang in ("en", "tr", "az") for n in json.loads(a[f"aliases_{lang}"])]
        assert names and not any(n.endswith(("'ın", "'in", "'nın", "'nin")) for n in names)
    # republished copies are left out unless asked for
    with_dups = build_graph(
        Store(ingested.data_path), GraphFilter(include_duplicates=True), models_dir=MODELS
    )
    assert with_dups.nodes["azersilah"]["documents"] > az["documents"]


# -- round trips -----------------------------------------------------------------------------
def test_graphml_round_trip(graph: nx.MultiGraph[str], tmp_path: Path) -> None:
    back = nx.read_graphml(export(graph, "graphml", tmp_path / "g.graphml"), force_multigraph=True)
    _same_nodes_and_edges(graph, back)
    for n, a in graph.nodes(data=True):
        assert back.nodes[n] == a
    for k, (_, _, a) in _edges(back).items():
        assert {x: y for x, y in a.items() if x != "id"} == _edges(graph)[k][2]
    assert back.nodes["x-" + _unlisted_suffix(graph)]["canonical"]  # non-registry ids survive
    assert "Azərsilah" in json.loads(back.nodes["azersilah"]["aliases_az"])


def _unlisted_suffix(g: nx.MultiGraph[str]) -> str:
    return next(n for n in g.nodes if n.startswith("x-"))[2:]


def test_gexf_round_trip_and_timeline(graph: nx.MultiGraph[str], tmp_path: Path) -> None:
    path = export(graph, "gexf", tmp_path / "g.gexf")
    back = nx.read_gexf(path)
    _same_nodes_and_edges(graph, back)
    for n, a in graph.nodes(data=True):
        got = dict(back.nodes[n])
        assert got.pop("start", None) == a.get("first_seen")
        assert got == a
    for k, (_, _, a) in _edges(back).items():
        want = _edges(graph)[k][2]
        got = {x: y for x, y in a.items() if x not in ("id", "start")}
        assert got == {**want, "weight": float(want["weight"])}  # GEXF weights are floats
        assert a.get("start") == (want.get("signed") or want.get("published") or want.get("first_seen"))
    assert "Azərsilah" in json.loads(back.nodes["azersilah"]["aliases_az"])
    # dynamic graph with date-typed spells: what Gephi's timeline needs
    root = ET.parse(path).getroot()
    g_el = root.find("{http://www.gexf.net/1.2draft}graph")
    assert g_el is not None and g_el.get("mode") == "dynamic" and g_el.get("timeformat") == "date"
    node = root.find(".//{http://www.gexf.net/1.2draft}node[@id='azersilah']")
    assert node is not None and node.get("start") == graph.nodes["azersilah"]["first_seen"]
    assert node.get("label") == "Azersilah"


def test_cytoscape_round_trip(graph: nx.MultiGraph[str], tmp_path: Path) -> None:
    data = json.loads(export(graph, "cytoscape", tmp_path / "g.json").read_text(encoding="utf-8"))
    assert isinstance(data["data"], dict) and data["multigraph"] is True
    ids = [e["data"]["id"] for e in data["elements"]["edges"]]
    assert len(ids) == len(set(ids)) == graph.number_of_edges()
    back = nx.cytoscape_graph(data)
    _same_nodes_and_edges(graph, back)
    for n, a in graph.nodes(data=True):
        got = dict(back.nodes[n])
        assert (got.pop("id"), got.pop("value"), got.pop("name")) == (n, n, a["label"])
        assert got == a
    for k, (_, _, a) in _edges(back).items():
        assert {x: y for x, y in a.items() if x not in ("source", "target", "key", "id")} == _edges(graph)[k][
            2
        ]
    assert "Azərsilah" in json.loads(back.nodes["azersilah"]["aliases_az"])


# -- FollowTheMoney --------------------------------------------------------------------------
_FTM_ID = re.compile(r"^[0-9a-zA-Z]([0-9a-zA-Z.\-]*[0-9a-zA-Z])?$")


def _ftm_rows(graph: nx.MultiGraph[str], tmp_path: Path) -> list[dict[str, Any]]:
    path = export(graph, "ftm", tmp_path / "g.ftm.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows == list(ftm_entities(graph))
    return rows


def test_ftm_lines_are_well_formed_and_self_contained(graph: nx.MultiGraph[str], tmp_path: Path) -> None:
    rows = _ftm_rows(graph, tmp_path)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) and all(_FTM_ID.match(i) for i in ids)
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        assert set(r) == {"id", "schema", "properties"}
        for values in r["properties"].values():
            assert values and all(isinstance(v, str) and v for v in values)
    # the 412M contract carries amount, currency, date, source and evidence; both parties hang off it
    contract = next(
        r for r in rows if r["schema"] == "Contract" and r["properties"].get("amount") == ["412000000"]
    )
    p = contract["properties"]
    assert (p["currency"], p["contractDate"], p["type"]) == (["USD"], ["2025-02-04"], ["contract"])
    assert p["sourceUrl"][0].startswith("https://") and "412 milyon" in p["description"][0]
    parties = {
        r["properties"]["supplier"][0]
        for r in rows
        if r["schema"] == "ContractAward" and r["properties"]["contract"] == [contract["id"]]
    }
    assert parties == {"mka", "azersilah"}
    assert by_id["azersilah"]["schema"] == "Organization" and by_id["baku"]["schema"] == "Territory"
    assert "Azərsilah" in by_id["azersilah"]["properties"]["alias"]


# The part of the FollowTheMoney 4.11.2 model the export uses (schema → required properties,
# schemata it is, property → type or "entity:<range>"), dumped from followthemoney 4.11.2 so the
# check below runs without the package; the next test checks against the package when installed.
FTM_4_11 = {
    "Organization": (["name"], ["LegalEntity", "Organization", "Thing"]),
    "Person": (["name"], ["LegalEntity", "Person", "Thing"]),
    "Territory": (["name"], ["Territory", "Thing"]),
    "Contract": (["title"], ["Asset", "Contract", "Thing", "Value"]),
    "ContractAward": (["contract", "supplier"], ["ContractAward", "Interest", "Interval", "Value"]),
    "UnknownLink": (["object", "subject"], ["Interest", "Interval", "UnknownLink"]),
}
_THING = {"name": "name", "alias": "name", "summary": "text", "notes": "text", "description": "text"}
_THING |= {"sourceUrl": "url", "wikidataId": "identifier"}
_INTERVAL = {"role": "string", "startDate": "date", "endDate": "date", "date": "date", "summary": "text"}
_INTERVAL |= {"description": "text", "recordId": "string", "sourceUrl": "url"}
FTM_4_11_PROPS: dict[str, dict[str, str]] = {
    "Organization": _THING,
    "Person": {**_THING, "title": "string"},
    "Territory": _THING,
    "Contract": {**_THING, "title": "string", "type": "string", "contractDate": "date"}
    | {"amount": "number", "currency": "string"},
    "ContractAward": {**_INTERVAL, "supplier": "entity:LegalEntity", "contract": "entity:Contract"}
    | {"amount": "number", "currency": "string"},
    "UnknownLink": {**_INTERVAL, "subject": "entity:Thing", "object": "entity:Thing"},
}
_ISO_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def test_ftm_lines_follow_the_pinned_schema_4_11(graph: nx.MultiGraph[str], tmp_path: Path) -> None:
    rows = _ftm_rows(graph, tmp_path)
    schema_of = {r["id"]: r["schema"] for r in rows}
    for r in rows:
        required, _ = FTM_4_11[r["schema"]]
        props = FTM_4_11_PROPS[r["schema"]]
        assert set(r["properties"]) <= set(props), (r["schema"], set(r["properties"]) - set(props))
        assert set(required) <= set(r["properties"]), r
        for name, values in r["properties"].items():
            kind = props[name]
            for value in values:
                if kind.startswith("entity:"):
                    assert kind[7:] in FTM_4_11[schema_of[value]][1], (r["schema"], name, value)
                    assert value != r["id"]
                elif kind == "date":
                    assert _ISO_DATE.match(value), (name, value)
                elif kind == "number":
                    float(value)
                elif kind == "url":
                    assert value.startswith(("http://", "https://", "file://")), value


@pytest.mark.slow
def test_ftm_lines_validate_against_the_followthemoney_schema(
    graph: nx.MultiGraph[str], tmp_path: Path
) -> None:
    """Needs `pip install followthemoney` (not a default dependency: it builds PyICU from source);
    the always-run test above checks the same export against a pinned copy of the schema."""
    from followthemoney import model

    rows = _ftm_rows(graph, tmp_path)
    schemata = {r["id"]: model.get(r["schema"]) for r in rows}
    for r in rows:
        schema = schemata[r["id"]]
        assert schema is not None and not schema.abstract, r["schema"]
        assert set(r["properties"]) <= set(schema.properties), (r["schema"], set(r["properties"]))
        assert set(schema.required) <= set(r["properties"]), (r["schema"], schema.required)
        schema.validate(r)  # raises InvalidData on a bad value
        proxy = model.get_proxy(r)
        for name, values in r["properties"].items():
            prop = schema.properties[name]
            assert sorted(proxy.get(name)) == sorted(set(values)) or prop.type.name in ("date", "number")
            if prop.range is not None:  # references point at entities in the file, of the right kind
                for target in values:
                    assert schemata[target].is_a(prop.range), (r["schema"], name, target)


# -- Neo4j CSV -------------------------------------------------------------------------------
_NEO4J_TYPES = {"", "ID", "int", "long", "float", "double", "boolean", "string", "date", "string[]"}


def test_neo4j_csv_headers_and_references(graph: nx.MultiGraph[str], tmp_path: Path) -> None:
    out = export(graph, "csv", tmp_path / "neo4j")
    with (out / "nodes.csv").open(encoding="utf-8", newline="") as fh:
        nodes = list(csv.reader(fh))
    with (out / "edges.csv").open(encoding="utf-8", newline="") as fh:
        edges = list(csv.reader(fh))
    nh, eh = nodes[0], edges[0]
    assert [c for c in nh if c.endswith(":ID")] == ["entityId:ID"] and ":LABEL" in nh
    assert eh[:3] == [":START_ID", ":END_ID", ":TYPE"]
    for header in (nh, eh):
        for col in header:
            name, _, kind = col.partition(":")
            assert name == "" or kind in _NEO4J_TYPES, col
    assert all(len(r) == len(nh) for r in nodes) and all(len(r) == len(eh) for r in edges)
    ids = {r[0] for r in nodes[1:]}
    assert ids == set(graph.nodes) and len(nodes) - 1 == graph.number_of_nodes()
    assert len(edges) - 1 == graph.number_of_edges()
    assert all(r[0] in ids and r[1] in ids for r in edges[1:])
    labels = {r[0]: r[nh.index(":LABEL")].split(";") for r in nodes[1:]}
    assert labels["azersilah"] == ["Entity", "Organization"] and labels["baku"] == ["Entity", "Place"]
    assert "Azərsilah" in dict(zip(nh, next(r for r in nodes if r[0] == "azersilah"), strict=True))[
        "aliasesAz:string[]"
    ].split(";")
    types = {r[2] for r in edges[1:]}
    assert types == {"AGREEMENT", "CO_OCCURS_WITH"}
    row = next(
        dict(zip(eh, r, strict=True)) for r in edges[1:] if r[eh.index("amount:double")] == "412000000.0"
    )
    assert (row["currency"], row["signed:date"], row["agreementType"]) == ("USD", "2025-02-04", "contract")
    assert all("\n" not in c for r in nodes + edges for c in r)


# -- filters ----------------------------------------------------------------------------------
def test_date_range_filter(ingested: Settings) -> None:
    g = build_graph(
        Store(ingested.data_path), GraphFilter(since="2025-01-01", until="2025-03-31"), models_dir=MODELS
    )
    assert g.number_of_nodes() > 0
    for _, a in g.nodes(data=True):
        assert "2025-01-01" <= a["first_seen"] <= a["last_seen"] <= "2025-03-31"
    for _, _, a in g.edges(data=True):
        assert "2025-01-01" <= a.get("published", a.get("first_seen", "")) <= "2025-03-31"
    assert json.loads(g.graph["filters"])["since"] == "2025-01-01"


def test_type_weight_and_ego_filters(ingested: Settings, graph: nx.MultiGraph[str]) -> None:
    store = Store(ingested.data_path)
    orgs = build_graph(store, GraphFilter(types=("ORG",)), models_dir=MODELS)
    assert orgs.number_of_nodes() and all(a["type"] == "ORG" for _, a in orgs.nodes(data=True))
    heavy = build_graph(store, GraphFilter(min_weight=3), models_dir=MODELS)
    cooc = [a for _, _, a in heavy.edges(data=True) if a["kind"] == "cooccurrence"]
    assert cooc and all(a["weight"] >= 3 for a in cooc)
    n_agreements = sum(1 for _, _, a in graph.edges(data=True) if a["kind"] == "agreement")
    assert sum(1 for _, _, a in heavy.edges(data=True) if a["kind"] == "agreement") == n_agreements
    # ego: by id, by a name with an attached Azerbaijani suffix, at depth 0 and 1
    alone = build_graph(store, GraphFilter(ego="Azərsilahın", depth=0), models_dir=MODELS)
    assert set(alone.nodes) == {"azersilah"}
    ego = build_graph(store, GraphFilter(ego="azersilah", depth=1), models_dir=MODELS)
    assert set(ego.nodes) == {"azersilah", *graph.neighbors("azersilah")}
    assert set(ego.nodes) >= TRIO and json.loads(ego.graph["ego"]) == ["azersilah"]
    with pytest.raises(UsageError, match="unknown entity"):
        build_graph(store, GraphFilter(ego="Nobody Known"), models_dir=MODELS)
    with pytest.raises(UsageError, match="not in the graph"):
        build_graph(store, GraphFilter(ego="azersilah", types=("GPE",)), models_dir=MODELS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"since": "2025-13-01"}, "--since must be a date"),
        ({"since": "2025-03-01", "until": "2025-01-01"}, "is after"),
        ({"types": ("ORG", "THING")}, "unknown entity type"),
        ({"min_weight": 0}, "--min-weight"),
        ({"depth": -1}, "--depth"),
    ],
)
def test_bad_filters_are_usage_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        GraphFilter(**kwargs)


def test_parse_types() -> None:
    assert parse_types(" org, GPE ,org") == ("ORG", "GPE") and parse_types(None) == ()


# -- writing ----------------------------------------------------------------------------------
def test_unknown_format_and_unwritable_paths(graph: nx.MultiGraph[str], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown graph format"):
        export(graph, "dot", tmp_path / "g.dot")
    with pytest.raises(UsageError, match="does not exist"):
        export(graph, "graphml", tmp_path / "missing" / "g.graphml")
    with pytest.raises(UsageError, match="is a folder"):
        export(graph, "gexf", tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        export(graph, "csv", tmp_path / "file")


def test_a_failed_export_leaves_the_old_file_and_no_temp_files(tmp_path: Path) -> None:
    bad: nx.MultiGraph[str] = nx.MultiGraph()
    bad.add_node("a", type="THING", canonical="A", label="A")  # no FtM schema for THING
    target = tmp_path / "g.ftm.jsonl"
    target.write_text("old\n")
    with pytest.raises(KeyError):
        export(bad, "ftm", target)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.ftm.jsonl"]


# -- command line ------------------------------------------------------------------------------
def _cli(ingested: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("DEFINTEL_NLP__MODELS_DIR", str(MODELS))
    return main(["-q", "--data-dir", str(ingested.data_path), "export-graph", *args])


def test_cli_export_with_filters(
    ingested: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ego.graphml"
    args = ["--format", "graphml", "--output", str(out), "--ego", "MKA", "--depth", "1", "--types", "org"]
    assert _cli(ingested, monkeypatch, *args, "--min-weight", "2", "--since", "2024-01-01") == 0
    back = nx.read_graphml(out, force_multigraph=True)
    assert "mka" in back and all(a["type"] == "ORG" for _, a in back.nodes(data=True))
    assert "wrote" in capsys.readouterr().err
    assert _cli(ingested, monkeypatch, "--format", "csv", "--output", str(tmp_path / "neo")) == 0
    assert {p.name for p in (tmp_path / "neo").iterdir()} == {"nodes.csv", "edges.csv"}


@pytest.mark.parametrize(
    "args",
    [
        ["--format", "graphml", "--output", "/nonexistent-dir/g.graphml"],
        ["--format", "gexf", "--output", "OUT", "--since", "yesterday"],
        ["--format", "gexf", "--output", "OUT", "--depth", "2"],
        ["--format", "gexf", "--output", "OUT", "--ego", "Nobody Known"],
    ],
)
def test_cli_errors_exit_2(
    ingested: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    args = [str(tmp_path / "g.gexf") if a == "OUT" else a for a in args]
    assert _cli(ingested, monkeypatch, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("defintel: error:")
    assert not any(tmp_path.iterdir())


def test_cli_unknown_format_exits_2(
    ingested: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exc:
        _cli(ingested, monkeypatch, "--format", "dot", "--output", str(tmp_path / "g.dot"))
    assert exc.value.code == 2
