"""Concluded agreements per sentence, with parties, value, date, quantity and local content.

A sentence states an agreement when it names an instrument (trigger lexicon per type), says it
was concluded (signed, set up, awarded…) and carries no negation or modality cue (talks, plans,
"is expected to", a denial). Later sentences about the same instrument fill in fields the first
one lacked. Lexicons are data: ``models/agreements.json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.dates import find_dates
from pipeline.errors import UsageError
from pipeline.nlp.money import find_money, find_percentages, parse_number
from pipeline.nlp.registry import Registry
from pipeline.records import Agreement, Document, Mention, Span
from pipeline.segment import sentences
from pipeline.textnorm import fold

_RELATIVE = {
    0: ("bugün", "bu gün", "today", "this morning"),
    1: ("dün", "dünən", "yesterday"),
}


@dataclass(frozen=True, slots=True)
class Lexicon:
    priority: tuple[str, ...]
    triggers: dict[str, tuple[str, ...]]
    concluded: tuple[str, ...]
    negation: tuple[str, ...]
    quantity: re.Pattern[str]
    local_cues: tuple[str, ...]
    ownership_cues: tuple[str, ...]
    same_day: tuple[str, ...]
    subjects: tuple[tuple[str, tuple[str, ...]], ...]
    pending_cues: tuple[str, ...]
    last_week: tuple[str, ...]
    reference_nouns: tuple[tuple[str, ...], ...]
    separate: tuple[str, ...]
    counters: tuple[str, ...]
    minutes: tuple[str, ...]
    export_cues: tuple[str, ...]
    sale_cues: tuple[str, ...]
    framework: tuple[str, ...]
    reporting: tuple[str, ...]
    source_before: tuple[str, ...]
    source_after: tuple[str, ...]
    venue: tuple[str, ...]
    parent_before: tuple[str, ...]
    parent_after: tuple[str, ...]
    state_nouns: tuple[str, ...]
    demonyms: dict[str, str]
    component: tuple[str, ...]
    product_before: tuple[str, ...]
    ceremony: tuple[str, ...]
    value_cues: tuple[str, ...]
    witness_before: tuple[str, ...]
    witness_after: tuple[str, ...]
    anonymous_buyer: tuple[str, ...]
    generic_sides: tuple[str, ...]
    stipulated: tuple[str, ...]
    naming_before: tuple[str, ...]
    naming_after: tuple[str, ...]
    home_prefixes: tuple[tuple[str, str], ...]
    homes: dict[str, str]


# Counts written as words ("three offshore patrol ships", "altı zırhlı araç"), folded; not "one" ("one of the
# vehicles") nor "on" (Turkish ten, English preposition).
_NUMBER_WORDS = (
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "fifteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "iki",
    "uc",
    "dort",
    "dord",
    "bes",
    "alti",
    "yedi",
    "yeddi",
    "sekiz",
    "sekkiz",
    "dokuz",
    "doqquz",
    "yirmi",
    "otuz",
    "qirx",
    "kirk",
    "elli",
)


_DURATION = re.compile(
    r"(?:il|yil|year|month|ay|gun|day|week|hafta|hefte|saat|hour)(?:s|l[ae]r\w*|l[iı]k\w*|d[ae]\w*)?$"
)


@lru_cache(maxsize=4)
def load_lexicon(models_dir: str) -> Lexicon:
    path = Path(models_dir) / "agreements.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read agreement patterns {path}: {exc}") from None
    units = sorted({fold(u) for u in data["quantity_units"]}, key=len, reverse=True)
    number = (
        r"(?:\d[\d.,]*(?:\s+(?:milyon|million|milyar|billion|bin|thousand|min|mln))?|"
        rf"(?:{'|'.join(_NUMBER_WORDS)})(?![\w]))"
    )
    quantity = re.compile(
        # Greedy: the furthest unit word within four words ("120 milyon adet fişek", "36 adet zırhlı araç").
        rf"(?<![\w.,]){number}\s+(?:[\w.,()-]+\s+){{0,4}}(?:{'|'.join(map(re.escape, units))})\w*"
    )
    return Lexicon(
        priority=tuple(data["priority"]),
        triggers={k: tuple(fold(t) for t in v) for k, v in data["triggers"].items()},
        concluded=tuple(fold(c) for c in data["concluded"]),
        negation=tuple(fold(n) for n in data["negation"]),
        quantity=quantity,
        local_cues=tuple(fold(c) for c in data["local_content_cues"]),
        ownership_cues=tuple(fold(c) for c in data["ownership_cues"]),
        same_day=tuple(fold(c) for c in data["same_day"]),
        subjects=tuple((phrase, tuple(fold(c) for c in cues)) for phrase, cues in data["subjects"].items()),
        pending_cues=tuple(fold(c) for c in data["pending_cues"]),
        last_week=tuple(fold(c) for c in data["last_week"]),
        reference_nouns=tuple(tuple(fold(c) for c in v) for v in data["reference_nouns"].values()),
        separate=tuple(fold(c) for c in data["separate_cues"]),
        counters=tuple(fold(c) for c in data["counter_words"]),
        minutes=_folded(data, "minutes_cues"),
        export_cues=_folded(data, "export_cues"),
        sale_cues=_folded(data, "sale_cues"),
        framework=_folded(data, "framework_cues"),
        reporting=_folded(data, "reporting_cues"),
        source_before=_folded(data, "source_before"),
        source_after=_folded(data, "source_after"),
        venue=_folded(data, "venue_nouns"),
        parent_before=_folded(data, "parent_before"),
        parent_after=_folded(data, "parent_after"),
        state_nouns=_folded(data, "state_nouns"),
        demonyms={fold(k): v for k, v in data.get("demonyms", {}).items()},
        component=_folded(data, "component_cues"),
        product_before=_folded(data, "product_before"),
        ceremony=_folded(data, "ceremony_cues"),
        value_cues=_folded(data, "value_cues"),
        witness_before=_folded(data, "witness_before"),
        witness_after=_folded(data, "witness_after"),
        anonymous_buyer=_folded(data, "anonymous_buyer"),
        generic_sides=_folded(data, "generic_sides"),
        stipulated=_folded(data, "stipulated_cues"),
        naming_before=_folded(data, "naming_before"),
        naming_after=_folded(data, "naming_after"),
        home_prefixes=tuple(data.get("home_prefixes", {}).items()),
        homes={org: country for country, orgs in data.get("home_countries", {}).items() for org in orgs},
    )


def _folded(data: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(fold(c) for c in data.get(key, ()))


@lru_cache(maxsize=256)
def _cue_pattern(cues: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled alternation per cue list: each cue matches at a word start."""
    return re.compile(rf"(?<![\w])(?:{'|'.join(re.escape(c) for c in cues) or '(?!)'})")


def _has(folded: str, cues: tuple[str, ...]) -> bool:
    return _cue_pattern(cues).search(folded) is not None


GENERIC = ("contract", "other")


def _first_pos(folded: str, cues: tuple[str, ...]) -> int | None:
    m = _cue_pattern(cues).search(folded)
    return None if m is None else m.start()


_BARE_HEADS = ("protokol", "protocol", "memorandum", "mou")


def _type_of(folded: str, lex: Lexicon) -> tuple[str | None, bool, str]:
    """(type, specific, trigger): the earliest specific instrument named in the sentence ("signed a
    memorandum … on training" is an MoU), else contract, else other. Generic words (agreement,
    saziş) often refer back to an instrument named earlier; a generic word next to an export cue
    ("yurt dışı satış sözleşmesi", "ixracına dair müqavilə") names an export. A protocol recording
    a meeting's results is no memorandum but "other"."""
    best: tuple[int, str, str] | None = None
    for kind in lex.priority:
        if kind in GENERIC:
            continue
        for m in _cue_pattern(lex.triggers.get(kind, ())).finditer(folded):
            if _has(folded[max(0, m.start() - 30) : m.start()], lex.component):
                continue  # "a deal that includes technology transfer" is no transfer agreement
            if best is None or m.start() < best[0]:
                best = (m.start(), kind, m.group(0))
            break
    if best is not None:
        pos, kind, trigger = best
        if kind == "other_explicit":
            return "other", True, trigger
        if (
            kind == "mou"
            and trigger in ("protokol", "protocol")
            and _has(folded[max(0, pos - 45) : pos + 40], lex.minutes)
        ):
            return "other", True, trigger
        return kind, True, trigger
    for kind in GENERIC:
        hit = _cue_pattern(lex.triggers.get(kind, ())).search(folded)
        if hit is not None:
            if _has(folded, lex.export_cues):
                return "export", True, hit.group(0)
            return kind, False, hit.group(0)
    return None, False, ""


def _weekdays() -> dict[str, int]:
    from babel.dates import get_day_names

    out: dict[str, int] = {}
    for locale in ("tr", "az", "en"):
        for num, name in get_day_names("wide", locale=locale).items():
            out[fold(name)] = int(num)
    return out


def _reported(folded: str, start: int, end: int, language: str, lex: Lexicon) -> bool:
    """Whether a date belongs to a statement about the signing ("announced in March 2022 that it
    had signed", "iyunun 11-də etdiyi paylaşımda … imzalanmış"), not to the signing itself. English
    puts the reporting verb before its date, Turkish and Azerbaijani after it; a signing verb in
    between claims the date for the signing."""
    if language == "en":
        window = folded[max(0, start - 70) : start]
        cut = max((m.end() for m in _cue_pattern(lex.concluded).finditer(window)), default=0)
        return _has(window[cut:], lex.reporting)
    window = folded[end : end + 45]
    m = _cue_pattern(lex.concluded).search(window)
    return _has(window[: m.start()] if m else window, lex.reporting)


def _signed(
    sentence: str, published: date | None, lex: Lexicon, language: str = "en", year: int | None = None
) -> str | None:
    """The signing date a sentence states: a written date, else "yesterday"/a weekday counted back
    from the publication date. ``year`` completes a day and month when no publication date is known."""
    folded = fold(sentence)
    hits = [
        h
        for h in find_dates(sentence, default_year=published.year if published else year)
        if not _reported(folded, h.start, h.end, language, lex)
    ]
    if hits:
        day = hits[0].value
        year_only = published is not None and (published.month, published.day) == (1, 1)
        if not hits[0].has_year and published is not None and day > published and not year_only:
            day = day.replace(year=day.year - 1)  # "signed on 28 December" in a January article
        return day.isoformat()
    if published is None:
        return None
    for back, words in _RELATIVE.items():
        if any(re.search(rf"(?<![\w]){re.escape(fold(w))}(?![\w])", folded) for w in words):
            return (published - timedelta(days=back)).isoformat()
    last_week = _first_pos(folded, lex.last_week)
    for name, weekday in _weekdays().items():
        m = re.search(rf"(?<![\w]){re.escape(name)}", folded)
        if m is None or _reported(folded, m.start(), m.end(), language, lex):
            continue
        if last_week is not None:
            if not 0 <= m.start() - last_week <= 30:
                continue  # "signed last week, the company said on Tuesday": Tuesday is not the signing
            monday = published - timedelta(days=published.weekday())
            return (monday - timedelta(days=7 - weekday)).isoformat()
        back = (published.weekday() - weekday) % 7
        return (published - timedelta(days=back)).isoformat()
    return None  # "last week" alone names no day


def _local_content(sentence: str, lex: Lexicon) -> float | None:
    folded = fold(sentence)
    for start, end, value in find_percentages(sentence):
        window = folded[max(0, start - 70) : end + 70]
        if _has(window, lex.local_cues):
            return value
    return None


_MEASURE = re.compile(r"(?<![\w])(?:mm|cm|km|kg|millimet\w*|milimet\w*|calibre|caliber|çaplı\w*)(?![\w])")


def _quantity(sentence: str, lex: Lexicon, taken: list[tuple[int, int]]) -> str | None:
    """The verbatim "how many" phrase; amounts of money, dates and calibres ("12,7 mm") are not quantities."""
    for m in lex.quantity.finditer(fold(sentence)):
        if any(m.start() < e and s < m.end() for s, e in taken) or _MEASURE.search(m.group(0)):
            continue
        first, *rest = m.group(0).split()
        if first.endswith(".") or (first not in _NUMBER_WORDS and parse_number(first, "en", False) is None):
            continue  # "5. nesil": an ordinal in Turkish and Azerbaijani
        if rest and _DURATION.match(rest[0]):
            continue  # "beş il ərzində", "five years of support": a duration
        return sentence[m.start() : m.end()]
    return None


_NUMBER_BEFORE = re.compile(
    r"(?:(?<![\d.,])\d{1,3}|(?<![\w])one|two|three|four|five|six|seven|eight|nine|ten|twelve|dozens? of|iki|üç|dört|dörd|beş|altı|on)\s*$"
)
_GENITIVE = re.compile(r"(?:['’]s|['’]?n?[ıiuüə]n)$")
_LOCATIVE = re.compile(r"(?:['’]?[dt][ae]|['’]?[dt]ə|['’]?n?[dt][ae]ki|n?[dt]əki)$")


def _within(after: str, cues: tuple[str, ...], words: int) -> bool:
    """A cue starts within the first ``words`` words of ``after``."""
    return _within_pattern(cues, words).match(after) is not None


@lru_cache(maxsize=256)
def _within_pattern(cues: tuple[str, ...], words: int) -> re.Pattern[str]:
    alternation = "|".join(re.escape(c) for c in cues) or "(?!)"
    return re.compile(rf"^\W*(?:[^\W_][^\s]*\s+){{0,{words}}}?(?:{alternation})")


_PRODUCT_HEADS = re.compile(
    r"(?:system|sistem|missile|füze|fuze|raket|rocket|vehicle|araç|arac|aircraft|uçak|ucak|drone|"
    r"launcher|radar|satellite|uydu|peyk|platform|gun|howitzer|obüs|obus)\w*\s*\($"
)


# The authorities that approved an instrument are no sides of it: "approved by X's agency and by
# Y's ministry" (each approver after the cue, a possessive country before it allowed).
_APPROVERS = re.compile(
    r"\b(?:approved|endorsed|authori[sz]ed|sanctioned|cleared) by\b"
    r"(?:[^.;]{0,90}\b(?:and|as well as)(?: by)?)?(?:\s+\S+['’]s)?$"
)


def _argument_mentions(mentions: list[Mention], text: str, lex: Lexicon) -> list[Mention]:
    """Mentions that can be the sides of an instrument: not a news source ("Report informs,
    citing EZDA"), not the venue ("at the KADEX exhibition", "Konseyi Toplantısı'nda", "Savunma
    Fuarı'nda"), not a witness ("… tarafından şahitlik edilen", "in the presence of"), not the body
    another one is under ("… Center under the Agency", "Bakanlığı'na bağlı fabrika"), not a product
    counted in the deal ("three offshore patrol ships") or abbreviated after its name ("… Launch System
    (XYZ)"), not a name inside the quoted title of an instrument ("“Military Financial
    Cooperation Agreement”")."""
    out = []
    dropped: int | None = None  # where the last product name ended
    for m in mentions:
        before = fold(text[max(0, m.start - 40) : m.start]).rstrip()
        after = fold(text[m.end : m.end + 45])
        if any(before.endswith(c) or before.endswith(c + " the") for c in lex.source_before):
            continue
        if _within(after, lex.source_after, 1) or _within(after, lex.venue, 1):
            continue
        words = fold(m.text).split()
        if len(words) > 1 and any(words[-1].startswith(v) for v in lex.venue):
            continue
        if any(before.endswith(c) for c in lex.witness_before) or _within(after, lex.witness_after, 2):
            continue
        if _APPROVERS.search(fold(text[max(0, m.start - 130) : m.start]).rstrip()):
            continue
        if m.label == "ORG" and _PRODUCT_HEADS.search(before):
            continue
        if m.label == "ORG" and before.endswith("(") and dropped is not None and m.start - dropped <= 3:
            continue  # "delivery of Kaplan MT (KMT)": the product's other name
        if _quoted_title(text, m, lex):
            continue
        if any(before.endswith(c) for c in lex.naming_before) or _within(after, lex.naming_after, 1):
            continue  # "the venture, to be called Ganja Optronics": the instrument's creation, no side
        if any(before.endswith(c) for c in lex.parent_before) or _within(after, lex.parent_after, 0):
            continue
        if m.label == "ORG" and any(before.endswith(c) for c in lex.product_before):
            dropped = m.end
            continue
        if m.label == "ORG" and _NUMBER_BEFORE.search(before):
            continue
        out.append(m)
    return out


_OPEN_QUOTES = '“"«„'
_CLOSE_QUOTES = '”"»“'


def _quoted_title(text: str, m: Mention, lex: Lexicon) -> bool:
    """Whether a mention stands inside a quoted name that is itself an instrument's title."""
    left = text[max(0, m.start - 80) : m.start]
    opened = max(left.rfind(q) for q in _OPEN_QUOTES)
    if opened < 0 or any(q in left[opened + 1 :] for q in _CLOSE_QUOTES):
        return False
    right = text[m.end : m.end + 120]
    closes = [i for i in (right.find(q) for q in _CLOSE_QUOTES) if i >= 0]
    if not closes:
        return False
    title = fold(left[opened + 1 :] + m.text + right[: min(closes)])
    return any(_has(title, lex.triggers.get(kind, ())) for kind in lex.priority)


def _squash(name: str) -> str:
    return re.sub(r"[\W_]+", "", fold(name))


def _same_names(mentions: list[Mention], registry: Registry | None) -> list[Mention]:
    """An unlisted name written like a listed one of the same document but for spaces or hyphens
    ("NurolMakina" beside "Nurol Makina") is that organisation."""
    if registry is None:
        return mentions
    listed: dict[str, Mention] = {}
    for m in mentions:
        if m.label == "ORG" and registry.get(m.entity_id) is not None:
            listed.setdefault(_squash(m.canonical), m)
    out = []
    for m in mentions:
        twin = listed.get(_squash(m.canonical)) if m.label == "ORG" else None
        if twin is not None and twin.entity_id != m.entity_id and registry.get(m.entity_id) is None:
            m = replace(m, entity_id=twin.entity_id, canonical=twin.canonical)
        out.append(m)
    return out


_MEDIA = "m-"  # registry ids of news media (models/media.jsonl)


def _source_ids(mentions: list[Mention], text: str, lex: Lexicon) -> set[str]:
    """Entities the article only ever names as its news source or a witness ("KAP'a yapılan
    açıklamada", "citing Report", "… tarafından şahitlik edilen"): never a side of a deal."""
    cited: set[str] = set()
    other: set[str] = set()
    for m in mentions:
        before = fold(text[max(0, m.start - 40) : m.start]).rstrip()
        after = fold(text[m.end : m.end + 60])
        if (
            any(before.endswith(c) or before.endswith(c + " the") for c in lex.source_before)
            or _within(after, lex.source_after, 2)
            or any(before.endswith(c) for c in lex.witness_before)
            or _within(after, lex.witness_after, 2)
        ):
            cited.add(m.entity_id)
        elif m.entity_id.startswith(_MEDIA):
            cited.add(m.entity_id)  # a news outlet of the registry's media list
        else:
            other.add(m.entity_id)
    return cited - other


def _state_mentions(
    sentence: str, offset: int, lex: Lexicon, registry: Registry | None, existing: list[Mention]
) -> list[Mention]:
    """Countries named by their people's adjective next to a state office: "the Turkish president",
    "his Estonian counterpart", "the Azerbaijani and Turkish governments" sign for their country."""
    if registry is None or not lex.demonyms:
        return []
    out: list[Mention] = []
    nouns = "|".join(re.escape(n) for n in lex.state_nouns)
    for m in re.finditer(r"\b([A-Z][a-z]+)\b", sentence):
        country = lex.demonyms.get(fold(m.group(1)))
        if country is None:
            continue
        tail = fold(sentence[m.end() : m.end() + 60])
        if not re.match(rf"^(?:\s+(?:and\s+)?[\w-]+){{0,4}}?\s+(?:{nouns})(?![\w-])", tail):
            continue
        host = next((e for e in existing if e.start <= offset + m.start() < e.end), None)
        if host is not None and not re.match(
            rf"^\W*(?:[\w-]+\s+){{0,2}}?(?:{nouns})\b",
            fold(sentence[host.end - offset : host.end - offset + 40]),
        ):
            continue  # "Turkish Aerospace" is a company, "Turkish National Defense Minister" the country
        entity = registry.lookup(country, attached=False)
        if entity is None or any(e.entity_id == entity.entity_id for e in existing + out):
            continue
        start = offset + m.start()
        out.append(
            Mention(m.group(1), "GPE", entity.canonical, entity.entity_id, start, start + len(m.group(1)))
        )
    return out


_STATE_BODY = re.compile(
    r"(?:hava kuvvet|deniz kuvvet|kara kuvvet|silahli kuvvet|hava quvve|deniz quvve|silahli quvve|"
    r"navy|army|air force|armed forces|defen[cs]e forces|ministry|bakanligi|nazirliyi|"
    r"cent(?:re|er) for defen[cs]e)"
)


def _served_countries(
    args: list[Mention], lex: Lexicon, registry: Registry | None, countries: frozenset[str]
) -> list[Mention]:
    """Countries whose armed force or ministry is a side, named by the body's own first word
    ("Polonya Hava Kuvvetleri", "Pakistan Navy", "Estonian Centre for Defence Investments"), when
    no other side comes from that country ("Turkish Aerospace") and it is not named as a home
    ("Türkiye'nin füze üreticisi"): the buyer of an export."""
    if registry is None:
        return []

    def country_of(m: Mention) -> str | None:
        words = m.text.split()
        if m.label != "ORG" or len(words) < 2:
            return None
        name = lex.demonyms.get(fold(words[0]), words[0])
        entity = registry.lookup(name, attached=False)
        return entity.entity_id if entity is not None and entity.entity_id in countries else None

    named = {a.entity_id for a in args}
    home = {a.entity_id for a in args if a.entity_id in countries and _home_country(a)}
    out: list[Mention] = []
    for m in args:
        country = country_of(m)
        if country is None or not _STATE_BODY.search(fold(m.text)) or country in named | home:
            continue
        if any(country_of(o) == country for o in args if o is not m and not _STATE_BODY.search(fold(o.text))):
            continue
        entity = registry.get(country)
        if entity is not None and all(o.entity_id != country for o in out):
            out.append(Mention(entity.canonical, "GPE", entity.canonical, country, m.start, m.start))
    return out


def _home_of(entity_id: str, lex: Lexicon) -> str | None:
    """The country an organisation belongs to, where the lexicon knows it."""
    if entity_id in lex.homes:
        return lex.homes[entity_id]
    return next((c for prefix, c in lex.home_prefixes if entity_id.startswith(prefix)), None)


def _domestic(country: str, args: list[Mention], lex: Lexicon, countries: frozenset[str]) -> bool:
    """Whether every company of known home beside it belongs to this country (a ministry's
    contract with a company of its own country is no export); state bodies do not count."""
    homes = {
        _home_of(a.entity_id, lex)
        for a in args
        if a.entity_id not in countries and not _STATE_BODY.search(fold(a.text))
    }
    homes.discard(None)
    return bool(homes) and homes == {country}


def _home_country(m: Mention) -> bool:
    """A country named as something's owner ("Türkiye'nin füze üreticisi Roketsan", "Azerbaijan's
    Ministry of Defence", "the arm of Türkiye's defence industry") or as a place ("Türkiye'de"):
    not a side of the deal when organisations are."""
    if fold(m.text) == fold(m.canonical):
        return False
    return _LOCATIVE.search(m.text) is not None or _GENITIVE.search(m.text) is not None


def _parties(
    mentions: list[Mention], countries: frozenset[str], text: str = "", kind: str | None = None
) -> list[Mention]:
    orgs = [m for m in mentions if m.label == "ORG"]
    places = [m for m in mentions if m.entity_id in countries]
    # A country is a party when no organisation stands for it (an export "to Azerbaijan"); a lone
    # country with no organisation is a place name, not the sides of a deal. For an export the
    # buyer's country is a party beside the organisations.
    if not orgs and len({p.entity_id for p in places}) < 2:
        return []
    if orgs:
        places = [p for p in places if not _home_country(p)]
    chosen = orgs + places if len(orgs) < 2 or kind == "export" else orgs
    unique: dict[str, Mention] = {}
    for m in chosen:
        unique.setdefault(m.entity_id, m)
    return list(unique.values())


def _blank(sentence: str, offset: int, mentions: list[Mention]) -> str:
    """The sentence with entity names blanked out (same length), to read only its own words."""
    chars = list(sentence)
    for m in mentions:
        chars[m.start - offset : m.end - offset] = " " * (m.end - m.start)
    return "".join(chars)


def _attach_details(last: Agreement, sentence: str, lex: Lexicon, language: str = "en") -> Agreement:
    """A sentence naming no instrument after a signing can still state its local content, its
    counted quantity ("Yılda 120 milyon adet fişek üretilecek") or its value ("Its value was put at
    $45 million"; a turnover or a budget is no value of the deal)."""
    if last.value is None and _has(fold(sentence), lex.value_cues):
        money = find_money(sentence, language)
        if money:
            last = replace(last, value=money[0].money)
    if last.local_content_pct is None:
        lc = _local_content(sentence, lex)
        if lc is not None:
            last = replace(last, local_content_pct=lc)
    if last.quantity is None:
        q = _quantity(sentence, lex, [(d.start, d.end) for d in find_dates(sentence, default_year=2000)])
        if q is not None and _has(fold(q), lex.counters):
            last = replace(last, quantity=q)
    return last


def _reference(folded: str, lex: Lexicon) -> tuple[str, ...]:
    """The kind of organisation a sentence points at without naming it ("the ministry will pay")."""
    for nouns in lex.reference_nouns:
        if _has(folded, nouns):
            return nouns
    return ()


def _salient_org(mentions: list[Mention], exclude: set[str], noun: tuple[str, ...] = ()) -> Mention | None:
    """The organisation the article talks about most (of the kind the sentence refers to, if any)."""
    counts: dict[str, int] = {}
    first: dict[str, Mention] = {}
    for m in mentions:
        if m.label == "ORG" and m.entity_id not in exclude:
            counts[m.entity_id] = counts.get(m.entity_id, 0) + 1
            first.setdefault(m.entity_id, m)
    if noun:
        fitting = {
            k: v
            for k, v in counts.items()
            if any(n in fold(first[k].canonical + " " + first[k].text) for n in noun)
        }
        counts = fitting or counts
    if not counts:
        return None
    return first[max(counts, key=lambda k: (counts[k], -first[k].start))]


def _stated(a: Agreement) -> int:
    """How much a statement says; the signing date weighs most (the evidence is the signing sentence)."""
    return 2 * (a.signed is not None) + sum(x is not None for x in (a.value, a.quantity, a.local_content_pct))


def _conflicts(a: Agreement, b: Agreement) -> bool:
    """Two statements with different amounts or signing dates are two instruments."""
    return (a.value is not None and b.value is not None and a.value != b.value) or (
        a.signed is not None and b.signed is not None and a.signed != b.signed
    )


def _same_instrument(
    found: list[Agreement],
    candidate: Agreement,
    specific: bool,
    countries: frozenset[str],
    generic: list[bool] | None = None,
    strict: bool = False,
) -> int | None:
    """Index of an earlier agreement this sentence talks about again, if any (most recent first).

    Same type (or a generic word such as "the contract", or an earlier record that only had a
    generic word: "the agreement" then "the export contract"), organisations that are a subset or a
    superset of the earlier ones (countries that overlap when neither names an organisation), and
    no conflicting amount or date: "Otokar signed an export contract with Azerbaijan" followed by
    "the contract with Azerbaijan's Ministry of Defence…" is one instrument."""
    orgs = {i for i in candidate.party_ids if i not in countries}
    states = {i for i in candidate.party_ids if i in countries}
    for i in range(len(found) - 1, -1, -1):
        a = found[i]
        prev = {p for p in a.party_ids if p not in countries}
        prev_states = {p for p in a.party_ids if p in countries}
        if _conflicts(a, candidate):
            continue
        if states and prev_states and not states & prev_states:
            continue  # two agreements with different countries (a sale to Qatar, one to Ukraine)
        # A generic word refers back to anything; a specific one may only retype a record named by a
        # generic word when it names organisations of that record (or the record names none).
        loose = not specific or (
            generic is not None and generic[i] and (bool(orgs) or not prev or not candidate.party_ids)
        )
        if (
            loose
            and candidate.type == "contract"
            and a.type in _NON_CONTRACTS
            and not (generic and generic[i])
        ):
            continue  # "contracts were signed" after a letter of intent: not that letter
        if (a.type == candidate.type or loose) and (orgs <= prev or (prev and prev <= orgs)):
            return i
        if not specific and not strict and len(prev) < 2 and len(orgs - prev) == 1:
            return i  # "The contract, signed with the ministry…" names the other side of the one before
        if (
            specific
            and not strict
            and generic is not None
            and generic[i]
            and len(prev) == 1
            and len(orgs - prev) == 1
            and states
            and states & prev_states
        ):
            # "Otokar delivered its order from Azerbaijan" then "… ordered by Azerbaijan's ministry
            # under the export contract": the other side of the order, and its type
            return i
        if a.type == candidate.type and not prev and orgs and states and states <= prev_states:
            # "Türkiye and Malaysia agreed on three patrol ships" then "the Malaysian navy concluded
            # the contract with STM": the organisations of the instrument named by its countries
            return i
    return None


_NON_CONTRACTS = ("mou", "training", "other")


def _named(a: Agreement) -> int:
    """How many of the agreement's parties its evidence sentence names."""
    ev = fold(a.evidence.text)
    return sum(1 for p in a.parties if fold(p) in ev)


def _merge(
    old: Agreement,
    new: Agreement,
    concluded: bool,
    countries: frozenset[str],
    upgrade: bool = False,
    specific: bool = False,
) -> Agreement:
    """Fill what the first statement did not say; keep the more specific parties (and type, when the
    first statement only had a generic word); the evidence is the concluding sentence that states
    the most about the instrument."""
    merged = replace(
        old,
        **{
            k: getattr(old, k) if getattr(old, k) is not None else getattr(new, k)
            for k in ("signed", "value", "quantity", "local_content_pct", "subject")
        },
    )
    if upgrade:
        merged = replace(merged, type=new.type)
    pairs = dict(zip(old.party_ids, old.parties, strict=True)) | dict(
        zip(new.party_ids, new.parties, strict=True)
    )
    new_states = {i for i in new.party_ids if i in countries}
    new_orgs = any(i not in countries for i in new.party_ids)
    if (
        specific
        and concluded
        and new_orgs
        and new_states
        and not any(i not in countries for i in old.party_ids)
    ):
        # The organisations now named stand for the countries the first statement named: keep
        # only the countries they name again (the buyer's, not the seller's home country).
        pairs = {i: n for i, n in pairs.items() if i not in countries or i in new_states}
    if sum(1 for i in pairs if i not in countries) >= 2 and merged.type != "export":
        pairs = {i: n for i, n in pairs.items() if i not in countries} or pairs
    merged = replace(merged, party_ids=tuple(pairs), parties=tuple(pairs.values()))
    if concluded and (_stated(new), len(new.parties)) > (_stated(old), len(old.parties)):
        merged = replace(merged, evidence=new.evidence)
    elif concluded and _named(old) == 0 and _named(replace(merged, evidence=new.evidence)) >= 2:
        # "the sides also signed a protocol" gives way to the statement naming them
        merged = replace(merged, evidence=new.evidence)
    return merged


_QUOTES = re.compile(r"[“”\"«»„]")
_CLAUSE_BREAK = re.compile(r",\s+(?:and|while|ve|və)\s+|;\s+")


def _clauses(text: str, start: int, end: int, lex: Lexicon) -> list[tuple[int, int]]:
    """A sentence that concludes two instruments in two clauses ("the ministers signed a letter of
    intent, and the agencies signed a protocol") is read clause by clause; otherwise whole."""
    parts: list[tuple[int, int]] = []
    cut = start
    for m in _CLAUSE_BREAK.finditer(text, start, end):
        parts.append((cut, m.start()))
        cut = m.end()
    parts.append((cut, end))
    if len(parts) < 2:
        return [(start, end)]

    def states_one(a: int, b: int) -> bool:
        folded = fold(text[a:b])
        return _type_of(folded, lex)[0] is not None and _has(folded, lex.concluded)

    if sum(states_one(a, b) for a, b in parts) < 2:
        return [(start, end)]
    # A clause with no instrument of its own belongs to the one before it ("…, and will train 50
    # engineers"), unless it has no verb of its own and another follows: then it is the first
    # part of that one's subject ("…, and the head of SSB, and the ECDI director signed a protocol").
    merged: list[tuple[int, int]] = []
    carry: int | None = None
    for k, (a, b) in enumerate(parts):
        if carry is not None:
            a, carry = carry, None
        if states_one(a, b) or not merged:
            merged.append((a, b))
        elif k + 1 < len(parts) and not _has(fold(text[a:b]), lex.concluded):
            carry = a
        else:
            merged[-1] = (merged[-1][0], b)
    return merged


_PAIR = re.compile(r"(?<![\w])(?:arasinda\w*|between|ile|ila)(?![\w])")


def _framework(folded: str, lex: Lexicon) -> bool:
    """ "Under the agreement between A and B" presupposes a concluded one: the instrument word right
    before a framework word ("razılaşmaya əsasən", "anlaşma çerçevesinde") in a sentence naming a pair."""
    if _PAIR.search(folded) is None:
        return False
    triggers = [t for kind in lex.priority for t in lex.triggers.get(kind, ())]
    heads = "|".join(re.escape(t) for t in sorted(set(triggers), key=len, reverse=True))
    cues = "|".join(re.escape(c) for c in lex.framework) or "(?!)"
    if re.search(rf"(?<![\w])(?:{heads})\w*\s+(?:{cues})", folded):
        return True
    return re.search(rf"(?<![\w])(?:{cues})\s+(?:\w+\s+){{0,2}}(?:{heads})", folded) is not None


# "in May", "May 2024", "12 May": the month, not the modal verb "may" (a negation cue)
_MONTH_MAY = re.compile(r"(?:\b(?:in|since|until|by|from|of|early|late|mid-?|\d{1,2})\s+may\b|\bmay\s+\d)")


@lru_cache(maxsize=16)
def _stipulated_patterns(
    triggers: tuple[str, ...], stipulated: tuple[str, ...]
) -> tuple[re.Pattern[str], re.Pattern[str]]:
    heads = "|".join(re.escape(t) for t in sorted(set(triggers), key=len, reverse=True))
    cues = "|".join(re.escape(c) for c in stipulated) or "(?!)"
    return (
        re.compile(rf"(?<![\w])(?:{heads})\w*?(?:n?d[ae])\s+(?:{cues})\w*"),
        re.compile(rf"(?<![\w])(?:{cues})\s+(?:in|under|by)\s+(?:the|this|that)\s+(?:{heads})\w*"),
    )


def _stipulated(folded: str, lex: Lexicon) -> tuple[int, int] | None:
    """Where a sentence says something is provided for in an instrument ("müqavilədə nəzərdə
    tutulmuş 24 helikopter", "sözleşmede öngörülen", "provided for in the contract"): that
    instrument was concluded, and the words are no plan."""
    triggers = tuple(t for kind in lex.priority for t in lex.triggers.get(kind, ()))
    after_head, before_head = _stipulated_patterns(triggers, tuple(lex.stipulated))
    m = after_head.search(folded)
    if m is None:
        m = before_head.search(folded)
    return None if m is None else (m.start(), m.end())


def _doc_year(text: str, published: date | None) -> int | None:
    """The latest year a document mentions: the year of a day and month when no publication date is known."""
    if published is not None:
        return published.year
    years = [int(y) for y in re.findall(r"(?<!\d)(19[89]\d|20[0-4]\d)(?!\d)", text)]
    return max(years) if years else None


def _blank_spans(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for s, e in spans:
        chars[s:e] = " " * (e - s)
    return "".join(chars)


def _count(folded: str, trigger_pos: int, lex_counts: dict[str, int]) -> int:
    """How many instruments a plural names ("two export contracts", "2 mühimmat tedarik sözleşmesi")."""
    head = folded[max(0, trigger_pos - 40) : trigger_pos].split()[-3:]
    for word in head:
        if word in lex_counts:
            return lex_counts[word]
    return 1


def extract_agreements(
    doc: Document,
    mentions: list[Mention],
    models_dir: str,
    countries: frozenset[str] = frozenset(),
    registry: Registry | None = None,
) -> list[Agreement]:
    lex = load_lexicon(models_dir)
    counts = _counts(models_dir)
    mentions = _same_names(mentions, registry)
    published = date.fromisoformat(doc.published) if doc.published else None
    year = _doc_year(doc.text, published)
    body_start = len(doc.title) + 2 if doc.text.startswith(doc.title) else 0
    found: list[Agreement] = []
    generic: list[bool] = []  # the record's type came from a generic word only
    summary: list[bool] = []  # the record is one of several a plural statement summed up
    pending: Agreement | None = None  # concluded, but its parties are only "the sides" so far
    pending_copies = 1
    state_counts: dict[str, tuple[int, Mention]] = {}
    for m in mentions:
        if m.entity_id in countries:
            n, first = state_counts.get(m.entity_id, (0, m))
            state_counts[m.entity_id] = (n + 1, first)
    sources = _source_ids(mentions, doc.text, lex)
    eligible = [m for m in mentions if m.entity_id not in sources]
    units = [
        (s, e, ev)
        for ev in sentences(doc.text)
        if ev[0] >= body_start
        for s, e in _clauses(doc.text, ev[0], ev[1], lex)
    ]
    for start, end, (ev_start, ev_end) in units:
        sentence = doc.text[start:end]
        folded = _QUOTES.sub("", fold(sentence))
        kind, specific, trigger = _type_of(folded, lex)
        ceremony = kind is None and _PAIR.search(folded) is not None and _has(folded, lex.ceremony)
        if ceremony:
            # "the signing ceremony took place between A and B …": an instrument whose name comes later
            kind, trigger = "other", ""
        protocol = kind == "mou" and trigger in ("protokol", "protocol")
        if ((kind == "other" and not specific) or protocol) and _subject(folded, lex) == "training":
            kind = "training"  # "the agreement/protocol under which 250 officers will be trained"
        if kind is None:
            # "Local content will reach 40%" after the signing sentence belongs to that agreement.
            if found:
                found[-1] = _attach_details(found[-1], sentence, lex, doc.language)
                if found[-1].signed is None and _has(folded, lex.ceremony):
                    # "the signing ceremony held in Jakarta on 11 June"
                    found[-1] = replace(
                        found[-1], signed=_signed(sentence, published, lex, doc.language, year)
                    )
            continue
        earlier = [*found, *([pending] if pending is not None else [])]
        if trigger in _BARE_HEADS and any(
            trigger in fold(a.evidence.text) for a in earlier if a.evidence.start != ev_start
        ):
            specific = False  # "the protocol" again: the one named before
        dates = [(d.start, d.end) for d in find_dates(sentence, default_year=2000)]
        undated = _MONTH_MAY.sub(lambda m: " " * len(m.group(0)), fold(_blank_spans(sentence, dates)))
        stipulated = _stipulated(undated, lex)
        if stipulated is not None:
            undated = (
                undated[: stipulated[0]] + " " * (stipulated[1] - stipulated[0]) + undated[stipulated[1] :]
            )
        concluded = (
            ceremony or stipulated is not None or _has(folded, lex.concluded) or _framework(folded, lex)
        )
        if _has(undated, lex.negation) or (not concluded and _has(folded, lex.pending_cues)):
            continue
        money = find_money(sentence, doc.language)
        signed = _signed(sentence, published, lex, doc.language, year)
        if signed is None and found and _has(folded, lex.same_day):
            signed = found[-1].signed
        inside = [m for m in mentions if start <= m.start and m.end <= end]
        args = _argument_mentions(inside, doc.text, lex)
        states = [
            x
            for x in _state_mentions(sentence, start, lex, registry, args)
            if not _has(fold(doc.text[max(start, x.start - 45) : x.start]), lex.witness_before)
        ]  # "a signing attended by the Kazakh and Turkish ministers": witnesses
        # "Turkish National Defense Minister" is the country, not an organisation "Turkish National"
        args = [a for a in args if not any(a.start <= x.start < a.end for x in states)] + states
        two = re.search(r"\b(?:two|both) countries(?!['’])|iki ülke(?!nin)|iki ölkə(?!nin)", folded)
        if two and _has(folded[max(0, two.start() - 45) : two.start()], lex.witness_before):
            two = None  # "hosted by the heads of state of both countries"
        if two and not any(a.label == "ORG" for a in args):
            known = {m.entity_id for m in args}
            for _, (_, first) in sorted(state_counts.items(), key=lambda kv: -kv[1][0])[:2]:
                if (
                    first.entity_id not in known
                    and len({m.entity_id for m in args if m.entity_id in countries}) < 2
                ):
                    args.append(replace(first, start=start, end=start))
        parties = _parties(args, countries, doc.text, kind)
        buyers = [
            a
            for a in args
            if a.entity_id in countries
            and not (parties and _home_country(a))
            and not _domestic(a.entity_id, args, lex, countries)
        ]
        served = [
            x
            for x in _served_countries(args, lex, registry, countries)
            if not _domestic(x.entity_id, args, lex, countries)
        ]
        sold = bool(buyers) or bool(served) or _has(folded, lex.export_cues)
        counted = _quantity(sentence, lex, [(m.start, m.end) for m in find_money(sentence, doc.language)])
        sale = _has(folded, lex.sale_cues) or (counted is not None and bool(buyers or served))
        if not specific and kind in GENERIC and sale and sold:
            kind = "export"  # a sale or delivery to a country: "satış kontraktı … Endonezya ile"
            specific = True
            parties = _parties(args, countries, doc.text, kind)
        if kind == "export" and served:
            # For an export the buyer's country is a side beside its armed force or ministry.
            parties = _parties(args + served, countries, doc.text, kind)
        value = money[0].money if money else None
        trigger_pos = _first_pos(folded, (trigger,)) if trigger else None
        copies = _count(folded, trigger_pos, counts) if trigger_pos is not None else 1
        if copies > 1:
            value = None  # one amount for several instruments belongs to none of them
        candidate = Agreement(
            type=kind,
            parties=tuple(p.canonical for p in parties),
            party_ids=tuple(p.entity_id for p in parties),
            evidence=Span(doc.text[ev_start:ev_end], ev_start, ev_end),
            signed=signed,
            value=value,
            quantity=_quantity(
                sentence,
                lex,
                [(m.start, m.end) for m in money] + dates,
            ),
            local_content_pct=_local_content(sentence, lex),
            subject=_subject(folded, lex),
        )
        separate = _has(folded, lex.separate)
        instruments = _distribute(
            candidate,
            parties,
            folded,
            trigger_pos,
            trigger,
            copies,
            doc.text,
            countries,
            found,
            generic,
            summary,
        )
        for candidate, parties, summed in instruments:
            if pending is not None and parties and (not specific or kind == pending.type):
                # the sides it left unnamed ("the sides also signed a protocol"): this statement names them
                found.append(_merge(pending, candidate, True, countries))
                generic.append(False)
                summary.append(False)
                pending = None
                continue
            if copies > 1:
                same_kind = [
                    i
                    for i, a in enumerate(found)
                    if a.type == kind and set(a.party_ids) == set(candidate.party_ids)
                ]
                if len(same_kind) >= copies:  # "2 sözleşme" again: the two named before
                    for i in same_kind[-copies:]:
                        found[i] = _merge(found[i], candidate, False, countries)
                    continue
            previous = (
                _same_instrument(found, candidate, specific, countries, generic, summed)
                if (parties or not concluded) and not separate and copies == 1
                else None
            )
            if (
                previous is None
                and not concluded
                and specific
                and trigger in _BARE_HEADS
                and found
                and generic[-1]
            ):
                previous = len(found) - 1  # "Protokolün hedefi…": the instrument just signed is a protocol
            if previous is not None:
                upgrade = specific and generic[previous] and candidate.type != found[previous].type
                if not concluded:  # a mere mention ("the KAAN deal raises questions about …") adds no sides
                    candidate = replace(candidate, parties=(), party_ids=())
                merged = _merge(found[previous], candidate, concluded, countries, upgrade, specific)
                if (
                    summary[previous]
                    and concluded
                    and _names_other_side(found[previous], candidate, countries)
                ):
                    # A plural summary ("A and B signed contracts with C") gives way to the statement
                    # that names one of its instruments with its own counterpart.
                    merged = replace(
                        merged,
                        evidence=candidate.evidence,
                        signed=candidate.signed,
                        value=candidate.value,
                        quantity=candidate.quantity,
                    )
                    summary[previous] = False
                found[previous] = merged
                generic[previous] = generic[previous] and not specific
                continue
            if not concluded:
                continue
            if not parties and _has(folded, lex.generic_sides):
                continue  # "Turkish companies and Azerbaijani companies signed a memorandum": no named sides
            if not parties and stipulated is not None:
                continue  # "production of the helicopters provided for in the contract continues"
            if not parties and not separate:
                # "2 supply contracts were signed" then "the 5-item tank ammunition contract was
                # signed": the first of the counted instruments not yet stated on its own
                single = next(
                    (
                        i
                        for i in range(len(found))
                        if summary[i]
                        and (found[i].type == kind or not specific)
                        and not _conflicts(found[i], candidate)
                    ),
                    None,
                )
                if single is not None and concluded:
                    merged = _merge(found[single], candidate, concluded, countries)
                    found[single] = replace(
                        merged,
                        evidence=candidate.evidence,
                        signed=candidate.signed or merged.signed,
                        value=candidate.value,
                        quantity=candidate.quantity,
                    )
                    summary[single] = False
                    continue
            if not parties:
                same = next(
                    (
                        i
                        for i in range(len(found) - 1, -1, -1)
                        if found[i].type == kind
                        and not _conflicts(found[i], candidate)
                        and (
                            trigger not in _BARE_HEADS
                            or trigger in fold(found[i].evidence.text)
                            or i == len(found) - 1
                        )
                    ),
                    None,
                )
                if separate:
                    same = None
                if same is None and not specific and found and not separate:
                    same = len(found) - 1  # "bu müqavilə bağlanan": the instrument just named
                if same is not None:  # "the memorandum was signed on 24 June": the one named before
                    found[same] = _merge(found[same], candidate, concluded, countries)
                else:
                    pending, pending_copies = candidate, copies
                continue
            own = [
                p for p in parties if all(p.entity_id != x.entity_id or p.start != x.start for x in served)
            ]
            if len(own) < 2 and not (kind == "export" and _has(folded, lex.anonymous_buyer)):
                # The other side is the organisation the article is about, unless the sentence keeps
                # the buyer anonymous ("a customer in Asia"); sources and venues are never a side.
                outside = fold(
                    _blank(sentence, start, [m for m in mentions if start <= m.start and m.end <= end])
                )
                extra = _salient_org(eligible, set(candidate.party_ids), _reference(outside, lex))
                if extra is not None:
                    candidate = replace(
                        candidate,
                        parties=(*candidate.parties, extra.canonical),
                        party_ids=(*candidate.party_ids, extra.entity_id),
                    )
            for _ in range(copies):
                found.append(candidate)
                generic.append(not specific)
                summary.append(summed or copies > 1)
    if pending is not None and found:
        # Nobody named the sides again: they are the ones of the instrument signed just before.
        found.append(replace(pending, parties=found[-1].parties, party_ids=found[-1].party_ids))
    elif pending is not None:
        # The only instrument, signed by "his company" / "the drone maker": the organisation the
        # article is about, once per instrument counted ("two export contracts").
        nouns = _reference(fold(pending.evidence.text), lex)
        extra = _salient_org(eligible, set(), nouns) if nouns else None
        if extra is not None:
            named = replace(pending, parties=(extra.canonical,), party_ids=(extra.entity_id,))
            found.extend([named] * pending_copies)
    return found


def _plural(folded: str, trigger_pos: int | None, trigger: str) -> bool:
    """Whether the instrument word is a plural ("contracts", "sözleşmeler", "müqavilələr")."""
    if trigger_pos is None or not trigger:
        return False
    tail = re.match(r"\w*", folded[trigger_pos + len(trigger) :])
    rest = tail.group(0) if tail else ""
    return rest in ("s", "es") or rest.startswith(("ler", "lar"))


def _counterpart(parties: list[Mention], text: str) -> Mention | None:
    """The side a plural statement names once against several others: after "with"/"between",
    or before "ile"/"ilə"."""
    for p in parties:
        before = fold(text[max(0, p.start - 14) : p.start]).rstrip()
        after = fold(text[p.end : p.end + 6])
        if before.endswith(("with", "with the", "between", "between the")) or re.match(r"^\s+ile?\b", after):
            return p
    return None


def _distribute(
    candidate: Agreement,
    parties: list[Mention],
    folded: str,
    trigger_pos: int | None,
    trigger: str,
    copies: int,
    text: str,
    countries: frozenset[str],
    found: list[Agreement],
    generic: list[bool],
    summary: list[bool],
) -> list[tuple[Agreement, list[Mention], bool]]:
    """A plural instrument concluded by several organisations with one counterpart ("Aselsan and
    Roketsan concluded contracts with Indonesia", "contracts were signed between the Kazakh ministry
    and FNSS …, and Otokar …") is one instrument per organisation, each with the counterpart; the total
    amount and quantity belong to none of them. Returns (record, its sides, summed up)."""
    whole = [(candidate, parties, False)]
    orgs = [p for p in parties if p.entity_id not in countries]
    if copies != 1 or len(orgs) < 2 or not _plural(folded, trigger_pos, trigger):
        return whole
    other = _counterpart(parties, text)
    sellers = [o for o in orgs if other is None or o.entity_id != other.entity_id]
    if other is None:
        # "the executives of A and B signed the contracts": the instruments named before, one each
        known = [{i for i in a.party_ids if i not in countries} for a in found]
        if not all(any(s.entity_id in k for k in known) for s in sellers):
            return whole
    if len(sellers) < 2:
        return whole
    _split_joint(found, generic, summary, {m.entity_id for m in sellers}, countries)
    states = [
        p for p in parties if p.entity_id in countries and (other is None or p.entity_id != other.entity_id)
    ]
    out = []
    for seller in sellers:
        sides = list({m.entity_id: m for m in [seller, *([other] if other else []), *states]}.values())
        record = replace(
            candidate,
            parties=tuple(m.canonical for m in sides),
            party_ids=tuple(m.entity_id for m in sides),
            value=None,
            quantity=None,
        )
        out.append((record, sides, True))
    return out


def _split_joint(
    found: list[Agreement],
    generic: list[bool],
    summary: list[bool],
    sellers: set[str],
    countries: frozenset[str],
) -> None:
    """An earlier record that named several of these organisations together ("A and B inked a
    contract with C") is one instrument per organisation, as the plural statement now says."""
    for i in range(len(found) - 1, -1, -1):
        joint = [p for p in found[i].party_ids if p in sellers]
        if len(joint) < 2:
            continue
        pairs = list(zip(found[i].party_ids, found[i].parties, strict=True))
        copies = []
        for seller in joint:
            keep = [(k, n) for k, n in pairs if k == seller or k not in sellers]
            copies.append(
                replace(
                    found[i],
                    party_ids=tuple(k for k, _ in keep),
                    parties=tuple(n for _, n in keep),
                    value=None,
                    quantity=None,
                )
            )
        found[i : i + 1] = copies
        generic[i : i + 1] = [generic[i]] * len(copies)
        summary[i : i + 1] = [True] * len(copies)
        return


def _names_other_side(record: Agreement, new: Agreement, countries: frozenset[str]) -> bool:
    """Whether a statement names an organisation of the instrument the record did not have."""
    return any(i not in countries and i not in record.party_ids for i in new.party_ids)


@lru_cache(maxsize=4)
def _counts(models_dir: str) -> dict[str, int]:
    data = json.loads((Path(models_dir) / "agreements.json").read_text(encoding="utf-8"))
    return {fold(k): int(v) for k, v in data.get("count_words", {}).items()}


def _subject(folded: str, lex: Lexicon) -> str | None:
    for phrase, cues in lex.subjects:
        if _has(folded, cues):
            return phrase
    return None
