"""The configured sources (``corpus/sources.toml``) as records, and SOURCE arguments as seeds."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.crawl.urls import UrlFilter, is_site_root, normalize
from pipeline.errors import UsageError

# How a seed is read: 'seed' = by its content (feed, sitemap or article page; a site root's links
# are followed), 'root' = a hub page whose same-site links are the articles.
SEED, ROOT = "seed", "root"


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    language: str | None = None
    crawl_delay_s: float = 0.0
    url_filter: UrlFilter = field(default_factory=UrlFilter)


@dataclass(frozen=True, slots=True)
class Seed:
    url: str  # normalised; also the frontier's ``source`` of everything found from it
    kind: str
    source: Source


def _strings(src: dict[str, Any], key: str, where: str) -> list[str]:
    value = src.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: {key} must be a list of strings")
    return list(value)


def load_sources(path: Path) -> list[Seed]:
    """Seeds of the enabled ``[[source]]`` tables. Keys: name, language, enabled, feeds, sitemaps,
    urls (pages or site roots), roots (hub pages), crawl_delay_s, include / exclude (regexes a
    hub-page link must / must not match)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no SOURCE given and no sources file at {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read sources file {path}: {exc}") from None
    seeds: list[Seed] = []
    tables = data.get("source", [])
    if not isinstance(tables, list):
        raise UsageError(f"{path}: [[source]] must be an array of tables")
    for i, src in enumerate(tables, 1):
        where = f"{path}: source #{i}"
        if not isinstance(src, dict) or not src.get("enabled", False):
            continue
        delay = src.get("crawl_delay_s", 0.0)
        if not isinstance(delay, int | float) or delay < 0:
            raise UsageError(f"{where}: crawl_delay_s must be a number ≥ 0")
        source = Source(
            name=str(src.get("name", f"source {i}")),
            language=src.get("language"),
            crawl_delay_s=float(delay),
            url_filter=UrlFilter.build(
                _strings(src, "include", where), _strings(src, "exclude", where), where
            ),
        )
        for key in ("feeds", "sitemaps", "urls", "roots"):
            for raw in _strings(src, key, where):
                seeds.append(_seed(raw, ROOT if key == "roots" else SEED, source, where))
    return seeds


def argument_seed(url: str) -> Seed:
    return _seed(url, SEED, Source(name=url), "SOURCE")


def _seed(raw: str, kind: str, source: Source, where: str) -> Seed:
    url = normalize(raw)
    if url is None:
        raise UsageError(f"{where}: not an http(s) URL: {raw}")
    if kind == SEED and is_site_root(url):
        kind = ROOT
    return Seed(url, kind, source)
