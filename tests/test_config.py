import dataclasses
import tomllib
from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from pipeline.errors import UsageError


def test_defaults_are_shipped() -> None:
    s = load_settings(env={})
    assert s.data_dir == "data"
    assert s.index.embedder == "e5-small"
    assert s.crawl.delay_s >= 1.0


def test_dataclass_defaults_are_the_shipped_toml() -> None:
    """defaults.toml is the one source of default values: every field has its key there (but the
    optional [app.usd_rates] table), no key is left without a field, and the values agree."""
    shipped = tomllib.loads((Path(__file__).parent.parent / "pipeline" / "defaults.toml").read_text())
    built = dataclasses.asdict(Settings())
    assert built["app"].pop("usd_rates") == {}
    assert built == shipped
    assert Settings() == load_settings(env={})
    assert Settings().crawl.user_agent.startswith("defintel/0.1 (+")


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('data_dir = "from-file"\n[index]\nembedder = "hashing"\nchunk_words = 99\n')
    s = load_settings(cfg, env={"DEFINTEL_DATA_DIR": "from-env", "DEFINTEL_CRAWL__DELAY_S": "2.5"})
    assert (s.data_dir, s.index.embedder, s.index.chunk_words, s.crawl.delay_s) == (
        "from-env",
        "hashing",
        99,
        2.5,
    )
    s = load_settings(cfg, env={"DEFINTEL_DATA_DIR": "from-env"}, overrides={"data_dir": "from-flag"})
    assert s.data_dir == "from-flag"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nonsense = 1\n", "unknown setting: nonsense"),
        ("[index]\nembedder = 'word2vec'\n", "unknown embedder"),
        ("[crawl]\ntimeout_s = 'soon'\n", "crawl.timeout_s"),
        ("data_dir = \n", "invalid TOML"),
    ],
)
def test_bad_config_is_a_usage_error(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_settings(cfg, env={})


def test_missing_config_file() -> None:
    with pytest.raises(UsageError, match="config file not found"):
        load_settings("/nonexistent/defintel.toml", env={})


def test_usd_rate_table_from_file_and_env(tmp_path: Path) -> None:
    cfg = tmp_path / "rates.toml"
    cfg.write_text("[app.usd_rates]\neur = 1.08\nAZN = 0.588\n")
    assert load_settings(cfg, env={}).app.usd_rates == {"EUR": 1.08, "AZN": 0.588}
    assert load_settings(env={"DEFINTEL_APP__USD_RATES": "TRY=0.029,EUR=1.1"}).app.usd_rates == {
        "TRY": 0.029,
        "EUR": 1.1,
    }
    cfg.write_text("[app.usd_rates]\nEURO = -1\n")
    with pytest.raises(UsageError, match="usd_rates"):
        load_settings(cfg, env={})
