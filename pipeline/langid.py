"""Language identification for exactly tr / az / en (anything else is reported by its own code).

langdetect has no Azerbaijani profile (it calls Azerbaijani Turkish), so it is used only to tell
"one of ours" from "something else". Between tr, az and en we combine letter evidence (``ə`` is
Azerbaijani-only and its most frequent vowel; ``q``/``x`` are common in Azerbaijani words and rare in
Turkish ones) with lingua restricted to the three languages. ``<html lang>`` is only a tie-breaker:
it is often missing or wrong on real sites.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

OURS = ("tr", "az", "en")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Letters and words that only one of tr/az uses. Counted per word, so one loanword can't flip a page.
_AZ_LETTERS = set("əƏ")
_AZ_WORDS = frozenset({"və", "ilə", "üçün", "bu", "olan", "isə", "həm", "edib", "olub", "haqqında", "kimi"})
_TR_WORDS = frozenset(
    {"ve", "ile", "için", "bir", "olan", "olarak", "değil", "gibi", "ancak", "daha", "göre"}
)


@lru_cache(maxsize=1)
def _lingua() -> Any:
    from lingua import Language, LanguageDetectorBuilder

    return (
        LanguageDetectorBuilder.from_languages(Language.TURKISH, Language.AZERBAIJANI, Language.ENGLISH)
        .with_preloaded_language_models()
        .build()
    )


def _langdetect_top(text: str) -> tuple[str, float] | None:
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0  # deterministic results
    try:
        best = detect_langs(text[:2000])[0]
    except LangDetectException:
        return None
    return str(best.lang), float(best.prob)


def _hint(html_lang: str | None) -> str | None:
    if not html_lang:
        return None
    code = html_lang.strip().lower().replace("_", "-").split("-")[0]
    return code or None


def detect(text: str, html_lang: str | None = None) -> str:
    """Return ``tr``, ``az``, ``en``, another ISO 639-1 code, or ``und`` when there is no text."""
    words = _WORD.findall(text[:20000])
    if not words:
        return "und"
    lower = [w.lower() for w in words]
    az_letter_words = sum(1 for w in words if _AZ_LETTERS & set(w))
    # ə in more than 2% of words is decisive: Azerbaijani prose has it in roughly every third word.
    if az_letter_words >= 2 and az_letter_words / len(words) > 0.02:
        return "az"
    top = _langdetect_top(text)
    if top is not None and top[0] not in ("tr", "en") and top[1] > 0.9 and az_letter_words == 0:
        # A language that is none of ours (langdetect has no 'az' and labels it 'tr').
        return top[0]
    from lingua import Language

    conf = {r.language: r.value for r in _lingua().compute_language_confidence_values(text[:5000])}
    scores = {
        "en": conf.get(Language.ENGLISH, 0.0),
        "tr": conf.get(Language.TURKISH, 0.0),
        "az": conf.get(Language.AZERBAIJANI, 0.0),
    }
    # Short Turkish is often read as Azerbaijani by lingua; without any ə, function words decide.
    if az_letter_words == 0 and scores["az"] > scores["tr"]:
        tr_hits = sum(1 for w in lower if w in _TR_WORDS)
        az_hits = sum(1 for w in lower if w in _AZ_WORDS)
        if tr_hits >= az_hits:
            scores["az"], scores["tr"] = scores["tr"], scores["az"]
    hint = _hint(html_lang)
    if hint in scores:
        scores[hint] += 0.05  # a tie-breaker only
    return max(scores, key=lambda k: scores[k])


def detect_paragraphs(text: str, html_lang: str | None = None) -> list[tuple[int, int, str]]:
    """Per-paragraph language for mixed pages: (start, end, language) over blank-line paragraphs."""
    out = []
    for m in re.finditer(r"[^\n]+(?:\n(?!\n)[^\n]+)*", text):
        out.append((m.start(), m.end(), detect(m.group(0), html_lang)))
    return out
