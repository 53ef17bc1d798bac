"""Answer-text metrics: SQuAD-style token F1 and ROUGE-L, over the same normalised tokens.

Normalisation follows the SQuAD evaluation script: lower-case, delete punctuation (ASCII
punctuation and every Unicode punctuation character, so Chinese ``，。`` too), drop the English
articles ``a``, ``an`` and ``the``, and split on white space. Chinese has no spaces, so each
Chinese character is a token of its own (a Latin run inside Chinese text stays one token:
``iphone手机`` is ``iphone``, ``手``, ``机``).

Both metrics compare a candidate with one reference; `best` takes the highest score over several
references (as SQuAD does with its several gold answers). When either side has no token left,
the score is 1.0 if both are empty and 0.0 otherwise.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
_ASCII_PUNCTUATION = frozenset(string.punctuation)


def _is_punctuation(char: str) -> bool:
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def tokens(text: str) -> list[str]:
    """The normalised tokens of ``text`` (see the module docstring)."""
    text = "".join(c for c in text.lower() if not _is_punctuation(c))
    text = _ARTICLES.sub(" ", text)
    return _TOKEN.findall(text)


def token_f1(candidate: str, reference: str) -> float:
    """The harmonic mean of token precision and recall (tokens counted with multiplicity)."""
    got, want = tokens(candidate), tokens(reference)
    if not got or not want:
        return float(got == want)
    same = sum((Counter(got) & Counter(want)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(got), same / len(want)
    return 2 * precision * recall / (precision + recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """The length of the longest common subsequence of two token lists."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1: LCS / candidate length (precision) and LCS / reference length (recall)."""
    got, want = tokens(candidate), tokens(reference)
    if not got or not want:
        return float(got == want)
    common = lcs_length(got, want)
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def best(
    metric: Callable[[str, str], float], candidate: str, references: Sequence[str]
) -> float | None:
    """The highest ``metric`` of ``candidate`` over ``references``; None without any."""
    if not references:
        return None
    return max(metric(candidate, reference) for reference in references)
