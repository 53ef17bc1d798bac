"""Servers the integration tests own: a Redis to stop and restart, a TCP proxy to cut.

They live in `benchmarks.servers` (``python -m benchmarks.faults`` kills them too); one copy.
"""

from __future__ import annotations

from benchmarks.servers import OwnElasticsearch, OwnRedis, TcpProxy, free_port

__all__ = ["OwnElasticsearch", "OwnRedis", "TcpProxy", "free_port"]
