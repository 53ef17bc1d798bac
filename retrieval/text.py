"""Text analysis for lexical search in English and Chinese, the same at index and query time.

Latin text is lower-cased, split into words, stripped of stop words and lightly stemmed
(plural forms). Chinese has no spaces: each run of CJK characters yields jieba's search-mode
words plus the run's character bigrams, so a query matches a title even where the segmenter
cuts the two differently; `cjk_chars` gives the single characters, which stores search as a
separate field with its own weight.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from typing import Literal

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RANGE = _CJK  # the Chinese characters, as ranges of a regular expression class
_TOKEN_RE = re.compile(rf"[{_CJK}]+|[a-z0-9]+(?:[.'][a-z0-9]+)*")
_CJK_RE = re.compile(rf"[{_CJK}]")

STOP_WORDS = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "you",
        "your",
        "what",
        "which",
        "who",
        "how",
        "do",
        "does",
        "can",
        "的",
        "了",
        "和",
        "是",
        "在",
        "有",
        "也",
        "就",
        "都",
        "与",
        "及",
        "或",
        "吗",
        "呢",
        "吧",
        "啊",
        "个",
        "一个",
        "这",
        "那",
        "我",
        "你",
        "他",
        "她",
        "它",
    )
)

_jieba_lock = threading.Lock()
_jieba_ready = False


def _jieba():  # type: ignore[no-untyped-def]
    """jieba, initialised once (its dictionary takes about a second to load)."""
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return jieba


def warm_up() -> None:
    """Load the Chinese segmenter now rather than on the first Chinese text."""
    _jieba()


def normalize(text: str) -> str:
    """NFKC-normalise (full-width to half-width) and lower-case."""
    return unicodedata.normalize("NFKC", text).casefold()


def has_cjk(text: str) -> bool:
    """Whether ``text`` contains any Chinese character."""
    return _CJK_RE.search(text) is not None


Script = Literal["cjk", "latin"]


def script_of(text: str) -> Script:
    """The writing of ``text`` as cross-lingual search tells languages apart: ``cjk`` when it
    holds any Chinese character, else ``latin``."""
    return "cjk" if has_cjk(text) else "latin"


def stem(word: str) -> str:
    """A light English stemmer: plural forms only ("headphones" → "headphone")."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _cjk_tokens(run: str) -> Iterable[str]:
    if len(run) == 1:
        yield run
        return
    for word in _jieba().cut_for_search(run):
        if word not in STOP_WORDS:
            yield word
    for i in range(len(run) - 1):
        yield run[i : i + 2]


def cjk_chars(text: str) -> list[str]:
    """The Chinese characters of ``text``, one term each: the analysis that carries over to
    queries a segmenter cuts differently from the titles (searched as its own weighted field)."""
    return _CJK_RE.findall(normalize(text))


def tokenize(text: str) -> list[str]:
    """Split ``text`` into the terms lexical search indexes and matches."""
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(normalize(text)):
        piece = match.group()
        if _CJK_RE.match(piece):
            tokens.extend(_cjk_tokens(piece))
        elif piece not in STOP_WORDS:
            tokens.append(stem(piece))
    return tokens


def coverage_terms(text: str) -> frozenset[str]:
    """The terms `coverage` compares: stemmed words, and the character bigrams of each Chinese
    run (a lone character as itself). No segmenter: the same text always gives the same terms."""
    terms: set[str] = set()
    for match in _TOKEN_RE.finditer(normalize(text)):
        piece = match.group()
        if _CJK_RE.match(piece):
            if len(piece) == 1:
                terms.add(piece)
            else:
                terms.update(piece[i : i + 2] for i in range(len(piece) - 1))
        elif piece not in STOP_WORDS:
            terms.add(stem(piece))
    return frozenset(terms)


def coverage(query: str, text: str) -> float | None:
    """The share of the query's terms (`coverage_terms`) that ``text`` holds, from 0 to 1;
    None for a query without terms (only stop words or punctuation)."""
    wanted = coverage_terms(query)
    if not wanted:
        return None
    return len(wanted & coverage_terms(text)) / len(wanted)
