"""One Settings object, built once: shipped TOML defaults < --config file < env < flags.

Every stage receives the Settings (or the section it needs) and only reads it.
Environment variables are named ``DEFINTEL_<KEY>`` for top-level keys and
``DEFINTEL_<SECTION>__<KEY>`` for keys of a section (``DEFINTEL_INDEX__EMBEDDER=hashing``);
``DEFINTEL_DATA_DIR`` is the data dir.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError

ENV_PREFIX = "DEFINTEL_"


@dataclass(frozen=True, slots=True)
class CrawlSettings:
    user_agent: str = "defintel/0.1"
    timeout_s: float = 20.0
    delay_s: float = 1.0
    max_bytes: int = 5_000_000
    retries: int = 2
    allow_private_hosts: bool = False
    retry_backoff_s: float = 2.0
    retry_backoff_max_s: float = 60.0
    max_retry_after_s: float = 120.0
    max_attempts: int = 5
    defer_base_s: float = 3600.0
    defer_max_s: float = 604800.0
    robots_recheck_s: float = 86400.0
    max_hosts: int = 8
    max_redirects: int = 5
    max_links_per_page: int = 500
    revisit_after_s: float = 86400.0  # known articles asked again (conditional GET) after this; 0 = every run
    revisit_until_days: float = 30.0  # ... weekly from day 7, never after this age (0 = never revisit)


@dataclass(frozen=True, slots=True)
class NlpSettings:
    models_dir: str = "models"
    batch_size: int = 16


@dataclass(frozen=True, slots=True)
class IndexSettings:
    embedder: str = "e5-small"
    e5_model_dir: str = "models/e5-small"
    e5_runtime: str = "auto"
    chunk_words: int = 160
    rrf_k: int = 60
    candidates: int = 100
    threads: int = 0  # embedder threads; 0 = every core


@dataclass(frozen=True, slots=True)
class IngestSettings:
    workers: int = -1  # extraction/NLP processes: -1 = cores - 1 (1..4), 0 = none (all in-process)
    lease_s: float = 300.0  # PostgreSQL: a worker's leases on URLs, hosts and its run (renewed every third)
    claim_batch: int = 16  # PostgreSQL: URLs or files a worker leases from the shared frontier at a time


@dataclass(frozen=True, slots=True)
class AppSettings:
    page_size: int = 10
    usd_rates: dict[str, float] = field(default_factory=dict)  # USD per unit, e.g. {"EUR": 1.08}


@dataclass(frozen=True, slots=True)
class StoreSettings:
    backend: str = "auto"  # "sqlite" (the data dir), "postgres", or "auto": postgres when a URL is set
    database_url: str = ""  # postgresql://… (env DEFINTEL_DATABASE_URL wins over the config file)
    pool_size: int = 4
    hnsw_ef_search: int = 100


@dataclass(frozen=True, slots=True)
class WatchSettings:
    write_after_ingest: bool = True  # every watchlist's digest into <data_dir>/digests/ after an ingest
    query_min_z: float = 4.0  # a watched query matches a document semantically from this dense z-score
    feed_days: int = 30  # the Atom feed an ingest writes holds the matches of this many days


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: str = "data"
    sources: str = "corpus/sources.toml"
    crawl: CrawlSettings = field(default_factory=CrawlSettings)
    nlp: NlpSettings = field(default_factory=NlpSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    app: AppSettings = field(default_factory=AppSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def models_path(self) -> Path:
        return Path(self.nlp.models_dir)


_SECTIONS: dict[str, type[Any]] = {
    "crawl": CrawlSettings,
    "nlp": NlpSettings,
    "index": IndexSettings,
    "ingest": IngestSettings,
    "app": AppSettings,
    "store": StoreSettings,
    "watch": WatchSettings,
}
EMBEDDERS = ("e5-small", "hashing")
STORE_BACKENDS = ("auto", "sqlite", "postgres")
DATABASE_URL_ENV = "DEFINTEL_DATABASE_URL"
DSN_SCHEMES = ("postgresql://", "postgres://")


def _defaults() -> dict[str, Any]:
    text = resources.files("pipeline").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"invalid TOML in config file {path}: {exc}") from None


def _merge(base: dict[str, Any], extra: Mapping[str, Any], where: str) -> None:
    for key, value in extra.items():
        if key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise UsageError(f"{where}: [{key}] must be a table")
            base.setdefault(key, {}).update(value)
        else:
            base[key] = value


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key in ("config", "database_url"):  # names of files/services, not settings
            continue
        if "__" in key:
            section, sub = key.split("__", 1)
            out.setdefault(section, {})[sub] = value
        else:
            out[key] = value
    return out


def _coerce(value: Any, target: Any, name: str) -> Any:
    """Coerce env strings to the type of the default; reject wrong types from files."""
    if isinstance(target, dict):
        return rate_table(value, name)
    if isinstance(target, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
    elif isinstance(target, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            pass
    elif isinstance(target, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    elif isinstance(target, str) and isinstance(value, str | Path):
        return str(value)
    raise UsageError(f"setting {name}: expected {type(target).__name__}, got {value!r}")


def rate_table(value: Any, name: str) -> dict[str, float]:
    """A table of 3-letter currency codes to positive numbers (TOML table, or "EUR=1.08,TRY=0.029" in env)."""
    if isinstance(value, str):
        try:
            value = dict(part.split("=", 1) for part in value.split(",") if part.strip())
        except ValueError:
            raise UsageError(f"setting {name}: expected CODE=rate,CODE=rate, got {value!r}") from None
    if not isinstance(value, Mapping):
        raise UsageError(f"setting {name}: expected a table of CURRENCY = rate")
    out: dict[str, float] = {}
    for code, rate in value.items():
        key = str(code).strip().upper()
        try:
            number = float(rate)
        except (TypeError, ValueError):
            number = -1.0
        if len(key) != 3 or not key.isalpha() or isinstance(rate, bool) or number <= 0:
            raise UsageError(
                f"setting {name}: {code!r} = {rate!r} is not a currency code with a positive rate"
            )
        out[key] = number
    return out


def _build(cls: type[Any], values: Mapping[str, Any], prefix: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UsageError(
            f"unknown setting{'s' if len(unknown) > 1 else ''}: {', '.join(prefix + u for u in unknown)}"
        )
    default = cls()
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name in _SECTIONS:
            kwargs[name] = _build(_SECTIONS[name], value, f"{name}.")
        else:
            kwargs[name] = _coerce(value, getattr(default, name), prefix + name)
    return cls(**kwargs)


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the Settings: defaults, then the config file, then env, then flag overrides.

    ``overrides`` uses dotted keys for sections (``{"index.embedder": "hashing"}``).
    """
    values = _defaults()
    if config_file is not None:
        _merge(values, _read_toml(Path(config_file)), str(config_file))
    env = os.environ if env is None else env
    _merge(values, _from_env(env), "environment")
    if env.get(DATABASE_URL_ENV):
        values.setdefault("store", {})["database_url"] = env[DATABASE_URL_ENV]
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if "." in key:
            section, sub = key.split(".", 1)
            values.setdefault(section, {})[sub] = value
        else:
            values[key] = value
    settings: Settings = _build(Settings, values, "")
    if settings.index.embedder not in EMBEDDERS:
        raise UsageError(f"unknown embedder {settings.index.embedder!r} (choose from {', '.join(EMBEDDERS)})")
    _check_store(settings.store)
    return settings


def _check_store(store: StoreSettings) -> None:
    if store.backend not in STORE_BACKENDS:
        raise UsageError(f"unknown store backend {store.backend!r} (choose from {', '.join(STORE_BACKENDS)})")
    if store.database_url and not store.database_url.startswith(DSN_SCHEMES):
        raise UsageError(
            f"the database URL must start with postgresql:// (got {redact_dsn(store.database_url)!r})"
        )
    if store.backend == "postgres" and not store.database_url:
        raise UsageError(
            f"the postgres store needs a database URL: set {DATABASE_URL_ENV} or [store] database_url"
        )
    if store.pool_size < 1 or store.hnsw_ef_search < 1:
        raise UsageError("store.pool_size and store.hnsw_ef_search must be at least 1")


def store_backend(settings: Settings) -> str:
    """The backend the settings pick: ``sqlite`` or ``postgres``."""
    if settings.store.backend == "auto":
        return "postgres" if settings.store.database_url else "sqlite"
    return settings.store.backend


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (for messages and logs)."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", dsn)
