"""Key-value caches for embeddings, search results and answers: in-process or Redis."""
