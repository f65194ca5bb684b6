"""Benchmark: GoEmotions (28 labels, multi-label) and its Ekman grouping with the offline MiniLM.

    .venv/bin/python -m benchmarks.bench_goemotions [--config C] [--ekman-config C] [--set k=v]
        [--reuse-models]

``--reuse-models`` skips training when the configs' model directories exist: it re-fits the
calibration on dev and re-scores test (training time is read from ``train_metrics.json``).

Trains on train.tsv, fits temperature and per-label thresholds on dev.tsv only, scores
test.tsv. A TF-IDF + one-vs-rest balanced logistic regression baseline, thresholds tuned on dev
the same way, runs in the same script. Writes benchmarks/results/goemotions.json.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier

from benchmarks._common import tfidf_splits, write_result
from emorec.calibration import ThresholdTuner
from emorec.config import Config, load_config
from emorec.data import PreparedData, prepare
from emorec.pipeline import RunResult, calibrate_model, evaluate_model, run


def tfidf_ovr_baseline(prepared: PreparedData) -> dict[str, float]:
    """TF-IDF + one-vs-rest balanced logistic regression; thresholds tuned on validation."""
    x_train, x_val, x_test, y_train, y_val, y_test = tfidf_splits(prepared)
    model = OneVsRestClassifier(
        LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000), n_jobs=2
    ).fit(x_train, y_train)
    tuner = ThresholdTuner().fit(model.predict_proba(x_val), y_val)
    predicted = tuner.predict(model.predict_proba(x_test))
    return {
        "baseline_test_macro_f1": float(
            f1_score(y_test, predicted, average="macro", zero_division=0)
        ),
        "baseline_test_micro_f1": float(
            f1_score(y_test, predicted, average="micro", zero_division=0)
        ),
    }


def summarise(result: RunResult) -> dict[str, Any]:
    m = result.evaluation.metrics
    names = [
        key.split("/")[1] for key in m if key.startswith("calibrated/") and key.endswith("/f1")
    ]
    return {
        "test_macro_f1_tuned": m["calibrated/macro_f1"],
        "test_macro_f1_at_0_5": m["fixed/macro_f1"],
        "test_micro_f1_tuned": m["calibrated/micro_f1"],
        "test_micro_f1_at_0_5": m["fixed/micro_f1"],
        "test_roc_auc_macro": m["calibrated/roc_auc_macro"],
        "test_hamming_score_tuned": m["calibrated/hamming_score"],
        "test_exact_match_tuned": m["calibrated/exact_match"],
        "test_per_label_f1_tuned": {name: m[f"calibrated/{name}/f1"] for name in names},
        "temperature": result.calibration.temperature,
        "train_seconds": result.train_metrics["train_seconds"],
        "train_samples_per_s": result.train_metrics["train_samples_per_s"],
        "epochs": result.train_metrics["epochs"],
        "sizes": result.prepare_report["sizes"],
    }


def run_or_reuse(config: Config, reuse: bool) -> RunResult:
    """Train from scratch, or re-calibrate and re-evaluate an already trained model dir."""
    model_dir = config.output_path("model_dir")
    if not (reuse and (model_dir / "train_metrics.json").is_file()):
        return run(config)
    prepared = prepare(config)
    calibration = calibrate_model(model_dir, config, prepared)
    evaluation = evaluate_model(
        model_dir, None, config.output_path("results_dir"), config, prepared
    )
    train_metrics = json.loads((model_dir / "train_metrics.json").read_text())
    return RunResult(
        model_dir,
        config.output_path("results_dir"),
        train_metrics,
        calibration,
        evaluation,
        prepared.report,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/goemotions.yaml")
    parser.add_argument("--ekman-config", default="configs/goemotions-ekman.yaml")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--reuse-models", action="store_true")
    args = parser.parse_args()
    overrides = ["training.resume=false", *args.overrides]

    started = time.perf_counter()
    full = run_or_reuse(load_config(args.config, overrides), args.reuse_models)
    full_summary = summarise(full)
    baseline = tfidf_ovr_baseline(prepare(load_config(args.config, overrides)))
    ekman = run_or_reuse(load_config(args.ekman_config, overrides), args.reuse_models)
    ekman_summary = summarise(ekman)

    payload = {
        "config": args.config,
        "ekman_config": args.ekman_config,
        "overrides": args.overrides,
        "reused_trained_models": args.reuse_models,
        **full_summary,
        **baseline,
        "ekman_test_macro_f1": ekman_summary["test_macro_f1_tuned"],
        "ekman_test_macro_f1_at_0_5": ekman_summary["test_macro_f1_at_0_5"],
        "ekman": ekman_summary,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    path = write_result("goemotions", payload)
    print(f"wrote {path}")
    for key in (
        "test_macro_f1_tuned",
        "test_macro_f1_at_0_5",
        "test_micro_f1_tuned",
        "test_roc_auc_macro",
        "ekman_test_macro_f1",
        "baseline_test_macro_f1",
        "train_seconds",
    ):
        print(f"{key:>24}: {payload[key]}")


if __name__ == "__main__":
    main()
