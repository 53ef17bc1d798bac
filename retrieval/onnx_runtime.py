"""ONNX Runtime on the CPU as the project's ONNX models use it: a session, int8 quantisation."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnxruntime


def cpu_session(
    path: Path, *, threads: int | None, custom_ops_library: str | None = None
) -> onnxruntime.InferenceSession:
    """A CPU session of the model at ``path``: ``threads`` intra-op threads (None: ONNX
    Runtime's default), one inter-op thread, and the custom operators of a library if given."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if custom_ops_library:
        options.register_custom_ops_library(custom_ops_library)
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quantize_int8(source: Path, target: Path, *, reduce_range: bool) -> None:
    """Dynamic int8 quantisation of ``source`` into ``target``: int8 weights with a scale per
    output channel (7 bits with ``reduce_range``), activations quantised per run; ValueError
    when the ``onnx`` package it needs is missing."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # onnxruntime's quantization imports the onnx package
        msg = f"int8 quantisation needs the 'onnx' package (pip install onnx): {exc}"
        raise ValueError(msg) from exc
    # ONNX Runtime logs a hint to pre-process the graph first (shape inference): it helps
    # static quantisation, not the MatMul weights that dynamic quantisation converts.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
        )
    finally:
        root.setLevel(level)
