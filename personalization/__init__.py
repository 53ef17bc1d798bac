"""Shopper profiles built from behaviour, and the re-ranking and diversity that use them.

Dependencies point one way: this package uses `retrieval.schema` (the `Product`), numpy and
redis-py, and nothing else of the project; ``app`` wires it in.
"""
