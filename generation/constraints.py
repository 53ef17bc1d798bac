"""Structured constraints (price, stock, brand, rating) recognised in a shopping query.

`parse_constraints` turns "华为耳机 200元以下" or "headphones under $100, not Samsung, in stock"
into `Filters` for the retrievers plus the query text with those phrases taken out. The language
model cannot be trusted with numbers, so price, stock and brand limits are enforced in code.

What counts as a price (anything else is left in the text, never guessed):

- a number with a currency marker: ``$ € £ ¥ ￥ US$ usd eur gbp rmb cny`` before it, or
  ``dollars usd euros eur bucks rmb yuan gbp 元 块 块钱 € $`` after it;
- a number after a price word (``price``, ``priced``, ``cost(s)``, ``budget``, ``价格``,
  ``价位``, ``售价``, ``预算``), unless a unit such as ``kg`` or ``watts`` follows it;
- a bare number right after a comparison word (``under``, ``less than``, ``max``, ``over``,
  ``at least``, ``between … and …``, ``from … to …``, ``低于``, ``不超过``, ``高于`` …) or right
  before a Chinese comparison word (``以下``, ``以内``, ``以上``, ``之间``), when nothing that
  could be a unit follows: the end of the query, punctuation, or a connecting word (``and``,
  ``for``, ``with`` …; ``的``, ``买`` …). So "under 100" and "under 100 for running" are
  prices, while "under 2 kg", "over 65w", "more than 30 reviews", "under 15 in", "100 watts"
  and "size 10" are not, and neither is "under 100 headphones" (a word that might be a unit
  follows the number).

A bare range without any of these ("50-80", "200到300") and approximations ("around $100",
"1000元左右") are not recognised. Limits are inclusive ("under $100" keeps a $100 product).
Several upper limits keep the lowest, several lower limits the highest; contradictory ones
("over $200 under $100") are kept as said, and match nothing. ``k`` (and ``千``,
``万``) multiply: "2k" is 2000. No currency is converted: a number is compared with the catalog's
prices as it stands, whatever currency the shopper named.

Brands come only from ``known_brands`` (and ``brand_aliases``, a mention mapped to its catalog
brand): a Latin-script brand matches as a whole word, case-insensitively (except brands that
are everyday English words such as "On" or "Nothing", which must be written as given); a Chinese
brand matches as a substring ("华为耳机"). A brand after a negation ("not", "no", "except",
"other than", "without", "excluding", "不要", "除了", "不是" …) is excluded; an unknown name
after a negation is left alone. A brand after "like", "similar to" or "than" is left alone too.

Ratings: "rated 4+", "4 stars and up", "at least 4 stars", "4.5 stars minimum", "minimum 4
stars", "4星以上", "至少4.5星", "评分不低于4" set ``min_rating`` (values above 5 are ignored).

Numbers written in words count where a currency follows them (in English, also "stars"):
"five hundred dollars", "fifty bucks", "三百元", "两千五块". Elsewhere they stay words ("tent for
two"; "三星" is Samsung, not three stars). Stock: "in stock", "available now", "有货", "现货"
(not after a negation such as "not", "没", "无").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from retrieval.schema import Filters

__all__ = ["ParsedQuery", "parse_constraints"]


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into free text and the structured constraints recognised in it."""

    text: str
    filters: Filters
    applied: tuple[str, ...]


_MASK = "\x00"

# --- numbers and amounts -------------------------------------------------------------------

_NUM = r"(?<![A-Za-z0-9.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_MUL = r"(?:k(?![A-Za-z])|千|万)"
_CUR_PRE = r"(?:US\$|\$|€|£|¥|￥|(?<![A-Za-z])(?:usd|eur|gbp|rmb|cny)\s?)"
_CUR_POST = (
    r"(?:(?:dollars?|usd|euros?|eur|bucks|rmb|yuan|gbp|cny)(?![A-Za-z])|元|块钱|块|人民币|€|\$)"
)
_MULTIPLIERS = {"k": 1000.0, "千": 1000.0, "万": 10000.0}


def _amount(tag: str) -> str:
    return (
        rf"(?:(?P<{tag}pre>{_CUR_PRE})\s?)?(?P<{tag}num>{_NUM})(?P<{tag}mul>{_MUL})?"
        rf"(?:\s?(?P<{tag}post>{_CUR_POST}))?"
    )


_A = _amount("a")
_B = _amount("b")

# An optional price word before a price phrase.
_PW = (
    r"(?P<pw>(?:(?:(?<![A-Za-z])(?:my|a|our|the)\s+)?(?<![A-Za-z])"
    r"(?:price|prices|priced|cost|costs|costing|budget)(?:\s+(?:is|of|range))?(?![A-Za-z])"
    r"\s*[:：]?\s*)|(?:价格|价位|售价|预算)\s*(?:是|为|在)?\s*)?"
)

_EN_MAX = (
    r"no\s+more\s+than|not\s+more\s+than|less\s+than|cheaper\s+than|lower\s+than|"
    r"at\s+most|up\s+to|under|below|within|max(?:imum)?"
)
_EN_MIN = (
    r"no\s+less\s+than|not\s+less\s+than|more\s+than|greater\s+than|higher\s+than|"
    r"at\s+least|starting\s+(?:at|from)|over|above|min(?:imum)?"
)
_CN_MAX = r"不超过|不高于|不多于|不大于|(?<!不)低于|(?<!不)少于|(?<!不)小于|不到|最多|最高"
_CN_MIN = r"不低于|不少于|不小于|(?<!不)高于|(?<!不)超过|(?<!不)大于|(?<!不)多于|至少|最低|起码"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_UNIT_WORDS = _words(
    "w watt watts kw kwh kg g lb lbs pound pounds oz in inch inches cm mm m ft feet foot "
    "meter meters metre metres km mah gb tb mb hz khz mhz ghz v volt volts db hour hours hr "
    "hrs h min mins minute minutes sec secs seconds day days week weeks month months year "
    "years yr yrs l ml liter liters litre litres pcs pc piece pieces pack packs people "
    "person persons players star stars review reviews rating ratings percent degrees rpm fps "
    "dpi mp px p x times calories cal items units sizes size"
)
# Words that may follow a bare number that is read as a price ("under 100 for running").
_CONNECTORS = _words(
    "and or but for with without that which please pls plz on from by if only is are at so i "
    "we me my as"
)
# Characters that may follow a bare number in Chinese ("低于100的耳机", "预算300买耳机").
_CJK_FOLLOWERS = "的买吧呢啊呀，。！？、；：,.!?;:"
_APPROX = re.compile(
    r"\s*(?:左右|上下|起|多|出头|or\s+so(?![A-Za-z])|-?ish(?![A-Za-z]))", re.IGNORECASE
)
_OPEN_ENDED = re.compile(r"\s*(?:\+|or\s+more|and\s+up|or\s+above|以上)", re.IGNORECASE)


def _is_cjk(char: str) -> bool:
    return "\u2e80" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff"


def _follower_ok(text: str, end: int, *, strict: bool) -> bool:
    """Whether what follows a bare number at ``end`` leaves it readable as a price."""
    rest = text[end:]
    if not rest or rest[0] == _MASK:
        return True
    first = rest[0]
    if first.isascii() and first.isalnum():
        return False  # a unit written without a space: "65w", "2kg", "1080p"
    if _is_cjk(first) or first in "，。！？、；：":
        return first in _CJK_FOLLOWERS
    if not first.isspace():
        return first in ",.;:!?)]}\"'"
    tail = rest.lstrip()
    if not tail or tail[0] == _MASK:
        return True
    word = re.match(r"[A-Za-z]+", tail)
    if word is None:
        if _is_cjk(tail[0]):
            return tail[0] in _CJK_FOLLOWERS
        return tail[0] in ",.;:!?)]}\"'"
    lowered = word.group(0).lower()
    if lowered == "in":  # "under 100 in stock" is a price, "under 15 in laptop" is not
        return tail[2:].lstrip().startswith(_MASK)
    if lowered in _UNIT_WORDS:
        return False
    return not strict or lowered in _CONNECTORS


def _value(match: re.Match[str], tag: str) -> float:
    number = float(match.group(f"{tag}num").replace(",", ""))
    multiplier = match.group(f"{tag}mul")
    if multiplier:
        number *= _MULTIPLIERS[multiplier.lower()]
    return number


def _has_currency(match: re.Match[str], *tags: str) -> bool:
    return any(match.group(f"{tag}pre") or match.group(f"{tag}post") for tag in tags)


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


# --- the scan ------------------------------------------------------------------------------

# An effect: (position in the query, kind, value, label).
_Effect = tuple[int, str, object, str]
_Handler = Callable[[re.Match[str], str], list[_Effect] | None]


class _Scan:
    """The query with recognised spans masked out, and what was recognised."""

    def __init__(self, query: str) -> None:
        self.work = query
        self.effects: list[_Effect] = []

    def apply(self, pattern: re.Pattern[str], handler: _Handler) -> None:
        spans: list[tuple[int, int]] = []
        for match in pattern.finditer(self.work):
            if not match.group(0).strip():
                continue
            found = handler(match, self.work)
            if found is None:
                continue
            self.effects.extend(found)
            spans.append(match.span())
        for start, end in spans:
            self.work = self.work[:start] + _MASK * (end - start) + self.work[end:]


def _price_effects(start: int, low: float | None, high: float | None) -> list[_Effect]:
    if low is not None and high is not None:
        low, high = min(low, high), max(low, high)
        return [(start, "range", (low, high), f"price {_fmt(low)}–{_fmt(high)}")]
    if high is not None:
        return [(start, "max", high, f"price ≤ {_fmt(high)}")]
    if low is not None:
        return [(start, "min", low, f"price ≥ {_fmt(low)}")]
    return []


def _approximate(text: str, end: int) -> bool:
    return _APPROX.match(text, end) is not None


# Ranges ----------------------------------------------------------------------------------

_RANGE_BETWEEN = re.compile(rf"{_PW}(?<![A-Za-z])between\s+{_A}\s+and\s+{_B}", re.IGNORECASE)
_RANGE_CN_BETWEEN = re.compile(rf"{_PW}(?:在\s*)?{_A}\s*(?:和|与|跟)\s*{_B}\s*之间")
_RANGE_DASH = re.compile(
    rf"{_PW}(?:(?<![A-Za-z])in\s+the\s+)?(?P<from>(?<![A-Za-z])from\s+|从\s*)?(?:在\s*)?{_A}\s*"
    rf"(?:-|–|—|~|～|(?<![A-Za-z])to(?![A-Za-z])|到|至)\s*{_B}"
    rf"(?P<tail>\s*(?:之间|以内|的?价位)|\s+(?:price\s+)?range(?![A-Za-z]))?",
    re.IGNORECASE,
)


def _range_between(match: re.Match[str], text: str) -> list[_Effect] | None:
    if _approximate(text, match.end()):
        return None
    if not (_has_currency(match, "a", "b") or _follower_ok(text, match.end(), strict=True)):
        return None
    return _price_effects(match.start(), _value(match, "a"), _value(match, "b"))


def _range_cn_between(match: re.Match[str], text: str) -> list[_Effect] | None:
    return _price_effects(match.start(), _value(match, "a"), _value(match, "b"))


def _range_dash(match: re.Match[str], text: str) -> list[_Effect] | None:
    if _approximate(text, match.end()):
        return None
    # "$50-80" and "50-80 dollars" are ranges; "iPhone 13 to $500" is not.
    currency = bool(match.group("apre") or match.group("apost") or match.group("bpost"))
    marked = currency or match.group("pw") or match.group("tail")
    if not marked:
        if not match.group("from") or not _follower_ok(text, match.end(), strict=True):
            return None
    elif not currency and not _follower_ok(text, match.end(), strict=False):
        return None
    return _price_effects(match.start(), _value(match, "a"), _value(match, "b"))


# Single limits ---------------------------------------------------------------------------

_COMPARATOR = re.compile(
    rf"{_PW}(?:(?<![A-Za-z])(?P<max>{_EN_MAX})(?![A-Za-z])|(?P<cnmax>{_CN_MAX})"
    rf"|(?<![A-Za-z])(?P<min>{_EN_MIN})(?![A-Za-z])|(?P<cnmin>{_CN_MIN}))"
    rf"\s*[:：]?\s*(?:of\s+)?{_A}",
    re.IGNORECASE,
)
_POSTFIX = re.compile(
    rf"{_PW}{_A}\s*(?:(?P<cnmax>以下|以内|之内)|(?P<cnmin>以上)"
    r"|(?P<max>(?<![A-Za-z])(?:or\s+less|or\s+under|and\s+under|or\s+below|and\s+below"
    r"|or\s+cheaper|max(?:imum)?)(?![A-Za-z]))"
    r"|(?P<min>(?<![A-Za-z])(?:or\s+more|and\s+up|and\s+above|or\s+above|or\s+higher"
    r"|min(?:imum)?)(?![A-Za-z])|\+))"
    # "under $200 and below $150" is two limits, not "$200 and below"
    r"(?!\s*(?:[$€£¥￥\d]|(?:usd|eur|gbp|rmb)(?![A-Za-z])))",
    re.IGNORECASE,
)
_BUDGET_EN = re.compile(
    rf"(?:(?<![A-Za-z])(?:my|a|our|the)\s+)?(?<![A-Za-z])budget(?:\s+(?:is|of))?"
    rf"(?![A-Za-z])\s*[:：]?\s*{_A}",
    re.IGNORECASE,
)
_BUDGET_CN = re.compile(rf"预算\s*(?:是|为|在|有|只有)?\s*[:：]?\s*{_A}", re.IGNORECASE)


def _comparator(match: re.Match[str], text: str) -> list[_Effect] | None:
    if _approximate(text, match.end()):
        return None
    if not _has_currency(match, "a") and not _follower_ok(
        text, match.end(), strict=not match.group("pw")
    ):
        return None
    value = _value(match, "a")
    if match.group("max") or match.group("cnmax"):
        return _price_effects(match.start(), None, value)
    return _price_effects(match.start(), value, None)


def _postfix(match: re.Match[str], text: str) -> list[_Effect] | None:
    chinese = match.group("cnmax") or match.group("cnmin")
    if not chinese and not (_has_currency(match, "a") or match.group("pw")):
        return None
    value = _value(match, "a")
    if match.group("max") or match.group("cnmax"):
        return _price_effects(match.start(), None, value)
    return _price_effects(match.start(), value, None)


def _budget(match: re.Match[str], text: str) -> list[_Effect] | None:
    if _approximate(text, match.end()) or _OPEN_ENDED.match(text, match.end()):
        return None
    if not _has_currency(match, "a") and not _follower_ok(text, match.end(), strict=False):
        return None
    return _price_effects(match.start(), None, _value(match, "a"))


# Ratings and stock -----------------------------------------------------------------------

_R = r"(?P<r>(?<![\d.])[0-5](?:\.\d+)?)(?![\d.])"
_UP = r"(?:\+|(?:and|or)\s+(?:up|above|higher|more|better)(?![A-Za-z])|plus(?![A-Za-z]))"
_RATING_PATTERNS = [
    re.compile(
        rf"(?<![A-Za-z])(?:rated|ratings?(?:\s+of)?)\s*(?:(?:at\s+least|of\s+at\s+least|above|"
        rf"over|>=?|≥)\s*){_R}(?:\s*stars?(?![A-Za-z]))?(?:\s*/\s*5)?",
        re.IGNORECASE,
    ),
    re.compile(
        rf"(?<![A-Za-z])(?:rated|rating)\s*{_R}\s*(?:stars?\s*)?{_UP}(?:\s*stars?(?![A-Za-z]))?",
        re.IGNORECASE,
    ),
    re.compile(rf"{_R}\s*(?:\+\s*stars?(?![A-Za-z])|stars?\s*{_UP})(?:\s+rating)?", re.IGNORECASE),
    re.compile(rf"(?<![A-Za-z])at\s+least\s+{_R}\s*stars?(?![A-Za-z])", re.IGNORECASE),
    re.compile(rf"(?:评分|评价|好评)?\s*(?:在\s*)?{_R}\s*(?:星|分)\s*(?:及|或)?以上"),
    re.compile(rf"(?:评分|评价)\s*(?:不低于|至少|高于|大于|超过)\s*{_R}\s*(?:星|分)?"),
    re.compile(rf"(?:至少|不低于|最低)\s*{_R}\s*(?:星|分)"),
    re.compile(
        rf"{_R}\s*stars?\s*(?:minimum|min(?:\.|(?![A-Za-z]))|at\s+least(?![A-Za-z]))",
        re.IGNORECASE,
    ),
    re.compile(
        rf"(?<![A-Za-z])(?:minimum|min\.?)\s+(?:rating\s+(?:of\s+)?)?{_R}\s*stars?(?![A-Za-z])",
        re.IGNORECASE,
    ),
]


def _rating(match: re.Match[str], text: str) -> list[_Effect] | None:
    value = float(match.group("r"))
    if value > 5:
        return None
    return [(match.start(), "rating", value, f"rating ≥ {_fmt(value)}")]


_STOCK = re.compile(
    r"(?:(?<![A-Za-z])only\s+)?(?<![A-Za-z])(?:in[\s-]stock|available\s+(?:now|today))"
    r"(?![A-Za-z])(?:\s+only(?![A-Za-z]))?|有现货|现货|有货",
    re.IGNORECASE,
)
_NEGATION_BEFORE = re.compile(
    r"(?:(?<![A-Za-z])(?:not|n't|never|isn't|aren't)\s+|[没无不]\S?)$", re.IGNORECASE
)


def _stock(match: re.Match[str], text: str) -> list[_Effect] | None:
    before = text[max(0, match.start() - 12) : match.start()]
    if _NEGATION_BEFORE.search(before):
        return None
    return [(match.start(), "stock", True, "in stock")]


# Brands ----------------------------------------------------------------------------------

# Brands that are everyday English words match only as written in ``known_brands``.
_COMMON_WORD_BRANDS = _words(
    "ace all arc bird boss coach core crown dash edge fossil gap gear go guess hero it jet "
    "keen me merit next nothing on one shark sharp so target up us vans"
)
_EN_NEGATORS = (
    r"(?<![A-Za-z])(?:not|no|except(?:\s+for)?|other\s+than|without|excluding|exclude|"
    r"but\s+not|instead\s+of|avoid|anything\s+but)\s+(?:any\s+|a\s+)?|(?<![A-Za-z])non-"
)
_CN_NEGATORS = r"(?:不要|不想要|除了|不是|不买|排除|别买|别要)\s*"
_LIST_SEPARATOR = r"\s*(?:,|，|、|/|&|(?<![A-Za-z])(?:and|or|nor)(?![A-Za-z])|和|或|及|与)\s*"
_NOT_A_WISH = re.compile(
    r"(?:(?<![A-Za-z])(?:like|similar\s+to|alternatives?\s+to|than|compared\s+(?:to|with)|"
    r"besides|for|with|fits?|works?\s+with|compatible\s+with)\s*|像|类似|适用于?|兼容)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _BrandMatcher:
    pattern: str
    canonical: Mapping[str, str]
    exclude: re.Pattern[str]
    include: re.Pattern[str]


def _brand_key(mention: str) -> str:
    return " ".join(re.sub(r"['’]s$", "", mention).split()).casefold()


def _mention_regex(mention: str) -> str:
    body = r"\s+".join(re.escape(word) for word in mention.split())
    if mention.casefold() in _COMMON_WORD_BRANDS:
        body = f"(?-i:{body})"
    if mention[0].isascii() and mention[0].isalnum():
        body = r"(?<![A-Za-z0-9])" + body
    if mention[-1].isascii() and mention[-1].isalnum():
        body += r"(?![A-Za-z0-9])(?:['’]s(?![A-Za-z]))?"
    return body


@lru_cache(maxsize=16)
def _brand_matcher(
    brands: tuple[str, ...], aliases: tuple[tuple[str, str], ...]
) -> _BrandMatcher | None:
    canonical: dict[str, str] = {}
    mentions: list[str] = []
    for raw, brand in [(b, b) for b in brands] + list(aliases):
        mention = " ".join(raw.split())
        if len(mention) < 2 or not brand.strip() or _brand_key(mention) in canonical:
            continue
        canonical[_brand_key(mention)] = brand.strip()
        mentions.append(mention)
    if not mentions:
        return None
    mentions.sort(key=len, reverse=True)
    one = "(?:" + "|".join(_mention_regex(m) for m in mentions) + ")"
    listed = rf"(?P<list>{one}(?:{_LIST_SEPARATOR}{one})*)"
    exclude = re.compile(
        rf"(?:{_EN_NEGATORS}|{_CN_NEGATORS}){listed}(?:\s*(?:以外|之外))?", re.IGNORECASE
    )
    return _BrandMatcher(one, canonical, exclude, re.compile(one, re.IGNORECASE))


def _brand_handlers(matcher: _BrandMatcher) -> tuple[_Handler, _Handler]:
    single = re.compile(matcher.pattern, re.IGNORECASE)

    def exclude(match: re.Match[str], text: str) -> list[_Effect] | None:
        effects: list[_Effect] = []
        for mention in single.finditer(match.group("list")):
            brand = matcher.canonical[_brand_key(mention.group(0))]
            effects.append((match.start(), "not_brand", brand, f"brand ≠ {brand}"))
        return effects

    def include(match: re.Match[str], text: str) -> list[_Effect] | None:
        if _NOT_A_WISH.search(text[max(0, match.start() - 20) : match.start()]):
            return None
        brand = matcher.canonical[_brand_key(match.group(0))]
        return [(match.start(), "brand", brand, f"brand = {brand}")]

    return exclude, include


# Tidying the remaining text ---------------------------------------------------------------

_STRIP_BEFORE = re.compile(
    r"(?:(?<![A-Za-z])(?:and|or|but|that\s+(?:is|are)|which\s+(?:is|are)|is|are|for|from|by|"
    r"made\s+by|priced|costing|at|with|vs\.?|versus)\s*|[,，、&和及与且或]\s*)+\x00",
    re.IGNORECASE,
)
_STRIP_AFTER = re.compile(
    r"\x00(?:\s*(?:(?<![A-Za-z])(?:and|or|but)(?![A-Za-z])|[,，、的和及与或]))+", re.IGNORECASE
)
_EDGE_WORDS = re.compile(
    r"^(?:(?:and|or|but|with|for)\s+)+|(?:\s+(?:and|or|but|with|for|from|by|that|which|is|"
    r"are))+$",
    re.IGNORECASE,
)
_EDGE_PUNCT = " \t,，、;；:：.-–—/&"


def _tidy(work: str) -> str:
    text = re.sub(r"\x00+", _MASK, work)
    previous = None
    while previous != text:
        previous = text
        text = _STRIP_BEFORE.sub(_MASK, text)
        text = _STRIP_AFTER.sub(_MASK, text)
        text = re.sub(r"\x00\s*\x00", _MASK, text)

    def join(match: re.Match[str]) -> str:
        before = match.string[match.start() - 1] if match.start() > 0 else ""
        after = match.string[match.end()] if match.end() < len(match.string) else ""
        return "" if _is_cjk(before) or _is_cjk(after) else " "

    text = re.sub(r"\s*\x00\s*", join, text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,，.。!?！？;；])", r"\1", text)
    previous = None
    while previous != text:
        previous = text
        text = _EDGE_WORDS.sub("", text.strip(_EDGE_PUNCT))
    return text


# --- the entry point -----------------------------------------------------------------------


# Numbers written in words, read only where a currency or a rating unit follows them.

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
# Not before 星: "三星" is Samsung.
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千万]+(?=\s*(?:元|块|美元|欧元))")
_EN_UNITS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_EN_TENS = {
    w: 10 * i
    for i, w in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2
    )
}
_EN_WORD = "|".join([*_EN_UNITS, *_EN_TENS, "hundred", "thousand"])
_EN_NUMBER = re.compile(
    rf"(?<![A-Za-z])(?:{_EN_WORD})(?:(?:\s+|-|\s+and\s+)(?:{_EN_WORD}))*"
    r"(?=\s*(?:dollars?|bucks|euros?|pounds?|usd|eur|gbp|stars?)(?![A-Za-z]))",
    re.IGNORECASE,
)


def chinese_number(text: str) -> int | None:
    """The value of a Chinese numeral ("三百" 300, "两千五" 2500, "一百零五" 105, "十五" 15)."""
    total = section = number = 0
    last_unit = 1
    for char in text:
        if char in _CN_DIGITS:
            number = _CN_DIGITS[char]
            if char in "零〇":
                last_unit = 1
        elif char == "万":
            total += (section + number) * 10000
            section = number = 0
            last_unit = 10000
        elif char in _CN_UNITS:
            unit = _CN_UNITS[char]
            section += (number or (1 if unit == 10 else 0)) * unit
            number = 0
            last_unit = unit
        else:
            return None
    # a digit after a unit without its own unit is one unit lower: "两千五" is 2500
    if number and last_unit >= 100:
        number *= last_unit // 10
    value = total + section + number
    return value or None


def english_number(text: str) -> int | None:
    """The value of English number words ("five hundred" 500, "twenty-five" 25)."""
    total = current = 0
    for word in re.split(r"[\s-]+", text.casefold()):
        if word == "and" or not word:
            continue
        if word in _EN_UNITS:
            current += _EN_UNITS[word]
        elif word in _EN_TENS:
            current += _EN_TENS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        elif word == "thousand":
            total += (current or 1) * 1000
            current = 0
        else:
            return None
    value = total + current
    return value or None


def _digits(query: str) -> str:
    """``query`` with numbers written in words turned into digits where a currency (or, in
    English, "stars") follows them ("five hundred dollars", "三百元"); elsewhere ("two people",
    "三星") the words stay."""

    def english(match: re.Match[str]) -> str:
        value = english_number(match.group())
        return str(value) if value is not None else match.group()

    def chinese(match: re.Match[str]) -> str:
        value = chinese_number(match.group())
        return str(value) if value is not None else match.group()

    return _CN_NUMBER.sub(chinese, _EN_NUMBER.sub(english, query))


def parse_constraints(
    query: str,
    *,
    known_brands: Iterable[str] = (),
    brand_aliases: Mapping[str, str] | None = None,
) -> ParsedQuery:
    """Recognise price, stock, brand and rating constraints in ``query`` (English or Chinese).

    ``brand_aliases`` maps other spellings to catalog brands (``{"苹果": "Apple"}``). The rules
    are in the module docstring.
    """
    query = _digits(query)
    scan = _Scan(query)
    for pattern in _RATING_PATTERNS:
        scan.apply(pattern, _rating)
    scan.apply(_STOCK, _stock)
    # Only brands whose first word occurs in the query can match: a catalog's thousands of
    # brands then cost a substring test each, not a place in one huge regular expression.
    folded = " ".join(query.split()).casefold()

    def mentioned(name: str) -> bool:
        words = name.split()
        return bool(words) and words[0].casefold() in folded

    matcher = _brand_matcher(
        tuple(b for b in known_brands if mentioned(b)),
        tuple(sorted((k, v) for k, v in (brand_aliases or {}).items() if mentioned(k))),
    )
    if matcher is not None:
        exclude, include = _brand_handlers(matcher)
        scan.apply(matcher.exclude, exclude)
        scan.apply(matcher.include, include)
    scan.apply(_RANGE_BETWEEN, _range_between)
    scan.apply(_RANGE_CN_BETWEEN, _range_cn_between)
    scan.apply(_RANGE_DASH, _range_dash)
    scan.apply(_COMPARATOR, _comparator)
    scan.apply(_POSTFIX, _postfix)
    scan.apply(_BUDGET_EN, _budget)
    scan.apply(_BUDGET_CN, _budget)

    effects = sorted(scan.effects, key=lambda effect: effect[0])
    if not effects:
        return ParsedQuery(text=query.strip(), filters=Filters(), applied=())
    text = _tidy(scan.work) or query.strip()
    return ParsedQuery(text=text, filters=_filters(effects), applied=_labels(effects))


def _labels(effects: list[_Effect]) -> tuple[str, ...]:
    labels: list[str] = []
    for _, _, _, label in effects:
        if label not in labels:
            labels.append(label)
    return tuple(labels)


def _filters(effects: list[_Effect]) -> Filters:
    lows: list[float] = []
    highs: list[float] = []
    ratings: list[float] = []
    brands: list[str] = []
    excluded: list[str] = []
    in_stock: bool | None = None
    for _, kind, value, _ in effects:
        if kind == "range" and isinstance(value, tuple):
            lows.append(float(value[0]))
            highs.append(float(value[1]))
        elif kind == "max" and isinstance(value, float):
            highs.append(value)
        elif kind == "min" and isinstance(value, float):
            lows.append(value)
        elif kind == "rating" and isinstance(value, float):
            ratings.append(value)
        elif kind == "stock":
            in_stock = True
        elif kind == "brand" and isinstance(value, str) and value not in brands:
            brands.append(value)
        elif kind == "not_brand" and isinstance(value, str) and value not in excluded:
            excluded.append(value)
    brands = [brand for brand in brands if brand not in excluded]
    return Filters(
        price_min=max(lows) if lows else None,
        price_max=min(highs) if highs else None,
        in_stock=in_stock,
        brands=brands or None,
        exclude_brands=excluded or None,
        min_rating=max(ratings) if ratings else None,
    )
