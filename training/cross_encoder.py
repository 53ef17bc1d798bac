"""Training pairs for a cross-encoder, and its training with sentence-transformers.

A pair is (query, unit text, label): the text is the unit's own ``text``, the very string the
re-ranker scores at search time (`retrieval.components.reranker.DocumentReranker` scores each
document's ``content``, which is its unit's text). Training uses sentence-transformers'
`CrossEncoderTrainer` with `BinaryCrossEntropyLoss` (positives weighted by the ratio of
negatives to positives), a fixed seed, a step limit and an optional time budget. Checkpoints are
written every ``save_steps`` steps and when the time budget runs out, so a killed or stopped run
resumes where it was. The finished model folder (tokenizer included) loads with
`retrieval.rankers.cross_encoder.CrossEncoderReranker`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from retrieval.models import resolve_model_source
from training.errors import TrainingError
from training.negatives import NegativeMiner
from training.queries import SyntheticQuery

if TYPE_CHECKING:
    from transformers import TrainerCallback

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
_HEAD_PARAMETERS = r"\.(classifier|pooler)\."
DEFAULT_BASE_MODEL = "packaged:all-minilm-l6-v2"
# What CrossEncoderReranker truncates to by default: train on what is served.
DEFAULT_MAX_LENGTH = 256


@dataclass(frozen=True)
class TrainingPair:
    """A query, a unit's text, and whether the unit is the query's positive (1) or not (0)."""

    query: str
    text: str
    label: float
    unit_id: str
    product_id: str
    source: str  # "positive", "hard" or "random"
    template: str


_LOG_EVERY_S = 30.0  # progress lines when no terminal shows a bar


def build_pairs(
    queries: Iterable[SyntheticQuery], miner: NegativeMiner, *, progress: bool = False
) -> list[TrainingPair]:
    """For each query its positive pair, then one pair per mined negative."""
    pairs: list[TrainingPair] = []
    items = list(queries)
    shown = started = time.monotonic()
    for done, query in enumerate(
        tqdm(items, desc="mining negatives", unit=" queries", disable=not progress)
    ):
        if not progress and time.monotonic() - shown >= _LOG_EVERY_S:  # no bar: log lines
            shown = time.monotonic()
            logger.info(
                "mining negatives: %d of %d queries, %.1f/s",
                done,
                len(items),
                done / max(shown - started, 1e-9),
            )
        positive = miner.unit(query.unit_id)
        pairs.append(
            TrainingPair(
                query.text,
                positive.text,
                1.0,
                positive.id,
                positive.product_id,
                "positive",
                query.template,
            )
        )
        for negative in miner.mine(query):
            pairs.append(
                TrainingPair(
                    query.text,
                    negative.text,
                    0.0,
                    negative.unit_id,
                    negative.product_id,
                    negative.source,
                    query.template,
                )
            )
    return pairs


def write_pairs(path: Path, pairs: Sequence[TrainingPair]) -> None:
    """Write pairs as JSON lines (atomically: a temporary file renamed into place)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for pair in pairs:
            f.write(json.dumps(asdict(pair), ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_pairs(path: Path) -> list[TrainingPair]:
    """Pairs written by `write_pairs`."""
    with path.open(encoding="utf-8") as f:
        return [TrainingPair(**json.loads(line)) for line in f if line.strip()]


@dataclass(frozen=True)
class TrainingOptions:
    """How to train.

    The number of steps is ``max_steps`` when set, else ``epochs`` passes over the pairs, else
    (``epochs=None``) whole passes until at least ``min_steps`` steps, at most
    ``max_auto_epochs`` passes: a small catalog's few hundred pairs need several passes before
    the fresh head learns anything (on the 44-product sample one pass left the loss where it
    started), a large catalog's one. ``time_budget_s`` stops training early, with a
    checkpoint, once that much time has passed in this run.

    The learning rates were chosen on the sample catalog: at 5e-5 for everything the loss did
    not move in 80 steps; 1e-4 for the encoder and 1e-3 for the untrained head (the classifier
    and BERT's pooler) learned within 100.
    """

    base_model: str = DEFAULT_BASE_MODEL
    max_length: int = DEFAULT_MAX_LENGTH
    batch_size: int = 16
    learning_rate: float = 1e-4
    head_learning_rate: float | None = 1e-3  # None: ``learning_rate``
    warmup_ratio: float = 0.1
    epochs: float | None = None
    min_steps: int = 200
    max_auto_epochs: int = 4
    max_steps: int | None = None
    time_budget_s: float | None = None
    save_steps: int = 100
    logging_steps: int = 10
    seed: int = 42
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_length < 16 or self.save_steps < 1:
            msg = "batch_size and save_steps must be at least 1 and max_length at least 16"
            raise ValueError(msg)
        if self.max_steps is not None and self.max_steps < 1:
            msg = f"max_steps must be at least 1, got {self.max_steps}"
            raise ValueError(msg)
        if (self.epochs is not None and self.epochs <= 0) or self.learning_rate <= 0:
            msg = "epochs and learning_rate must be positive"
            raise ValueError(msg)
        if self.head_learning_rate is not None and self.head_learning_rate <= 0:
            msg = f"head_learning_rate must be positive, got {self.head_learning_rate}"
            raise ValueError(msg)
        if not 0 <= self.warmup_ratio < 1:
            msg = f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}"
            raise ValueError(msg)

    def total_steps(self, pairs: int) -> int:
        """The number of optimiser steps a run of ``pairs`` pairs takes."""
        if self.max_steps is not None:
            return self.max_steps
        per_epoch = max(1, math.ceil(pairs / self.batch_size))
        if self.epochs is not None:
            return max(1, math.ceil(per_epoch * self.epochs))
        epochs = min(self.max_auto_epochs, max(1, math.ceil(self.min_steps / per_epoch)))
        return per_epoch * epochs


@dataclass(frozen=True)
class TrainingResult:
    """What a training run did."""

    steps: int
    max_steps: int
    resumed_from: int | None
    stopped_by: str  # "max_steps" or "time_budget"
    seconds: float
    pairs_per_second: float
    loss: float | None
    model_dir: Path

    @property
    def complete(self) -> bool:
        """Whether training reached its last step."""
        return self.steps >= self.max_steps


def _trainer_callbacks(progress: bool, time_budget_s: float | None) -> tuple[Any, Any]:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):  # type: ignore[misc]
        """A tqdm bar on stderr and the loss in the log (the trainer's own bar is off: it
        prints its logs on stdout)."""

        def __init__(self) -> None:
            self.bar: tqdm[Any] | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar = tqdm(
                total=state.max_steps,
                initial=state.global_step,
                desc="training",
                unit=" steps",
                disable=not progress,
            )

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            if logs and "loss" in logs:
                logger.info(
                    "step %d/%d: loss %.4f, learning rate %.2e",
                    state.global_step,
                    state.max_steps,
                    logs["loss"],
                    logs.get("learning_rate", 0.0),
                )
                if self.bar is not None:
                    self.bar.set_postfix(loss=f"{logs['loss']:.4f}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    class TimeBudget(TrainerCallback):  # type: ignore[misc]
        """Stops training, with a checkpoint, once the budget is spent."""

        def __init__(self) -> None:
            self.started = time.monotonic()
            self.spent = False

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if time_budget_s is None or state.global_step >= state.max_steps:
                return
            if time.monotonic() - self.started >= time_budget_s:
                self.spent = True
                control.should_training_stop = True
                control.should_save = True

    return Progress(), TimeBudget()


def _last_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The checkpoint with the highest step, and that step."""
    found: list[tuple[int, Path]] = []
    for path in folder.glob("checkpoint-*"):
        name = path.name.removeprefix("checkpoint-")
        if path.is_dir() and name.isdigit() and (path / "trainer_state.json").is_file():
            found.append((int(name), path))
    if not found:
        return None
    last_step, last_path = max(found)
    return last_path, last_step


def train_cross_encoder(
    pairs: Sequence[TrainingPair],
    out_dir: Path,
    options: TrainingOptions,
    *,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[TrainerCallback] = (),
) -> TrainingResult:
    """Fine-tune ``options.base_model`` as a one-label cross-encoder on ``pairs`` and save it
    to ``out_dir``; checkpoints go to ``out_dir/checkpoints`` (removed once training is
    complete). With ``resume``, training goes on from the last checkpoint there, if any."""
    if not pairs:
        msg = "no training pairs"
        raise TrainingError(msg)
    try:
        import torch
        from datasets import Dataset
        from sentence_transformers.cross_encoder import (
            CrossEncoder,
            CrossEncoderTrainer,
            CrossEncoderTrainingArguments,
        )
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
        from transformers import PrinterCallback, ProgressCallback, set_seed
    except ImportError as exc:
        msg = f"training needs the 'train' extra (pip install -e '.[train]'): {exc}"
        raise TrainingError(msg) from exc

    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = out_dir / CHECKPOINTS
    last = _last_checkpoint(checkpoints) if resume else None
    if resume and last is None:
        logger.info("no checkpoint in %s: training starts from the base model", checkpoints)

    set_seed(options.seed)
    model = CrossEncoder(
        resolve_model_source(options.base_model),
        num_labels=1,
        max_length=options.max_length,
        device=options.device,
    )
    dataset = Dataset.from_dict(
        {
            "query": [p.query for p in pairs],
            "text": [p.text for p in pairs],
            "label": [p.label for p in pairs],
        }
    )
    positives = sum(1 for p in pairs if p.label > 0)
    ratio = (len(pairs) - positives) / positives if positives else 1.0
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(max(ratio, 1.0)))
    max_steps = options.total_steps(len(pairs))
    args = CrossEncoderTrainingArguments(
        output_dir=str(checkpoints),
        max_steps=max_steps,
        per_device_train_batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        warmup_steps=round(options.warmup_ratio * max_steps),
        seed=options.seed,
        data_seed=options.seed,
        save_strategy="steps",
        save_steps=options.save_steps,
        save_total_limit=2,
        logging_steps=options.logging_steps,
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=False,
        use_cpu=options.device == "cpu",
        learning_rate_mapping=(
            {_HEAD_PARAMETERS: options.head_learning_rate} if options.head_learning_rate else None
        ),
    )
    shown, budget = _trainer_callbacks(progress, options.time_budget_s)
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=loss,
        callbacks=[shown, budget, *callbacks],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    started = time.perf_counter()
    if last is not None:
        logger.info("resuming from %s (step %d of %d)", last[0], last[1], max_steps)
    trainer.train(resume_from_checkpoint=str(last[0]) if last else None)
    seconds = time.perf_counter() - started

    steps = trainer.state.global_step
    done = steps - (last[1] if last else 0)
    history = trainer.state.log_history
    losses = [e["loss"] for e in history if "loss" in e] or [
        e["train_loss"] for e in history if "train_loss" in e
    ]
    model.save_pretrained(str(out_dir))
    result = TrainingResult(
        steps=steps,
        max_steps=max_steps,
        resumed_from=last[1] if last else None,
        stopped_by="time_budget" if budget.spent and steps < max_steps else "max_steps",
        seconds=seconds,
        pairs_per_second=done * options.batch_size / seconds if seconds > 0 else 0.0,
        loss=losses[-1] if losses else None,
        model_dir=out_dir,
    )
    if result.complete:
        shutil.rmtree(checkpoints, ignore_errors=True)
    return result
