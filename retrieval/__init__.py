"""Retrieval: stores, embedders, re-rankers and the Haystack pipelines that join them."""

import os

# Haystack sends usage statistics to PostHog unless told not to. A shop's search backend
# sends nothing anywhere by default (and runs offline); HAYSTACK_TELEMETRY_ENABLED=true opts in.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
