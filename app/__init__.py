"""The service layer: settings, the FastAPI app and the command line.

Haystack's anonymous usage telemetry is switched off before Haystack is imported: a shop's
search backend does not phone home, and the default set-up runs without a network.
"""

import os

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
