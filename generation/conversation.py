"""Multi-turn shopping advice: what a conversation remembers and how a follow-up reads.

A conversation keeps its last turns (question, answer, the products cited) and the last result
set: the search text, the filters applied and the products shown. It lives in the cache backend
(Redis in the stack) with a time to live, so a conversation expires on its own and any API
worker can continue it. Its key names whose it is, so that nobody else can continue it: a
shopper's under ``shopguide:user:<user id>:conversation:<id>`` (erased with the shopper), one
for nobody in particular under the caller that started it,
``shopguide:conversation:<owner>:<id>`` (the API's owner is the caller: a service's key id).

A follow-up is read by rules, in English and Chinese, never by the model:

- **cheaper / more expensive** ("cheaper ones?", "less expensive", "便宜一点的", "更贵的"):
  the last search again, with the price below the cheapest (above the dearest) product the last
  answer recommended;
- **among these** ("which of these has the longest battery?", "哪个续航最长", "这些里面"):
  the question answered over the products shown last, and nothing else;
- **compare** ("compare the first two", "1 vs 3", "比较前两个", "对比第一个和第三个"): a
  side-by-side comparison of two or three of the products shown last (the first two when none is
  named), attribute by attribute from the catalog's fields;
- anything else is a new search (the conversation keeps its turns).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Literal

from retrieval.caches.base import Cache, key_prefix, user_prefix
from retrieval.schema import Filters

logger = logging.getLogger(__name__)

NAMESPACE = "conversation"
ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
OWNER_PATTERN = r"[a-z][a-z0-9-]{0,15}-[a-z0-9][a-z0-9-]{0,63}"
MAX_COMPARED = 3

FollowUpKind = Literal["new", "cheaper", "pricier", "among_shown", "compare"]


@dataclass
class Turn:
    """One question and what was answered."""

    question: str
    answer: str
    cited: list[str]


@dataclass
class Conversation:
    """What a conversation remembers."""

    id: str
    turns: list[Turn] = field(default_factory=list)
    query: str = ""  # the last search text (constraint phrases taken out)
    question: str = ""  # the last question that searched
    filters: Filters = field(default_factory=Filters)
    shown: list[str] = field(default_factory=list)  # products given to the model, in order
    cited: list[str] = field(default_factory=list)  # products the last answer cited
    user_id: str | None = None  # the shopper it belongs to (its key is under theirs)
    owner: str | None = None  # else the caller that started it (its key is under theirs)

    def to_json(self) -> bytes:
        """The stored form."""
        data = asdict(self)
        data["filters"] = self.filters.model_dump(exclude_none=True)
        return json.dumps(data, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Conversation:
        """The conversation stored as ``raw``."""
        data = json.loads(raw)
        return cls(
            id=data["id"],
            turns=[Turn(**t) for t in data.get("turns", [])],
            query=data.get("query", ""),
            question=data.get("question", ""),
            filters=Filters(**data.get("filters", {})),
            shown=list(data.get("shown", [])),
            cited=list(data.get("cited", [])),
            user_id=data.get("user_id"),
            owner=data.get("owner"),
        )


class ConversationStore:
    """Conversations in a `Cache` backend, each with a time to live."""

    def __init__(self, cache: Cache, *, ttl_s: float = 1800.0, max_turns: int = 6) -> None:
        self.cache = cache
        self.ttl_s = ttl_s
        self.max_turns = max_turns

    @staticmethod
    def key(conversation_id: str, user_id: str | None = None, owner: str | None = None) -> str:
        """The cache key of a conversation: under its shopper's prefix when it has one, else
        under its owner's (`ValueError` for an id outside ``ID_PATTERN``, an owner outside
        ``OWNER_PATTERN``)."""
        if not re.fullmatch(ID_PATTERN, conversation_id):
            msg = (
                f"a conversation id is 1 to 64 letters, digits, '-' or '_', got {conversation_id!r}"
            )
            raise ValueError(msg)
        if user_id is not None:
            return f"{user_prefix(user_id)}{NAMESPACE}:{conversation_id}"
        if owner is not None:
            if not re.fullmatch(OWNER_PATTERN, owner):
                msg = f"a conversation's owner is <kind>-<id> ({OWNER_PATTERN}), got {owner!r}"
                raise ValueError(msg)
            return f"{key_prefix(NAMESPACE)}{owner}:{conversation_id}"
        return key_prefix(NAMESPACE) + conversation_id

    def load(
        self, conversation_id: str, user_id: str | None = None, owner: str | None = None
    ) -> Conversation:
        """The conversation of ``user_id`` (or else of ``owner``), or a new one when it is
        unknown, expired or unreadable (or the cache is down: the cache answers a miss)."""
        raw = self.cache.get(self.key(conversation_id, user_id, owner))
        if raw is not None:
            try:
                return Conversation.from_json(raw)
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning(
                    "conversation %s unreadable, starting afresh: %s", conversation_id, exc
                )
        return Conversation(conversation_id, user_id=user_id, owner=None if user_id else owner)

    def save(self, conversation: Conversation) -> None:
        """Store it with its last ``max_turns`` turns (best effort, as every cache write)."""
        conversation.turns = conversation.turns[-self.max_turns :]
        key = self.key(conversation.id, conversation.user_id, conversation.owner)
        self.cache.set(key, conversation.to_json(), self.ttl_s)


@dataclass(frozen=True)
class FollowUp:
    """How a question continues the conversation; ``positions`` index ``shown`` (compare)."""

    kind: FollowUpKind
    positions: tuple[int, ...] = ()


_CHEAPER = re.compile(
    r"(?<![a-z])(?:cheaper|less\s+expensive|lower[- ]priced?|more\s+affordable|"
    r"something\s+cheaper)(?![a-z])|便宜|实惠一点|价格低一点|低一点的价",
    re.IGNORECASE,
)
_PRICIER = re.compile(
    r"(?<![a-z])(?:more\s+expensive|pricier|higher[- ]end|premium|fancier)(?![a-z])"
    r"|更贵|贵一点|高端一点",
    re.IGNORECASE,
)
_COMPARE = re.compile(
    r"(?<![a-z])(?:compare|comparison|vs\.?|versus|difference\s+between)(?![a-z])|比较|对比|区别",
    re.IGNORECASE,
)
_AMONG = re.compile(
    r"(?<![a-z])(?:these|those|them|which\s+one|which\s+of|of\s+the\s+(?:ones|products)|"
    r"the\s+(?:first|second|third|last)\s+one)(?![a-z])|这些|这几个|它们|哪个|哪一个|哪款|其中",
    re.IGNORECASE,
)
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5,
    "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5,
    "一": 1, "二": 2, "三": 3, "四": 4, "五": 5,
}  # fmt: skip
_COUNTS = {"two": 2, "three": 3, "两": 2, "二": 2, "三": 3, "2": 2, "3": 3}
_FIRST_N = re.compile(
    r"(?:the\s+)?(?:first|top)\s+(two|three|2|3)|前\s*(两|二|三|2|3)\s*(?:个|款)?", re.I
)
_LAST_N = re.compile(r"(?:the\s+)?last\s+(two|three|2|3)|后\s*(两|二|三|2|3)\s*(?:个|款)?", re.I)
_NAMED = re.compile(
    r"(?<![a-z])(first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th)(?![a-z])"
    r"|第\s*([一二三四五1-5])\s*(?:个|款)?"
    r"|(?:#|no\.?\s*|number\s+|(?<![\w.$¥€£]))([1-5])(?![\w.%])",
    re.IGNORECASE,
)


def _positions(question: str, shown: int) -> tuple[int, ...]:
    """The 0-based positions of the products a comparison names (the first two by default)."""
    if (m := _FIRST_N.search(question)) is not None:
        n = _COUNTS[(m.group(1) or m.group(2)).lower()]
        found = list(range(n))
    elif (m := _LAST_N.search(question)) is not None:
        n = _COUNTS[(m.group(1) or m.group(2)).lower()]
        found = list(range(max(shown - n, 0), shown))
    else:
        found = []
        for m in _NAMED.finditer(question):
            word = (m.group(1) or m.group(2) or m.group(3)).lower()
            number = _ORDINALS.get(word) or int(word)
            if number - 1 not in found:
                found.append(number - 1)
        found = found or [0, 1]
    return tuple(p for p in found if 0 <= p < shown)[:MAX_COMPARED]


def interpret(question: str, conversation: Conversation) -> FollowUp:
    """How ``question`` continues ``conversation`` (``new`` when it has nothing to continue)."""
    if not conversation.shown:
        return FollowUp("new")
    if _COMPARE.search(question):
        positions = _positions(question, len(conversation.shown))
        if len(positions) >= 2:
            return FollowUp("compare", positions)
    if _CHEAPER.search(question):
        return FollowUp("cheaper")
    if _PRICIER.search(question):
        return FollowUp("pricier")
    if _AMONG.search(question):
        return FollowUp("among_shown")
    return FollowUp("new")
