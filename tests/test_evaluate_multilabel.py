"""Tests for emorec.evaluate_multilabel: metrics core against scikit-learn, report writer."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    hamming_loss,
    jaccard_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    roc_auc_score,
)

from emorec.calibration import DEFAULT_THRESHOLD, expected_calibration_error
from emorec.errors import ConfigError, DataError
from emorec.evaluation.multi_label import (
    compute_multilabel_metrics,
    multilabel_error_analysis,
    write_multilabel_report,
)
from tests.test_evaluate import PNG_MAGIC, parse_markdown_tables

LABELS = ["anger", "joy", "sadness", "surprise"]
PER_LABEL = ("accuracy", "precision", "recall", "f1", "mcc", "support", "threshold")

# Hand-made case: "surprise" is never true (ROC-AUC undefined), row 5 has no true and no
# predicted label, "sadness" is never predicted.
Y = np.array(
    [
        [1, 0, 1, 0],
        [0, 1, 0, 0],
        [1, 1, 0, 0],
        [0, 0, 1, 0],
        [1, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 1, 1, 0],
    ]
)
P = np.array(
    [
        [0.9, 0.2, 0.4, 0.1],
        [0.3, 0.8, 0.1, 0.6],
        [0.7, 0.4, 0.2, 0.1],
        [0.6, 0.1, 0.45, 0.2],
        [0.8, 0.3, 0.3, 0.1],
        [0.2, 0.1, 0.1, 0.3],
        [0.1, 0.9, 0.35, 0.2],
    ]
)


def fixed_rule(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return probs, (probs >= DEFAULT_THRESHOLD).astype(int)


def metrics_for(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    return compute_multilabel_metrics(
        y, LABELS, {"fixed": fixed_rule(probs)}, {"fixed": DEFAULT_THRESHOLD}
    )


# --------------------------------------------------------------------------- metrics


def test_metrics_match_sklearn_on_hand_made_case() -> None:
    _, pred = fixed_rule(P)
    m = metrics_for(Y, P)

    for avg in ("micro", "macro", "weighted", "samples"):
        assert m[f"fixed/{avg}_f1"] == pytest.approx(
            f1_score(Y, pred, average=avg, zero_division=0)
        ), avg
    for avg in ("micro", "macro"):
        assert m[f"fixed/{avg}_precision"] == pytest.approx(
            precision_score(Y, pred, average=avg, zero_division=0)
        )
        assert m[f"fixed/{avg}_recall"] == pytest.approx(
            recall_score(Y, pred, average=avg, zero_division=0)
        )
    assert m["fixed/hamming_loss"] == pytest.approx(hamming_loss(Y, pred))
    assert m["fixed/exact_match"] == pytest.approx(accuracy_score(Y, pred))
    assert m["fixed/ece"] == pytest.approx(expected_calibration_error(P, Y, 15))
    assert m["fixed/predicted_cardinality"] == pytest.approx(pred.sum() / len(Y))

    # "surprise" is never true, so ROC-AUC averages over the other three labels only.
    assert m["fixed/roc_auc_labels"] == 3
    assert m["fixed/roc_auc_macro"] == pytest.approx(
        roc_auc_score(Y[:, :3], P[:, :3], average="macro")
    )

    p, r, f, s = precision_recall_fscore_support(Y, pred, average=None, zero_division=0)
    for c, label in enumerate(LABELS):
        assert m[f"fixed/{label}/accuracy"] == pytest.approx(accuracy_score(Y[:, c], pred[:, c]))
        assert m[f"fixed/{label}/precision"] == pytest.approx(p[c])
        assert m[f"fixed/{label}/recall"] == pytest.approx(r[c])
        assert m[f"fixed/{label}/f1"] == pytest.approx(f[c])
        assert m[f"fixed/{label}/mcc"] == pytest.approx(matthews_corrcoef(Y[:, c], pred[:, c]))
        assert m[f"fixed/{label}/support"] == s[c]
        assert m[f"fixed/{label}/threshold"] == DEFAULT_THRESHOLD

    # Simple means equal the macro averages; support-weighted F1 equals sklearn's "weighted".
    assert m["fixed/label_mean_f1"] == pytest.approx(m["fixed/macro_f1"])
    assert m["fixed/label_mean_precision"] == pytest.approx(m["fixed/macro_precision"])
    assert m["fixed/label_weighted_f1"] == pytest.approx(m["fixed/weighted_f1"])
    assert m["fixed/label_weighted_recall"] == pytest.approx(m["fixed/micro_recall"])
    mccs = [matthews_corrcoef(Y[:, c], pred[:, c]) for c in range(4)]
    assert m["fixed/label_mean_mcc"] == pytest.approx(np.mean(mccs))
    assert m["fixed/label_weighted_mcc"] == pytest.approx(np.average(mccs, weights=s))
    assert all(isinstance(v, float) and math.isfinite(v) for v in m.values())


def test_hamming_score_counts_empty_rows_as_correct_unlike_samples_f1() -> None:
    _, pred = fixed_rule(P)
    assert not Y[5].any() and not pred[5].any()  # the empty ∪ empty row
    m = metrics_for(Y, P)
    assert m["fixed/hamming_score"] == pytest.approx(
        jaccard_score(Y, pred, average="samples", zero_division=1)
    )
    # Per sample |Y ∩ P| / |Y ∪ P|, worked by hand: the empty row scores 1.
    assert m["fixed/hamming_score"] == pytest.approx(
        (1 / 2 + 1 / 2 + 1 / 2 + 0 + 1 + 1 + 1 / 2) / 7
    )
    assert m["fixed/samples_f1"] == pytest.approx(
        f1_score(Y, pred, average="samples", zero_division=0)
    )


def test_hand_checked_per_label_values() -> None:
    m = metrics_for(Y, P)
    # sadness: true in rows 0, 3, 6, never predicted -> precision/recall/F1/MCC 0, not NaN.
    assert [m[f"fixed/sadness/{k}"] for k in ("precision", "recall", "f1", "mcc")] == [0.0] * 4
    assert m["fixed/sadness/accuracy"] == pytest.approx(4 / 7)
    # anger: predicted in rows 0, 2, 3, 4; true in 0, 2, 4 -> precision 3/4, recall 1.
    assert m["fixed/anger/precision"] == pytest.approx(3 / 4)
    assert m["fixed/anger/recall"] == 1.0
    assert m["fixed/anger/support"] == 3


def test_metric_keys_are_flat_and_per_rule() -> None:
    rules = {"fixed": fixed_rule(P), "calibrated": (P, (P >= 0.3).astype(int))}
    m = compute_multilabel_metrics(
        Y, LABELS, rules, {"fixed": DEFAULT_THRESHOLD, "calibrated": np.full(4, 0.3)}
    )
    rule_keys = {
        "micro_f1",
        "macro_f1",
        "weighted_f1",
        "samples_f1",
        "micro_precision",
        "micro_recall",
        "macro_precision",
        "macro_recall",
        "roc_auc_macro",
        "roc_auc_labels",
        "hamming_loss",
        "hamming_score",
        "exact_match",
        "ece",
        "predicted_cardinality",
    }
    averaged = ("accuracy", "precision", "recall", "f1", "mcc", "threshold")
    rule_keys |= {f"label_{kind}_{k}" for kind in ("mean", "weighted") for k in averaged}
    expected = {f"{r}/{k}" for r in rules for k in rule_keys}
    expected |= {f"{r}/{c}/{k}" for r in rules for c in LABELS for k in PER_LABEL}
    assert set(m) == expected
    assert m["calibrated/joy/threshold"] == pytest.approx(0.3)


def test_roc_auc_is_nan_when_every_label_is_constant() -> None:
    y = np.zeros((3, 4), dtype=int)
    m = metrics_for(y, P[:3])
    assert m["fixed/roc_auc_labels"] == 0
    assert math.isnan(m["fixed/roc_auc_macro"])


def test_bool_targets_are_accepted() -> None:
    assert metrics_for(Y.astype(bool), P) == metrics_for(Y, P)


# --------------------------------------------------------------------------- validation


def test_invalid_inputs_raise_data_error_with_shapes_and_values() -> None:
    _, pred = fixed_rule(P)
    thr = {"fixed": DEFAULT_THRESHOLD}
    with pytest.raises(DataError, match=r"y_pred for rule 'fixed' has shape \(7, 3\).*\(7, 4\)"):
        compute_multilabel_metrics(Y, LABELS, {"fixed": (P, pred[:, :3])}, thr)
    with pytest.raises(DataError, match=r"probs for rule 'fixed' have shape \(6, 4\).*\(7, 4\)"):
        compute_multilabel_metrics(Y, LABELS, {"fixed": (P[:6], pred)}, thr)
    with pytest.raises(DataError, match=r"y_true has shape \(7, 4\); expected .*\(7, 3\)"):
        compute_multilabel_metrics(Y, LABELS[:3], {"fixed": (P, pred)}, thr)
    bad = Y.copy()
    bad[0, 0] = 2
    with pytest.raises(DataError, match=r"y_true must hold only 0 and 1.*value 2"):
        compute_multilabel_metrics(bad, LABELS, {"fixed": (P, pred)}, thr)
    with pytest.raises(DataError, match="only 0 and 1"):
        compute_multilabel_metrics(Y, LABELS, {"fixed": (P, P)}, thr)
    with pytest.raises(DataError, match=r"multi-hot matrix of shape \(N, C\).*compute_metrics"):
        compute_multilabel_metrics(np.array([0, 1, 2]), LABELS, {"fixed": (P, pred)}, thr)
    with pytest.raises(DataError, match="sigmoid"):
        compute_multilabel_metrics(Y, LABELS, {"fixed": (P * 4 - 2, pred)}, thr)
    with pytest.raises(DataError, match=r"thresholds for rule 'fixed' have shape \(3,\)"):
        compute_multilabel_metrics(Y, LABELS, {"fixed": (P, pred)}, {"fixed": np.ones(3) / 2})
    with pytest.raises(ValueError, match=r"one entry per rule.*\['fixed'\].*\['calibrated'\]"):
        compute_multilabel_metrics(Y, LABELS, {"fixed": (P, pred)}, {"calibrated": 0.3})


# --------------------------------------------------------------------------- error analysis


def test_error_analysis_lists_false_positives_then_false_negatives_in_order() -> None:
    probs, pred = fixed_rule(P)
    thr = np.array([0.5, 0.5, 0.5, 0.55])
    pred[1, 3] = 0  # 0.6 >= 0.55 would predict it; y_pred is what counts, not probs
    texts = [f"t{i}" for i in range(7)]
    df = multilabel_error_analysis(texts, [t.upper() for t in texts], Y, pred, probs, thr, LABELS)
    assert list(df.columns) == [
        "kind",
        "label",
        "probability",
        "threshold",
        "text",
        "clean_text",
        "true_labels",
        "predicted_labels",
    ]
    # The only false positive is anger in row 3 (0.6); false negatives by ascending probability.
    fp = df[df["kind"] == "false_positive"]
    fn = df[df["kind"] == "false_negative"]
    assert list(df["kind"]) == ["false_positive"] * len(fp) + ["false_negative"] * len(fn)
    assert list(zip(fp.index, fp["label"], strict=True)) == [(3, "anger")]
    assert list(zip(fn.index, fn["label"], fn["probability"], strict=True)) == [
        (6, "sadness", 0.35),
        (0, "sadness", 0.4),
        (2, "joy", 0.4),  # ties keep input order
        (3, "sadness", 0.45),
    ]
    assert fp.iloc[0]["true_labels"] == "sadness"
    assert fp.iloc[0]["predicted_labels"] == "anger"
    assert fn.loc[0, "true_labels"] == "anger|sadness" and fn.loc[0, "text"] == "t0"
    assert fn.loc[0, "clean_text"] == "T0" and fn.loc[0, "threshold"] == 0.5
    for row, item in df.iterrows():
        c = LABELS.index(item["label"])
        expected = (0, 1) if item["kind"] == "false_positive" else (1, 0)
        assert (Y[row, c], pred[row, c]) == expected

    capped = multilabel_error_analysis(
        texts, texts, Y, pred, probs, thr, LABELS, max_rows_per_kind=2
    )
    assert list(capped["kind"]) == ["false_positive", "false_negative", "false_negative"]
    assert list(capped["probability"]) == [0.6, 0.35, 0.4]


# --------------------------------------------------------------------------- report


@pytest.fixture(scope="module")
def evaluation() -> dict[str, Any]:
    rng = np.random.default_rng(3)
    n = 40
    y = (rng.random((n, 4)) < 0.35).astype(int)
    y[:, 3] = 0  # a label absent from the split
    logits = rng.normal(size=(n, 4)) + 2.0 * y - 1.0
    raw = 1 / (1 + np.exp(-logits))
    scaled = 1 / (1 + np.exp(-logits / 1.5))
    tuned = np.array([0.35, 0.42, 0.6, 0.5])
    rules = {"fixed": fixed_rule(raw), "calibrated": (scaled, (scaled >= tuned).astype(int))}
    thresholds = {"fixed": np.full(4, DEFAULT_THRESHOLD), "calibrated": tuned}
    texts = [f'text, number {i} | with "quotes"\nand a newline' for i in range(n)]
    return {
        "y_true": y,
        "rules": rules,
        "thresholds": thresholds,
        "texts": texts,
        "clean_texts": [t.lower() for t in texts],
        "metrics": compute_multilabel_metrics(y, LABELS, rules, thresholds),
    }


def report_kwargs(evaluation: dict[str, Any]) -> dict[str, Any]:
    keys = ("metrics", "y_true", "rules", "thresholds", "texts", "clean_texts")
    return {"label_names": LABELS, **{k: evaluation[k] for k in keys}}


@pytest.fixture(scope="module")
def report(evaluation: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_multilabel_report(
        tmp_path_factory.mktemp("report") / "eval",
        decision_rule="calibrated",
        run_name="tiny-multilabel",
        config_dict={"model": {"name": "tiny"}, "labels": LABELS},
        extra={"split": "test"},
        **report_kwargs(evaluation),
    )


ARTIFACTS = {
    "metrics.json",
    "report.md",
    "per_label.csv",
    "error_analysis.csv",
    "threshold_curves.png",
    "per_label_precision_recall.png",
    "label_cooccurrence.png",
    "reliability_diagram.png",
    "config.yaml",
}


def test_report_writes_every_artifact_and_no_temp_files(report: dict[str, Path]) -> None:
    assert {p.name for p in report.values()} == ARTIFACTS
    out = report["metrics"].parent
    assert {p.name for p in out.iterdir()} == ARTIFACTS
    assert all(p.stat().st_size > 0 for p in report.values())
    assert yaml.safe_load(report["config"].read_text(encoding="utf-8")) == {
        "model": {"name": "tiny"},
        "labels": LABELS,
    }


@pytest.mark.parametrize(
    "name", ["threshold_curves", "precision_recall", "cooccurrence", "reliability_diagram"]
)
def test_pngs_are_readable_images(report: dict[str, Path], name: str) -> None:
    import matplotlib.image

    path = report[name]
    assert path.read_bytes()[:8] == PNG_MAGIC
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 300


def test_metrics_json_layout(report: dict[str, Path], evaluation: dict[str, Any]) -> None:
    payload = json.loads(report["metrics"].read_text(encoding="utf-8"))
    assert list(payload) == [
        "run_name",
        "decision_rule",
        "primary_metric",
        "n_samples",
        "label_names",
        "multi_label",
        "label_cardinality",
        "metrics",
        "label_cooccurrence",
        "label_confusion",
        "split",
    ]
    assert payload["multi_label"] is True
    assert payload["primary_metric"] == "calibrated/macro_f1"
    assert payload["n_samples"] == 40
    assert payload["label_names"] == LABELS
    y = evaluation["y_true"]
    assert payload["label_cardinality"] == pytest.approx(y.sum() / 40)
    assert payload["metrics"] == pytest.approx(evaluation["metrics"])
    m = payload["metrics"]
    cooc = np.array(payload["label_cooccurrence"])
    assert list(np.diag(cooc)) == [m[f"fixed/{c}/support"] for c in LABELS]
    for rule, (_, pred) in evaluation["rules"].items():
        confusion = np.array(payload["label_confusion"][rule])
        assert np.array_equal(confusion, y.T @ pred)
        tp = [m[f"{rule}/{c}/recall"] * m[f"{rule}/{c}/support"] for c in LABELS]
        assert np.diag(confusion) == pytest.approx(tp)


def test_per_label_csv_agrees_with_metrics_json(report: dict[str, Path]) -> None:
    m = json.loads(report["metrics"].read_text(encoding="utf-8"))["metrics"]
    df = pd.read_csv(report["per_label"], index_col="label")
    rules = ["fixed", "calibrated"]
    assert list(df.columns) == [f"{r}_{k}" for r in rules for k in PER_LABEL]
    assert list(df.index) == [*LABELS, "mean", "weighted mean"]
    total = sum(m[f"fixed/{c}/support"] for c in LABELS)
    for r in rules:
        for c in LABELS:
            for k in PER_LABEL:
                assert df.loc[c, f"{r}_{k}"] == pytest.approx(m[f"{r}/{c}/{k}"]), (r, c, k)
        for row, prefix in (("mean", "label_mean"), ("weighted mean", "label_weighted")):
            for k in PER_LABEL:
                expected = total if k == "support" else m[f"{r}/{prefix}_{k}"]
                assert df.loc[row, f"{r}_{k}"] == pytest.approx(expected), (r, row, k)
    assert df.loc["mean", "fixed_f1"] == pytest.approx(m["fixed/macro_f1"])


def test_report_md_agrees_with_metrics_json(report: dict[str, Path]) -> None:
    payload = json.loads(report["metrics"].read_text(encoding="utf-8"))
    m = payload["metrics"]
    md = report["report"].read_text(encoding="utf-8")
    rules = ["fixed", "calibrated"]
    summary, per_label = parse_markdown_tables(md)

    assert summary["heading"] == "Summary"
    assert summary["header"] == ["Metric", "`fixed`", "`calibrated`"]
    suffix = {
        "Micro F1": "micro_f1",
        "Macro F1": "macro_f1",
        "Weighted F1": "weighted_f1",
        "Samples F1": "samples_f1",
        "Micro precision": "micro_precision",
        "Micro recall": "micro_recall",
        "Macro precision": "macro_precision",
        "Macro recall": "macro_recall",
        "ROC-AUC (macro)": "roc_auc_macro",
        "Hamming loss": "hamming_loss",
        "Hamming score": "hamming_score",
        "Exact match": "exact_match",
        "ECE": "ece",
        "Predicted labels per sample": "predicted_cardinality",
    }
    assert [row[0] for row in summary["rows"]] == list(suffix)
    for heading, *values in summary["rows"]:
        assert values == [f"{m[f'{r}/{suffix[heading]}']:.4f}" for r in rules]

    assert per_label["heading"] == "Per-label report"
    metric_cols = [(k, r) for k in PER_LABEL if k != "support" for r in rules]
    headings = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall"}
    headings |= {"f1": "F1", "mcc": "MCC", "threshold": "Threshold"}
    assert per_label["header"] == [
        "Label",
        "Support",
        *(f"{headings[k]} (`{r}`)" for k, r in metric_cols),
    ]
    assert [row[0] for row in per_label["rows"]] == [*LABELS, "**mean**", "**weighted mean**"]
    total = sum(m[f"fixed/{c}/support"] for c in LABELS)
    for row in per_label["rows"]:
        label, support, *values = row
        name = label.strip("*")
        if name in LABELS:
            keys = [f"{r}/{name}/{k}" for k, r in metric_cols]
            assert int(support) == m[f"fixed/{name}/support"]
        else:
            prefix = "label_mean" if name == "mean" else "label_weighted"
            keys = [f"{r}/{prefix}_{k}" for k, r in metric_cols]
            assert int(support) == total
        decimals = [2 if key.endswith("threshold") else 4 for key in keys]
        assert values == [f"{m[k]:.{d}f}" for k, d in zip(keys, decimals, strict=True)]

    # Every 4-decimal number anywhere in the report comes from metrics.json.
    rendered = {f"{v:.4f}" for v in m.values()} | {f"{payload['label_cardinality']:.4f}"}
    assert set(re.findall(r"\d+\.\d{4}", md)) <= rendered

    rule = payload["decision_rule"]
    assert f"`{payload['primary_metric']}` = {m[payload['primary_metric']]:.4f}" in md
    assert f"**Label cardinality:** {payload['label_cardinality']:.4f}" in md
    assert "macro average over 3 of 4 labels (1 with a single class" in md
    ranked = sorted(
        (c for c in LABELS if m[f"{rule}/{c}/support"] > 0), key=lambda c: m[f"{rule}/{c}/f1"]
    )
    best, worst = ranked[-1], ranked[0]
    assert f"Best labels by F1 (`{rule}`):** {best} ({m[f'{rule}/{best}/f1']:.4f})" in md
    assert f"Worst labels by F1 (`{rule}`):** {worst} ({m[f'{rule}/{worst}/f1']:.4f})" in md
    for name in ARTIFACTS - {"report.md"}:
        assert f"]({name})" in md


def test_error_analysis_csv_has_only_true_mistakes_in_order(
    report: dict[str, Path], evaluation: dict[str, Any]
) -> None:
    df = pd.read_csv(report["error_analysis"], index_col="row", keep_default_na=False)
    y = evaluation["y_true"]
    probs, pred = evaluation["rules"]["calibrated"]
    tuned = evaluation["thresholds"]["calibrated"]
    n_fp, n_fn = int(((pred == 1) & (y == 0)).sum()), int(((pred == 0) & (y == 1)).sum())
    assert n_fp > 0 and n_fn > 0
    assert list(df["kind"]) == ["false_positive"] * n_fp + ["false_negative"] * n_fn
    fp, fn = df.iloc[:n_fp], df.iloc[n_fp:]
    assert fp["probability"].is_monotonic_decreasing
    assert fn["probability"].is_monotonic_increasing
    for row, item in df.iterrows():
        c = LABELS.index(item["label"])
        expected = (0, 1) if item["kind"] == "false_positive" else (1, 0)
        assert (y[row, c], pred[row, c]) == expected
        assert item["probability"] == pytest.approx(probs[row, c])
        assert item["threshold"] == pytest.approx(tuned[c])
        assert item["text"] == evaluation["texts"][row]  # quoting round-trips
        assert item["true_labels"] == "|".join(LABELS[j] for j in np.flatnonzero(y[row]))
        assert item["predicted_labels"] == "|".join(LABELS[j] for j in np.flatnonzero(pred[row]))


def test_report_rejects_bad_arguments_and_writes_nothing(
    evaluation: dict[str, Any], tmp_path: Path
) -> None:
    kwargs = report_kwargs(evaluation)
    with pytest.raises(ConfigError, match=r"'argmax'.*\['fixed', 'calibrated'\]"):
        write_multilabel_report(tmp_path, decision_rule="argmax", run_name="x", **kwargs)
    with pytest.raises(ValueError, match=r"may not overwrite.*multi_label"):
        write_multilabel_report(
            tmp_path, decision_rule="fixed", run_name="x", extra={"multi_label": 0}, **kwargs
        )
    other = {**kwargs, "thresholds": {"fixed": DEFAULT_THRESHOLD, "calibrated": 0.2}}
    with pytest.raises(ValueError, match="thresholds for rule 'calibrated' differ"):
        write_multilabel_report(tmp_path, decision_rule="fixed", run_name="x", **other)
    partial = {k: v for k, v in evaluation["metrics"].items() if not k.startswith("calibrated")}
    with pytest.raises(ValueError, match="compute_multilabel_metrics"):
        write_multilabel_report(
            tmp_path, decision_rule="fixed", run_name="x", **{**kwargs, "metrics": partial}
        )
    assert list(tmp_path.iterdir()) == []


def test_undefined_roc_auc_renders_as_na_and_null(tmp_path: Path) -> None:
    y = np.zeros((3, 4), dtype=int)
    rules = {"fixed": fixed_rule(P[:3])}
    thresholds = {"fixed": DEFAULT_THRESHOLD}
    paths = write_multilabel_report(
        tmp_path,
        metrics=compute_multilabel_metrics(y, LABELS, rules, thresholds),
        label_names=LABELS,
        y_true=y,
        rules=rules,
        thresholds=thresholds,
        texts=["a", "b", "c"],
        clean_texts=["a", "b", "c"],
        decision_rule="fixed",
        run_name="empty",
    )
    assert "config" not in paths
    payload = json.loads(paths["metrics"].read_text(encoding="utf-8"))
    assert payload["metrics"]["fixed/roc_auc_macro"] is None
    md = paths["report"].read_text(encoding="utf-8")
    assert "| ROC-AUC (macro) | n/a |" in md
    assert "Best labels by F1 (`fixed`):** n/a" in md
    errors = pd.read_csv(paths["error_analysis"])
    assert set(errors["kind"]) == {"false_positive"}  # nothing is true, so no FNs
