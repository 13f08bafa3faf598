"""The USD rate table of the app settings.

The table lives in the same TOML as the other settings::

    [app.usd_rates]      # US dollars for one unit of the currency
    EUR = 1.08
    TRY = 0.029
    AZN = 0.588

``pipeline.config`` validates it (``AppSettings.usd_rates``); this module turns it into conversions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Settings, load_settings, rate_table


@dataclass(frozen=True, slots=True)
class UsdRates:
    """USD per unit of each currency; USD itself is always 1."""

    rates: Mapping[str, float] = field(default_factory=dict)

    def to_usd(self, amount: float | None, currency: str | None) -> float | None:
        """``amount`` in USD, or None when there is no amount or no rate for its currency."""
        if amount is None or not currency:
            return None
        code = currency.upper()
        rate = 1.0 if code == "USD" else self.rates.get(code)
        return None if rate is None else round(float(amount) * rate, 2)

    def __bool__(self) -> bool:
        return bool(self.rates)


def parse_rates(table: Any, where: str = "app.usd_rates") -> UsdRates:
    """Validate a rate table (3-letter currency codes → positive numbers) the way the config does."""
    return UsdRates(rate_table(table, where))


def load_app_settings(
    config_file: str | Path | None, env: Mapping[str, str] | None = None
) -> tuple[Settings, UsdRates]:
    """Settings and the USD rate table (``[app.usd_rates]``) from the app's config file."""
    settings = load_settings(config_file, env=os.environ if env is None else env)
    return settings, UsdRates(dict(settings.app.usd_rates))
