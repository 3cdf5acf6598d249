"""Which language to answer in: the question's."""

from __future__ import annotations

import re
from bot.answering.texts import Lang

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
_WORDISH = re.compile(r"[\w\u3400-\u4dbf\u4e00-\u9fff]", re.UNICODE)


def detect_language(text: str) -> Lang:
    """Chinese if the text has a fair share of Han characters (technical terms are often Latin)."""
    han = len(_CJK.findall(text))
    latin_words = len(re.findall(r"[A-Za-z]+", text))
    if han == 0:
        return "en" if latin_words else "zh"
    return "zh" if han >= latin_words else "en"


def has_words(text: str) -> bool:
    """False for input that is only emoji, punctuation or whitespace."""
    return bool(_WORDISH.search(text))
