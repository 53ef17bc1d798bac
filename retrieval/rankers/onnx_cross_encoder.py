"""Re-ranker that runs a cross-encoder exported to ONNX (``shopguide export-reranker``).

The model folder holds ``model.onnx`` (fp32) and ``model.int8.onnx`` (dynamic int8) beside the
files the export copies from the `sentence_transformers.CrossEncoder` folder: ``tokenizer.json``,
``tokenizer_config.json``, ``config.json`` and ``config_sentence_transformers.json``. Scoring
reproduces `CrossEncoder.predict`: pairs tokenized with the same fast tokenizer, truncated
``longest_first`` to the model's saved maximum length (capped by ``max_length``, as
`retrieval.rankers.cross_encoder.CrossEncoderReranker` does), padded to the longest pair of each
batch, and the saved activation applied to the logit (a sigmoid for a one-label model, unless the
model says otherwise), so its scores are those of the torch re-ranker.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.onnx_runtime import cpu_session

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
# The files a folder needs beside the ONNX graph (the last two may be missing).
SERVING_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "config.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
)
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
_SIGMOID = "torch.nn.modules.activation.Sigmoid"
_IDENTITY = "torch.nn.modules.linear.Identity"


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def saved_max_length(folder: Path) -> int | None:
    """The maximum sequence length a `CrossEncoder` loaded from ``folder`` uses: the
    ``max_seq_length`` of ``sentence_bert_config.json``, else the tokenizer's
    ``model_max_length`` capped by the model's ``max_position_embeddings``."""
    explicit = _read_json(folder / "sentence_bert_config.json").get("max_seq_length")
    if explicit:
        return int(explicit)
    tokenizer_max = _read_json(folder / "tokenizer_config.json").get("model_max_length")
    positions = _read_json(folder / "config.json").get("max_position_embeddings")
    limits = [int(v) for v in (tokenizer_max, positions) if isinstance(v, int | float) and v > 0]
    return min(limits) if limits else None


def saved_activation(folder: Path) -> str:
    """``"sigmoid"`` or ``"identity"``: what `CrossEncoder.predict` applies to the logit by
    default (the saved ``activation_fn``; a sigmoid for a one-label model without one)."""
    config = _read_json(folder / "config.json")
    path = (
        _read_json(folder / "config_sentence_transformers.json").get("activation_fn")
        or (config.get("sentence_transformers") or {}).get("activation_fn")
        or config.get("sbert_ce_default_activation_function")
    )
    labels = config.get("num_labels") or len(config.get("id2label") or {0: None})
    if labels != 1:
        msg = f"{folder}: the ONNX re-ranker needs a one-label cross-encoder, not {labels} labels"
        raise ValueError(msg)
    if path in (None, _SIGMOID) or not str(path).startswith("torch."):
        return "sigmoid"  # CrossEncoder's default; it ignores untrusted non-torch paths too
    if path == _IDENTITY:
        return "identity"
    msg = f"{folder}: unsupported activation {path} (sigmoid or identity)"
    raise ValueError(msg)


def load_tokenizer(folder: Path, max_length: int) -> Tokenizer:
    """The folder's fast tokenizer, set to truncate pairs ``longest_first`` to ``max_length``
    and to pad each batch to its longest pair, as sentence-transformers calls it (the truncation
    and fixed padding saved in ``tokenizer.json`` are replaced)."""
    from tokenizers import Tokenizer, normalizers

    path = folder / "tokenizer.json"
    if not path.is_file():
        msg = f"no tokenizer.json in {folder}: export the model with `shopguide export-reranker`"
        raise ValueError(msg)
    tokenizer = Tokenizer.from_file(str(path))
    config = _read_json(folder / "tokenizer_config.json")
    if _read_json(folder / "sentence_bert_config.json").get("do_lower_case"):
        current = tokenizer.normalizer
        if current is None or "Lowercase" not in repr(current):
            parts = [normalizers.Lowercase()] + ([current] if current is not None else [])
            tokenizer.normalizer = normalizers.Sequence(parts)
    tokenizer.enable_truncation(
        max_length=max_length,
        strategy="longest_first",
        direction=config.get("truncation_side", "right"),
    )
    pad_token = config.get("pad_token") or (tokenizer.padding or {}).get("pad_token") or "[PAD]"
    if isinstance(pad_token, dict):  # an AddedToken written out
        pad_token = pad_token.get("content", "[PAD]")
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        msg = f"{folder}: the pad token {pad_token!r} is not in the vocabulary"
        raise ValueError(msg)
    tokenizer.enable_padding(
        direction=config.get("padding_side", "right"),
        pad_id=pad_id,
        pad_type_id=int(config.get("pad_token_type_id", 0)),
        pad_token=pad_token,
    )
    return tokenizer


class OnnxCrossEncoderReranker:
    """A cross-encoder run by ONNX Runtime on the CPU.

    ``path`` is an ``.onnx`` file (its folder holds the tokenizer and configuration) or a model
    folder, in which ``file_name`` (``model.onnx`` or ``model.int8.onnx``) is used. ``threads``
    is ONNX Runtime's intra-op thread count: 1 by default, as the API runs torch (a query is
    one small batch; see `app.services.configure_threads`).

    Pairs run ``batch_size`` at a time, longest first; the default, one, pads nothing. A batch
    is padded to its longest pair, and product texts vary (9,913 CrowdFlower units: median 78
    tokens, a fifth over 160), so batches of 32 did twice the work: the top 20 took 975 ms in
    fp32 and 398 ms in int8 on one thread, against 445 and 206 ms one pair at a time. One pair a
    run also keeps int8 scores independent of the other candidates (dynamic quantisation scales
    the activations of a whole batch)."""

    def __init__(
        self,
        path: str,
        *,
        file_name: str = ONNX_FP32,
        max_length: int = 256,
        threads: int = 1,
        batch_size: int = 1,
    ) -> None:
        self.path = path
        self.file = Path(path) if path.endswith(".onnx") else Path(path) / file_name
        self.max_length = max_length
        self.threads = threads
        self.batch_size = batch_size
        self.activation = "sigmoid"
        self.seq_length = max_length
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._inputs: tuple[str, ...] = ()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The ONNX file (distinct from the torch model's name: the scores differ slightly)."""
        return str(self.file)

    def warm_up(self) -> None:
        """Load the tokenizer and the ONNX session once."""
        with self._lock:
            if self._session is not None:
                return

            if not self.file.is_file():
                msg = (
                    f"no ONNX model at {self.file}: export the cross-encoder with "
                    "`shopguide export-reranker FOLDER`"
                )
                raise ValueError(msg)
            folder = self.file.parent
            own = saved_max_length(folder)
            self.seq_length = min(own, self.max_length) if own else self.max_length
            self.activation = saved_activation(folder)
            self._tokenizer = load_tokenizer(folder, self.seq_length)
            session = cpu_session(self.file, threads=self.threads)
            self._inputs = tuple(i.name for i in session.get_inputs())
            unknown = set(self._inputs) - set(INPUT_NAMES)
            if unknown:
                msg = f"{self.file}: unexpected inputs {sorted(unknown)}"
                raise ValueError(msg)
            self._session = session

    def encode(self, pairs: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        """The model's inputs for ``pairs`` (one batch, padded to its longest pair)."""
        if self._tokenizer is None:
            self.warm_up()
        assert self._tokenizer is not None
        encodings = self._tokenizer.encode_batch(list(pairs))
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return {name: arrays[name] for name in self._inputs}

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """The raw logit of each (query, text) pair, in order; batches of similar length."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        if self._session is None:
            self.warm_up()
        assert self._session is not None and self._tokenizer is not None
        lengths = [len(q) + len(t) for q, t in pairs]
        order = np.argsort(lengths, kind="stable")[::-1]
        out = np.empty(len(pairs), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            feed = self.encode([pairs[i] for i in chunk])
            (logits,) = self._session.run(["logits"], feed)
            out[chunk] = logits.reshape(len(chunk), -1)[:, 0]
        return out

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text: `CrossEncoder.predict`'s (the activated logit)."""
        if not texts:
            return []
        logits = self.logits([(query, text) for text in texts]).astype(np.float64)
        if self.activation == "sigmoid":
            with np.errstate(over="ignore"):
                logits = 1.0 / (1.0 + np.exp(-logits))
        return [float(s) for s in logits]
