"""The shopper's web page: static assets shipped in the package (``static/``), served by the
API at ``/`` (`app.api.routes.web`)."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
