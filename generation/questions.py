"""What a question asks for, and whether a passage settles it: rules in English and Chinese.

- `question_kind`: "yes_no" ("does it come with a charger?", "能防水吗"), "duration" ("how long
  does the battery last?", "续航多久"), "count" ("how many pieces?", "几个"), "measure" ("what
  size…", "how heavy", "尺寸多大"), "price" ("how much does it cost", "多少钱") or "open".
- `holds_kind`: whether a text holds an answer of that kind (a duration holds a number and a
  unit of time; a measure, a number and a unit of length, weight, volume or power, or a size).
- `negated`: whether a text denies what it states (an odd number of negations: "not",
  "did not come with", "without", "no", "False"; 不, 没, 无 outside words such as 不锈钢 or
  无线); `hedged`: whether it only guesses ("might", "may", "probably", 可能, 也许).
- `question_negated`: whether a question asks about a denial ("does it work without
  batteries?"), not counting how it asks ("doesn't it…?", 有没有, 能不能).
- `asking_sentence`: the sentence of a question that asks; the kind is read from it.

These are what the answer checker relies on: a yes/no answer is Yes or No only when its quote
settles it, and an answer must hold what the question asks for.
"""

from __future__ import annotations

import re
from typing import Literal

from retrieval.text import has_cjk, normalize

QuestionKind = Literal["yes_no", "duration", "count", "measure", "price", "open"]

_EN_YES_NO = re.compile(
    r"^(?:(?:hi|hello|so|and|but|also|ok|okay|please|quick question)[,!.]?\s+)*"
    r"(?:is|are|was|were|does|do|did|can|could|will|would|should|shall|has|have|had|may|"
    r"might|must|isn't|aren't|doesn't|don't|didn't|can't|won't|wouldn't|hasn't|haven't|"
    r"any)\b",  # "any rust issues?" asks whether there are
    re.IGNORECASE,
)
# The leading auxiliary of an English question, negated ("doesn't it …?"): it asks, it does
# not deny ("Doesn't it come with a charger?" — "Yes, it comes with one").
_EN_ASKING_NEGATION = re.compile(
    r"^\W*(?:isn't|aren't|wasn't|weren't|doesn't|don't|didn't|can't|couldn't|won't|wouldn't|"
    r"shouldn't|hasn't|haven't|hadn't)\b",
    re.IGNORECASE,
)
# A Chinese question's A-not-A form (有没有, 能不能) and question words (是否, 有无) ask; they
# do not deny.
_ZH_ASKING_NEGATION = re.compile(r"(\w)[不没]\1|是否|能否|可否|有无")
# The sentences of a question: the last one that asks is the question ("my model is frs20qrb.
# will this one fit?").
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")
# A full stop that ends an abbreviation ("e.g.", "approx.", "no."), not a sentence.
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|vs|approx|incl|no|nos|mr|mrs|dr|st|ft|in|oz|lbs?|max|min)|\b\w)\.$",
    re.IGNORECASE,
)
_ZH_YES_NO = re.compile(
    r"[吗嘛么][？?。!！\s]*$|是否|能否|可否|有没有|能不能|会不会|可不可以|是不是|要不要|需不需要|"
    r"有无|用不用|行不行|好不好用|耐不耐|防不防|支不支持|带不带|送不送|包不包"
)
_TIME_UNITS = (
    r"(?:hours?|hrs?|h|minutes?|mins?|seconds?|secs?|days?|nights?|weeks?|months?|years?|yrs?)"
)
_EN_DURATION = re.compile(
    r"\bhow long\b.*\b(?:last|lasts|take|takes|run|runs|charge|charging|battery|stay|stays|"
    r"keep|keeps|hold|work|play|playtime|boil|cook|heat|dry|burn)\b"
    rf"|\bhow many {_TIME_UNITS}\b|\bhow much time\b|\bbattery life\b",
    re.IGNORECASE,
)
_ZH_DURATION = re.compile(r"多久|多长时间|几个?小时|几分钟|几天|续航|待机时间|使用时间")
_MEASURE_UNITS = (
    r"(?:inch(?:es)?|in|\"|''|ft|feet|foot|yards?|cm|mm|m|meters?|metres?|km|lbs?|pounds?|oz|"
    r"ounces?|kg|g|grams?|kilograms?|l|liters?|litres?|ml|gallons?|gal|quarts?|qt|cups?|"
    r"watts?|w|kw|volts?|v|amps?|a|mah|wh|btu|psi|gb|tb|mb|hz|db|mph|rpm|sq\.? ?ft)"
)
_EN_COUNT = re.compile(rf"\bhow many\b(?!\s+{_MEASURE_UNITS}\b)", re.IGNORECASE)
_ZH_COUNT = re.compile(
    r"几[个件只片块支条张本套根包瓶袋双把台]|多少[个件只片块支条张本套根包瓶袋双把台]"
)
_EN_MEASURE = re.compile(
    r"\bhow (?:big|tall|wide|heavy|deep|thick|high|large|small|long|far|much does (?:it|this|"
    r"the \w+) weigh|loud|hot|cold|bright|powerful)\b"
    r"|\bwhat (?:is the |are the |'s the )?(?:size|sizes|dimensions?|weight|capacity|length|"
    r"width|height|depth|thickness|diameter|voltage|wattage|volume|measurements?|temperature)\b"
    rf"|\bhow many {_MEASURE_UNITS}\b|\b(?:dimensions?|measurements?)\b",
    re.IGNORECASE,
)
_ZH_MEASURE = re.compile(
    r"尺寸|尺码|多大|多重|多高|多宽|多长|多厚|多深|重量|容量|多少瓦|功率|多少毫升|多少升|多少斤|"
    r"多少克|多少公斤|多少厘米|多少寸|几寸|几码|多少码|大小"
)
# "is it stored inside or outside?" asks which, not whether.
_CHOICE = re.compile(r"\b\w+[\"'”’)]? or (?!not\b|no\b)[\"'“‘(]?\w+", re.IGNORECASE)
_EN_PRICE = re.compile(
    r"\bhow much (?:does|is|are|do|did|would|will)\b(?!.*\bweigh)|\bwhat(?:'s| is) the price\b"
    r"|\bprice\b|\bcost\b",
    re.IGNORECASE,
)
_ZH_PRICE = re.compile(r"多少钱|价格|价钱|售价|几块钱|贵不贵")

_NUMBER = (
    r"(?:\d+(?:[.,]\d+)*(?:\s*(?:-|–|to|~)\s*\d+(?:\.\d+)?)?|half|one|two|three|four|five|six|"
    r"seven|eight|nine|ten|eleven|twelve|a few|several|a couple)"
)
_ZH_NUMBER = r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千半]+)"
_DURATION_RE = re.compile(
    rf"(?:{_NUMBER}\s*\+?\s*(?:-\s*)?|\ban?\s+){_TIME_UNITS}\b"
    r"|\ball (?:day|night|week)\b|\bovernight\b"
    rf"|\b{_TIME_UNITS}\s*[:=]\s*\d"  # an attribute named with its unit: "battery life hours: 30"
    rf"|{_ZH_NUMBER}\s*(?:个)?(?:小时|分钟|秒|天|周|星期|个月|月|年)",
    re.IGNORECASE,
)
_COUNT_RE = re.compile(rf"\b{_NUMBER}\b|{_ZH_NUMBER}|\bsingle\b|\bpair\b|\bdozen\b", re.IGNORECASE)
_MEASURE_RE = re.compile(
    rf"{_NUMBER}\s*(?:-\s*)?{_MEASURE_UNITS}(?![a-z])|\d+(?:\.\d+)?\s*[x×]\s*\d+"
    rf"|\b{_MEASURE_UNITS}\s*[:=]\s*\d"
    r"|(?<![\w'’])(?:x{0,3}-?small|medium|x{0,3}-?large|xs|s|m|l|xl|xxl|xxxl|one size|queen|"
    r"king|twin|full|petite|plus size)(?![\w'’])"
    rf"|{_ZH_NUMBER}\s*(?:厘米|公分|毫米|米|克|千克|公斤|斤|升|毫升|瓦|伏|寸|英寸|码|号)"
    r"|[SMLX]{1,3}码|均码|大号|中号|小号",
    re.IGNORECASE,
)
_PRICE_RE = re.compile(
    r"(?:US\$|\$|€|£|¥|￥)\s*\d|\d+(?:\.\d+)?\s*(?:usd|dollars?|eur|euros?|gbp|rmb|cny|yuan|元|块)",
    re.IGNORECASE,
)


def asking_sentence(question: str) -> str:
    """The sentence of ``question`` that asks: the last one ending in a question mark (or
    the last sentence), so that what comes before it ("my model is frs20qrb.") is context."""
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(question.strip()):
        if sentences and _ABBREVIATION.search(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    sentences = [s.strip() for s in sentences if s.strip(" .")]
    asking = [s for s in sentences if s.rstrip().endswith(("?", "？"))]
    return (asking or sentences or [question])[-1]


def question_kind(question: str) -> QuestionKind:
    """What ``question`` asks for (see the module docstring), read from its asking sentence
    (`asking_sentence`)."""
    text = normalize(asking_sentence(question)).strip()
    if has_cjk(text):
        if _ZH_DURATION.search(text):
            return "duration"
        if _ZH_PRICE.search(text):
            return "price"
        if _ZH_MEASURE.search(text):
            return "measure"
        if _ZH_COUNT.search(text):
            return "count"
        return "yes_no" if _ZH_YES_NO.search(text) else "open"
    if _EN_DURATION.search(text):
        return "duration"
    if _EN_COUNT.search(text):
        return "count"
    if _EN_MEASURE.search(text):
        return "measure"
    if _EN_PRICE.search(text) and not _EN_YES_NO.match(text):
        return "price"
    if _EN_YES_NO.match(text) and not _CHOICE.search(text):
        return "yes_no"
    return "open"


def holds_kind(kind: QuestionKind, text: str) -> bool:
    """Whether ``text`` holds an answer of ``kind`` ("yes_no" and "open": always)."""
    pattern = {
        "duration": _DURATION_RE,
        "count": _COUNT_RE,
        "measure": _MEASURE_RE,
        "price": _PRICE_RE,
    }.get(kind)
    return pattern is None or pattern.search(normalize(text)) is not None


# Negations: words, and the "n't" of any verb. Attribute values written "False" or "No".
_EN_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nothing|nobody|neither|nor|without|cannot|false|lacks?|lacking|"
    r"missing|excluding|excluded|out of stock|sold out|unavailable|doesn'?t|don'?t|didn'?t|"
    r"isn'?t|aren'?t|wasn'?t|weren'?t|"
    r"hasn'?t|haven'?t|hadn'?t|won'?t|wouldn'?t|can'?t|couldn'?t|shouldn'?t|mustn'?t|ain'?t|"
    r"fails? to|unable)\b|\w+n't\b",
    re.IGNORECASE,
)
# Chinese negation characters, and words that hold one without denying anything.
_ZH_NEGATION = re.compile(r"[不没无未非别否]")
_ZH_NOT_NEGATION = re.compile(
    r"不锈钢?|不粘|不沾|无线|无刷|无缝|无糖|无味|无声|无损|无限|无尘|无痕|无菌|无需|无论|不错|"
    r"不仅|不但|不久|不同|不少|不断|非常|并非不|没错|差不多|不一定"
)
_HEDGES = re.compile(
    r"\b(?:might|may|maybe|perhaps|possibly|probably|likely|unlikely|could|unsure|not sure|"
    r"depends|i think|i guess|i believe|i assume|seems?|guess|not certain|hopefully|should be|"
    r"(?:don't|do not|didn't) (?:think|know|remember)|(?:can't|cannot|don't) recall)\b"
    r"|可能|也许|大概|不确定|应该|估计|好像|似乎|不一定",
    re.IGNORECASE,
)


# Phrases with a negation word that deny nothing.
_EN_NOT_NEGATION = re.compile(
    r"\bnot (?:only|just|merely)\b|\bno (?:doubt|wonder)\b", re.IGNORECASE
)


def negations(text: str) -> int:
    """How many negations ``text`` holds (see the module docstring)."""
    folded = _EN_NOT_NEGATION.sub(" ", normalize(text).replace("’", "'"))
    count = len(_EN_NEGATION.findall(folded))
    if has_cjk(folded):
        count += len(_ZH_NEGATION.findall(_ZH_NOT_NEGATION.sub("", folded)))
    return count


def negated(text: str) -> bool:
    """Whether ``text`` denies what it states (an odd number of negations)."""
    return negations(text) % 2 == 1


def question_negated(question: str) -> bool:
    """Whether ``question`` asks about a denial ("does it work without batteries?", "is it
    not waterproof?", 不防水吗？), so that a quote denying the same thing answers Yes.
    How it asks is not a denial: "Doesn't it …?", 有没有, 能不能, 是否."""
    text = normalize(asking_sentence(question)).replace("’", "'")
    if has_cjk(text):
        return negated(_ZH_ASKING_NEGATION.sub(" ", text))
    return negated(_EN_ASKING_NEGATION.sub(" ", text))


_ASIDE = re.compile(r"\([^()]*\)|（[^（）]*）")


def hedged(text: str) -> bool:
    """Whether ``text`` only guesses ("might", "probably", 可能); a guess in an aside ("an
    airplane jack adapter (i think that's what it is called)") does not hedge the rest."""
    return _HEDGES.search(_ASIDE.sub(" ", normalize(text).replace("’", "'"))) is not None


_YES_NO_LEAD = re.compile(
    r"^\s*(?:(?P<yes>yes|yeah|yep|correct|sure|是的|是|对|可以|能|会|有)"
    r"|(?P<no>no|nope|不是|不能|不会|没有|不可以|不))\s*(?:[,.!:;，。！：；—–-]\s*|\s+|$)",
    re.IGNORECASE,
)


def split_verdict(claim: str) -> tuple[Literal["yes", "no"] | None, str]:
    """A claim's leading "Yes," / "No," (是的，/ 不，) and the rest of it."""
    match = _YES_NO_LEAD.match(claim)
    if match is None or (has_cjk(claim) and match.end() == len(claim)):
        return None, claim
    verdict: Literal["yes", "no"] = "yes" if match.group("yes") else "no"
    rest = claim[match.end() :].strip()
    return verdict, (rest[:1].upper() + rest[1:]) if rest and not has_cjk(rest[:1]) else rest
