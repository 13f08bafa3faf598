"""The entity registry (``models/entities.jsonl`` + people, media and places files) and linking of names to canonical ids.

Known entities keep their registry id in every language. A name in no list gets an id derived
from its normalised form without attached suffix, so the same company found on a Turkish and an
English page ends up with one id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipeline.errors import UsageError
from pipeline.records import Entity, sha1
from pipeline.textnorm import normalize

_APOSTROPHE_SUFFIX = re.compile(r"['’`ʼ][^\W\d_]{1,8}$")
_HYPHEN_SUFFIX = re.compile(r"-[^\W\d_]{1,6}$")
_POSSESSIVE_EN = re.compile(r"['’]s?$")


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    entity: Entity
    aliases_by_lang: dict[str, tuple[str, ...]]
    kind: str = ""  # "country" for GPEs that can be a party (an export's buyer)
    iso: str = ""  # a country's ISO 3166-1 alpha-2 code


class Registry:
    """Aliases → entity, loaded once from the models dir."""

    def __init__(
        self,
        entries: list[RegistryEntry],
        suffixes: tuple[str, ...],
        first_names: frozenset[str] = frozenset(),
        org_words: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ()),
    ) -> None:
        self.org_words = org_words
        self.entries = {e.entity.entity_id: e for e in entries}
        self.suffixes = suffixes
        self._folded_suffixes = tuple(dict.fromkeys(normalize(s) for s in suffixes))
        self.first_names = first_names
        self._by_alias: dict[str, str] = {}
        for entry in entries:
            for alias in entry.entity.aliases:
                self._by_alias.setdefault(normalize(alias), entry.entity.entity_id)
        self._prefix_index: dict[str, list[str]] = {}
        for key in self._by_alias:
            self._prefix_index.setdefault(key[:4], []).append(key)
        legal = "|".join(org_words[0])
        self._legal_tail = (
            re.compile(rf"(?:[\s,]+(?:{legal}|Anonim\s+Şirketi|Anonim\s+Şirkəti))+$") if legal else None
        )
        # People's full names by a spelling-independent key: İsmayıl Dəmir finds İsmail Demir.
        self._person_keys: dict[str, str] = {}
        surnames: dict[str, set[str]] = {}
        for entry in entries:
            if entry.entity.label == "PERSON":
                for alias in entry.entity.aliases:
                    if len(alias.split()) >= 2:
                        self._person_keys.setdefault(transliteration_key(alias), entry.entity.entity_id)
                        surnames.setdefault(transliteration_key(alias.split()[-1]), set()).add(
                            entry.entity.entity_id
                        )
        # A surname that only one listed person has (Subianto, Görgün; not Aliyev).
        self._surnames = {k: next(iter(v)) for k, v in surnames.items() if len(v) == 1}

    @classmethod
    def load(cls, models_dir: Path, *, with_geo: bool = True) -> Registry:
        """The hand-written registry files (``REGISTRY_FILES``; the first is required), plus countries
        and cities from bundled geo data. An alias already taken by an earlier entry stays with it."""
        entries = []
        iso: set[str] = set()
        for i, filename in enumerate(REGISTRY_FILES):
            path = models_dir / filename
            if i and not path.exists():
                continue
            for entry, code in _read_registry_file(path):
                entries.append(entry)
                if code:
                    iso.add(code)
        if with_geo:
            entries.extend(_geo_entries(entries, frozenset(iso)))
        return cls(
            entries, load_suffixes(models_dir), load_first_names(models_dir), load_org_words(models_dir)
        )

    def aliases(self, language: str | None = None) -> list[tuple[str, str]]:
        """(alias, entity id) pairs; every language's aliases are usable on every page."""
        del language  # names cross languages in real text ("Azersilah" on Azerbaijani pages)
        return [(a, e.entity.entity_id) for e in self.entries.values() for a in e.entity.aliases]

    def alias_keys_by_prefix(self, prefix: str) -> list[str]:
        """Normalised aliases starting with ``prefix`` (4 letters), for near-miss checks."""
        return self._prefix_index.get(prefix, [])

    def countries(self) -> frozenset[str]:
        return frozenset(i for i, e in self.entries.items() if e.kind == "country")

    def iso(self, entity_id: str) -> str:
        """The ISO code of a country entity ("" for anything else)."""
        entry = self.entries.get(entity_id)
        return entry.iso if entry is not None and entry.kind == "country" else ""

    def get(self, entity_id: str) -> Entity | None:
        entry = self.entries.get(entity_id)
        return None if entry is None else entry.entity

    def lookup(self, name: str, *, attached: bool = True) -> Entity | None:
        """The registry entity a name (possibly with a suffix) refers to, if any. ``attached``:
        also try Turkish/Azerbaijani endings written without a separator (not for English)."""
        for candidate in (
            self.variants(name)
            if attached
            else list(dict.fromkeys([normalize(name), normalize(strip_suffix(name))]))
        ):
            entity_id = self._by_alias.get(candidate)
            if entity_id:
                return self.entries[entity_id].entity
        bare = self.without_legal_form(name)
        if bare != name:
            return self.lookup(bare, attached=attached)
        return None

    def without_legal_form(self, name: str) -> str:
        """``Makine ve Kimya Endüstrisi A.Ş.`` → ``Makine ve Kimya Endüstrisi`` (a bare legal form stays)."""
        if self._legal_tail is None:
            return name
        bare = self._legal_tail.sub("", name).strip(" ,")
        return bare if bare and bare != name else name

    def person_by_key(self, name: str) -> Entity | None:
        """The listed person whose full name has the same transliteration key, or, for a surname
        alone, the one listed person with that surname."""
        words = name.split()
        if len(words) >= 2 and len(words[0].rstrip(".")) > 1:
            entity_id = self._person_keys.get(transliteration_key(name))
        else:
            entity_id = self._surnames.get(transliteration_key(words[-1])) if words else None
        return None if entity_id is None else self.entries[entity_id].entity

    def variants(self, name: str) -> list[str]:
        """Normalised forms a name may stand for: as written, without a separated suffix, and
        without each listed attached suffix (``Azərsilahın`` → ``azersilah``), most literal first."""
        out = [normalize(name), normalize(strip_suffix(name))]
        key = out[0]
        for folded in self._folded_suffixes:
            if key.endswith(folded) and len(key) - len(folded) >= 3:
                out.append(key[: -len(folded)])
        return list(dict.fromkeys(out))

    def link(self, name: str, label: str, *, attached: bool = True) -> Entity:
        """Registry entity for a name, or a content-derived entity for an unlisted one.

        An unlisted name's id comes from its transliteration key without the legal form, so the az,
        tr and en spellings of one person or company meet (Zakir Həsənov = Zakir Hasanov; Aqil
        Qurbanov = Agil Gurbanov; X A.Ş. = X Anonim Şirketi = X)."""
        found = self.lookup(name, attached=attached)
        if found is None and label == "PERSON":
            found = self.person_by_key(strip_suffix(name))
        if found is not None:
            return found
        canonical = strip_suffix(name)
        key = transliteration_key(self.without_legal_form(canonical) if label == "ORG" else canonical)
        return Entity(
            entity_id="x-" + sha1(key)[:12],
            label=label,
            canonical=canonical,
            aliases=(canonical,),
            in_registry=False,
        )


# The domain's own names first, then state institutions and alliances, heads of state and officials,
# news media, regions and seas.
REGISTRY_FILES = ("entities.jsonl", "institutions.jsonl", "people.jsonl", "media.jsonl", "places.jsonl")


def _read_registry_file(path: Path) -> list[tuple[RegistryEntry, str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read the entity registry {path}: {exc}") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            by_lang = {k: tuple(v) for k, v in row["aliases"].items()}
            aliases = tuple(dict.fromkeys([row["canonical"], *(a for v in by_lang.values() for a in v)]))
            entity = Entity(row["id"], row["label"], row["canonical"], aliases, row.get("qid"), True)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{path}:{n}: bad registry row ({exc})") from None
        code = str(row.get("iso") or "")
        out.append((RegistryEntry(entity, by_lang, str(row.get("kind", "")), code.upper()), code))
    return out


def load_suffixes(models_dir: Path) -> tuple[str, ...]:
    path = models_dir / "suffixes.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    words = {w for line in text.splitlines() if not line.startswith("#") for w in line.split()}
    return tuple(sorted(words, key=lambda w: (-len(w), w)))


def load_org_words(models_dir: Path) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(legal forms, institutional heads, industry words) that end organisation names."""
    path = models_dir / "org_words.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return tuple(data["legal_forms"]), tuple(data["heads"]), tuple(data["industry"])
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def load_first_names(models_dir: Path) -> frozenset[str]:
    path = models_dir / "first_names.txt"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _geo_entries(entries: list[RegistryEntry], registry_iso: frozenset[str]) -> list[RegistryEntry]:
    """Geo entities whose names no hand-written entry uses (the hand-written entry wins)."""
    from pipeline.nlp.geo import city_entities, country_entities

    taken = {normalize(a) for e in entries for a in e.entity.aliases}
    out = []
    for entity, kind in [(c, "country") for c in country_entities(registry_iso)] + [
        (c, "") for c in city_entities()
    ]:
        keys = {normalize(a) for a in entity.aliases}
        if keys & taken:
            continue
        taken |= keys
        code = entity.entity_id.removeprefix("country-").upper() if kind == "country" else ""
        out.append(RegistryEntry(entity, {}, kind, code))
    return out


_TRANSLIT = (
    ("kh", "x"),
    ("sh", "s"),
    ("ch", "c"),
    ("zh", "j"),
    ("gh", "g"),
    ("j", "c"),
    ("q", "k"),
    ("g", "k"),
    ("x", "h"),
    ("w", "v"),
    ("y", "i"),
)


def transliteration_key(name: str) -> str:
    """A key equal for az/tr/en spellings of one name: folded, digraphs mapped, vowels dropped after
    the first letter of each word, repeated letters collapsed (Bağırzadə ~ Bagirzade, Nəsibov ~ Nesibov)."""
    words = []
    for word in normalize(name).split():
        for a, b in _TRANSLIT:
            word = word.replace(a, b)
        skeleton = word[:1] + "".join(c for c in word[1:] if c not in "aeiou")
        words.append("".join(c for i, c in enumerate(skeleton) if i == 0 or c != skeleton[i - 1]))
    return " ".join(words)


# Surname endings of the region (Azerbaijani/Russian/Central Asian -ov/-yev/-ova, Azerbaijani -li/-zadə,
# Turkish -oğlu, Slavic -ski) and the case endings Azerbaijani and Turkish attach to them without an
# apostrophe (İbodullayevin, Məmmədliyə, Hüseynzadəni). A bare -a/-ə after -ov/-ev is left alone: it is
# the feminine surname (Həsənova), not a dative.
_SURNAME_CASE = re.compile(
    r"^(?P<name>.+?(?:ov|ev|yev|ova|eva|yeva|in|ina|li|lı|lu|lü|zadə|zade|oğlu|ski|sky))"
    r"(?P<case>nın|nin|nun|nün|ın|in|un|ün|ya|yə|ye|ya|nı|ni|nu|nü|da|də|de|dan|dən|den|la|lə|le|ilə|ile|yla|ylə|yle)$"
)


def strip_person_case(name: str) -> str:
    """``Mansurjon İbodullayevin`` → ``Mansurjon İbodullayev``: an attached case ending after a
    surname ending is not part of the name (tr/az only; a name in no list keeps everything else)."""
    words = name.split()
    if len(words) < 2:
        return name
    m = _SURNAME_CASE.match(words[-1])
    if m is None or len(m.group("name")) < 4:
        return name
    return " ".join([*words[:-1], m.group("name")])


def strip_suffix(name: str) -> str:
    """``MKE'nin`` → ``MKE``, ``MKA-nın`` → ``MKA``, ``Azersilah's`` → ``Azersilah``.

    Only suffixes behind a separator: where a suffix is attached directly (``Bakıda``) the matcher
    that found the name knows where the name ends and passes the bare name.
    """
    name = name.strip()
    for pattern in (_APOSTROPHE_SUFFIX, _HYPHEN_SUFFIX, _POSSESSIVE_EN):
        stripped = pattern.sub("", name)
        if stripped != name and stripped:
            return stripped
    return name


@lru_cache(maxsize=4)
def load_registry(models_dir: str) -> Registry:
    """The registry of a models dir, loaded once per process."""
    return Registry.load(Path(models_dir))
