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


def _defaults() -> dict[str, Any]:
    """The shipped defaults (``pipeline/defaults.toml``, where every key is documented)."""
    text = resources.files("pipeline").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


_SHIPPED = _defaults()


def _shipped(section: str, key: str) -> Any:
    """A field's default, read from ``defaults.toml``: the one place a default value is written."""
    return (_SHIPPED[section] if section else _SHIPPED)[key]


# The sections' fields: their types here, their default values (and what each means) in defaults.toml.
@dataclass(frozen=True, slots=True)
class CrawlSettings:
    user_agent: str = _shipped("crawl", "user_agent")
    timeout_s: float = _shipped("crawl", "timeout_s")
    delay_s: float = _shipped("crawl", "delay_s")
    max_bytes: int = _shipped("crawl", "max_bytes")
    retries: int = _shipped("crawl", "retries")
    allow_private_hosts: bool = _shipped("crawl", "allow_private_hosts")
    retry_backoff_s: float = _shipped("crawl", "retry_backoff_s")
    retry_backoff_max_s: float = _shipped("crawl", "retry_backoff_max_s")
    max_retry_after_s: float = _shipped("crawl", "max_retry_after_s")
    max_attempts: int = _shipped("crawl", "max_attempts")
    defer_base_s: float = _shipped("crawl", "defer_base_s")
    defer_max_s: float = _shipped("crawl", "defer_max_s")
    robots_recheck_s: float = _shipped("crawl", "robots_recheck_s")
    max_hosts: int = _shipped("crawl", "max_hosts")
    max_redirects: int = _shipped("crawl", "max_redirects")
    max_links_per_page: int = _shipped("crawl", "max_links_per_page")
    revisit_after_s: float = _shipped("crawl", "revisit_after_s")
    revisit_until_days: float = _shipped("crawl", "revisit_until_days")


@dataclass(frozen=True, slots=True)
class NlpSettings:
    models_dir: str = _shipped("nlp", "models_dir")
    batch_size: int = _shipped("nlp", "batch_size")


@dataclass(frozen=True, slots=True)
class IndexSettings:
    embedder: str = _shipped("index", "embedder")
    e5_model_dir: str = _shipped("index", "e5_model_dir")
    e5_runtime: str = _shipped("index", "e5_runtime")
    chunk_words: int = _shipped("index", "chunk_words")
    rrf_k: int = _shipped("index", "rrf_k")
    candidates: int = _shipped("index", "candidates")
    threads: int = _shipped("index", "threads")


@dataclass(frozen=True, slots=True)
class IngestSettings:
    workers: int = _shipped("ingest", "workers")
    lease_s: float = _shipped("ingest", "lease_s")
    claim_batch: int = _shipped("ingest", "claim_batch")


@dataclass(frozen=True, slots=True)
class AppSettings:
    page_size: int = _shipped("app", "page_size")
    usd_rates: dict[str, float] = field(default_factory=dict)  # USD per unit, e.g. {"EUR": 1.08}


@dataclass(frozen=True, slots=True)
class StoreSettings:
    backend: str = _shipped("store", "backend")
    database_url: str = _shipped("store", "database_url")
    pool_size: int = _shipped("store", "pool_size")
    hnsw_ef_search: int = _shipped("store", "hnsw_ef_search")


@dataclass(frozen=True, slots=True)
class WatchSettings:
    write_after_ingest: bool = _shipped("watch", "write_after_ingest")
    query_min_z: float = _shipped("watch", "query_min_z")
    feed_days: int = _shipped("watch", "feed_days")


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: str = _shipped("", "data_dir")
    sources: str = _shipped("", "sources")
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
