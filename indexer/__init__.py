"""Reading catalogs, validating rows, building units and writing them to a store."""

import retrieval  # noqa: F401  (first: it switches Haystack's telemetry off before Haystack loads)
