"""Stage workflows over model directories: calibrate, evaluate, and the whole ``run``.

Each function loads what it needs from disk, calls a pure core (``fit_calibration``,
``compute_metrics``) and writes its outputs; the CLI is a thin shell over these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emorec.artifacts import CALIBRATION_FILE, ModelDir, read_json
from emorec.calibration import DEFAULT_THRESHOLD, Calibration, fit_calibration
from emorec.config import Config
from emorec.data import PreparedData, prepare
from emorec.errors import ConfigError, EmorecError
from emorec.evaluation.by_task import evaluate_decisions
from emorec.inference import EmotionClassifier
from emorec.task import SINGLE_LABEL, Task

logger = logging.getLogger(__name__)


def _config_of(model_dir: Path, config: Config | None) -> Config:
    config = config or ModelDir(model_dir).config()
    if config is None:
        raise ConfigError(
            f"{model_dir} has no config.yaml, so emorec cannot tell which data it was trained on; "
            "pass the run config explicitly."
        )
    return config


def calibrate_model(
    model_dir: str | Path, config: Config | None = None, prepared: PreparedData | None = None
) -> Calibration:
    """Fit temperature and decision offsets/thresholds on the validation split; save them."""
    model_dir = Path(model_dir)
    classifier = EmotionClassifier.from_pretrained(model_dir, backend="torch")
    config = _config_of(model_dir, config)
    prepared = prepared or prepare(config, classifier.tokenizer)
    validation = prepared.splits["validation"]
    logits = classifier.logits(validation["text"])
    targets = np.asarray(validation["labels"])
    calibration = fit_calibration(
        logits,
        targets,
        config.calibration,
        classifier.label_space.task,
        label_names=classifier.labels,
    )
    calibration.save(model_dir / CALIBRATION_FILE)
    return calibration


@dataclass
class EvaluationResult:
    metrics: dict[str, float]
    decision_rule: str
    artifacts: dict[str, Path]
    task: Task = SINGLE_LABEL


def evaluate_model(
    model_dir: str | Path,
    split: str | None = None,
    results_dir: str | Path | None = None,
    config: Config | None = None,
    prepared: PreparedData | None = None,
) -> EvaluationResult:
    """Score the model on a split with raw and calibrated decisions; write the artifacts."""
    model_dir = Path(model_dir)
    classifier = EmotionClassifier.from_pretrained(model_dir, backend="torch")
    config = _config_of(model_dir, config)
    split = split or config.evaluation.split
    prepared = prepared or prepare(config, classifier.tokenizer)
    data = prepared.splits[split]
    logits = classifier.logits(data["text"])
    targets = np.asarray(data["labels"])

    task = classifier.label_space.task
    # The uncalibrated rule: argmax (single-label) or the default threshold (multi-label).
    raw_rule = task.raw_rule
    raw = Calibration.untuned(task)
    rules: dict[str, tuple[np.ndarray, np.ndarray]] = {
        raw_rule: (raw.probabilities(logits), raw.decide(logits))
    }
    thresholds: dict[str, float | np.ndarray] = {raw_rule: DEFAULT_THRESHOLD}
    calibrated = (model_dir / CALIBRATION_FILE).is_file()
    if calibrated:
        calibration = classifier.calibration
        rules["calibrated"] = (calibration.probabilities(logits), calibration.decide(logits))
        thresholds["calibrated"] = np.asarray(calibration.thresholds or DEFAULT_THRESHOLD)
    decision_rule = "calibrated" if calibrated else raw_rule
    names = classifier.labels
    bins = config.calibration.ece_bins
    out = Path(results_dir) if results_dir else config.output_path("results_dir")
    extra: dict[str, Any] = {
        "split": split,
        "model_dir": str(model_dir),
        # What the scored split is (subsample or whole, self-split or the source's).
        "data": prepared.report.get("rows"),
    }
    if calibrated:
        extra["calibration"] = classifier.calibration.to_dict()
    training = ModelDir(model_dir).train_metrics()
    metrics, artifacts = evaluate_decisions(
        task,
        out,
        targets=targets,
        rules=rules,
        thresholds=thresholds,
        ece_bins=bins,
        label_names=names,
        texts=data["text"],
        clean_texts=data["clean_text"],
        decision_rule=decision_rule,
        run_name=config.run_name,
        config_dict=config.model_dump(mode="json"),
        extra=extra,
        # Drawn again beside report.md, which links it, from the history kept with the model.
        log_history=training.get("log_history"),
    )
    # The model directory keeps its own copy so it stays self-contained.
    ModelDir(model_dir).write_metrics(read_json(artifacts["metrics"]))
    _refresh_model_card(model_dir)
    return EvaluationResult(metrics, decision_rule, artifacts, task)


def _refresh_model_card(model_dir: Path) -> None:
    """Rewrite the model card (README.md) from the metrics just written.

    The card is derived from files already on disk, so a failure to render it is logged rather
    than raised: it must not discard an evaluation that may have taken hours.
    """
    from emorec.hub import write_model_card

    try:
        write_model_card(model_dir)
    except (EmorecError, OSError, KeyError, TypeError, ValueError) as error:
        logger.warning("Model card not written to %s: %s", model_dir, error)


@dataclass
class RunResult:
    model_dir: Path
    results_dir: Path
    train_metrics: dict[str, Any]
    calibration: Calibration
    evaluation: EvaluationResult
    prepare_report: dict[str, Any]


def run(config: Config, progress: bool = True) -> RunResult:
    """prepare → train → calibrate → evaluate, all from one config."""
    from emorec.modeling import load_tokenizer
    from emorec.train import train

    tokenizer = load_tokenizer(config.model.name)
    prepared = prepare(config, tokenizer)
    trained = train(config, prepared, progress=progress)
    calibration = calibrate_model(trained.model_dir, config, prepared)
    results_dir = config.output_path("results_dir")
    evaluation = evaluate_model(trained.model_dir, None, results_dir, config, prepared)
    return RunResult(
        trained.model_dir, results_dir, trained.metrics, calibration, evaluation, prepared.report
    )
