"""Export a cross-encoder folder to ONNX (fp32, then dynamic int8) and check it against torch.

`export_onnx` writes ``model.onnx`` and ``model.int8.onnx`` (the names that
`retrieval.rankers.onnx_cross_encoder.OnnxCrossEncoderReranker` looks for) into the model folder
or another one, with the tokenizer and configuration files beside them, then scores the same
(query, text) pairs with the torch `CrossEncoder` and with each ONNX file through the ONNX
re-ranker, and reports how far they are apart: the largest logit difference and the rank
agreement (Spearman's rho and Kendall's tau-b over the pairs' logits). The figures are added to
the folder's ``training.json`` under ``"onnx"`` when it has one.

The exporter is torch's TorchScript-based one (``dynamo=False``). The torch.export-based
exporter, the default since torch 2.9, needs the ``onnxscript`` package, which the project does
not install; the TorchScript exporter needs no extra package, works offline on the CPU, takes
its dynamic batch and sequence axes from ``dynamic_axes``, and its graph matches torch to about
1e-7 on the logits. It is deprecated but still in torch 2.13; its warnings are logged at debug
level, not raised. Attention is exported as the
``eager`` implementation, the graph ONNX Runtime's fusions know. Dynamic int8 quantisation
(`onnxruntime.quantization.quantize_dynamic`: int8 weights, a scale per output channel, and
activations quantised at run time) needs the ``onnx`` package (a core dependency). Per
channel halved the mean logit error of per-tensor weights on the CrowdFlower-adapted MiniLM
(0.069 to 0.031 against fp32) at the same speed; fusing the graph first with ONNX Runtime's
transformer optimizer gained no speed (the session fuses it anyway) and lost precision.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.onnx_runtime import quantize_int8
from retrieval.rankers.manifest import MANIFEST
from retrieval.rankers.onnx_cross_encoder import (
    INPUT_NAMES,
    ONNX_FP32,
    ONNX_INT8,
    SERVING_FILES,
    OnnxCrossEncoderReranker,
    saved_max_length,
)
from training.adapt import PAIRS
from training.errors import TrainingError

logger = logging.getLogger(__name__)

OPSET = 17
# Checked pairs: a sample of the folder's training pairs when it has them, else these.
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("noise cancelling headphones", "Sony WH-1000XM5 wireless noise cancelling headphones"),
    ("noise cancelling headphones", "Lodge 12 inch cast iron skillet, pre-seasoned"),
    ("cast iron pan", "Lodge 12 inch cast iron skillet, pre-seasoned"),
    ("cast iron pan", "Stainless steel electric kettle, 1.7 litres, auto shut-off"),
    ("kettle", "Stainless steel electric kettle, 1.7 litres, auto shut-off"),
    ("running shoes for women", "Women's lightweight road running shoe with foam cushioning"),
    ("running shoes for women", "Men's leather dress shoes, oxford, black"),
    ("tent for two", "MSR Hubba Hubba 2-person backpacking tent, 1.5 kg"),
    ("tent for two", "Burr coffee grinder with 40 grind settings"),
    ("降噪耳机", "索尼 WH-1000XM5 无线降噪耳机，30小时续航"),
    ("降噪耳机", "美的 电饭煲 4升 智能预约"),
    ("电饭煲", "美的 电饭煲 4升 智能预约"),
)


@dataclass(frozen=True)
class OnnxCheck:
    """How one ONNX file scores the checked pairs against torch."""

    file: str
    megabytes: float
    max_abs_logit_diff: float
    max_abs_score_diff: float  # on the activated score the re-ranker returns
    spearman: float
    kendall: float


@dataclass(frozen=True)
class OnnxExport:
    """What `export_onnx` wrote and measured."""

    out_dir: Path
    pairs: int
    max_length: int
    checks: list[OnnxCheck]
    seconds: float

    def to_manifest(self) -> dict[str, Any]:
        """The ``"onnx"`` entry of ``training.json``."""
        return {
            "opset": OPSET,
            "pairs": self.pairs,
            "max_length": self.max_length,
            "files": {
                c.file: {k: v for k, v in asdict(c).items() if k != "file"} for c in self.checks
            },
            "seconds": round(self.seconds, 1),
        }


def check_pairs(model_dir: Path, count: int = 64, *, seed: int = 0) -> list[tuple[str, str]]:
    """Up to ``count`` (query, text) pairs of the folder's ``pairs.jsonl`` (a seeded sample:
    positives and negatives of the catalog, the scores the re-ranker will see), else
    `DEFAULT_PAIRS`."""
    path = model_dir / PAIRS
    if not path.is_file():
        return list(DEFAULT_PAIRS)
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows:
        return list(DEFAULT_PAIRS)
    sample = random.Random(seed).sample(rows, min(count, len(rows)))
    return [(row["query"], row["text"]) for row in sample]


def rank_agreement(
    reference: Sequence[float] | np.ndarray, other: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """Spearman's rho and Kendall's tau-b between two score lists (1.0 when both are
    constant, 0.0 when only one is)."""
    from scipy.stats import kendalltau, spearmanr

    a, b = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if len(a) < 2:
        return 1.0, 1.0
    flat_a, flat_b = bool(np.ptp(a) == 0), bool(np.ptp(b) == 0)
    if flat_a or flat_b:
        same = 1.0 if flat_a and flat_b else 0.0
        return same, same
    return float(spearmanr(a, b).statistic), float(kendalltau(a, b).statistic)


def _export_fp32(model_dir: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(model_dir), attn_implementation="eager"
    )
    names = [n for n in INPUT_NAMES if n in tokenizer.model_input_names]
    if "input_ids" not in names or "attention_mask" not in names:
        msg = f"{model_dir}: the tokenizer gives {tokenizer.model_input_names}, not token ids"
        raise TrainingError(msg)

    class Logits(torch.nn.Module):
        """The classifier's logits from positional inputs, for the exporter."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).logits

    # Two pairs of different lengths: the traced graph must not fix either axis.
    example = tokenizer(
        ["a short query", "another"],
        ["a longer text to score against the query", "text"],
        padding=True,
        return_tensors="pt",
    )
    wrapper = Logits().eval()
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    # The exporter warns that it is deprecated, that traced shape checks became constants and
    # that advanced indexing assumes non-negative indices: recorded, logged, and the graph
    # checked against torch afterwards.
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        torch.onnx.export(
            wrapper,
            tuple(example[n] for n in names),
            str(target),
            dynamo=False,
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET,
        )
    for warning in {str(w.message).splitlines()[0] for w in caught}:
        logger.debug("exporter: %s", warning)


def _quantize(source: Path, target: Path) -> None:
    try:
        quantize_int8(source, target, reduce_range=False)
    except ValueError as exc:
        raise TrainingError(str(exc)) from exc


def _copy_serving_files(model_dir: Path, out_dir: Path) -> None:
    if out_dir.resolve() == model_dir.resolve():
        if not (model_dir / "tokenizer.json").is_file():
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(out_dir))
        return
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(out_dir))
    for name in SERVING_FILES:
        if (model_dir / name).is_file() and not name.startswith("tokenizer"):
            shutil.copyfile(model_dir / name, out_dir / name)


def _torch_logits(model_dir: Path, pairs: Sequence[tuple[str, str]], max_length: int) -> np.ndarray:
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(model_dir), device="cpu")
    own = model.max_seq_length
    model.max_seq_length = min(own, max_length) if own else max_length
    logits = model.predict(
        list(pairs),
        activation_fn=torch.nn.Identity(),
        show_progress_bar=False,
        convert_to_numpy=True,
    )
    return np.asarray(logits, dtype=np.float32)


def _check(
    out_dir: Path,
    file_name: str,
    pairs: Sequence[tuple[str, str]],
    reference: np.ndarray,
    max_length: int,
) -> OnnxCheck:
    reranker = OnnxCrossEncoderReranker(str(out_dir), file_name=file_name, max_length=max_length)
    logits = reranker.logits(pairs)
    if reranker.activation == "sigmoid":
        with np.errstate(over="ignore"):
            scores, ref_scores = 1 / (1 + np.exp(-logits)), 1 / (1 + np.exp(-reference))
    else:
        scores, ref_scores = logits, reference
    spearman, kendall = rank_agreement(reference, logits)
    return OnnxCheck(
        file=file_name,
        megabytes=round((out_dir / file_name).stat().st_size / 1e6, 1),
        max_abs_logit_diff=float(np.max(np.abs(logits - reference))),
        max_abs_score_diff=float(np.max(np.abs(scores - ref_scores))),
        spearman=round(spearman, 4),
        kendall=round(kendall, 4),
    )


def export_onnx(
    model_dir: Path,
    out_dir: Path | None = None,
    *,
    int8: bool = True,
    pairs: Sequence[tuple[str, str]] | None = None,
    max_length: int = 256,
) -> OnnxExport:
    """Export ``model_dir`` (a `CrossEncoder` folder) to ``out_dir`` (default: the same
    folder), check the files against torch on ``pairs`` (default: `check_pairs`) truncated as
    the re-ranker truncates with ``max_length``, and record the figures in ``training.json``
    when the output folder has one."""
    started = time.perf_counter()
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        msg = f"{model_dir} is not a model folder (no config.json)"
        raise TrainingError(msg)
    out_dir = Path(out_dir) if out_dir is not None else model_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = list(pairs) if pairs is not None else check_pairs(model_dir)

    logger.info("exporting %s to %s", model_dir, out_dir / ONNX_FP32)
    _export_fp32(model_dir, out_dir / ONNX_FP32)
    files = [ONNX_FP32]
    if int8:
        logger.info("quantising to %s", out_dir / ONNX_INT8)
        _quantize(out_dir / ONNX_FP32, out_dir / ONNX_INT8)
        files.append(ONNX_INT8)
    elif (out_dir / ONNX_INT8).is_file():
        (out_dir / ONNX_INT8).unlink()  # an earlier export's, of an older model maybe
    _copy_serving_files(model_dir, out_dir)

    reference = _torch_logits(model_dir, pairs, max_length)
    checks = [_check(out_dir, name, pairs, reference, max_length) for name in files]
    own = saved_max_length(out_dir)
    report = OnnxExport(
        out_dir=out_dir,
        pairs=len(pairs),
        max_length=min(own, max_length) if own else max_length,
        checks=checks,
        seconds=time.perf_counter() - started,
    )
    manifest = out_dir / MANIFEST
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        data["onnx"] = report.to_manifest()
        tmp = manifest.with_name(manifest.name + ".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        tmp.replace(manifest)
    return report
