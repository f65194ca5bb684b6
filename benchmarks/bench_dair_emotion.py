"""Benchmark: full dair-emotion run with the offline MiniLM vs a TF-IDF + linear SVM baseline.

    .venv/bin/python -m benchmarks.bench_dair_emotion [--config CONFIG] [--set key=value]

Trains on the 16,000 training rows, calibrates on validation, and scores the 2,000 test rows
with argmax and calibrated decisions. The baseline sees the same cleaned splits; its C is chosen
on validation. Cleaning throughput is measured on the training texts. Writes
benchmarks/results/dair_emotion.json.
"""

from __future__ import annotations

import argparse
import time

from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

from benchmarks._common import tfidf_splits, write_result
from emorec.config import load_config
from emorec.data import PreparedData, prepare
from emorec.modeling import load_tokenizer
from emorec.pipeline import run
from emorec.text import TextCleaner
from emorec.text.cleaner import cleaning_throughput


def tfidf_svm_baseline(prepared: PreparedData) -> dict[str, float]:
    """TF-IDF (word 1-2 grams) + LinearSVC, C picked on validation macro-F1."""
    x_train, x_val, x_test, y_train, y_val, y_test = tfidf_splits(prepared)
    best_c, best_f1 = 1.0, -1.0
    for c in (0.1, 0.3, 1.0, 3.0):
        model = LinearSVC(C=c, class_weight="balanced").fit(x_train, y_train)
        score = f1_score(y_val, model.predict(x_val), average="macro")
        if score > best_f1:
            best_c, best_f1 = c, score
    model = LinearSVC(C=best_c, class_weight="balanced").fit(x_train, y_train)
    predicted = model.predict(x_test)
    return {
        "baseline_C": best_c,
        "baseline_val_macro_f1": float(best_f1),
        "baseline_test_accuracy": float(accuracy_score(y_test, predicted)),
        "baseline_test_macro_f1": float(f1_score(y_test, predicted, average="macro")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/dair-emotion.yaml")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    config = load_config(args.config, ["training.resume=false", *args.overrides])

    tokenizer = load_tokenizer(config.model.name)
    started = time.perf_counter()
    prepared = prepare(config, tokenizer, use_cache=False)
    prepare_seconds = time.perf_counter() - started
    clean_per_s = cleaning_throughput(prepared.splits["train"]["text"], config.data.cleaning)
    TextCleaner(config.data.cleaning)  # resources loaded before timing anything else

    result = run(config)
    metrics = result.evaluation.metrics
    rule = result.evaluation.decision_rule
    baseline = tfidf_svm_baseline(prepared)

    payload = {
        "config": args.config,
        "overrides": args.overrides,
        "decision_rule": rule,
        "test_accuracy": metrics[f"{rule}/accuracy"],
        "test_macro_f1": metrics[f"{rule}/macro_f1"],
        "test_accuracy_argmax": metrics["argmax/accuracy"],
        "test_macro_f1_argmax": metrics["argmax/macro_f1"],
        "test_ece_argmax": metrics["argmax/ece"],
        "test_ece": metrics[f"{rule}/ece"],
        "test_per_class_f1": {
            name: metrics[f"{rule}/{name}/f1"] for name in prepared.label_space.names
        },
        "validation_macro_f1_before_calibration": result.calibration.macro_f1_before,
        "validation_macro_f1_after_calibration": result.calibration.macro_f1_after,
        "temperature": result.calibration.temperature,
        "train_seconds": result.train_metrics["train_seconds"],
        "train_samples_per_s": result.train_metrics["train_samples_per_s"],
        "epochs": result.train_metrics["epochs"],
        "best_validation_macro_f1": result.train_metrics["best_validation_macro_f1"],
        "prepare_seconds": round(prepare_seconds, 2),
        "clean_texts_per_s": clean_per_s,
        "sizes": prepared.report["sizes"],
        "leakage": prepared.report["leakage"],
        **baseline,
    }
    path = write_result("dair_emotion", payload)
    print(f"wrote {path}")
    for key in (
        "test_accuracy",
        "test_macro_f1",
        "test_accuracy_argmax",
        "test_macro_f1_argmax",
        "baseline_test_accuracy",
        "baseline_test_macro_f1",
        "train_seconds",
        "train_samples_per_s",
        "clean_texts_per_s",
    ):
        print(f"{key:>28}: {payload[key]}")


if __name__ == "__main__":
    main()
