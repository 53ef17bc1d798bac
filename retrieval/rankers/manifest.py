"""The manifest an adapted re-ranker carries: ``training.json`` in its folder, written by
``shopguide adapt-reranker`` (what it was trained on), read to decide what it re-ranks."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MANIFEST = "training.json"


def read_manifest(spec: str) -> dict[str, Any] | None:
    """The manifest beside a re-ranker (its folder, or the folder of an ``.onnx`` file), or
    None when it has none (a hub model, nanoranker) or it cannot be read (logged)."""
    path = Path(spec).expanduser()
    folder = path.parent if path.suffix == ".onnx" else path
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("re-ranker manifest %s unreadable: %s", manifest, exc)
        return None
    return data if isinstance(data, dict) else None
