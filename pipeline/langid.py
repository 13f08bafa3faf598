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
# Only words that the other language does not also use ("bir", "olan", "bu", "daha" are both).
_AZ_WORDS = frozenset(
    {"və", "ilə", "üçün", "isə", "həm", "edib", "olub", "haqqında", "kimi", "deyil", "amma"}
)
_TR_WORDS = frozenset({"ve", "ile", "için", "olarak", "değil", "gibi", "ancak", "göre", "ama", "şey"})
# Letters that mark Turkish/Azerbaijani among Latin-script languages: ğ ı ə outright; ş unless the
# text also has letters of the other languages that use ş (Kurdish ê î û, Romanian ă ţ).
_TURKIC_LETTERS = set("ğĞıİəƏ")
_SH = set("şŞ")
_SH_ELSEWHERE = set("êÊîÎûÛăĂţŢ")
# Below this many letters langdetect's "some other language" verdict is noise ("How dare you ?" → so).
_MIN_LETTERS_FOR_OTHER = 40
# English function words: when they make up a fifth of the words the text is English and the
# (slow) langdetect call for "some other language" is skipped.
_EN_WORDS = frozenset(
    {"the", "of", "and", "to", "a", "in", "is", "that", "for", "on", "with", "as", "was", "by", "at", "from"}
    | {"it", "are", "be", "this", "has", "have", "said", "will", "an", "its", "their", "which", "not", "but"}
    | {"were", "been", "or"}
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
        best = detect_langs(text[:1000])[0]
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
    az_words = sum(1 for w in words if _AZ_LETTERS & set(w))
    az_share = az_words / len(words)
    # Azerbaijani prose has ə in roughly every third word; a tr or en text that quotes an
    # Azerbaijani name (Azərsilah, Əliyev) has one such word, or stays far below one in ten.
    if az_words >= 2 and az_share > 0.1:
        return "az"
    other = _other_language(text, words)
    if other is not None:
        return other
    scores = _lingua_scores(text)
    if az_words and max(scores, key=lambda k: scores[k]) != "en":
        # lingua reads a single "Azərsilah" in an English sentence as Turkic: ask again without ə
        # whether it is English; ə itself is weighed below, between tr and az only.
        plain = _lingua_scores(text.replace("ə", "e").replace("Ə", "E"))
        if max(plain, key=lambda k: plain[k]) == "en":
            scores = plain
    if max(scores, key=lambda k: scores[k]) != "en":
        scores = _turkish_or_azerbaijani(words, az_share, scores)
    hint = _hint(html_lang)
    if hint in scores:
        scores[hint] += 0.05  # a tie-breaker only
    return max(scores, key=lambda k: scores[k])


def _lingua_scores(text: str) -> dict[str, float]:
    from lingua import Language

    conf = {r.language: r.value for r in _lingua().compute_language_confidence_values(text[:5000])}
    return {
        "en": conf.get(Language.ENGLISH, 0.0),
        "tr": conf.get(Language.TURKISH, 0.0),
        "az": conf.get(Language.AZERBAIJANI, 0.0),
    }


def _turkish_or_azerbaijani(words: list[str], az_share: float, scores: dict[str, float]) -> dict[str, float]:
    """Correct lingua between tr and az with letter and function-word evidence.

    ə in more than 2% of the words means Azerbaijani: Turkish spells even Azerbaijani names
    without it (Azersilah, Aliyev). In a sentence-sized text one ə-word is enough unless words only
    Turkish uses outnumber those only Azerbaijani uses (a Turkish sentence quoting "Əliyev").
    Without ə, short Turkish is often read as Azerbaijani by lingua; the same words then decide.
    """
    out = dict(scores)
    lower = [w.lower() for w in words]
    tr_hits = sum(1 for w in lower if w in _TR_WORDS)
    az_hits = sum(1 for w in lower if w in _AZ_WORDS)
    short = len(words) <= 40
    if (not short and az_share > 0.02) or (short and az_share > 0 and tr_hits <= az_hits):
        out["az"] = max(out["az"], out["tr"]) + 0.01
    elif out["az"] > out["tr"] and tr_hits > az_hits:
        out["az"], out["tr"] = out["tr"], out["az"]
    return out


def _other_language(text: str, words: list[str]) -> str | None:
    """langdetect's code when it is confident the text is none of tr/az/en, else None.

    langdetect has no Azerbaijani profile (it says 'tr'), so it is only asked "ours or not". Its
    verdict needs enough letters, and is ignored when one word in twenty uses letters of the
    Turkish and Azerbaijani alphabets (ğ ı ə, or ş without ê î û ă ţ): short tr/az sentences full
    of foreign names are otherwise taken for Somali or Indonesian.
    """
    if sum(len(w) for w in words) < _MIN_LETTERS_FOR_OTHER:
        return None
    if sum(1 for w in words[:400] if w.lower() in _EN_WORDS) >= 0.2 * len(words[:400]):
        return None
    letters = set("".join(words))
    marks = _TURKIC_LETTERS | (set() if letters & _SH_ELSEWHERE else _SH)
    if sum(1 for w in words if marks & set(w)) / len(words) >= 0.05:
        return None
    top = _langdetect_top(text)
    if top is not None and top[0] not in OURS and top[1] > 0.9:
        return top[0]
    return None


def detect_paragraphs(text: str, html_lang: str | None = None) -> list[tuple[int, int, str]]:
    """Per-paragraph language for mixed pages: (start, end, language) over blank-line paragraphs."""
    out = []
    for m in re.finditer(r"[^\n]+(?:\n(?!\n)[^\n]+)*", text):
        out.append((m.start(), m.end(), detect(m.group(0), html_lang)))
    return out
