"""Export a sentence-transformers bi-encoder to ONNX for `OnnxSentenceEmbedder`, check its
vectors against torch's, and keep the export in a folder keyed by the source model's checksum.

`ensure_export` is what the ONNX embedder calls on first use (and ``shopguide export-embedder``
ahead of time): the folder ``<export_dir>/<model>-<checksum>`` is made once per source model
(its files' SHA-256, with `EXPORT_FORMAT`), so a changed or updated model gets a fresh export and
every later start finds the existing one in milliseconds. The export is built in a temporary
folder and renamed into place, under a file lock, so processes starting together neither
export twice nor see half a folder.

fp32: torch's TorchScript exporter (``dynamo=False``, opset 17; the torch.export-based exporter
needs ``onnxscript``, which the project does not install; see `training.onnx_export`), the
transformer alone with dynamic batch and sequence axes, its output the token embeddings that
the embedder pools. It takes about 2 s for MiniLM (90 MB) and needs only torch and
transformers, which the torch embedder needs anyway. The export is refused unless its vectors
are torch's (cosine >= `FP32_MIN_COSINE` on `CHECK_TEXTS`, short, long past the maximum length,
Chinese, empty), which is what lets it keep the torch model's name.

int8: `onnxruntime.quantization.quantize_dynamic` (int8 weights with a scale per output
channel, activations quantised per run: the u8 x s8 products that ONNX Runtime runs with the
CPU's int8 dot-product instructions, AVX512-VNNI or AVX-VNNI where present). Weights keep 7
bits (``reduce_range``): CPUs without VNNI sum pairs of u8 x s8 products in 16 bits, which
full-range weights can overflow, so the same graph would give other vectors there than on a
VNNI machine; with 7 bits every x86-64 CPU computes the same integers, and an index written on
one machine is searched with query vectors from another. Measured on CrowdFlower units: cosine
to torch mean 0.992 (0.994 at 8 bits), the same speed. Quantisation needs the ``onnx`` package,
at export time only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.embedders.onnx_sentence import (
    CONFIG,
    ONNX_FP32,
    ONNX_INT8,
    OUTPUT,
    POOLING_MODES,
    TOKENIZER,
    OnnxSentenceEmbedder,
    read_config,
)
from retrieval.models import resolve_model_source
from retrieval.onnx_runtime import quantize_int8

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

# Part of the checksum that names an export folder: change it when the export changes.
EXPORT_FORMAT = 2
OPSET = 17
FP32_MIN_COSINE = 0.9999
INT8_MIN_COSINE = 0.9  # a sanity bound: a broken quantisation, not a quality bar
_MODULES = ("Transformer", "Pooling", "Normalize")
_LONG = (
    "Stainless steel electric kettle with a 1.7 litre capacity, a concealed heating element, "
    "auto shut-off and boil-dry protection, a 360 degree swivel base and a washable filter. "
) * 8
CHECK_TEXTS: tuple[str, ...] = (
    "noise cancelling headphones",
    "Sony WH-1000XM5 Wireless Noise Cancelling Headphones, 30 hours of battery, black",
    "Lodge 12 inch cast iron skillet, pre-seasoned",
    "kettle",
    "running shoes for women size 8",
    "USB-C 65W charger (GaN) - 2 ports",
    "降噪耳机 无线 长续航",
    "",
    _LONG,
    _LONG[:700],
    "Women's lightweight road running shoe with foam cushioning and a breathable mesh upper, "
    "for daily training, tempo runs and races up to the half marathon.",
    "tent for two",
)


def source_folder(spec: str) -> Path:
    """The local folder of the model ``spec`` names (``packaged:<name>``, a folder, or a hub
    name already in the local cache)."""
    source = resolve_model_source(spec)
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source, local_files_only=True))
    except Exception as exc:  # any failure: the files are not here
        msg = f"the ONNX embedder needs the files of '{spec}' on this machine: {exc}"
        raise ValueError(msg) from exc


def source_checksum(folder: Path) -> str:
    """SHA-256 of the folder's files (names and contents; hidden files and ONNX graphs left
    out) and of `EXPORT_FORMAT`."""
    digest = hashlib.sha256(f"shopguide-onnx-embedder-{EXPORT_FORMAT}\n".encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if any(part.startswith(".") for part in relative.split("/")) or path.suffix == ".onnx":
            continue
        digest.update(f"{relative}\n{path.stat().st_size}\n".encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def export_folder(spec: str, export_dir: Path, checksum: str) -> Path:
    """Where the export of ``spec`` with source ``checksum`` lives."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", spec)[-60:].strip("._-") or "model"
    return export_dir / f"{slug}-{checksum[:16]}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_export(spec: str, export_dir: Path, *, int8: bool = False) -> Path:
    """The export folder of ``spec`` in ``export_dir``, made (fp32, and int8 when asked for
    and missing) if needed; ValueError when the model cannot be exported or checked."""
    folder = source_folder(spec)
    checksum = source_checksum(folder)
    target = export_folder(spec, Path(export_dir), checksum)
    if (target / CONFIG).is_file() and (not int8 or (target / ONNX_INT8).is_file()):
        return target
    with _locked(target.with_name(f".{target.name}.lock")):
        if not (target / CONFIG).is_file():
            logger.info("exporting the embedder %s to ONNX in %s", spec, target)
            export(spec, folder, target, checksum=checksum)
        if int8 and not (target / ONNX_INT8).is_file():
            logger.info("quantising the embedder %s to int8 in %s", spec, target)
            add_int8(target, folder)
    return target


def _load_torch(folder: Path) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    # eager attention: the graph ONNX Runtime's fusions know (as `training.onnx_export`)
    return SentenceTransformer(
        str(folder), device="cpu", model_kwargs={"attn_implementation": "eager"}
    )


def _describe(model: SentenceTransformer) -> dict[str, Any]:
    """Pooling, dimension and maximum length; ValueError for what the ONNX path cannot run."""
    kinds = [type(module).__name__ for module in model]
    if kinds[:2] != ["Transformer", "Pooling"] or not set(kinds) <= set(_MODULES):
        msg = (
            f"the ONNX embedder runs Transformer, Pooling and Normalize models, not "
            f"{' -> '.join(kinds)}: use SHOPGUIDE_EMBEDDER_RUNTIME=torch"
        )
        raise ValueError(msg)
    pooling = model[1].pooling_mode
    if pooling not in POOLING_MODES:
        msg = f"the ONNX embedder pools by {', '.join(POOLING_MODES)}, not {pooling!r}"
        raise ValueError(msg)
    dim = model.get_embedding_dimension()
    return {"pooling": pooling, "dim": int(dim or 0), "max_seq_length": model.max_seq_length}


def _export_graph(model: SentenceTransformer, target: Path) -> None:
    import torch

    module: Any = model[0]
    transformer = module.auto_model.eval()

    class TokenEmbeddings(torch.nn.Module):
        """The transformer's last hidden state, for the exporter."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            output = self.transformer(input_ids=input_ids, attention_mask=attention_mask)
            return output[0]

    # Two texts of different lengths: the traced graph must not fix either axis.
    example = module.tokenizer(
        ["a short text", "a longer text, to trace the padded batch"],
        padding=True,
        return_tensors="pt",
    )
    names = ["input_ids", "attention_mask"]
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, OUTPUT]}
    # The exporter's warnings (deprecation, traced shape checks) are logged; the graph is then
    # checked against torch.
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        torch.onnx.export(
            TokenEmbeddings().eval(),
            tuple(example[n] for n in names),
            str(target),
            dynamo=False,
            input_names=names,
            output_names=[OUTPUT],
            dynamic_axes=axes,
            opset_version=OPSET,
        )
    for warning in {str(w.message).splitlines()[0] for w in caught}:
        logger.debug("exporter: %s", warning)


def _cosines(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    cosines = (reference * other).sum(axis=1)
    return {
        "texts": len(cosines),
        "min_cosine": round(float(cosines.min()), 7),
        "mean_cosine": round(float(cosines.mean()), 7),
    }


def _check(
    folder: Path, file_name: str, reference: np.ndarray, texts: Sequence[str]
) -> dict[str, float]:
    """How the vectors of one graph compare with torch's: batched, and one text a run."""
    embedder = OnnxSentenceEmbedder(
        str(folder), int8=file_name == ONNX_INT8, batch_size=4, max_seq_length=None
    )
    batched = embedder.embed_documents(texts)
    single = np.vstack([embedder.embed_query(t) for t in texts])
    checks = _cosines(reference, batched)
    checks["single_min_cosine"] = _cosines(reference, single)["min_cosine"]
    checks["megabytes"] = round((folder / file_name).stat().st_size / 1e6, 1)
    return checks


def export(
    spec: str,
    source: Path,
    target: Path,
    *,
    checksum: str | None = None,
    texts: Sequence[str] = CHECK_TEXTS,
) -> dict[str, Any]:
    """Export the model in ``source`` (``spec`` is the name its vectors go by) to ``target``
    (fp32 only), check it against torch, and move it into place; its ``embedder.json``."""
    started = time.perf_counter()
    model = _load_torch(source)
    config: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "name": spec,
        "source": str(source),
        "checksum": checksum or source_checksum(source),
        **_describe(model),
        "opset": OPSET,
        "output": OUTPUT,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _export_graph(model, work / ONNX_FP32)
        tokenizer: Any = model[0].tokenizer
        tokenizer.backend_tokenizer.save(str(work / TOKENIZER))
        _write_config(work, config)
        reference = _reference_from(model, texts, config["max_seq_length"])
        fp32 = _check(work, ONNX_FP32, reference, texts)
        if min(fp32["min_cosine"], fp32["single_min_cosine"]) < FP32_MIN_COSINE:
            msg = (
                f"the ONNX export of '{spec}' does not reproduce torch's vectors (cosine "
                f"{fp32['min_cosine']:.6f}); use SHOPGUIDE_EMBEDDER_RUNTIME=torch"
            )
            raise ValueError(msg)
        config["checks"] = {ONNX_FP32: fp32}
        config["seconds"] = round(time.perf_counter() - started, 1)
        _write_config(work, config)
        os.chmod(work, 0o755)  # noqa: S103 - a model folder others may read, as the source
        try:
            work.rename(target)
        except OSError:
            if not (target / CONFIG).is_file():
                raise
            logger.info("another process exported %s meanwhile", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return read_config(target)


def _reference_from(
    model: SentenceTransformer, texts: Sequence[str], max_seq_length: int
) -> np.ndarray:
    model.max_seq_length = max_seq_length
    return np.asarray(
        model.encode(
            list(texts),
            batch_size=4,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ),
        dtype=np.float32,
    )


def add_int8(folder: Path, source: Path, texts: Sequence[str] = CHECK_TEXTS) -> dict[str, Any]:
    """Quantise the folder's fp32 graph to ``model.int8.onnx``, check it against the vectors
    of the torch model in ``source`` and record the check; the updated ``embedder.json``."""
    config = read_config(folder)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-int8-", dir=folder.parent))
    try:
        quantize_int8(folder / ONNX_FP32, work / ONNX_INT8, reduce_range=True)
        shutil.copyfile(folder / TOKENIZER, work / TOKENIZER)
        _write_config(work, config)
        reference = _reference_from(_load_torch(source), texts, config["max_seq_length"])
        int8 = _check(work, ONNX_INT8, reference, texts)
        if min(int8["min_cosine"], int8["single_min_cosine"]) < INT8_MIN_COSINE:
            msg = f"the int8 graph of {folder} is broken (cosine {int8['min_cosine']:.4f})"
            raise ValueError(msg)
        int8["seconds"] = round(time.perf_counter() - started, 1)
        os.chmod(work / ONNX_INT8, 0o644)
        os.replace(work / ONNX_INT8, folder / ONNX_INT8)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    config.setdefault("checks", {})[ONNX_INT8] = int8
    _write_config(folder, config)
    return config


def _write_config(folder: Path, config: dict[str, Any]) -> None:
    path = folder / CONFIG
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o644)
    tmp.replace(path)
