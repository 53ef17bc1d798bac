"""Where profiles live: a JSON file per user (embedded) or Redis (shared by every worker)."""
