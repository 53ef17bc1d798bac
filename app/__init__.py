"""The service layer: settings, the FastAPI app and the command line."""

import retrieval  # noqa: F401  (first: it switches Haystack's telemetry off before Haystack loads)
