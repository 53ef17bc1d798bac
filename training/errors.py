"""Errors of the training package: `TrainingError` for anything that stops a run (missing
training packages, nothing to train on, an output folder that holds another run)."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """A training run cannot start or go on."""
