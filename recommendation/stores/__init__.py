"""Where event aggregates live: in process (a file under DATA_DIR) or in Redis."""
