"""Conversations kept in real Redis: any worker continues them, and they expire."""

from __future__ import annotations

import uuid

import pytest
import redis

from generation.conversation import Conversation, ConversationStore, Turn
from retrieval.caches.redis import RedisCache
from retrieval.schema import Filters

pytestmark = pytest.mark.integration


def test_a_conversation_is_shared_between_workers_and_expires(redis_url: str) -> None:
    conversation_id = f"test-{uuid.uuid4().hex}"
    first, second = RedisCache(redis_url), RedisCache(redis_url)  # two API workers
    try:
        saved = Conversation(
            conversation_id,
            turns=[Turn("headphones", "The Anker [1].", ["hp-anker"])],
            query="headphones",
            question="headphones",
            filters=Filters(price_max=100, exclude_brands=["Sony"]),
            shown=["hp-anker", "hp-jbl"],
            cited=["hp-anker"],
        )
        ConversationStore(first, ttl_s=60).save(saved)
        assert ConversationStore(second).load(conversation_id) == saved
        ttl = redis.Redis.from_url(redis_url).ttl(ConversationStore.key(conversation_id))
        assert 0 < ttl <= 60
    finally:
        first.delete_prefix(ConversationStore.key(conversation_id))
        first.close()
        second.close()
    assert ConversationStore(RedisCache(redis_url)).load(conversation_id) == Conversation(
        conversation_id
    )
