"""The Streamlit pages. Imported only by ``app.py``: nothing else in ``pipeline`` imports Streamlit.

Pages read the store through ``pipeline.app.queries`` and draw HTML only through
``pipeline.app.render`` (which escapes every piece of crawled text). Heavy resources (store,
searcher, entity graph, registry) are built once per data version with ``st.cache_resource``;
the data version is the last ingest run, so a new run is picked up on the next rerun.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import streamlit as st

from pipeline.app import queries, render
from pipeline.app.rates import UsdRates, load_app_settings
from pipeline.backend.protocols import Searcher, Store
from pipeline.config import Settings
from pipeline.errors import DefintelError
from pipeline.records import AGREEMENT_TYPES, LABELS

if TYPE_CHECKING:  # imported where used: the first page must not wait for pandas, FAISS, altair, networkx
    import networkx as nx

    from pipeline.index.search import Filters
    from pipeline.records import Hit

log = logging.getLogger(__name__)

LANGS = {"tr": "Türkçe", "az": "Azərbaycanca", "en": "English"}
MIN_DATE = date(1990, 1, 1)


@dataclass(frozen=True, slots=True)
class Context:
    settings: Settings
    rates: UsdRates
    store: Store
    version: str  # changes when an ingest run finishes: part of every cache key


# -- cached resources -------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _config(config_file: str | None) -> tuple[Settings, UsdRates]:
    return load_app_settings(config_file)


STORE_KEY = "_defintel_store"  # session-state key of the session's own store connection


def _session_store(settings: Settings) -> Store:
    """This browser session's own read-only store connection, opened on its first run.

    Streamlit runs every session's script in its own thread, and sessions run at the same time:
    one connection shared through ``st.cache_resource`` would be used from several threads at
    once. A session runs one script at a time, so a connection per session is never used
    concurrently; opening one costs about a millisecond.
    """
    key = (settings.data_dir, settings.store.backend, settings.store.database_url)
    held = st.session_state.get(STORE_KEY)
    if isinstance(held, tuple) and held[0] == key:
        return held[1]  # type: ignore[no-any-return]
    from pipeline.backend import open_store

    store: Store = open_store(settings, readonly=True)  # SQLite, or PostgreSQL when configured
    st.session_state[STORE_KEY] = (key, store)
    return store


@dataclass(frozen=True, slots=True)
class SharedSearcher:
    """The searcher all sessions share (the embedding model is loaded once), with its own store
    connection; ``search`` holds a lock, so that connection and the model serve one query at a time."""

    searcher: Searcher
    lock: threading.Lock

    def search(self, query: str, k: int, filters: Filters) -> list[Hit]:
        with self.lock:
            return self.searcher.search(query, k=k, filters=filters)


@st.cache_resource(show_spinner="Loading the search index and the embedding model…", max_entries=2)
def _searcher(_settings: Settings, data_dir: str, embedder: str, version: str) -> SharedSearcher:
    # Built on the first submitted query, never for the first page: loading the model takes seconds.
    from pipeline.backend import open_searcher, open_store

    searcher = open_searcher(_settings, open_store(_settings, readonly=True))
    # The model loads on its first use: make that happen here, under this spinner's message.
    searcher.embedder.queries(["model warm-up"])
    return SharedSearcher(searcher, threading.Lock())


@st.cache_resource(show_spinner=False, max_entries=4)
def _overview(_store_: Store, data_dir: str, version: str) -> queries.Overview:
    return queries.overview(_store_)


@st.cache_resource(show_spinner="Building the entity graph…", max_entries=16)
def _graph(
    _store_: Store, models_dir: str, version: str, flt: tuple[str | None, str | None, tuple[str, ...], int]
) -> nx.MultiGraph[str]:
    from pipeline.graph import GraphFilter, build_graph

    since, until, types, min_weight = flt
    return build_graph(
        _store_,
        GraphFilter(since=since, until=until, types=types, min_weight=min_weight),
        models_dir=models_dir,
    )


def context() -> Context:
    """Settings, rates and the store; raises ``DefintelError`` with a message for the page."""
    settings, rates = _config(os.environ.get("DEFINTEL_CONFIG") or None)
    store = _session_store(settings)
    last = store.last_run()
    version = f"{last['run_id']}:{last['finished']}" if last else "none"
    return Context(settings, rates, store, version)


def full_graph(ctx: Context) -> nx.MultiGraph[str]:
    return _graph(ctx.store, ctx.settings.nlp.models_dir, ctx.version, (None, None, (), 1))


# -- helpers ------------------------------------------------------------------------------------
def _pandas() -> Any:
    """pandas, imported by the pages that draw tables or charts: the first page (search) does not
    need it, and importing it takes about a second on a cold start."""
    import pandas  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    return pandas


def _html(fragment: str) -> None:
    """Render HTML built by ``render`` (escaped there); never pass page text here directly."""
    st.markdown(fragment, unsafe_allow_html=True)


def _qp(name: str) -> str | None:
    value = st.query_params.get(name)
    return value if isinstance(value, str) and value else None


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def _date_range(prefix: str) -> tuple[date | None, date | None]:
    c1, c2 = st.columns(2)
    since = c1.date_input("From", value=None, min_value=MIN_DATE, key=f"{prefix}_since")
    until = c2.date_input("To", value=None, min_value=MIN_DATE, key=f"{prefix}_until")
    s = since if isinstance(since, date) else None
    u = until if isinstance(until, date) else None
    if s and u and s > u:
        st.warning("The start date is after the end date: nothing can match.")
    return s, u


# -- pages -----------------------------------------------------------------------------------------
FILTERS_OPEN = "s_filters"  # session-state key of the search filters' expander (open or not)
KEPT_FILTERS = "_s_filters_kept"  # the filter values, kept while their widgets are not drawn


@dataclass(frozen=True, slots=True)
class SearchChoice:
    """The search page's filter values, whether or not the filter widgets are drawn."""

    languages: tuple[str, ...]
    agreement_type: str
    entity: str
    k: int
    since: date | None
    until: date | None

    def summary(self) -> str:
        parts = [", ".join(LANGS[c] for c in self.languages), self.agreement_type, self.entity]
        parts += [f"from {self.since}" if self.since else "", f"to {self.until}" if self.until else ""]
        return " · ".join(p for p in parts if p)


def _search_filters(ctx: Context, entity_names: tuple[str, ...]) -> SearchChoice:
    """The filters, drawn only while their expander is open (lazy: the first page draws fewer
    widgets); their values are kept in the session meanwhile, so closing it does not drop them."""
    kept: dict[str, Any] = st.session_state.setdefault(
        KEPT_FILTERS,
        {
            "langs": [],
            "atype": "",
            "entity": "",
            "k": ctx.settings.app.page_size,
            "s_since": None,
            "s_until": None,
        },
    )
    if kept["entity"] not in entity_names:  # a new ingest run may have dropped it
        kept["entity"] = ""
    box = st.expander("Filters", key=FILTERS_OPEN, on_change="rerun")
    if box.open:
        for key, value in kept.items():
            # A widget that was not drawn in the last run lost its state: start it from the kept value.
            if key not in st.session_state:
                st.session_state[key] = value
        with box:
            c1, c2 = st.columns(2)
            kept["langs"] = c1.multiselect(
                "Language", list(LANGS), format_func=lambda c: LANGS[c], key="langs"
            )
            kept["atype"] = c2.selectbox("Agreement type", ["", *AGREEMENT_TYPES], key="atype")
            kept["entity"] = c1.selectbox("Entity", ["", *entity_names], key="entity")
            kept["k"] = c2.slider("Results", 1, 30, key="k")
            kept["s_since"], kept["s_until"] = _date_range("s")
    choice = SearchChoice(
        languages=tuple(kept["langs"]),
        agreement_type=kept["atype"] or "",
        entity=kept["entity"] or "",
        k=int(kept["k"]),
        since=kept["s_since"],
        until=kept["s_until"],
    )
    if not box.open and choice.summary():
        st.caption(f"Filters: {choice.summary()}")
    return choice


def search_page(ctx: Context) -> None:
    st.header("Search")
    query = st.text_input(
        "Search in any language (Türkçe, Azərbaycanca, English)",
        key="query",
        placeholder="e.g. Azərsilah fişek hattı · cartridge production line · patron istehsalı",
    )
    seen = _overview(ctx.store, ctx.settings.data_dir, ctx.version)
    choice = _search_filters(ctx, seen.entity_names)
    if not query.strip():
        st.info(
            f"{seen.documents} documents, {seen.entities} entities, {seen.agreements} "
            "agreements in the store. Type a query in any language to search all three."
        )
        return
    # Imported (and the model loaded) only once a query is submitted: the first page stays fast.
    from pipeline.index.search import Filters

    filters = Filters(
        languages=choice.languages,
        since=_iso(choice.since),
        until=_iso(choice.until),
        entity=choice.entity or None,
        agreement_type=choice.agreement_type or None,
    )
    from pipeline.index.search import collapse_stories

    with st.spinner("Searching…"):
        searcher = _searcher(ctx.settings, ctx.settings.data_dir, ctx.settings.index.embedder, ctx.version)
        # One card per story (its other reports folded into it): ask for more to fill k cards.
        hits = collapse_stories(searcher.search(query, k=choice.k * 3, filters=filters), ctx.store, choice.k)
    st.subheader(f"{len(hits)} result{'s' if len(hits) != 1 else ''}")
    if not hits:
        st.caption("No document matches; try fewer filters.")
    _html(render.CSS)
    for hit in hits:
        facts = queries.doc_facts(ctx.store, hit.doc_id)
        story = [
            {"doc_id": m.doc_id, "title": m.title, "language": m.language, "published": m.published}
            for m in hit.story
        ]
        with st.container(border=True):
            _html(render.result_card(hit.as_json(), facts.entities, facts.agreement_types, story))


def document_page(ctx: Context) -> None:
    st.header("Document")
    docs = ctx.store.documents()
    if not docs:
        st.info("No documents yet: run `defintel ingest`.")
        return
    ids = [d["doc_id"] for d in docs]
    titles = {d["doc_id"]: f"[{d['language']}] {d['title']} ({d['published'] or 'undated'})" for d in docs}
    wanted = _qp("doc")
    if wanted in titles and st.session_state.get("doc") is None:
        st.session_state["doc"] = wanted
    doc_id = st.selectbox("Document", ids, format_func=titles.__getitem__, key="doc")
    if doc_id is None:
        return
    st.query_params["doc"] = doc_id
    doc = ctx.store.document(doc_id)
    if doc is None:
        st.error("This document is no longer in the store.")
        return
    _html(render.CSS)
    meta = " · ".join(
        render.esc(x)
        for x in (doc["published"] or "undated", doc["author"] or "no byline", doc["source"])
        if x
    )
    _html(render.document_header(doc["title"], doc["language"], meta, doc["url"]))
    agreements = ctx.store.agreements(doc_id)
    mentions = [
        render.Marked(m["start"], m["end"], m["label"], m["entity_id"], m["canonical"] or "")
        for m in ctx.store.mentions(doc_id)
    ]
    evidence = [
        render.Marked(a["evidence_start"], a["evidence_end"], title=f"{a['type']}: {', '.join(a['parties'])}")
        for a in agreements
    ]
    _html(render.legend())
    _html(render.document_html(doc["text"], mentions, evidence))
    st.subheader(f"Agreements ({len(agreements)})")
    if agreements:
        pd = _pandas()

        rows = [
            {
                "type": a["type"],
                "parties": " · ".join(a["parties"]),
                "signed": a["signed"],
                "value": a["amount"],
                "currency": a["currency"],
                "value_usd": ctx.rates.to_usd(a["amount"], a["currency"]) if ctx.rates else None,
                "quantity": a["quantity"],
                "local_content_pct": a["local_content_pct"],
                "evidence": a["evidence_text"],
            }
            for a in agreements
        ]
        frame = pd.DataFrame(rows)
        if not ctx.rates:
            frame = frame.drop(columns=["value_usd"])
        st.dataframe(frame, hide_index=True, key="doc_agreements")
    dups = queries.near_duplicates(ctx.store, doc_id)
    st.subheader(f"Near-duplicates ({len(dups)})")
    if dups:
        _html(render.duplicate_list(dups))
    else:
        st.caption("No other copy of this page was found.")


def entity_page(ctx: Context) -> None:
    import altair as alt

    pd = _pandas()

    st.header("Entity")
    entities = ctx.store.entities()
    if not entities:
        st.info("No entities yet: run `defintel ingest`.")
        return
    names = {e["id"]: f"{e['canonical']} ({e['label']}, {e['documents']} docs)" for e in entities}
    wanted = _qp("id")
    if wanted in names and st.session_state.get("entity_id") is None:
        st.session_state["entity_id"] = wanted
    entity_id = st.selectbox("Entity", list(names), format_func=names.__getitem__, key="entity_id")
    if entity_id is None:
        return
    st.query_params["id"] = entity_id
    with st.spinner("Collecting the entity's documents…"):
        profile = queries.entity_profile(ctx.store, full_graph(ctx), entity_id)
    if profile is None:
        st.error("This entity is no longer in the store.")
        return
    _html(render.CSS)
    _html(render.entity_header(profile.canonical, profile.label, profile.in_registry, profile.entity_id))
    st.subheader("Aliases by language")
    st.dataframe(
        pd.DataFrame([{"language": lang, "aliases": ", ".join(a)} for lang, a in profile.aliases.items()]),
        hide_index=True,
        key="ent_aliases",
    )
    st.subheader(f"Documents over time ({len(profile.documents)})")
    dated = [d for d in profile.documents if d["published"]]
    if dated:
        frame = pd.DataFrame(dated)
        frame["month"] = pd.to_datetime(frame["published"].str[:7] + "-01")
        chart = (
            alt.Chart(frame)
            .mark_bar()
            .encode(
                x=alt.X("yearmonth(month):T", title="month"),
                y=alt.Y("count():Q", title="documents"),
                color=alt.Color("language:N"),
                tooltip=["language", "count()"],
            )
            .properties(height=220)
        )
        st.altair_chart(chart, width="stretch")
    # One line per story: its first document, the others folded under "+N reports in M languages".
    _html(render.story_list(queries.story_groups(ctx.store, profile.documents)))
    st.subheader("Co-occurring entities")
    if profile.cooccurring:
        _html(render.cooccurring(profile.cooccurring[:40]))
    else:
        st.caption("Never named together with another entity.")
    deals = queries.deal_rows(ctx.store, ctx.rates, entity_id=entity_id)
    st.subheader(f"Deals it is party to ({len(deals)})")
    if deals:
        columns = [
            "date",
            "type",
            "parties",
            "value",
            "currency",
            "reports",
            "languages",
            "conflicts",
            "title",
        ]
        st.dataframe(
            pd.DataFrame([{c: d[c] for c in columns} for d in deals]),
            hide_index=True,
            key="ent_agreements",
            column_config={"value": st.column_config.NumberColumn("value", format="%,.0f")},
        )


MAX_SOURCE_LISTS = 60


def agreements_page(ctx: Context) -> None:
    pd = _pandas()

    st.header("Agreements")
    rows = queries.deal_rows(ctx.store, ctx.rates)
    c1, c2, c3 = st.columns(3)
    types = c1.multiselect("Type", list(AGREEMENT_TYPES), key="ag_types")
    langs = c2.multiselect("Language", list(LANGS), format_func=lambda c: LANGS[c], key="ag_langs")
    party = c3.text_input("Party contains", key="ag_party")
    since, until = _date_range("ag")
    shown = queries.filter_deals(rows, types=types, languages=langs, party=party, since=since, until=until)
    st.caption(
        f"{len(shown)} of {len(rows)} deals (one row per deal, however many pages report it) · click a "
        "column header to sort · date = signing date, else first report · ⚠ conflicts: the reports "
        "disagree on these fields (all values under Sources)"
        + ("" if ctx.rates else " · add an [app.usd_rates] table to the config for a USD column")
    )
    frame = pd.DataFrame(shown, columns=list(rows[0]) if rows else ["type"])
    if "conflicts" in frame.columns:
        frame["conflicts"] = frame["conflicts"].map(lambda c: f"⚠ {c}" if c else "")
    frame = frame.drop(columns=[c for c in ("party_ids", "deal_id") if c in frame.columns])
    if "url" in frame.columns:
        frame["url"] = frame["url"].map(render.safe_url)
    st.dataframe(
        frame,
        hide_index=True,
        key="ag_table",
        column_config={
            "url": st.column_config.LinkColumn("source", display_text="open"),
            "value": st.column_config.NumberColumn("value", format="%,.0f"),
            "value_usd": st.column_config.NumberColumn("value (USD)", format="%,.0f"),
            "local_content_pct": st.column_config.NumberColumn("local content %"),
        },
    )
    st.download_button(
        "Download CSV",
        queries.csv_bytes(frame.to_dict("records"), list(frame.columns)),
        file_name="defintel-agreements.csv",
        mime="text/csv",
        key="ag_csv",
    )
    _deal_sources(ctx, shown)


def _deal_sources(ctx: Context, shown: list[dict[str, Any]]) -> None:
    """Each deal's reports, expandable: the deals several pages report or whose reports disagree."""
    several = [d for d in shown if d["reports"] > 1 or d["conflicts"]][:MAX_SOURCE_LISTS]
    if not several:
        return
    st.subheader("Sources")
    _html(render.CSS)
    by_id = {x.deal_id: x for x in ctx.store.deals()}
    for d in several:
        flag = f" · ⚠ reports disagree on {d['conflicts']}" if d["conflicts"] else ""
        label = f"{d['date'] or 'undated'} · {d['type']} · {d['parties']} — {d['reports']} reports ({d['languages']}){flag}"
        with st.expander(label):
            deal = by_id[d["deal_id"]]
            for c in deal.conflicts:
                values = [(_conflict_text(v.value), len(v.doc_ids)) for v in c.values]
                _html(render.conflict_line(c.field, values))
            _html(render.deal_sources(queries.deal_sources(ctx.store, deal)))


def _conflict_text(value: object) -> str:
    if isinstance(value, dict):
        return f"{value.get('amount', 0):,.0f} {value.get('currency', '')}"
    return str(value)


def timeline_page(ctx: Context) -> None:
    import altair as alt

    pd = _pandas()

    st.header("Timeline")
    kind = st.selectbox(
        "Pairs",
        list(queries.PAIR_KINDS),
        format_func=lambda k: {"any": "all pairs", "countries": "country – country"}.get(
            k, "organisation – organisation" if k == "organisations" else "country – organisation"
        ),
        key="tl_kind",
    )
    events = queries.timeline_events(ctx.store, kind)
    if not events:
        st.info("No dated agreements for these pairs.")
        return
    frame = pd.DataFrame(events)
    frame["when"] = pd.to_datetime(frame["date"].str[:10], errors="coerce")
    chart = (
        alt.Chart(frame)
        .mark_circle(size=140, opacity=0.85)
        .encode(
            x=alt.X("when:T", title="date (signed, else published)", scale=alt.Scale(padding=14)),
            y=alt.Y("pair:N", title=None, sort=alt.SortField("when"), axis=alt.Axis(labelLimit=360)),
            color=alt.Color("type:N", title="agreement type"),
            tooltip=["date", "pair", "type", "title"],
        )
        .properties(height=max(240, 26 * frame["pair"].nunique()))
        .interactive()
    )
    st.altair_chart(chart, width="stretch")
    st.caption(f"{len(events)} events over {frame['pair'].nunique()} pairs")
    st.dataframe(frame.drop(columns=["when", "doc_id"]), hide_index=True, key="tl_table")


def graph_page(ctx: Context) -> None:
    import altair as alt

    pd = _pandas()

    from pipeline.graph import FORMATS

    st.header("Entity graph")
    c1, c2 = st.columns(2)
    types = c1.multiselect("Entity types", list(LABELS), default=list(LABELS), key="g_types")
    # Every pair named in one page is an edge: from 2 pages up the picture shows the real ties.
    min_weight = c2.slider("Min. documents per co-occurrence edge", 1, 5, 2, key="g_min")
    since, until = _date_range("g")
    if not types:
        st.info("Pick at least one entity type.")
        return
    try:
        g = _graph(
            ctx.store,
            ctx.settings.nlp.models_dir,
            ctx.version,
            (_iso(since), _iso(until), tuple(types), int(min_weight)),
        )
    except DefintelError as exc:
        st.error(str(exc))
        return
    summary = f"{g.number_of_nodes()} entities, {g.number_of_edges()} edges"
    st.caption(summary + " · co-occurrence edges grey, agreement edges red · scroll to zoom, drag to pan")
    hide = st.checkbox("Hide entities without edges", value=True, key="g_hide")
    nodes, edges = queries.graph_frames(g, drop_isolated=hide)
    if nodes:
        edge_frame = pd.DataFrame(edges, columns=["edge", "end", "x", "y", "kind", "label", "weight"])
        # zero=False: the layout is centred on the origin; Vega-Lite would otherwise pin 0 to an edge.
        sx = alt.X("x:Q", axis=None, scale=alt.Scale(zero=False, nice=False, padding=16))
        sy = alt.Y("y:Q", axis=None, scale=alt.Scale(zero=False, nice=False, padding=16))
        base = alt.Chart(edge_frame).encode(x=sx, y=sy, detail="edge:N")
        cooc_layer = (
            base.transform_filter(alt.datum.kind == "cooccurrence")
            .mark_line(color="#bdbdbd", opacity=0.6)
            .encode(strokeWidth=alt.StrokeWidth("weight:Q", legend=None, scale=alt.Scale(range=[0.5, 4])))
        )
        # Agreement edges drawn over the co-occurrences: they are the facts analysts look for.
        agreement_layer = base.transform_filter(alt.datum.kind == "agreement").mark_line(
            color="#d62728", strokeWidth=1.6, opacity=0.9
        )
        node_frame = pd.DataFrame(nodes)
        node_layer = (
            alt.Chart(node_frame)
            .mark_circle(stroke="#333", strokeWidth=0.5, opacity=1)
            .encode(
                x=sx,
                y=sy,
                size=alt.Size("documents:Q", scale=alt.Scale(range=[40, 600]), legend=None),
                fill=alt.Fill(
                    "type:N",
                    scale=alt.Scale(
                        domain=list(render.LABEL_COLOURS), range=list(render.LABEL_COLOURS.values())
                    ),
                    legend=alt.Legend(title="entity"),
                ),
                tooltip=["name", "type", "documents"],
            )
        )
        labels = (
            alt.Chart(node_frame[node_frame["documents"] >= 3])
            .mark_text(dy=-11, fontSize=10)
            .encode(x=sx, y=sy, text="name:N")
        )
        chart = (cooc_layer + agreement_layer + node_layer + labels).properties(height=560).interactive()
        st.altair_chart(chart, width="stretch")
    fmt = st.selectbox("Export format", list(FORMATS), key="g_fmt")
    name, data, mime = queries.export_bytes(g, fmt)
    st.download_button(f"Export graph ({fmt})", data, file_name=name, mime=mime, key="g_export")


def status_page(ctx: Context) -> None:
    pd = _pandas()

    st.header("Ingestion status")
    runs = queries.run_rows(ctx.store)
    if not runs:
        st.info("No ingest run recorded yet.")
    else:
        last = runs[0]
        c = st.columns(5)
        for col, key in zip(c, ("status", "new", "updated", "duplicates", "failed"), strict=True):
            col.metric(key, str(last.get(key, "–")))
        st.dataframe(pd.DataFrame(runs), hide_index=True, key="runs_table")
    failures = queries.run_failures(ctx.store)
    st.subheader(f"Failures ({len(failures)})")
    if failures:
        st.dataframe(pd.DataFrame(failures), hide_index=True, key="failures_table")
    else:
        st.caption("No failures recorded in the last runs.")


@st.cache_data(show_spinner="Looking for what is new…", max_entries=16)
def _watch_digest(
    _settings: Settings, data_dir: str, name: str, after: int, updated: str, version: str
) -> Any:
    """The list's digest since the app's last visit (moves no mark); one store connection per call."""
    from pipeline.backend import open_store
    from pipeline.watch import take_digest

    store = open_store(_settings, readonly=True)
    try:
        return take_digest(_settings, store, name, after=after)
    finally:
        store.close()


def _watch_write(ctx: Context, action: Callable[[Any], Any]) -> bool:
    """Run ``action`` on a writable store (the session's own is read-only); errors shown on the page."""
    from pipeline.backend import open_store

    try:
        store = open_store(ctx.settings, readonly=False)
        try:
            action(store)
        finally:
            store.close()
    except DefintelError as exc:
        st.error(str(exc))
        return False
    return True


def _lines(text: str) -> list[str]:
    return [x.strip() for x in text.splitlines() if x.strip()]


def watchlists_page(ctx: Context) -> None:
    from pipeline import watch
    from pipeline.watch_render import deal_headline

    st.header("Watchlists")
    _html(render.CSS)
    lists = {wl.name: wl for wl in watch.list_watchlists(ctx.store)}
    new = "➕ New list"
    choice = st.selectbox("Watchlist", [*lists, new], key="watch_pick")
    wl = lists.get(str(choice))
    with st.expander("Create or edit", expanded=wl is None), st.form("watch_form"):
        name = st.text_input("Name", value=wl.name if wl else "", key="watch_name")
        ents = st.text_area(
            "Entities (one per line, any alias, any language)",
            value="\n".join(e.name for e in wl.entities) if wl else "",
            key="watch_entities",
        )
        qs = st.text_area(
            "Search queries (one per line)",
            value="\n".join(wl.queries) if wl else "",
            key="watch_queries",
        )
        types = st.multiselect(
            "Agreement types",
            list(AGREEMENT_TYPES),
            default=list(wl.types) if wl else [],
            key="watch_types",
        )
        if st.form_submit_button("Save") and _watch_write(
            ctx,
            lambda store: watch.save_watchlist(
                store, ctx.settings, name.strip(), _lines(ents), _lines(qs), types, replace=True
            ),
        ):
            st.success(f"Saved watchlist {name.strip()}")
            _watch_digest.clear()
            st.rerun()
    if wl is None:
        if not lists:
            st.info("No watchlist yet: create one above (or with `defintel watch add`).")
        return
    if st.button("Delete this list", key="watch_delete") and _watch_write(
        ctx, lambda store: watch.remove_watchlist(store, wl.name)
    ):
        st.rerun()
    digest = _watch_digest(
        ctx.settings, ctx.settings.data_dir, wl.name, wl.visit_mark, wl.updated, ctx.version
    )
    st.subheader(
        f"New since your last visit: {len(digest.documents)} documents, {len(digest.deals)} deals, "
        f"{len(digest.entities_new)} new entities"
    )
    if digest.empty:
        st.caption("Nothing new since your last visit.")
    for doc in digest.documents:
        _html(render.watch_card(doc))
    if digest.deals:
        st.markdown("**Deals**")
        for deal in digest.deals:
            _html(render.deal_card(deal, deal_headline(deal)))
    if digest.entities_new:
        st.markdown("**Entities named for the first time beside the ones you watch**")
        _html(
            "".join(
                render.chip(e["canonical"], e["label"], render.link("entity", id=e["id"]))
                for e in digest.entities_new
            )
        )
    if not digest.empty and st.button("Mark all as seen", key="watch_seen"):
        upto = digest.mark[1]
        if _watch_write(ctx, lambda store: store.set_visit_mark(wl.name, upto)):
            _watch_digest.clear()
            st.rerun()


PAGES: dict[str, tuple[str, Callable[[Context], None]]] = {
    "search": ("Search", search_page),
    "document": ("Document", document_page),
    "entity": ("Entity", entity_page),
    "agreements": ("Agreements", agreements_page),
    "timeline": ("Timeline", timeline_page),
    "graph": ("Graph", graph_page),
    "watch": ("Watchlists", watchlists_page),
    "status": ("Ingestion status", status_page),
}


def _nav_changed() -> None:
    # A page picked in the sidebar starts from a clean URL (no stale ?doc= / ?id=).
    st.query_params.clear()
    st.query_params["page"] = st.session_state["nav"]


def navigation() -> str:
    """The page to show: the sidebar choice, first taken from ``?page=`` (links open pages)."""
    if "nav" not in st.session_state:
        wanted = _qp("page")
        st.session_state["nav"] = wanted if wanted in PAGES else "search"
    page: Any = st.sidebar.radio(
        "Page", list(PAGES), format_func=lambda p: PAGES[p][0], key="nav", on_change=_nav_changed
    )
    return str(page)


def main() -> None:
    st.set_page_config(page_title="defintel", layout="wide")
    st.sidebar.title("defintel")
    st.sidebar.caption(
        "Türkiye–Azerbaijan defence-industry cooperation in Turkish, Azerbaijani and English news"
    )
    page = navigation()
    try:
        ctx = context()
    except DefintelError as exc:
        st.error(str(exc))
        return
    PAGES[page][1](ctx)
