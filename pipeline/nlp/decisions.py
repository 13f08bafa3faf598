"""An analyst's linking decisions, applied to every analysis before it is stored.

``defintel entities merge KEEP OTHER`` says two ids are one entity: every mention, entity and
agreement party of OTHER becomes KEEP. ``defintel entities split ID NAME`` says the mentions of ID
written as NAME (with or without an attached suffix, in any spelling with the same transliteration
key) are a different entity: they get an id of their own, derived from ID and NAME. Decisions are
rows kept in the store (``link_decisions``: action, id, other, reason, when) and are replayed in
order on each new or re-ingested document, so they survive re-ingests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pipeline.nlp.registry import strip_suffix, transliteration_key
from pipeline.records import Agreement, Analysis, Entity, Mention, sha1
from pipeline.textnorm import normalize


@dataclass(frozen=True, slots=True)
class LinkDecision:
    action: str  # "merge" | "split"
    entity_id: str  # merge: the id that disappears; split: the id a name is taken out of
    other: str  # merge: the id kept; split: the name that becomes its own entity
    reason: str = ""
    decided_at: str = ""


def split_id(entity_id: str, name: str) -> str:
    """The id a split gives the mentions of ``name`` taken out of ``entity_id``."""
    return "x-" + sha1(f"split:{entity_id}:{transliteration_key(name)}")[:12]


def _name_matches(text: str, name: str) -> bool:
    """``Görgünün``, ``Görgün'ün`` and ``Gorgun`` are written forms of ``Görgün``; ``Northern Optics
    LLC`` is one of ``Northern Optics`` (the name followed by more words)."""
    written, wanted = normalize(strip_suffix(text)), normalize(name)
    if written == wanted or transliteration_key(written) == transliteration_key(wanted):
        return True
    rest = written[len(wanted) :] if written.startswith(wanted) else ""
    return bool(rest) and (rest.startswith(" ") or (len(rest) <= 5 and rest.isalpha()))


class Decisions:
    """The decisions of a store, in the order they were taken."""

    def __init__(self, decisions: Sequence[LinkDecision], canonical: dict[str, Entity] | None = None) -> None:
        self.decisions = tuple(decisions)
        self.canonical = canonical or {}  # entity rows for the ids merges keep

    def __bool__(self) -> bool:
        return bool(self.decisions)

    def resolve(self, entity_id: str, text: str = "") -> str:
        """The id a mention linked to ``entity_id`` and written ``text`` ends up with."""
        for d in self.decisions:
            if d.action == "merge" and entity_id == d.entity_id:
                entity_id = d.other
            elif d.action == "split" and entity_id == d.entity_id and text and _name_matches(text, d.other):
                entity_id = split_id(d.entity_id, d.other)
        return entity_id

    def split_entity(self, entity_id: str, label: str) -> Entity | None:
        for d in self.decisions:
            if d.action == "split" and split_id(d.entity_id, d.other) == entity_id:
                return Entity(entity_id, label, d.other, (d.other,), None, False)
        return None

    def apply(self, analysis: Analysis) -> Analysis:
        if not self.decisions:
            return analysis
        by_id = {e.entity_id: e for e in analysis.entities}
        mentions: list[Mention] = []
        entities: dict[str, Entity] = {}
        for m in analysis.mentions:
            new_id = self.resolve(m.entity_id, m.text)
            entity = by_id.get(new_id) or self.canonical.get(new_id) or self.split_entity(new_id, m.label)
            if entity is None:
                base = by_id.get(m.entity_id)
                entity = Entity(new_id, m.label, base.canonical if base else m.canonical, (), None, False)
            aliases = tuple(
                dict.fromkeys(
                    [*entity.aliases, *(by_id[m.entity_id].aliases if m.entity_id in by_id else ())]
                )
            )
            entities[new_id] = replace(entity, aliases=aliases)
            mentions.append(replace(m, entity_id=new_id, canonical=entity.canonical, label=entity.label))
        agreements: list[Agreement] = []
        for a in analysis.agreements:
            ids = [self.resolve(i) for i in a.party_ids]
            names = [
                entities[i].canonical if i in entities else n for i, n in zip(ids, a.parties, strict=False)
            ]
            names += list(a.parties[len(ids) :])
            agreements.append(
                replace(a, party_ids=tuple(dict.fromkeys(ids)), parties=tuple(dict.fromkeys(names)))
            )
        return replace(
            analysis,
            mentions=tuple(mentions),
            entities=tuple(entities.values()),
            agreements=tuple(agreements),
        )
