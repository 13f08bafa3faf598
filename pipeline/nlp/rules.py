"""Name matching on raw text: the gazetteer and the generic rules for tr/az/en.

Matching runs on the length-preserving fold of the text (``textnorm.fold``), so every span
indexes the original string exactly. A match is the name *as written*, attached suffix included
(``MKE'nin``, ``Azərsilahın``, ``Bakanlığına``); ``bare_end`` marks where the name itself ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pipeline.nlp.registry import Registry
from pipeline.textnorm import fold

_W = r"[^\W_]"  # a letter or digit
_SEP_SUFFIX = r"(?:['’`ʼ][^\W\d_]{1,8}|-(?:[^\W\d_]{1,5})(?![^\W_]))"


@dataclass(frozen=True, slots=True)
class NameMatch:
    start: int
    end: int
    bare_end: int
    label: str
    entity_id: str | None  # registry id, or None for a rule match
    strong: bool = True  # registry names and names ending in a legal form outrank the other rules


Trie = dict[str, "Trie"]


def trie_pattern(words: list[str]) -> str:
    """One regex alternation shaped as a prefix trie: thousands of names stay fast to match, and
    at every branch longer continuations are tried before the name ends (longest match first)."""
    trie: Trie = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: Trie) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


class Gazetteer:
    """Every registry alias as one folded regex, longest alias first, with optional suffix."""

    def __init__(self, registry: Registry, attached_suffixes: bool = True) -> None:
        self.registry = registry
        by_alias: dict[str, str] = {}
        self._written: dict[str, str] = {}  # folded alias → the alias as listed
        for alias, entity_id in registry.aliases():
            key = fold(alias)
            if len(key) >= 2:
                by_alias.setdefault(key, entity_id)
                self._written.setdefault(key, alias)
        self._by_alias = by_alias
        names = list(by_alias)
        # Turkish/Azerbaijani attach case endings directly ("Bakıda"); English never does.
        attached = "|".join(re.escape(fold(s)) for s in registry.suffixes) if attached_suffixes else ""
        suffix = f"{_SEP_SUFFIX}|(?:{attached})" if attached else _SEP_SUFFIX
        self._pattern = re.compile(rf"(?<!{_W})(?P<name>{trie_pattern(names)})(?P<sfx>{suffix})?(?!{_W})")

    def find(self, text: str, language: str = "") -> list[NameMatch]:
        """Registry names in ``text``. Azerbaijani attaches case endings to place names without an
        apostrophe ("Minskdə", "Cakartaya"): there a generated place name takes them too, inside a
        sentence and when the text does not use the bare name as a lower-case word. English names
        are written as listed: "Azerbaijani armed forces" is no name."""
        out = []
        folded = fold(text)
        lowered: frozenset[str] | None = None
        pos = 0
        while (m := self._pattern.search(folded, pos)) is not None:
            pos = m.end()
            start, bare_end = m.start("name"), m.end("name")
            end = m.end()
            sfx = m.group("sfx") or ""
            if sfx.startswith("-") and text[bare_end + 1 : bare_end + 2].isupper():
                pos = end = bare_end + 1  # "Azərbaycan-İran": two names, not a case ending
                sfx = ""
                end = bare_end
            first = text[start]
            if not (first.isupper() or first.isdigit()) and "." not in m.group("name"):
                continue  # names are capitalised ("aia.az" is a name); not "ankara" in a URL slug
            entity_id = self._by_alias[m.group("name")]
            entry = self.registry.entries.get(entity_id)
            # Names from bundled geo data (no hand-written aliases), not the registry's own "ABŞ", "U.S.".
            generated = entity_id.startswith(("geo-", "country-")) and not (entry and entry.aliases_by_lang)
            if generated and text[start:bare_end].isupper() and bare_end - start > 1:
                continue  # an acronym ("KOBİ") that happens to spell a place's name
            if entity_id.startswith("geo-") and sfx and sfx[0] not in "'’`ʼ-":
                # Generated place names collide with common words ("Ordu", "Bina"); an ordinary
                # word takes its ending directly, a place name in Turkish takes an apostrophe.
                if language != "az" or _opens_sentence(text, start):
                    continue
                if lowered is None:
                    lowered = frozenset(fold(w) for w in re.findall(r"(?<![\w'’])[a-zçğıöşüə]\w*", text))
                if any(w.startswith(m.group("name")) for w in lowered):
                    continue
            if language == "en" and _case_differs(text[start:bare_end], self._written[m.group("name")]):
                continue
            entity = self.registry.get(entity_id)
            label = entity.label if entity else "ORG"
            out.append(NameMatch(start, end, bare_end, label, entity_id))
        return out


def _case_differs(written: str, alias: str) -> bool:
    """A word the alias capitalises is written in lower case ("Azerbaijani armed forces")."""
    return any(
        a[:1].isupper() and w[:1].islower() for w, a in zip(written.split(), alias.split(), strict=False)
    )


_CAP = r"[A-ZÇĞİÖŞÜƏÂÎÛ][\w&.'’\-]*"
_CONNECT = r"(?:ve|və|and|&|of|for)"
# Role cues that precede a person's name in tr/az/en news.
_PERSON_CUES = (
    r"(?:Genel\s+Müdürü|Genel\s+Müdür\s+Yardımcısı|Yönetim\s+Kurulu\s+Başkanı|Başkanı|Başkan\s+Yardımcısı|"
    r"Bakanı|Bakan\s+Yardımcısı|Müdürü|Sözcüsü|Koordinatörü|Direktörü|Büyükelçisi|Sayın|"
    r"nazir(?:i|inin\s+müavini|\s+müavini)?|müavini|baş\s+direktoru|direktoru|icraçı\s+direktoru|sədri|"
    r"sədrinin\s+müavini|rəhbəri|sözçüsü|səfiri|cənab|xanım|"
    r"Minister|Deputy\s+Minister|CEO|Director|General\s+Manager|President|Chairman|spokesperson|spokesman|"
    r"Mr\.?|Ms\.?|Mrs\.?|Dr\.?)"
)
_PERSON = re.compile(
    rf"{_PERSON_CUES}\s+(?P<name>[A-ZÇĞİÖŞÜƏ][a-zçğıöşüəäâîû]+(?:\s+[A-ZÇĞİÖŞÜƏ][a-zçğıöşüəäâîû]+){{1,2}})"
    rf"(?P<sfx>{_SEP_SUFFIX})?(?![\w])"
)
# Inside a lookahead so that matches may overlap: "Sazişi Cenk Arıkan" must still try "Cenk Arıkan".
_GIVEN_SURNAME = re.compile(
    r"(?<![\w])(?=(?P<name>(?P<given>[A-ZÇĞİÖŞÜƏ][a-zçğıöşüə]+)\s+[A-ZÇĞİÖŞÜƏ][a-zçğıöşüə]+"
    rf"(?:-[A-ZÇĞİÖŞÜƏ][a-zçğıöşüə]+)?)(?P<sfx>{_SEP_SUFFIX})?(?![\w]))"
)
# "Bakü'deki …": a word with a case ending after an apostrophe is not the first word of a name.
_INFLECTED = re.compile(r"['’][^\W\d_]+$")
_LEADING_STOP = frozenset(
    {
        "bu",
        "the",
        "a",
        "an",
        "ve",
        "və",
        "and",
        "ayrıca",
        "həmçinin",
        "also",
        "yeni",
        "new",
        "türk",
        "turkish",
    }
)


@lru_cache(maxsize=4)
def _org_patterns(
    words: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]],
) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(organisation pattern, "ends in a legal form or institutional head" pattern) from models/org_words.json."""
    legal, heads, industry = words
    ends = "|".join([*legal, *(re.escape(h) for h in heads), *industry])
    trailing = "|".join(legal)
    org = re.compile(
        rf"(?P<name>{_CAP}(?:[ \t]+(?:{_CONNECT}[ \t]+)?{_CAP}){{0,5}}[ \t]+(?:{ends})(?:[ \t]+(?:{trailing}))?)"
        rf"(?P<sfx>{_SEP_SUFFIX}|(?<=[^\W\d_])(?:ın|in|un|ün|nın|nin|nun|nün|na|nə|ne|nda|ndə|nde|ndan|ndən|nden))?(?![\w])"
    )
    strong_end = re.compile(
        rf"(?<![\w])(?:{'|'.join([*legal, *(re.escape(h) for h in heads)])})(?:[ \t]+(?:{trailing}))?$"
    )
    return org, strong_end


def _is_common_word(word: str, lowered_words: set[str]) -> bool:
    """A capitalised word that the same text also uses in lower case is an ordinary word that
    starts a sentence ("Xəbərə …", "Ayrıca …"), not the first word of a name."""
    return word.lower() in lowered_words or word.lower() in _LEADING_STOP


def _opens_sentence(text: str, start: int) -> bool:
    """Nothing but an opening quote between the start of a sentence, paragraph or text and ``start``:
    there a capitalised ordinary word is capitalised because it comes first ("Xəbərə görə …"),
    inside a sentence because it is part of a name ("… Hərbi Hava Qüvvələri …")."""
    before = text[:start].rstrip(" \t\"“”„«»'‘’(")
    return not before or before[-1] in ".!?:…\n"


def _persons(text: str, registry: Registry) -> list[NameMatch]:
    """People by role cue ("Genel Müdürü Ahmet Yılmaz") or by a listed given name + a surname."""
    out = []
    for m in _PERSON.finditer(text):
        if registry.lookup(m.group("name")) is None:
            out.append(NameMatch(m.start("name"), m.end(), m.end("name"), "PERSON", None, strong=False))
    for m in _GIVEN_SURNAME.finditer(text):
        given = m.group("given")
        if given in registry.first_names and registry.lookup(m.group("name")) is None:
            end = m.end("sfx") if m.group("sfx") else m.end("name")
            out.append(NameMatch(m.start("name"), end, m.end("name"), "PERSON", None, strong=False))
    return out


def rule_matches(text: str, registry: Registry) -> list[NameMatch]:
    """Organisations by legal form or industry keyword, people by role cue or given name."""
    lowered = {w for w in re.findall(r"\b[a-zçğıöşüə][\w]*", text)}
    persons = _persons(text, registry)
    out: list[NameMatch] = list(persons)
    org, strong_end = _org_patterns(registry.org_words)
    for m in org.finditer(text):
        start, bare_end = m.start("name"), m.end("name")
        # A person named just before the company ("Cenk Arıkan və Kəpəz Elektronika ASC") is not part of it.
        for p in persons:
            if start <= p.start < bare_end and text[p.end :].lstrip().split(" ", 1)[0] in (
                "ve",
                "və",
                "and",
                "&",
            ):
                start = p.end + len(text[p.end :]) - len(text[p.end :].lstrip())
                start += len(text[start:].split(" ", 1)[0]) + 1
        words = text[start:bare_end].split()
        while len(words) > 2 and (
            (_is_common_word(words[0], lowered) and _opens_sentence(text, start))
            or words[0].lower() in _LEADING_STOP
            or words[0].endswith("-based")
            or _INFLECTED.search(words[0])
        ):
            start += len(words[0]) + 1
            words = words[1:]
        if len(words) < 2:
            continue
        strong = bool(strong_end.search(text[start:bare_end]))
        out.append(NameMatch(start, m.end(), bare_end, "ORG", None, strong=strong))
    return out


def _after(m: NameMatch, cut: int, text: str) -> NameMatch | None:
    """The part of a rule match after ``cut`` and a conjunction, if two or more words are left."""
    rest = _CONJUNCTION_START.match(text, cut, m.bare_end)
    if rest is None or len(text[rest.end() : m.bare_end].split()) < 2:
        return None
    return NameMatch(rest.end(), m.end, m.bare_end, m.label, None, m.strong)


_CONJUNCTION_START = re.compile(r"[ \t,]+(?:ve|və|and|&)[ \t]+")


def resolve_overlaps(matches: list[NameMatch], text: str = "") -> list[NameMatch]:
    """Keep non-overlapping matches: strong ones (registry, legal form) first, longer first within
    a class, registry wins ties. "Türkiye's Ministry of National Defence" stays two registry names
    while "Gəncə Metal Emal MMC" (a legal form) beats the place name inside it."""
    registry = [m for m in matches if m.entity_id is not None]
    # "Azerbaijan's Ministry of Defence Industry and Gəncə Metal Emal LLC": a rule match that
    # starts inside a registry name and runs past it is the next name, after the conjunction.
    trimmed = []
    for m in matches:
        r = next(
            (r for r in registry if m.entity_id is None and r.start < m.start < r.end < m.bare_end), None
        )
        rest = _after(m, r.end, text) if r is not None else m
        if rest is not None:
            trimmed.append(rest)
    matches = trimmed
    registry_ends = {m.end for m in matches if m.entity_id is not None}
    # "Türkiyənin Müdafiə Sənayesi Başqanlığı": a rule match ending in a registry name is that name
    # with a modifier in front, not a new organisation.
    matches = [m for m in matches if m.entity_id is not None or m.end not in registry_ends]
    ranked = sorted(matches, key=lambda m: (not m.strong, -(m.end - m.start), m.entity_id is None, m.start))
    kept: list[NameMatch] = []
    for m in ranked:
        if all(m.end <= k.start or m.start >= k.end for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.start)
