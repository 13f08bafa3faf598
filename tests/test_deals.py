"""Deals (agreements consolidated across reports) and story clusters: matching rules, both store
backends, incremental recomputation, the ``defintel deals`` JSON shape and the bundled corpus."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace as dataclasses_replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.backend.sqlite import Store
from pipeline.config import Settings
from pipeline.consolidate import Consolidator
from pipeline.deals import build_deal, cluster_agreements, quantity_number
from pipeline.index.embedders import HashingEmbedder
from pipeline.records import (
    Agreement,
    Analysis,
    Document,
    Entity,
    Mention,
    Money,
    Span,
    StoredAgreement,
    sha1,
)
from tests.conftest import CORPUS, ROOT

INTERFACE_DEAL_KEYS = {
    "deal_id",
    "type",
    "parties",
    "party_ids",
    "signed",
    "value",
    "quantity",
    "local_content_pct",
    "subject",
    "first_reported",
    "last_reported",
    "reports",
    "conflicts",
}


def stored(
    doc: str,
    kind: str = "contract",
    parties: tuple[str, ...] = ("otokar", "az-mod"),
    *,
    signed: str | None = "2025-02-17",
    published: str | None = "2025-02-18",
    value: Money | None = None,
    quantity: str | None = None,
    evidence: str = "",
    language: str = "en",
    duplicate_of: str | None = None,
) -> StoredAgreement:
    text = evidence or f"{doc} {kind} {' '.join(parties)}"
    return StoredAgreement(
        agreement_id=sha1(doc, kind, text),
        doc_id=doc,
        type=kind,
        parties=tuple(p.title() for p in parties),
        party_ids=parties,
        signed=signed,
        value=value,
        quantity=quantity,
        local_content_pct=None,
        subject=None,
        evidence=Span(text, 0, len(text)),
        url=f"https://x.example/{doc}",
        language=language,
        published=published,
        duplicate_of=duplicate_of,
    )


def groups(items: list[StoredAgreement]) -> list[set[str]]:
    vectors = dict(
        zip(
            [a.agreement_id for a in items],
            HashingEmbedder().passages([a.evidence.text for a in items]),
            strict=True,
        )
    )
    return [{a.doc_id + ":" + a.type for a in c} for c in cluster_agreements(items, vectors, "hashing")]


# -- matching rules --------------------------------------------------------------------------
def test_reports_that_disagree_on_the_value_are_one_deal_with_both_values_in_conflicts() -> None:
    a = stored("tr", value=Money(118e6, "USD"), quantity="36 adet zırhlı araç", language="tr")
    b = stored(
        "az",
        value=Money(112.5e6, "USD"),
        quantity="36 ədəd zirehli maşın",
        language="az",
        published="2025-02-19",
    )
    c = stored("en", value=Money(118e6, "USD"), quantity="36 armoured vehicles", published="2025-02-20")
    clusters = cluster_agreements([a, b, c], {}, "hashing")
    assert len(clusters) == 1
    deal = build_deal(clusters[0])
    assert deal.value == Money(118e6, "USD")  # what most reports say
    assert [r.doc_id for r in deal.reports] == ["tr", "az", "en"]  # by publication date
    assert (deal.first_reported, deal.last_reported) == ("2025-02-18", "2025-02-20")
    conflict = {c.field: c for c in deal.conflicts}
    assert set(conflict) == {"value"}  # "36" in three languages is one quantity
    values = {json.dumps(v.value, sort_keys=True): v.doc_ids for v in conflict["value"].values}
    assert values == {
        json.dumps({"amount": 118e6, "currency": "USD"}, sort_keys=True): ("tr", "en"),
        json.dumps({"amount": 112.5e6, "currency": "USD"}, sort_keys=True): ("az",),
    }
    row = deal.as_json()
    assert set(row) == INTERFACE_DEAL_KEYS
    assert row["conflicts"][0]["field"] == "value" and len(row["conflicts"][0]["values"]) == 2


def test_two_instruments_between_the_same_parties_stay_two_deals() -> None:
    # A contract and its training protocol, reported by two pages: never one deal per page.
    items = [
        stored("p1", "contract", ("mka", "azersilah"), value=Money(78.6e6, "USD")),
        stored("p1", "training", ("mka", "azersilah")),
        stored("p2", "contract", ("mka", "azersilah"), value=Money(78.6e6, "USD")),
        stored("p2", "training", ("mka", "azersilah")),
    ]
    assert sorted(map(sorted, groups(items))) == [
        ["p1:contract", "p2:contract"],
        ["p1:training", "p2:training"],
    ]
    # Two MoUs of one day: told apart by what each states (here the local content).
    mous = [
        stored("tr", "mou", ("roketsan", "azersilah"), evidence="motor MoU 50%"),
        stored("tr", "mou", ("roketsan", "azersilah"), evidence="range MoU"),
        stored("az", "mou", ("roketsan", "azersilah"), evidence="motor memorandum 50%"),
        stored("az", "mou", ("roketsan", "azersilah"), evidence="range memorandum"),
    ]
    mous = [
        m if "50%" not in m.evidence.text else StoredAgreement(**{**_fields(m), "local_content_pct": 50.0})
        for m in mous
    ]
    found = cluster_agreements(mous, {}, "hashing")
    assert sorted(sorted(a.evidence.text for a in c) for c in found) == [
        ["motor MoU 50%", "motor memorandum 50%"],
        ["range MoU", "range memorandum"],
    ]


def _fields(a: StoredAgreement) -> dict[str, Any]:
    return {f: getattr(a, f) for f in a.__dataclass_fields__}


def test_a_follow_up_months_later_joins_the_old_deal_and_another_signing_does_not() -> None:
    signing = stored("tr", "export", value=Money(118e6, "USD"), quantity="36 adet")
    follow_up = stored(
        "en", "export", published="2025-11-04", value=Money(118e6, "USD"), quantity="36 armoured vehicles"
    )
    other = stored("az", "export", signed="2024-10-16", published="2024-10-18", value=Money(112.5e6, "USD"))
    undated = stored("x", "export", signed=None, published="2025-09-01")  # names the parties only
    assert sorted(map(sorted, groups([signing, follow_up, other, undated]))) == [
        ["az:export"],
        ["en:export", "tr:export"],
        ["x:export"],
    ]


def test_incompatible_types_and_disjoint_parties_never_match() -> None:
    items = [stored("a", "training"), stored("b", "contract"), stored("c", "contract", ("aselsan", "kepez"))]
    assert len(groups(items)) == 3


@pytest.mark.parametrize(
    ("phrase", "number"),
    [
        ("120 milyon adet fişek", 120e6),
        ("120 million rounds", 120e6),
        ("2.400 adet termal görüntüleme modülü", 2400.0),
        ("400,000 ammunition boxes", 400000.0),
        ("40 milyon adet 7,62 mm fişek", 40e6),
        ("four flight simulators", None),
    ],
)
def test_quantity_numbers_are_compared_across_languages(phrase: str, number: float | None) -> None:
    assert quantity_number(phrase) == number


# -- both backends ---------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        store: Any = Store(tmp_path)
    else:
        from pipeline.backend.pg.store import PgStore

        store = PgStore(request.getfixturevalue("pg_url"))
    yield store
    store.close()


def analysis(doc: str, published: str, sentence: str, *, amount: float, language: str = "en") -> Analysis:
    title = f"Otokar export {doc}"
    text = f"{title}\n\n{sentence}"
    start = text.index(sentence)
    document = Document(sha1(doc), f"https://x.example/{doc}", language, title, published, None, text)
    agreement = Agreement(
        type="export",
        parties=("Otokar", "Ministry of Defence of Azerbaijan"),
        party_ids=("otokar", "az-mod"),
        evidence=Span(sentence, start, start + len(sentence)),
        signed="2025-02-17",
        value=Money(amount, "USD"),
        quantity="36 armoured vehicles",
    )
    mention = Mention("Otokar", "ORG", "Otokar", "otokar", start, start + 6)
    return Analysis(document, (mention,), (agreement,))


def save(store: Any, *docs: Analysis) -> None:
    with store.atomic():
        for a in docs:
            store.save_analysis(a, text_hash=sha1(a.document.text), minhash=None, duplicate_of=None)
        Consolidator(
            store, HashingEmbedder(), lock=0x0DEF1EA if hasattr(store, "is_postgres") else None
        ).update([a.document.doc_id for a in docs])


def test_deals_and_stories_stored_and_recomputed_incrementally(any_store: Any) -> None:
    store = any_store
    tr = analysis(
        "tr",
        "2025-02-18",
        "Otokar ile Azerbaycan Savunma Bakanlığı 118 milyon dolarlık sözleşme imzaladı.",
        amount=118e6,
        language="tr",
    )
    en = analysis(
        "en", "2025-02-19", "Otokar signed a $118 million export contract with the ministry.", amount=118e6
    )
    save(store, tr, en)
    [deal] = store.deals()
    assert len(deal.reports) == 2 and deal.conflicts == () and deal.languages == ("en", "tr")
    assert store.deals(entity_ids=["otokar"]) == [deal] and store.deals(entity_ids=["aselsan"]) == []
    assert store.deals(agreement_type="export") == [deal] and store.deals(agreement_type="mou") == []
    assert (
        store.deals(since="2025-02-17", until="2025-02-17") == [deal]
        and store.deals(since="2025-03-01") == []
    )
    stories = store.story_ids([tr.document.doc_id, en.document.doc_id])
    assert len(set(stories.values())) == 1  # the same signing in two languages, two days apart
    assert store.deals(doc_ids=[en.document.doc_id]) == [deal] and store.deals(doc_ids=["nope"]) == []
    assert store.deals(deal_ids=[deal.deal_id]) == [deal] and store.deals(deal_ids=[]) == []
    first_updated = deal.updated
    assert first_updated is not None and store.deals(changed_since=first_updated) == [deal]

    # A third report disagreeing on the value: the same deal (same id), now with a conflict.
    az = analysis(
        "az", "2025-02-20", "Otokar 112,5 milyon dollarlıq müqavilə imzalayıb.", amount=112.5e6, language="az"
    )
    save(store, az)
    [after] = store.deals()
    assert after.deal_id == deal.deal_id and len(after.reports) == 3
    assert [c.field for c in after.conflicts] == ["value"]
    assert {v.doc_ids for v in after.conflicts[0].values} == {
        (tr.document.doc_id, en.document.doc_id),
        (az.document.doc_id,),
    }
    assert after.first_seen == deal.first_seen

    # Recomputing without a change leaves the deal's timestamps alone; only touched deals move.
    save(store, az)
    [again] = store.deals()
    assert again == after
    assert store.docs_to_consolidate() == []

    # A document whose agreement disappears leaves the deal.
    gone = Analysis(az.document, az.mentions, ())
    save(store, gone)
    [last] = store.deals()
    assert len(last.reports) == 2 and last.conflicts == ()


def test_documents_rows_carry_their_story_id(any_store: Any) -> None:
    store = any_store
    save(store, analysis("one", "2025-02-18", "Otokar signed the contract.", amount=1e6))
    [row] = store.documents()
    assert row["story_id"] and set(row) >= {
        "doc_id",
        "url",
        "language",
        "title",
        "published",
        "author",
        "duplicate_of",
    }


# -- the command line and the corpus -----------------------------------------------------------
def test_cli_deals_json_shape(cli_env: dict[str, str]) -> None:
    pages = [
        str(CORPUS / f"{n}.html")
        for n in ("tr-12-baykar-bakude-iha-lisansi", "en-13-baykar-tb2-baku-reedited")
    ]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pipeline", *args],
            env=cli_env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )

    assert cli("ingest", *pages).returncode == 0
    out = cli("deals", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows and all(set(r) == INTERFACE_DEAL_KEYS for r in rows)
    for r in rows:
        assert set(r["reports"][0]) == {"doc_id", "url", "language", "published", "evidence"}
        assert set(r["reports"][0]["evidence"]) == {"text", "start", "end"}
        assert r["value"] is None or set(r["value"]) == {"amount", "currency"}
        for c in r["conflicts"]:
            assert set(c) == {"field", "values"} and all(set(v) == {"value", "doc_ids"} for v in c["values"])
    dates = [r["signed"] or r["first_reported"] for r in rows]
    assert dates == sorted(dates, reverse=True)  # latest first
    licence = next(r for r in rows if r["type"] == "licence_production")
    assert {x["language"] for x in licence["reports"]} == {"tr", "en"}
    assert licence["conflicts"] == [
        {
            "field": "value",
            "values": [
                {
                    "value": {"amount": 96000000, "currency": "USD"},
                    "doc_ids": [licence["reports"][0]["doc_id"]],
                },
                {
                    "value": {"amount": 94000000, "currency": "USD"},
                    "doc_ids": [licence["reports"][1]["doc_id"]],
                },
            ],
        }
    ]
    filtered = json.loads(
        cli("deals", "--entity", "Baykarın", "--type", "training", "--format", "json").stdout
    )
    assert [r["type"] for r in filtered] == ["training"] and len(filtered[0]["reports"]) == 2
    assert json.loads(cli("deals", "--since", "2026-01-01", "--format", "json").stdout) == []
    table = cli("deals")
    assert table.returncode == 0 and "licence_production" in table.stdout and "value" in table.stdout
    bad = cli("deals", "--since", "yesterday")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    # The two pages report one signing (tr press release, en re-edit): one story.
    docs = json.loads(cli("documents", "--format", "json").stdout)
    assert len(docs) == 2 and docs[0]["story_id"] == docs[1]["story_id"] is not None
    plain = json.loads(cli("search", "Baykar TB2", "--format", "json").stdout)
    assert len(plain) == 2 and {r["story_id"] for r in plain} == {docs[0]["story_id"]}
    folded = json.loads(cli("search", "Baykar TB2", "--collapse-stories", "--format", "json").stdout)
    assert len(folded) == 1 and [r["doc_id"] for r in folded[0]["story_reports"]] == [plain[1]["doc_id"]]


def test_corpus_deals_and_stories(ingested: Settings) -> None:
    store = Store(ingested.data_path, readonly=True)
    by_url = {d["url"]: d for d in store.documents()}
    # Republished copies share their original's story.
    for d in by_url.values():
        if d["duplicate_of"]:
            original = next(o for o in by_url.values() if o["doc_id"] == d["duplicate_of"])
            assert d["story_id"] == original["story_id"]
    # (The wire story's lead is extracted as an instrument of its own too: another, one-report deal.)
    licence = max(
        (d for d in store.deals(entity_ids=["baykar"]) if d.type == "licence_production"),
        key=lambda d: len(d.reports),
    )
    assert len(licence.reports) == 5 and licence.languages == ("az", "en", "tr")
    assert [c.field for c in licence.conflicts] == ["value"]
    training = [d for d in store.deals(entity_ids=["baykar"]) if d.type == "training"]
    assert len(training) == 1 and len(training[0].reports) == 4
    mous = store.deals(entity_ids=["roketsan"], agreement_type="mou", since="2025-10-01")
    assert len(mous) == 2 and all(len(d.reports) == 2 for d in mous)
    store.close()


def test_graph_exports_carry_one_edge_per_deal_with_its_sources(ingested: Settings, tmp_path: Path) -> None:
    from pipeline.graph import GraphFilter, build_graph, ftm_entities

    store = Store(ingested.data_path, readonly=True)
    g = build_graph(store, GraphFilter(), models_dir=ingested.nlp.models_dir)
    edges = [a for _, _, a in g.edges(data=True) if a["kind"] == "agreement"]
    pairs = [(a["deal_id"], frozenset((u, v))) for u, v, a in g.edges(data=True) if a["kind"] == "agreement"]
    assert len(pairs) == len(set(pairs))  # one edge per deal and pair of parties
    baykar = max((a for a in edges if "baykar" in a["party_ids"]), key=lambda a: a["reports"])
    sources = json.loads(baykar["sources"])
    assert baykar["reports"] == len(sources) == 5 and json.loads(baykar["languages"]) == ["az", "en", "tr"]
    assert json.loads(baykar["conflicts"])[0]["field"] == "value"
    contracts = [r for r in ftm_entities(g) if r["schema"] == "Contract"]
    assert len(contracts) == len({a["deal_id"] for a in edges})  # FtM: one Contract per deal
    tb2 = next(r for r in contracts if r["id"] == "deal-" + baykar["deal_id"])
    assert len(tb2["properties"]["sourceUrl"]) == 5
    assert any("disagree on value" in n for n in tb2["properties"]["notes"])
    store.close()


def test_average_linkage_does_not_chain_and_respects_exclusive_keys() -> None:
    from pipeline.linkage import average_linkage

    # 0-1 strong, 1-2 strong, 0-2 forbidden: 2 may not join the group of 0 and 1.
    chain = {(0, 1): 5.0, (1, 2): 4.0, (0, 2): None}
    assert average_linkage(3, chain, 2.0, missing=0.0) == [[0, 1], [2]]
    # One strong pair is not enough when the other pairs between the groups are missing (0).
    assert average_linkage(4, {(0, 1): 3.0, (2, 3): 3.0, (1, 2): 2.5}, 2.0, missing=0.0) == [[0, 1], [2, 3]]
    # missing=None: every pair between two groups must be scored.
    assert average_linkage(3, {(0, 1): 3.0, (1, 2): 3.0}, 2.0, missing=None) == [[0, 1], [2]]
    assert average_linkage(3, {(0, 1): 3.0, (1, 2): 3.0, (0, 2): 2.0}, 2.0, missing=None) == [[0, 1, 2]]
    # Items with the same exclusive key (one document's instruments) never share a group.
    assert average_linkage(
        3, {(0, 1): 3.0, (1, 2): 3.0, (0, 2): 3.0}, 2.0, missing=0.0, exclusive=["a", "b", "a"]
    ) == [
        [0, 1],
        [2],
    ]


# The quality gate: benchmarks/deals_bench.py's scoring on the corpus, hashing embedder. Floors
# from issue #20 (deals P >= 0.95, R >= 0.90; stories P >= 0.95, R >= 0.80).
DEAL_FLOORS = {"deals": (0.95, 0.90), "stories": (0.95, 0.80)}


def test_deal_and_story_clustering_stay_above_their_floors(ingested: Settings) -> None:
    from benchmarks.deals_bench import score

    result = score(ingested.data_path, CORPUS)
    for part, (p, r) in DEAL_FLOORS.items():
        assert result[part]["p"] >= p and result[part]["r"] >= r, (part, result[part], result["errors"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.200 personel, 14 uçak ve 36 sistem, 15-19 Eylül 2025", {"1200", "14", "36", "15", "19"}),
        (
            "1200 hərbi qulluqçu, 14 təyyarə, 36 sistem; sentyabrın 15-dən 19-dək (2025)",
            {"1200", "14", "36", "15", "19"},
        ),
        ("1,200 troops; 7,62 mm and 5.56 mm rounds", {"1200", "7.62", "5.56"}),
    ],
)
def test_story_figures_are_written_the_same_in_every_language(text: str, expected: set[str]) -> None:
    from pipeline.stories import figures

    assert figures(text) == expected


def test_a_changed_document_gets_its_signals_computed_again(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first = analysis(
        "d", "2025-02-18", "Otokar signed a contract for 36 vehicles, 14 trucks and 9 radars.", amount=1e6
    )
    save(store, first)
    key = f"doc:{first.document.doc_id}"
    before = store.signal_vectors([key], "hashing")[key]
    text = first.document.text.replace("36 vehicles", "48 armoured vehicles")
    doc = Document(
        first.document.doc_id, first.document.url, "en", first.document.title, "2025-02-18", None, text
    )
    save(store, Analysis(doc, first.mentions, ()))
    assert store.signal_vectors([key], "hashing")[key] != before
    fig = f"fig:{doc.doc_id}"
    assert b"48" in store.signal_vectors([fig], "figures")[fig]
    store.close()


def test_an_entity_merge_moves_the_deals_of_the_documents_naming_it(any_store: Any) -> None:
    from pipeline.consolidate import consolidate_lock, reconsolidate_entities
    from pipeline.nlp.decisions import LinkDecision

    store = any_store
    tr = analysis(
        "tr",
        "2025-02-18",
        "Otokar ile Bakanlık 118 milyon dolarlık sözleşme imzaladı.",
        amount=118e6,
        language="tr",
    )
    other = Agreement(
        type="export",
        parties=("Otokar A.Ş.", "the ministry"),
        party_ids=("otokar-as", "the-ministry"),
        evidence=tr.agreements[0].evidence,
        signed="2025-02-17",
        value=Money(118e6, "USD"),
    )
    en = analysis("en", "2025-02-19", "Otokar A.S. signed a $118 million export contract.", amount=118e6)
    en = Analysis(en.document, en.mentions, (dataclasses_replace(other, evidence=en.agreements[0].evidence),))
    save(store, tr, en)
    assert sorted(len(d.reports) for d in store.deals()) == [1, 1]  # no party in common yet
    store.upsert_entities([Entity("otokar-as", "ORG", "Otokar A.Ş.", ("Otokar A.Ş.",), None, False)])
    with store.atomic():
        kept = store.decide_link(
            LinkDecision("merge", "otokar-as", "otokar", "same company", "2025-03-01T00:00:00+00:00")
        )
        reconsolidate_entities(
            store, HashingEmbedder(), ["otokar", "otokar-as", kept], lock=consolidate_lock(store)
        )
    [deal] = store.deals()
    assert len(deal.reports) == 2 and "otokar" in deal.party_ids and "otokar-as" not in deal.party_ids
