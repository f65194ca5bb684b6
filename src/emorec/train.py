"""The train stage: a transformers ``Trainer`` with emorec's losses, early stopping on macro-F1."""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    EvalPrediction,
    PrinterCallback,
    ProgressCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint

from emorec._io import atomic_write_text
from emorec.artifacts import CONFIG_FILE
from emorec.calibration import Calibration
from emorec.config import Config
from emorec.data import PreparedData, prepare
from emorec.errors import MissingDependencyError
from emorec.evaluation import TRAINING_CURVES_FILE, plot_training_curves
from emorec.labels import LabelSpace
from emorec.losses import build_loss
from emorec.metrics import per_label_f1
from emorec.modeling import build_model, load_tokenizer
from emorec.progress import TrainingProgress

logger = logging.getLogger(__name__)


class EmotionTrainer(Trainer):
    """``Trainer`` whose loss is one of :mod:`emorec.losses` instead of the model's own."""

    # Our losses return a per-batch mean, so the Trainer must divide by accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, loss_fn: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = self.loss_fn.to(outputs.logits.device)(outputs.logits, labels)
        return (loss, outputs) if return_outputs else loss


def eval_metrics_fn(
    label_space: LabelSpace,
    extra: Callable[[np.ndarray], dict[str, float]] | None = None,
) -> Callable[[EvalPrediction], dict[str, float]]:
    """Validation metrics during training and tuning: macro-F1 (the early-stopping metric) and
    accuracy of the raw decision, plus what ``extra(per_label_f1)`` derives from the per-label
    F1 (the tuning objective), so that both stages score one and the same way."""
    default_rule = Calibration.untuned(label_space.task)

    def compute(eval_pred: EvalPrediction) -> dict[str, float]:
        # Class indices stay as they are; multi-hot floats become an indicator matrix.
        labels = np.asarray(eval_pred.label_ids).astype(np.int64)
        logits = eval_pred.predictions
        predicted = default_rule.decide(np.asarray(logits))
        per_label = per_label_f1(labels, predicted, label_space.num_labels)
        metrics = {
            "macro_f1": float(per_label.mean()),
            "accuracy": float(accuracy_score(labels, predicted)),
        }
        if extra is not None:
            metrics.update(extra(per_label))
        return metrics

    return compute


@dataclass
class TrainResult:
    """What :func:`train` produced: the in-memory classifier and its training statistics."""

    classifier: Any
    # Figures of the run (floats, counts, hardware), and ``log_history``: the Trainer's log.
    metrics: dict[str, Any]
    model_dir: Path


# training.report_to → the package its transformers callback needs.
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def tracking_logs_dir(config: Config) -> Path:
    """Where TensorBoard event files go: ``<work_dir>/logs``, beside the run's checkpoints."""
    return config.output_path("work_dir") / "logs"


def _check_trackers(report_to: list[str]) -> None:
    missing = [n for n in report_to if importlib.util.find_spec(TRACKER_PACKAGES[n]) is None]
    if missing:
        packages = " ".join(TRACKER_PACKAGES[n] for n in missing)
        raise MissingDependencyError(
            f"training.report_to lists {missing}, which is not installed: pip install {packages} "
            '(TensorBoard also comes with pip install "emorec[tracking]").'
        )


@contextmanager
def tracking_environment(config: Config) -> Iterator[None]:
    """While the Trainer is built, point its TensorBoard callback at :func:`tracking_logs_dir`.

    transformers 5 has no ``logging_dir`` argument: ``TensorBoardCallback`` reads
    ``TENSORBOARD_LOGGING_DIR`` when the Trainer creates it. The variable is restored after.
    """
    if "tensorboard" not in config.training.report_to:
        yield
        return
    previous = os.environ.get("TENSORBOARD_LOGGING_DIR")
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(tracking_logs_dir(config).resolve())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TENSORBOARD_LOGGING_DIR", None)
        else:
            os.environ["TENSORBOARD_LOGGING_DIR"] = previous


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _hardware() -> str:
    """The device that trained the model, for the model card."""
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    return f"CPU {cpu_name()} ({torch.get_num_threads()} threads)"


def training_arguments(
    config: Config, checkpoint_dir: Path, progress: bool = False
) -> TrainingArguments:
    """The Trainer's arguments for ``config``; ``progress`` keeps transformers' own tqdm bar.

    :func:`train` leaves it off and shows :class:`~emorec.progress.TrainingProgress` instead.
    """
    t = config.training
    _check_trackers(t.report_to)
    cuda = torch.cuda.is_available()
    if t.fp16 and not cuda:
        logger.info("fp16 requested but CUDA is not available: training in fp32.")
    strategy = "steps" if t.eval_steps else "epoch"
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio of all steps
        lr_scheduler_type=t.lr_scheduler_type,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        num_train_epochs=t.num_epochs,
        max_steps=t.max_steps,
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=t.eval_steps,
        save_steps=t.eval_steps,
        logging_steps=t.logging_steps,
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        save_total_limit=t.save_total_limit,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        fp16=t.fp16 and cuda,
        use_cpu=not cuda,
        seed=t.seed,
        data_seed=t.seed,
        report_to=list(t.report_to) or "none",
        run_name=config.run_name,
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )


def build_trainer(
    config: Config,
    prepared: PreparedData,
    tokenizer: Any,
    args: TrainingArguments,
    callbacks: Sequence[TrainerCallback] = (),
    *,
    metrics_extra: Callable[[np.ndarray], dict[str, float]] | None = None,
    fresh_model_per_run: bool = False,
) -> EmotionTrainer:
    """The one Trainer set-up of :func:`train` and of tuning trials.

    The loss from the training split's label counts, the model, dynamic padding, the
    validation metrics of :func:`eval_metrics_fn` (``metrics_extra`` adds derived ones) and the
    trackers of ``training.report_to``. ``fresh_model_per_run``: the Trainer builds the model
    itself (``model_init``) after seeding, so every ``train()`` starts from the same fresh
    initialisation and keeps no state of a previous trial.
    """
    space = prepared.label_space
    train_split = prepared.splits["train"]
    targets = np.asarray(train_split["labels"])
    loss_fn = build_loss(
        config.training,
        task=space.task,
        label_counts=space.counts(targets),
        n_samples=len(targets),
        names=space.names,
    )

    def new_model() -> torch.nn.Module:
        return build_model(config.model.name, space, config.model.dropout, config.model.head)

    with tracking_environment(config):
        return EmotionTrainer(
            model=None if fresh_model_per_run else new_model(),
            model_init=new_model if fresh_model_per_run else None,
            args=args,
            train_dataset=train_split,
            eval_dataset=prepared.splits["validation"],
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=eval_metrics_fn(space, metrics_extra),
            callbacks=list(callbacks),
            loss_fn=loss_fn,
        )


def train(
    config: Config,
    prepared: PreparedData | None = None,
    progress: bool = True,
    callbacks: list[TrainerCallback] | None = None,
) -> TrainResult:
    """Fine-tune ``config.model.name`` on the prepared data and save a self-contained model dir.

    Resumes from the last checkpoint of an interrupted run with the same config. Extra
    ``callbacks`` (transformers ``TrainerCallback``) are passed to the Trainer. ``progress``
    shows :class:`~emorec.progress.TrainingProgress` on stdout (a live bar on a terminal, one
    plain line per evaluation elsewhere). ``train_metrics.json`` keeps the Trainer's log
    history, drawn as ``training_curves.png`` in the model directory.
    """
    from emorec.inference import EmotionClassifier

    t = config.training
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    set_seed(t.seed)
    tokenizer = load_tokenizer(config.model.name)
    prepared = prepared or prepare(config, tokenizer)
    space = prepared.label_space
    train_split = prepared.splits["train"]

    work_dir = config.output_path("work_dir")
    checkpoint_dir = work_dir / "checkpoints"
    resume_from = _resumable_checkpoint(config, work_dir, checkpoint_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(work_dir / CONFIG_FILE, config.to_yaml())

    callbacks = list(callbacks or [])
    if t.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    display = TrainingProgress() if progress else None
    if display is not None:
        callbacks.append(display)
    trainer = build_trainer(
        config, prepared, tokenizer, training_arguments(config, checkpoint_dir), callbacks
    )
    # The Trainer's own display: a tqdm bar or, with disable_tqdm, raw log dicts printed as-is.
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    try:
        output = trainer.train(resume_from_checkpoint=resume_from)
    finally:
        if display is not None:
            display.close()
    wall = time.perf_counter() - started
    # Every logged training loss and evaluation, a resumed run's earlier ones included; copied
    # before the re-evaluation of the best checkpoint below adds an entry out of step order.
    log_history = [dict(entry) for entry in trainer.state.log_history]
    best = trainer.evaluate()

    metrics = {
        "train_seconds": round(wall, 2),
        "train_samples_per_s": float(output.metrics.get("train_samples_per_second", 0.0)),
        "train_loss": float(output.metrics.get("train_loss", float("nan"))),
        "epochs": float(output.metrics.get("epoch", trainer.state.epoch or 0.0)),
        "global_steps": int(trainer.state.global_step),
        "best_validation_macro_f1": float(best["eval_macro_f1"]),
        "best_validation_accuracy": float(best["eval_accuracy"]),
        "resumed": resume_from is not None,
        "train_samples": len(train_split),
        "validation_samples": len(prepared.splits["validation"]),
        "augmented_train_samples": (
            int(sum(train_split["augmented"])) if "augmented" in train_split.column_names else 0
        ),
        "hardware": _hardware(),
        # Rows per split actually read, available and used (the prepare report's `rows`): the
        # model card states these facts rather than the config's requests.
        "data": prepared.report.get("rows"),
        "log_history": log_history,
    }
    classifier = EmotionClassifier(
        model=trainer.model.eval(),
        tokenizer=tokenizer,
        label_space=space,
        cleaning=config.data.cleaning,
        max_length=config.model.max_length,
        base_model=config.model.name,
    )
    model_dir = config.output_path("model_dir")
    classifier.save_pretrained(model_dir, train_metrics=metrics, config=config)
    classifier.model_dir = model_dir
    _draw_training_curves(log_history, model_dir / TRAINING_CURVES_FILE, config.run_name)
    # The model dir now holds the result; checkpoints only serve interrupted runs.
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return TrainResult(classifier, metrics, model_dir)


def _draw_training_curves(log_history: list[dict[str, Any]], path: Path, run_name: str) -> None:
    """Draw the curves beside the weights; a failure is logged, not raised (the model is saved)."""
    try:
        plot_training_curves(log_history, path, run_name)
    except (OSError, ValueError, TypeError) as error:
        logger.warning("Training curves not drawn to %s: %s", path, error)


def _resumable_checkpoint(config: Config, work_dir: Path, checkpoint_dir: Path) -> str | None:
    """The last checkpoint of an interrupted run of *this* config, else None."""
    if not (config.training.resume and checkpoint_dir.is_dir()):
        return None
    last = get_last_checkpoint(str(checkpoint_dir))
    saved = work_dir / CONFIG_FILE
    if last is None or not saved.is_file() or saved.read_text() != config.to_yaml():
        if last is not None:
            logger.warning(
                "Checkpoints in %s are from another config: starting fresh.", checkpoint_dir
            )
            shutil.rmtree(checkpoint_dir)
        return None
    logger.info("Resuming from %s", last)
    return last
