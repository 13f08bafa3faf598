"""The ``defintel`` command line (contract: INTERFACE.md). Thin: parse, build Settings, call the library.

Heavy modules (spaCy, torch, FAISS, trafilatura) are imported inside the commands that need them,
so ``--help``, ``documents`` and ``entities`` start fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pipeline import __version__
from pipeline.config import Settings, load_settings
from pipeline.errors import DefintelError, UsageError

log = logging.getLogger("pipeline")

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (exit 2) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _global_options(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    p.add_argument("--data-dir", default=default, help="data folder (env DEFINTEL_DATA_DIR, default ./data)")
    p.add_argument("--config", default=default, help="TOML file overriding the shipped defaults")
    p.add_argument(
        "--store",
        choices=("sqlite", "postgres"),
        default=default,
        help="store backend (default: [store] backend; postgres needs DEFINTEL_DATABASE_URL or [store] database_url)",
    )
    p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS if suppress else 0)
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS if suppress else False)


def build_parser() -> Parser:
    parser = Parser(prog="defintel", description="Document intelligence for Türkiye–Azerbaijan defence news.")
    parser.add_argument("--version", action="version", version=f"defintel {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _global_options(p, suppress=True)
        return p

    p = command(
        "ingest", "crawl + extract + index SOURCEs (URLs, HTML files, folders) or the configured sources"
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE")
    p.add_argument("--sources", dest="sources_file", help="sources TOML file (default corpus/sources.toml)")
    p.add_argument("--allow-private-hosts", action="store_true", help="allow loopback/private addresses")
    p.add_argument("--format", choices=("json", "text"), default="text")

    p = command("extract", "run one document (file, URL or - for stdin) through the pipeline; writes nothing")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--allow-private-hosts", action="store_true")
    p.add_argument("--format", choices=("json",), default="json")

    p = command("search", "ranked documents for a query (filters apply before ranking)")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--lang", help="comma-separated languages, e.g. tr,az")
    p.add_argument("--entity", help="only documents mentioning this entity (any alias, any language)")
    p.add_argument("--type", dest="agreement_type", help="only documents with an agreement of this type")
    p.add_argument("--since", help="published on or after YYYY-MM-DD")
    p.add_argument("--until", help="published on or before YYYY-MM-DD")
    p.add_argument(
        "--collapse-stories",
        action="store_true",
        help="one row per story (the best-ranked report), its other reports in story_reports",
    )
    p.add_argument("--format", choices=("json", "table"), default="table")

    p = command("documents", "every stored document with its metadata")
    p.add_argument("--format", choices=("json", "table"), default="table")

    p = command(
        "entities",
        "canonical entities with mention and document counts; `entities merge KEEP OTHER` makes OTHER's "
        "mentions KEEP's, `entities split ID NAME` gives ID's mentions written NAME an entity of their own "
        "(both kept across re-ingests)",
    )
    p.add_argument("action", nargs="?", choices=("merge", "split"), help="a linking decision")
    p.add_argument("operands", nargs="*", metavar="ID|NAME", help="merge: KEEP_ID OTHER_ID; split: ID NAME")
    p.add_argument("--reason", default="", help="why (stored with the decision)")
    p.add_argument("--format", choices=("json", "table"), default="table")

    p = command("deals", "agreements consolidated across reports: one row per deal, every report as a source")
    p.add_argument("--entity", help="only deals with this party (id, name or alias, any language)")
    p.add_argument("--type", dest="agreement_type", help="only deals of this agreement type")
    p.add_argument("--since", help="signed (else first reported) on or after YYYY-MM-DD")
    p.add_argument("--until", help="signed (else first reported) on or before YYYY-MM-DD")
    p.add_argument("--format", choices=("json", "table"), default="table")

    p = command("export-graph", "export the entity graph")
    p.add_argument("--format", choices=("graphml", "gexf", "cytoscape", "ftm", "csv"), required=True)
    p.add_argument(
        "--output", required=True, help="output file (for csv: a folder for nodes.csv and edges.csv)"
    )
    p.add_argument("--since", help="only documents published on or after YYYY-MM-DD")
    p.add_argument("--until", help="only documents published on or before YYYY-MM-DD")
    p.add_argument("--types", help="comma-separated entity types to keep: ORG,PERSON,GPE (default all)")
    p.add_argument(
        "--min-weight", type=int, default=1, help="drop co-occurrence edges seen in fewer documents"
    )
    p.add_argument("--ego", metavar="ENTITY", help="only entities within --depth hops of ENTITY (id or name)")
    p.add_argument("--depth", type=int, default=1, help="hops around --ego (default 1)")
    p.add_argument(
        "--include-duplicates", action="store_true", help="count republished near-duplicate documents too"
    )

    p = command("migrate", "copy the data dir's embedded store into PostgreSQL (idempotent; prints counts)")
    p.add_argument("--to", required=True, metavar="DSN", help="postgresql://user:password@host:port/database")
    p.add_argument("--format", choices=("json", "table"), default="table")

    p = command("watch", "watchlists: what is new for the entities, queries and agreement types you follow")
    wsub = p.add_subparsers(dest="watch_command", metavar="ACTION", parser_class=Parser, required=True)

    def action(name: str, help_: str) -> argparse.ArgumentParser:
        w = wsub.add_parser(name, help=help_, description=help_)
        _global_options(w, suppress=True)
        return w

    w = action("add", "create a watchlist, or add entities, queries and types to one")
    w.add_argument("name", metavar="NAME")
    w.add_argument(
        "--entity", action="append", default=[], help="any name or alias, any language (repeatable)"
    )
    w.add_argument("--query", action="append", default=[], help="a search query, matched in every language")
    w.add_argument("--type", dest="types", action="append", default=[], help="an agreement type (repeatable)")
    w.add_argument("--format", choices=("json", "text"), default="text")
    w = action("list", "every watchlist")
    w.add_argument("--format", choices=("json", "text"), default="text")
    w = action("remove", "delete a watchlist")
    w.add_argument("name", metavar="NAME")
    w = action("digest", "what is new for a watchlist since its last digest (or --since)")
    w.add_argument("name", metavar="NAME")
    w.add_argument("--since", help="look back from this date (YYYY-MM-DD) or ISO time; keeps the list's mark")
    w.add_argument("--format", choices=("json", "md", "atom"), default="md")

    p = command("app", "start the Streamlit front end")
    p.add_argument("--port", type=int, default=8501)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = (
        logging.WARNING
        if quiet
        else logging.DEBUG
        if verbose > 1
        else logging.INFO
        if verbose
        else logging.WARNING
    )
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)  # some libraries force DEBUG on their own loggers at import (bm25s)
    if level > logging.DEBUG:
        for noisy in (
            "httpx",
            "httpcore",
            "urllib3",
            "trafilatura",
            "htmldate",
            "sentence_transformers",
            "faiss",
            "bm25s",
        ):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {"data_dir": args.data_dir}
    if getattr(args, "sources_file", None):
        overrides["sources"] = args.sources_file
    if getattr(args, "store", None):
        overrides["store.backend"] = args.store
    return load_settings(args.config, overrides=overrides)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=1) + "\n")


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    widths = {c: min(60, max([len(c), *(len(str(r.get(c, ""))) for r in rows)])) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print(
            "  ".join(
                str(r.get(c, "") if r.get(c) is not None else "")[: widths[c]].ljust(widths[c])
                for c in columns
            )
        )


def _store(settings: Settings) -> Any:
    from pipeline.backend import open_store

    return open_store(settings)


# -- commands -----------------------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.jobs import ingest
    from pipeline.process_state import ingest_process

    # The run also logs to <data-dir>/logs/ingest.log (rotated), opened once the sources are valid;
    # SIGTERM stops it like Ctrl-C.
    report = ingest(
        settings,
        list(args.sources),
        allow_private=args.allow_private_hosts,
        around_run=lambda: ingest_process(settings.data_path),
    )
    out = report.as_json()
    if args.format == "json":
        _print_json(out)
    else:
        print(" ".join(f"{k}: {v}" for k, v in out.items() if k != "failures"))
        for f in report.failures:
            print(f"failed: {f['source']}: {f['error']}", file=sys.stderr)
    return EXIT_PARTIAL if report.failed else EXIT_OK


def _read_source(source: str, allow_private: bool, settings: Settings) -> Any:
    from pipeline.crawl.fetch import Fetcher, is_url
    from pipeline.crawl.policy import article_pages
    from pipeline.errors import DocumentError
    from pipeline.extract import decode_html
    from pipeline.records import Page

    try:
        if source == "-":
            return Page(url="stdin:", html=decode_html(sys.stdin.buffer.read()), source="-")
        if is_url(source):
            fetcher = Fetcher(settings.crawl, allow_private or settings.crawl.allow_private_hosts)
            try:
                return next(iter(article_pages(fetcher, source)))
            finally:
                fetcher.close()
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"no such file: {source}")
        return Page(url=path.resolve().as_uri(), html=decode_html(path.read_bytes()), source=source)
    except DocumentError as exc:
        raise UsageError(f"{source}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}") from None


def cmd_extract(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.errors import DocumentError
    from pipeline.extract import extract
    from pipeline.nlp.analyze import Analyzer

    page = _read_source(args.source, args.allow_private_hosts, settings)
    try:
        doc = extract(page)
    except DocumentError as exc:
        raise UsageError(f"{args.source}: {exc}") from None
    analysis = Analyzer(settings.nlp).analyze([doc])[0]
    _print_json(analysis.as_json())
    return EXIT_OK


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.index.search import Filters

    _check_dates(args)
    languages = tuple(x.strip() for x in (args.lang or "").split(",") if x.strip())
    filters = Filters(languages, args.since, args.until, args.entity, args.agreement_type)
    store = _store(settings)
    from pipeline.backend import open_searcher

    searcher = open_searcher(settings, store, one_shot=True)
    from pipeline.index.search import collapse_stories, with_story_ids

    if args.collapse_stories:
        # A story takes one row: ask for more documents so that k rows can still be filled.
        hits = collapse_stories(searcher.search(args.query, k=args.k * 3, filters=filters), store, args.k)
    else:
        hits = with_story_ids(searcher.search(args.query, k=args.k, filters=filters), store)
    rows = [h.as_json() for h in hits]
    if args.format == "json":
        _print_json(rows)
    else:
        _table(rows, ["score", "language", "published", "title", "url"])
    return EXIT_OK


def cmd_documents(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    rows = store.documents()
    if args.format == "json":
        _print_json(rows)
    else:
        _table(rows, ["language", "published", "title", "author", "duplicate_of"])
        run = store.last_run()
        if run is not None and run.get("report"):
            report = run["report"]
            counts = ", ".join(
                f"{k} {report[k]}"
                for k in ("new", "updated", "unchanged", "duplicates", "failed")
                if k in report
            )
            print(
                f"last run {run['run_id']} ({run.get('status') or 'finished'} {run.get('finished') or ''}): {counts}",
                file=sys.stderr,
            )
    return EXIT_OK


def cmd_entities(args: argparse.Namespace, settings: Settings) -> int:
    if args.action:
        return _link_decision(args, settings)
    if args.operands:
        raise UsageError(f"entities: unexpected argument {args.operands[0]!r} (merge or split?)")
    rows = _store(settings).entities()
    if args.format == "json":
        _print_json(rows)
    else:
        _table(rows, ["id", "label", "canonical", "mentions", "documents"])
    return EXIT_OK


def _link_decision(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.clock import now
    from pipeline.nlp.decisions import LinkDecision

    if len(args.operands) != 2:
        usage = "merge KEEP_ID OTHER_ID" if args.action == "merge" else "split ID NAME"
        raise UsageError(f"entities {args.action}: expected {usage}")
    first, second = (str(x).strip() for x in args.operands)
    from pipeline.backend import open_store

    store = open_store(settings, readonly=False)
    if store.entity_row(first) is None:
        raise UsageError(f"entities {args.action}: no entity with id {first!r} (see `defintel entities`)")
    if args.action == "merge":
        if store.entity_row(second) is None:
            raise UsageError(f"entities merge: no entity with id {second!r} (see `defintel entities`)")
        if first == second:
            raise UsageError("entities merge: the two ids are the same")
        decision = LinkDecision("merge", second, first, args.reason, now())
    else:
        if not second:
            raise UsageError("entities split: NAME is empty")
        decision = LinkDecision("split", first, second, args.reason, now())
    from pipeline.consolidate import consolidate_lock, reconsolidate_entities
    from pipeline.index.embedders import make_embedder

    ix = settings.index
    embedder = make_embedder(
        ix.embedder, ix.e5_model_dir, ix.e5_runtime, threads=ix.threads
    )  # loads only if needed
    with store.atomic():
        result = store.decide_link(decision)
        # Their agreements' parties changed: the deals (and stories) of those documents follow.
        reconsolidate_entities(store, embedder, [first, second, result], lock=consolidate_lock(store))
    row: dict[str, Any] = dict(
        store.entity_row(result) or {"id": result, "canonical": second, "mentions": 0, "documents": 0}
    )
    if args.format == "json":
        _print_json(row)
    else:
        _table([row], ["id", "label", "canonical", "mentions", "documents"])
    return EXIT_OK


def _check_dates(args: argparse.Namespace) -> None:
    from datetime import date

    for name in ("since", "until"):
        value = getattr(args, name)
        if value:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise UsageError(f"--{name} must be a date YYYY-MM-DD, got {value!r}") from None


def cmd_deals(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.deals import deal_table_row, entity_ids_named
    from pipeline.records import AGREEMENT_TYPES

    _check_dates(args)
    if args.agreement_type and args.agreement_type not in AGREEMENT_TYPES:
        raise UsageError(
            f"unknown agreement type {args.agreement_type!r} (choose from {', '.join(AGREEMENT_TYPES)})"
        )
    store = _store(settings)
    entity_ids = None if not args.entity else entity_ids_named(store, args.entity, settings.nlp.models_dir)
    rows = store.deals(
        entity_ids=entity_ids, agreement_type=args.agreement_type, since=args.since, until=args.until
    )
    if args.format == "json":
        _print_json([d.as_json() for d in rows])
    else:
        _table(
            [deal_table_row(d) for d in rows],
            ["signed", "type", "parties", "value", "reports", "languages", "conflicts"],
        )
    return EXIT_OK


def cmd_export_graph(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.graph import GraphFilter, build_graph, export, parse_types, summary

    if args.depth != 1 and not args.ego:
        raise UsageError("--depth needs --ego")
    flt = GraphFilter(
        since=args.since,
        until=args.until,
        types=parse_types(args.types),
        min_weight=args.min_weight,
        ego=args.ego,
        depth=args.depth,
        include_duplicates=args.include_duplicates,
    )
    g = build_graph(_store(settings), flt, models_dir=settings.nlp.models_dir)
    path = export(g, args.format, Path(args.output))
    s = summary(g)
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(s["edge_kinds"].items()))
    print(f"wrote {path}: {s['nodes']} nodes, {s['edges']} edges ({kinds})", file=sys.stderr)
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.backend.pg.migrate import migrate_to_postgres
    from pipeline.config import DSN_SCHEMES, redact_dsn

    if not args.to.startswith(DSN_SCHEMES):
        raise UsageError(f"--to must be a postgresql:// URL, got {redact_dsn(args.to)!r}")
    report = migrate_to_postgres(settings, args.to)
    out = report.as_json()
    if args.format == "json":
        _print_json(out)
    else:
        rows = [{"table": t, **counts} for t, counts in out["tables"].items()]
        _table(rows, ["table", "source", "target", "missing"])
    print(
        f"migrated {settings.data_dir} to {redact_dsn(args.to)}: "
        + ("every row is in the database" if report.ok else "some rows are missing (see the table)"),
        file=sys.stderr,
    )
    return EXIT_OK if report.ok else EXIT_INTERNAL


def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline import watch
    from pipeline.backend import open_store

    store = open_store(settings, readonly=False)
    try:
        action = args.watch_command
        if action == "add":
            wl = watch.save_watchlist(store, settings, args.name, args.entity, args.query, args.types)
            if args.format == "json":
                _print_json(wl.as_json())
            else:
                print(_watch_line(wl))
        elif action == "list":
            lists = watch.list_watchlists(store)
            if args.format == "json":
                _print_json([wl.as_json() for wl in lists])
            else:
                for wl in lists:
                    print(_watch_line(wl))
        elif action == "remove":
            watch.remove_watchlist(store, args.name)
            print(f"removed watchlist {args.name}", file=sys.stderr)
        else:
            from pipeline.watch_render import atom, markdown

            digest = watch.take_digest(settings, store, args.name, since=args.since)
            if args.format == "json":
                _print_json(digest.as_json())
            else:
                sys.stdout.write(markdown(digest) if args.format == "md" else atom(digest))
    finally:
        store.close()
    return EXIT_OK


def _watch_line(wl: Any) -> str:
    parts = [f"entity {e.canonical}" for e in wl.entities]
    parts += [f"query {q!r}" for q in wl.queries] + [f"type {t}" for t in wl.types]
    return f"{wl.name}: " + "; ".join(parts) + f" (last digest {wl.last_digest or 'never'})"


# How `defintel app` starts Streamlit (benchmarks/app_startup_bench.py starts its baseline the same way).
STREAMLIT_FLAGS = (
    "--server.headless",
    "true",
    "--server.fileWatcherType",
    "none",
    "--browser.gatherUsageStats",
    "false",
)


def cmd_app(args: argparse.Namespace, settings: Settings) -> int:
    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.exists():
        raise UsageError(f"app.py not found next to the package ({app})")
    env = {**os.environ, "DEFINTEL_DATA_DIR": settings.data_dir}
    if args.config:
        env["DEFINTEL_CONFIG"] = args.config
    if getattr(args, "store", None):
        env["DEFINTEL_STORE__BACKEND"] = args.store
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        *STREAMLIT_FLAGS,
        "--server.port",
        str(args.port),
    ]
    os.execvpe(cmd[0], cmd, env)


COMMANDS = {
    "ingest": cmd_ingest,
    "extract": cmd_extract,
    "search": cmd_search,
    "documents": cmd_documents,
    "entities": cmd_entities,
    "deals": cmd_deals,
    "export-graph": cmd_export_graph,
    "migrate": cmd_migrate,
    "watch": cmd_watch,
    "app": cmd_app,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    _setup_logging(args.verbose, args.quiet)
    from pipeline.process_state import offline_models

    offline_models()
    try:
        settings = _settings(args)
        return COMMANDS[args.command](args, settings)
    except DefintelError as exc:
        print(f"defintel: error: {exc}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, UsageError) else EXIT_INTERNAL
    except KeyboardInterrupt:
        print("defintel: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        log.debug("internal failure", exc_info=True)
        print(
            f"defintel: internal error: {type(exc).__name__}: {exc} (run with -vv for details)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
