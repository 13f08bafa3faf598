"""The NLP stage: documents in, analyses (mentions, entities, agreements) out, batched per language."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.config import NlpSettings
from pipeline.nlp.agreements import extract_agreements
from pipeline.nlp.entities import EntityFinder
from pipeline.records import Analysis, Document


class Analyzer:
    def __init__(self, settings: NlpSettings) -> None:
        self.models_dir = settings.models_dir
        self.entities = EntityFinder(settings.models_dir, settings.batch_size)
        self.countries = self.entities.registry.countries()

    def analyze(self, documents: Sequence[Document]) -> list[Analysis]:
        out = []
        for doc, (mentions, entities) in zip(documents, self.entities.find(documents), strict=True):
            agreements = extract_agreements(
                doc, mentions, self.models_dir, self.countries, self.entities.registry
            )
            out.append(Analysis(doc, tuple(mentions), tuple(agreements), tuple(entities)))
        return out
