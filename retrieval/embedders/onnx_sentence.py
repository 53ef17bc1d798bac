"""Embedder that runs a sentence-transformers bi-encoder exported to ONNX, with ONNX Runtime.

An export folder (written by `retrieval.embedders.onnx_export`, on first use or by ``shopguide
export-embedder``) holds ``model.onnx`` (fp32), optionally ``model.int8.onnx`` (dynamic int8:
int8 weights, activations quantised per run), ``tokenizer.json`` (the model's fast tokenizer,
normaliser included, as sentence-transformers sets it up) and ``embedder.json`` (the name whose
vectors the graph reproduces, its dimension, pooling and maximum length, the source's checksum
and how the export compared with torch).

Embedding reproduces `SentenceTransformer.encode(normalize_embeddings=True)` for a Transformer,
Pooling (mean, CLS or max) and optional Normalize model: the same token ids (truncated to the
maximum length), the transformer's token embeddings from the graph, pooled over the attention
mask and scaled to unit length. Texts are tokenized first and run in batches of similar token
counts, longest first, each padded only to its own longest text: product texts vary (CrowdFlower
units: a median of 78 tokens, a fifth over 160), and batches in input order pad a short text to
a long neighbour's length, which cost more than half of the work. Vectors come back in input
order. ``threads`` is ONNX Runtime's intra-op thread count: every usable core by default (for
indexing), one per request while serving (`app.services.build_embedder`); a session runs
requests from several threads at once.

Dynamic int8 quantises the activations of a whole batch with one scale, so an int8 vector
depends slightly on the texts batched with it; fp32 vectors do not (to float rounding).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.embedders.base import DEFAULT_MAX_TOKENS, tokens_suffix
from retrieval.onnx_runtime import cpu_session

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Encoding, Tokenizer

ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
CONFIG = "embedder.json"
TOKENIZER = "tokenizer.json"
OUTPUT = "token_embeddings"
# Appended to the name of the model an int8 graph was quantised from: its vectors differ from
# torch's (cosine ~0.99), so an index written with one is not searched with the other. Change it
# when the quantisation recipe changes what the vectors are.
INT8_SUFFIX = "@onnx-int8"
POOLING_MODES = ("mean", "cls", "max")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def read_config(folder: Path) -> dict[str, Any]:
    """The export's ``embedder.json``."""
    path = folder / CONFIG
    if not path.is_file():
        msg = f"{folder} is not an ONNX embedder export (no {CONFIG})"
        raise ValueError(msg)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def load_tokenizer(folder: Path, max_length: int) -> Tokenizer:
    """The export's tokenizer, truncating to ``max_length`` tokens and padding nothing (batches
    are padded here, each to its own longest text)."""
    from tokenizers import Tokenizer

    path = folder / TOKENIZER
    if not path.is_file():
        msg = f"no {TOKENIZER} in {folder}: export the model again (shopguide export-embedder)"
        raise ValueError(msg)
    tokenizer = Tokenizer.from_file(str(path))
    direction = (tokenizer.truncation or {}).get("direction", "right")
    tokenizer.no_padding()
    tokenizer.enable_truncation(
        max_length=max_length, strategy="longest_first", direction=direction
    )
    return tokenizer


def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int) -> list[np.ndarray]:
    """Indices of ``lengths`` grouped longest first: at most ``batch_size`` texts a batch, and
    at most ``max_tokens`` tokens once padded to its longest (a single text may pass it)."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, min(batch_size, max_tokens // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Sentence vectors from token embeddings [batch, tokens, dim] and the attention mask, as
    sentence-transformers' Pooling computes them, scaled to unit length."""
    weights = mask.astype(np.float32)
    if mode == "mean":
        sums = np.einsum("bld,bl->bd", hidden, weights)
        vectors = sums / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    elif mode == "cls":
        vectors = hidden[:, 0]
    elif mode == "max":
        vectors = np.where(weights[:, :, None] > 0, hidden, np.float32(-1e9)).max(axis=1)
    else:
        msg = f"unsupported pooling {mode!r} (one of {', '.join(POOLING_MODES)})"
        raise ValueError(msg)
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class OnnxSentenceEmbedder:
    """A sentence-transformers bi-encoder run by ONNX Runtime on the CPU.

    ``model`` is an export folder (holding ``embedder.json``) or what ``SHOPGUIDE_EMBEDDER``
    names for the torch embedder (``packaged:<name>``, a folder, a hub name): then the export
    in ``export_dir`` made from that model's files is used, and made on first use when missing
    (`retrieval.embedders.onnx_export.ensure_export`; fp32 takes seconds, int8 needs the
    ``onnx`` package). ``int8`` picks ``model.int8.onnx``.

    The name is the torch model's for fp32 (the export refuses a graph whose vectors are not
    torch's, cosine >= 0.9999 on its check texts, so indexes stay valid across the runtimes)
    and that name plus ``@onnx-int8`` for int8.
    """

    def __init__(
        self,
        model: str,
        *,
        int8: bool = False,
        export_dir: Path | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        max_tokens: int = 4096,
        max_seq_length: int | None = DEFAULT_MAX_TOKENS,
        query_prefix: str = "",
        document_prefix: str = "",
    ) -> None:
        self.model = model
        self.int8 = int8
        self.export_dir = export_dir
        self.threads = threads or usable_cores()
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.max_seq_length = max_seq_length
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self.folder: Path | None = None
        self.seq_length = max_seq_length or 512
        self.pooling = "mean"
        self._dim: int | None = None
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._inputs: tuple[str, ...] = ()
        self._output = OUTPUT
        self._name: str | None = None
        self._lock = threading.Lock()

    @property
    def file_name(self) -> str:
        """``model.int8.onnx`` or ``model.onnx``."""
        return ONNX_INT8 if self.int8 else ONNX_FP32

    def _is_export(self) -> bool:
        return (Path(self.model).expanduser() / CONFIG).is_file()

    @property
    def name(self) -> str:
        """The torch model's name (fp32) or that name plus ``@onnx-int8``, after the token limit
        where it is not the default (`tokens_suffix`): the vectors'."""
        if self._name is None:
            base = self.model
            if self._is_export():
                base = str(read_config(Path(self.model).expanduser()).get("name") or self.model)
            self._name = (
                base + tokens_suffix(self.max_seq_length) + (INT8_SUFFIX if self.int8 else "")
            )
        return self._name

    @property
    def dim(self) -> int:
        """Vector size of the export."""
        if self._dim is None:
            self.warm_up()
        assert self._dim is not None
        return self._dim

    def _resolve(self) -> Path:
        if self._is_export():
            return Path(self.model).expanduser()
        if self.export_dir is None:
            msg = f"no export folder for the ONNX embedder of '{self.model}'"
            raise ValueError(msg)
        from retrieval.embedders.onnx_export import ensure_export

        return ensure_export(self.model, self.export_dir, int8=self.int8)

    def warm_up(self) -> None:
        """Find or make the export, then load the tokenizer and the ONNX session once."""
        with self._lock:
            if self._session is not None:
                return

            folder = self._resolve()
            file = folder / self.file_name
            if not file.is_file():
                msg = f"no ONNX model at {file}: export it with `shopguide export-embedder`"
                raise ValueError(msg)
            config = read_config(folder)
            pooling = str(config.get("pooling", "mean"))
            if pooling not in POOLING_MODES:
                msg = f"{folder}: unsupported pooling {pooling!r}"
                raise ValueError(msg)
            own = int(config.get("max_seq_length") or 512)
            self.seq_length = min(own, self.max_seq_length) if self.max_seq_length else own
            tokenizer = load_tokenizer(folder, self.seq_length)
            session = cpu_session(file, threads=self.threads)
            inputs = tuple(i.name for i in session.get_inputs())
            unknown = set(inputs) - set(_INPUTS)
            if unknown or "input_ids" not in inputs:
                msg = f"{file}: unexpected inputs {sorted(inputs)}"
                raise ValueError(msg)
            outputs = [o.name for o in session.get_outputs()]
            self._output = OUTPUT if OUTPUT in outputs else outputs[0]
            self.pooling = pooling
            self._dim = int(config["dim"])
            self._inputs = inputs
            self._tokenizer = tokenizer
            self.folder = folder
            self._session = session

    def _encode(self, texts: Sequence[str]) -> list[Encoding]:
        if self._session is None:
            self.warm_up()
        assert self._tokenizer is not None
        if len(texts) == 1 or self.threads == 1:  # one thread per request while serving
            return [self._tokenizer.encode(t) for t in texts]
        return list(self._tokenizer.encode_batch(list(texts)))

    def _run(self, encodings: Sequence[Encoding]) -> np.ndarray:
        assert self._session is not None
        longest = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), longest), dtype=np.int64)
        mask = np.zeros((len(encodings), longest), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feed = {name: arrays[name] for name in self._inputs}
        (hidden,) = self._session.run([self._output], feed)
        return pool(np.asarray(hidden, dtype=np.float32), mask, self.pooling)

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed texts in batches of similar length; unit-length float32 rows, in input
        order."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        encodings = self._encode([self.document_prefix + t for t in texts])
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        batches: Iterable[np.ndarray] = length_batches(
            [len(e.ids) for e in encodings], self.batch_size, self.max_tokens
        )
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embedding", unit="batch")
        for batch in batches:
            out[batch] = self._run([encodings[i] for i in batch])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query (a batch of one: nothing padded)."""
        return self._run(self._encode([self.query_prefix + text]))[0]
