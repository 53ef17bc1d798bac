"""The aspects shoppers mention in reviews (battery, fit, noise, 保温 …) and how they feel about
them, found without a model: a lexicon of aspect terms in English and Chinese, clauses split at
sentence ends and at "but"/"但是", and the polar words of each clause, negation flipped.

A mention is one aspect in one clause of one review, with the clause's place in the review, so
a citation can show (and highlight) exactly the words that name the aspect. The lexicon is data:
``ASPECTS`` lists each aspect's English patterns (regular expressions, matched on whole words of
the lower-cased text) and Chinese terms (matched as substrings).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from retrieval.text import CJK_RANGE, has_cjk

Polarity = Literal["positive", "negative", "neutral"]


@dataclass(frozen=True)
class Aspect:
    """One thing shoppers talk about, with the words that name it."""

    key: str
    label_en: str
    label_zh: str
    en: tuple[str, ...]  # regular expressions over lower-cased English, whole words
    zh: tuple[str, ...]  # Chinese terms, matched as substrings

    def label(self, language: str) -> str:
        """The aspect's name in ``language`` ("en" or "zh")."""
        return self.label_zh if language == "zh" else self.label_en


ASPECTS: tuple[Aspect, ...] = (
    Aspect(
        "battery",
        "battery",
        "续航",
        (
            r"batter(?:y|ies)",
            r"(?:re)?charg(?:e|es|ed|ing|er|ers)(?! for\b)(?! case)",
            r"rechargeable",
        ),
        ("电池", "续航", "充电", "电量", "待机"),
    ),
    Aspect(
        "noise",
        "noise",
        "降噪",
        (r"nois(?:e|y|ier)", r"quiet(?:er|ly)?", r"silent(?:ly)?", r"anc", r"hum(?:s|ming)?"),
        ("噪音", "降噪", "噪声", "安静", "静音", "吵"),
    ),
    Aspect(
        "sound",
        "sound quality",
        "音质",
        (
            r"sound(?:s)?(?! like\b)",
            r"audio",
            r"bass",
            r"treble",
            r"volume",
            r"speakers?(?! wire)(?! cable)",
        ),
        ("音质", "音效", "低音", "声音", "音量"),
    ),
    Aspect(
        "calls",
        "calls and microphone",
        "通话",
        (r"call quality", r"calls", r"mic(?! slot)(?! jack)(?! input)(?! port)", r"microphones?"),
        ("通话", "麦克风", "话筒"),
    ),
    Aspect(
        "comfort",
        "comfort",
        "舒适度",
        (r"(?:un)?comfortabl[ey]", r"comfort", r"comfy", r"cushion(?:s|ed|ing)?", r"hurts?"),
        ("舒适", "舒服", "佩戴", "夹头", "压耳", "硌"),
    ),
    Aspect(
        "fit",
        "size and fit",
        "尺码",
        (
            r"fit(?:s|ting|ted)?",
            r"(?<!serving )(?<!any )(?<!font )siz(?:e|es|ed|ing)(?! \d)",
            r"too (?:small|big|large|tight|loose|long|short|wide|narrow)",
            r"snug(?:ly)?",
            r"tight(?:er)?",
            r"loose",
            r"length(?! of time)",
            r"width",
        ),
        ("尺码", "尺寸", "大小", "合身", "偏大", "偏小", "码数"),
    ),
    Aspect(
        "build",
        "build quality and durability",
        "做工",
        (
            r"sturd(?:y|ier|ily)",
            r"flims(?:y|ier)",
            r"durab(?:le|ility)",
            r"well[- ]made",
            r"cheaply made",
            r"poorly made",
            r"build quality",
            r"(?<!sound )(?<!picture )(?<!image )(?<!call )(?<!print )(?<!video )(?<!-)quality",
            r"broke(?:n)?",
            r"break(?:s)?",
            r"fell apart",
            r"falls apart",
            r"last(?:s|ed)? (?:long|for|a long)",
            r"solid(?:ly)?(?! fuel)(?! state)(?! colou?r)",
            r"cracked",
        ),
        ("做工", "质量", "耐用", "结实", "质感", "坏了", "用料"),
    ),
    Aspect(
        "price",
        "price and value",
        "价格",
        (
            r"price[ds]?",
            r"pricey",
            r"value",
            r"worth(?! mentioning)(?! noting)(?! a try)(?! a look)(?! the wait)",
            r"money",
            r"expensive",
            r"inexpensive",
            r"affordable",
            r"bargain",
            r"cost(?:s)?",
        ),
        ("价格", "性价比", "便宜", "划算", "价钱", "太贵", "有点贵", "值得", "价位"),
    ),
    Aspect(
        "setup",
        "setup and assembly",
        "安装",
        (
            r"install(?:ing|ation|s)?",
            r"(?:easily|easy|quickly|was|were|i|we|have|had|got it) installed",
            r"set ?up",
            r"assembl(?:e|ed|y|ing)",
            r"(?<!previous )(?<!prior )(?<!your )(?<!all )(?<!the above )instructions?",
            r"manual",
            r"mount(?:ed|ing|s)?",
            r"attach(?:ed|es)?",
        ),
        ("安装", "组装", "说明书"),
    ),
    Aspect(
        "ease",
        "ease of use",
        "易用性",
        (
            r"easy to use",
            r"easier to use",
            r"hard to use",
            r"difficult to use",
            r"user[- ]friendly",
            r"intuitive",
            r"simple to use",
            r"complicated",
            r"confusing",
        ),
        ("操作", "上手", "好用", "使用方便", "用起来"),
    ),
    Aspect(
        "cleaning",
        "cleaning",
        "清洗",
        (
            r"clean(?:s|ed|ing|up)?(?! sound\b)",
            r"wash(?:es|ed|ing|able)?",
            r"dishwasher",
            r"stains?",
        ),
        ("清洗", "清洁", "好洗", "难洗", "洗碗机"),
    ),
    Aspect(
        "weight",
        "weight and bulk",
        "重量",
        (
            r"heav(?:y|ier|iest)(?! (?:rain|storm|snow|duty|use|user|bass|sleeper))",
            r"lightweight",
            r"light weight",
            r"weigh(?:s|t)?",
            r"bulk(?:y|ier)",
            r"compact",
        ),
        ("重量", "很重", "太重", "有点重", "轻便", "很轻", "轻巧", "分量", "便携", "笨重"),
    ),
    Aspect(
        "looks",
        "looks and colour",
        "外观",
        (
            r"colou?rs?(?! stain)",
            r"looks?(?! like\b)(?! for\b)(?! at\b)(?! forward\b)",
            r"design",
            r"stylish",
            r"pretty",
            r"beautiful",
            r"cute",
            r"ugly",
            r"flattering",
            r"fattering",
        ),
        ("颜色", "外观", "好看", "漂亮", "颜值", "外形", "设计", "掉色"),
    ),
    Aspect(
        "material",
        "material",
        "材质",
        (
            r"materials?",
            r"fabric",
            r"cotton",
            r"leather",
            r"plastic",
            r"stainless",
            r"rubber",
            r"silicone",
        ),
        ("材质", "面料", "布料", "塑料", "不锈钢", "硅胶", "皮质"),
    ),
    Aspect(
        "display",
        "screen and picture",
        "屏幕",
        (
            r"screens?",
            r"display",
            r"resolution",
            r"brightness",
            r"picture quality",
            r"image quality",
            r"images",
        ),
        ("屏幕", "分辨率", "亮度", "画质", "显示效果"),
    ),
    Aspect(
        "performance",
        "speed and performance",
        "性能",
        (r"performance", r"speed", r"powerful", r"lag(?:gy|s)?", r"sluggish", r"suction"),
        ("速度", "流畅", "卡顿", "性能", "运行", "吸力"),
    ),
    Aspect(
        "connectivity",
        "connection",
        "连接",
        (
            r"bluetooth",
            r"connect(?:s|ed|ion|ivity|ing)?",
            r"disconnect(?:s|ed|ing)?",
            r"pair(?:ing|ed)",
            r"wi-?fi",
            r"signal",
        ),
        ("蓝牙", "连接", "配对", "信号", "断连"),
    ),
    Aspect(
        "delivery",
        "delivery and packaging",
        "物流包装",
        (r"shipping", r"shipped", r"deliver(?:y|ed)", r"arrived", r"packag(?:e|ed|ing)"),
        ("物流", "快递", "包装", "发货", "送货"),
    ),
    Aspect(
        "service",
        "seller and support",
        "客服售后",
        (
            r"customer service",
            r"seller",
            r"warranty",
            r"refund(?:ed)?",
            r"returned",
            r"return(?:ing)? it",
            r"replacement",
        ),
        ("客服", "售后", "退货", "保修", "退款", "换货"),
    ),
    Aspect(
        "smell",
        "smell",
        "气味",
        (r"smell(?:s|ed|y)?", r"odou?rs?", r"scent(?:s|ed)?", r"fragrance"),
        ("气味", "异味", "香味", "臭"),
    ),
    Aspect(
        "taste",
        "taste",
        "口感",
        (r"tast(?:e|es|ed|y)", r"flavou?rs?", r"delicious"),
        ("口感", "味道", "好吃", "好喝", "口味"),
    ),
    Aspect(
        "temperature",
        "keeping hot or cold",
        "保温",
        (
            r"keeps? (?:\w+ ){0,3}?(?:hot|cold|warm|cool)",
            r"insulat(?:ed|ion)",
            r"temperature",
            r"(?<!hot or )(?<!hot and )warm(?:th)?(?! water)",
        ),
        ("保温", "保冷", "温度", "恒温"),
    ),
    Aspect(
        "compatibility",
        "compatibility",
        "兼容性",
        (r"compatib(?:le|ility)", r"works with", r"worked with"),
        ("兼容", "适配", "适用于"),
    ),
)

_BY_KEY = {a.key: a for a in ASPECTS}


def aspect(key: str) -> Aspect:
    """The aspect named ``key``."""
    return _BY_KEY[key]


_EN_ASPECT_RES = {
    a.key: re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in a.en) + r")\b") for a in ASPECTS
}

# Polar words. English: whole words (some phrases) of the lower-cased clause; a negator among
# the three words before flips one. Chinese: the longest entry at each place, so 不错 is
# praise and 不 alone negates what follows it.
_EN_POSITIVE = (
    r"as advertised|as described|true to size|great|good|excellent|love[sd]?|loving|"
    r"perfect(?:ly)?|amazing|awesome|best|nice|happy|"
    r"comfortable|comfy|easy|easily|sturdy|solid|durable|well[- ]made|works (?:well|great|fine)|"
    r"recommend(?:ed)?|impress(?:ed|ive)|fantastic|wonderful|reliable|clear|crisp|"
    r"worth(?:while)?|beautiful|pretty|cute|lightweight|smooth(?:ly)?|bright|"
    r"flattering|fattering|quiet|pleased|satisfied|fine|better|superb|helpful|handy|convenient|"
    r"stylish|soft|fits (?:well|perfectly|great)|plenty|enjoy(?:s|ed)?|like[sd]?|fast|quick(?:ly)?|"
    r"strong|affordable|inexpensive|bargain|disappear(?:s|ed)?|fresh|delicious|tasty|sharp"
)
_EN_NEGATIVE = (
    r"bad|poor(?:ly)?|terrible|awful|horrible|worst|cheap(?:ly)?|flimsy|broke|broken|breaks|"
    r"uncomfortable|disappoint(?:ed|ing|ment)?|difficult|hate[sd]?|useless|waste|bulky|noisy|"
    r"slow|laggy|lags|defective|died|dies|stopped working|fell apart|falls apart|mediocre|"
    r"average|leak(?:s|ed|ing|y)?|weak|problems?|issues?|unfortunately|hurts?|painful|"
    r"too (?!much\b|many\b)[a-z]+|returned|return(?:ing)? it|loose|wobbly|cracked|"
    r"ugly|smelly|stinks?|annoying|hard to|expensive|pricey|overpriced|heavy|bunchy|"
    r"worse|failed|fails|doesn't fit|wouldn't|can't|cannot|scratch(?:ed|es)|junk|"
    r"tight|uneven|confusing|complicated|fragile|not much|not enough|lacks?|lacking|thin|"
    r"tears?|torn|ripped|rust(?:s|ed|y)?|"
    r"faded|fades|stiff|blurry|dim|lose[sd]?|drops?|dropped|short|musty|runs? (?:small|large|big)|"
    r"no longer|quit|quits|stopped|wrong|missing|melt(?:s|ed|ing)?|worry|barely"
)
_EN_NEGATORS = frozenset(
    [
        "not",
        "no",
        "never",
        "n't",
        "don't",
        "doesn't",
        "isn't",
        "wasn't",
        "aren't",
        "weren't",
        "didn't",
        "won't",
        "hardly",
        "without",
        "nothing",
        "dont",
        "doesnt",
        "isnt",
        "wasnt",
        "didnt",
    ]
)
_EN_POLAR_RE = re.compile(rf"\b(?:(?P<pos>{_EN_POSITIVE})|(?P<neg>{_EN_NEGATIVE}))\b")
_EN_WORD_RE = re.compile(r"[a-z']+")

_ZH_POSITIVE = (
    "很好 好 不错 喜欢 满意 舒服 舒适 清晰 方便 流畅 耐用 结实 漂亮 好看 划算 值得 推荐 安静 持久 "
    "给力 完美 优秀 赞 快 轻便 好用 好吃 好喝 精致 柔软 实惠 稳定 强 很轻 轻巧 便宜 喜爱 惊喜 "
    "听不到 没有噪音 没噪音 不卡 不漏 不贵 不重 不累 正好 合适 超值 太好 太棒 太喜欢 轻松 棒"
)
_ZH_NEGATIVE = (
    "差 不好 太 坏 失望 难 卡顿 卡 慢 吵 漏 贵 胀 疼 痛 一般 不行 退货 问题 掉色 异味 有点 "
    "偏 弱 麻烦 粗糙 松 紧 不舒服 后悔 笨重 发热 发烫 断连 掉 夹头 压耳 硌 不值 糟糕 垃圾 臭"
)
# neither praise nor negation, though they start with one
_ZH_NEUTRAL = "好像 好几 好多 还好 不过 不少 不同 不知道 不用 重新 太阳 快递 紧凑 卡片 难得 太太"
_ZH_NEGATORS = frozenset(["不", "没", "没有", "无", "别", "不太", "不够", "并不", "不是"])
_ZH_LEXICON: dict[str, int] = {
    **{w: 0 for w in _ZH_NEUTRAL.split()},
    **{w: 1 for w in _ZH_POSITIVE.split()},
    **{w: -1 for w in _ZH_NEGATIVE.split()},
    **{w: 2 for w in _ZH_NEGATORS},  # 2: negates the next polar word
}
_ZH_LONGEST = max(len(w) for w in _ZH_LEXICON)

# Clauses: sentence ends, semicolons, and the turns of "but" (the polarity often changes there).
_CLAUSE_RE = re.compile(
    r"[.!?;。！？；\n]+(?:\s+|$)|(?<=[a-z]{3})\.(?=[a-z]{3})|,?\s+(?:but|however|although|though|whereas|except)\s+|"
    r"[，,]?\s*(?:但是|但|不过|可是|就是|然而)"
)


@dataclass(frozen=True)
class Mention:
    """One aspect named in one clause of a review."""

    aspect: str  # Aspect.key
    start: int  # the clause, as offsets into the review's text
    end: int
    term_start: int  # the words that name the aspect, as offsets into the review's text
    term_end: int
    polarity: Polarity


def language_of(*texts: str) -> str:
    """ "zh" where the texts hold Chinese characters, otherwise "en"."""
    return "zh" if any(has_cjk(t) for t in texts) else "en"


def clauses(text: str) -> Iterator[tuple[int, int]]:
    """The clauses of ``text`` as (start, end) offsets, blank ones left out."""
    start = 0
    for match in _CLAUSE_RE.finditer(text):
        if match.start() > start:
            yield from _trimmed(text, start, match.start())
        start = match.end()
    yield from _trimmed(text, start, len(text))


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and (text[start].isspace() or text[start] in ",，、:："):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end


def polarity_score(clause: str) -> int:
    """Positive words minus negative ones in one clause, each negated one counted reversed."""
    if re.search(f"[{CJK_RANGE}]", clause):
        return _zh_score(clause) + _en_score(clause.lower())
    return _en_score(clause.lower())


def _en_score(clause: str) -> int:
    score = 0
    for match in _EN_POLAR_RE.finditer(clause):
        sign = 1 if match.group("pos") else -1
        before = _EN_WORD_RE.findall(clause[: match.start()])[-3:]
        if any(w in _EN_NEGATORS or w.endswith("n't") for w in before):
            sign = -sign
        score += sign
    return score


def _zh_score(clause: str) -> int:
    score, negate, i = 0, False, 0
    while i < len(clause):
        for size in range(min(_ZH_LONGEST, len(clause) - i), 0, -1):
            value = _ZH_LEXICON.get(clause[i : i + size])
            if value is not None:
                break
        else:
            i += 1
            continue
        if value == 2:
            negate = True
        elif value != 0:
            score += -value if negate else value
            negate = False
        i += size
    return score


def _polarity(score: int) -> Polarity:
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def mentions(text: str, rating: float | None = None) -> list[Mention]:
    """Every aspect named in each clause of one review, first naming in the clause only.

    A clause without polar words takes the review's rating (4 and up: positive; 2 and below:
    negative) when the review is that one clause; otherwise it is neutral.
    """
    spans = list(clauses(text))
    found: list[Mention] = []
    for start, end in spans:
        clause = text[start:end]
        terms = _aspect_terms(clause)
        if not terms:
            continue
        score = polarity_score(clause)
        if score == 0 and len(spans) == 1 and rating is not None:
            score = 1 if rating >= 4 else -1 if rating <= 2 else 0
        for key, (t_start, t_end) in terms.items():
            own = _own_score(clause, t_start, terms) if len(terms) > 1 else 0
            found.append(
                Mention(key, start, end, start + t_start, start + t_end, _polarity(own or score))
            )
    return found


_PART_RE = re.compile(r"[,，、]\s*|\s+and\s+|和|而且")


def _own_score(clause: str, at: int, terms: dict[str, tuple[int, int]]) -> int:
    """The polarity of the comma-separated part of ``clause`` that names the aspect at ``at``,
    where that part names no other aspect ("great battery, terrible sound"); 0 otherwise."""
    cuts = [0, *(m.end() for m in _PART_RE.finditer(clause)), len(clause) + 1]
    for left, right in itertools.pairwise(cuts):
        if left <= at < right:
            if sum(left <= s < right for s, _ in terms.values()) > 1:
                return 0
            return polarity_score(clause[left:right])
    return 0


def _aspect_terms(clause: str) -> dict[str, tuple[int, int]]:
    """Each aspect the clause names, with the place of its first naming."""
    lowered = clause.lower()  # same length as the clause for the scripts reviews are written in
    same_length = len(lowered) == len(clause)
    found: dict[str, tuple[int, int]] = {}
    cjk = has_cjk(clause)
    for a in ASPECTS:
        match = _EN_ASPECT_RES[a.key].search(lowered)
        if match is not None and same_length:
            found[a.key] = match.span()
            continue
        if cjk:
            places = [(clause.find(term), term) for term in a.zh if term in clause]
            if places:
                at, term = min(places)
                found[a.key] = (at, at + len(term))
    return found
