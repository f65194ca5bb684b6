"""Tests for emorec.evaluate (metrics core, report writer) and emorec._io (atomic writes)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_recall_fscore_support

from emorec import _io
from emorec._io import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text
from emorec.calibration import expected_calibration_error
from emorec.errors import ConfigError, DataError
from emorec.evaluation.single_label import (
    PRIMARY_METRIC_SUFFIX,
    compute_metrics,
    error_analysis,
    write_evaluation_report,
)

LABELS = ["anger", "joy", "sadness"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def one_hot(ids: list[int], n_classes: int) -> np.ndarray:
    return np.eye(n_classes)[ids]


# --------------------------------------------------------------------------- compute_metrics


def test_metrics_match_sklearn_and_absent_prediction_class_has_zero_precision() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2, 1])
    y_pred = np.array([0, 1, 1, 1, 0, 0, 1])  # "sadness" is never predicted
    m = compute_metrics(y_true, LABELS, {"argmax": (one_hot(list(y_pred), 3), y_pred)})

    assert m["argmax/accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["argmax/macro_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="macro", zero_division=0)
    )
    assert m["argmax/weighted_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="weighted", zero_division=0)
    )
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2], zero_division=0)
    assert m["argmax/macro_precision"] == pytest.approx(p.mean())
    assert m["argmax/macro_recall"] == pytest.approx(r.mean())
    for i, label in enumerate(LABELS):
        assert m[f"argmax/{label}/precision"] == pytest.approx(p[i])
        assert m[f"argmax/{label}/recall"] == pytest.approx(r[i])
        assert m[f"argmax/{label}/f1"] == pytest.approx(f[i])
        assert m[f"argmax/{label}/support"] == s[i]
    # Hand-checked values for the class nobody predicted: 0, not NaN.
    assert m["argmax/sadness/precision"] == 0.0
    assert m["argmax/sadness/f1"] == 0.0
    assert m["argmax/joy/precision"] == pytest.approx(3 / 4)
    assert all(isinstance(v, float) and np.isfinite(v) for v in m.values())


def test_metric_keys_are_flat_and_per_rule() -> None:
    y = np.array([0, 1, 2])
    probs = one_hot([0, 1, 2], 3)
    m = compute_metrics(y, LABELS, {"argmax": (probs, y), "calibrated": (probs, y)})
    rule_keys = {"accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall"}
    rule_keys |= {"ece", "nll"}
    expected = {f"{r}/{k}" for r in ("argmax", "calibrated") for k in rule_keys}
    expected |= {
        f"{r}/{c}/{k}"
        for r in ("argmax", "calibrated")
        for c in LABELS
        for k in ("precision", "recall", "f1", "support")
    }
    assert set(m) == expected
    assert PRIMARY_METRIC_SUFFIX == "macro_f1"


def test_nll_matches_sklearn_log_loss() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=20)
    y = rng.integers(0, 3, size=20)
    m = compute_metrics(y, LABELS, {"argmax": (probs, probs.argmax(1))})
    assert m["argmax/nll"] == pytest.approx(log_loss(y, probs, labels=[0, 1, 2]))


def test_ece_is_zero_for_confident_correct_predictions() -> None:
    y = np.array([0, 1, 2, 1])
    m = compute_metrics(y, LABELS, {"argmax": (one_hot(list(y), 3), y)})
    assert m["argmax/ece"] == 0.0
    assert m["argmax/accuracy"] == 1.0


def test_ece_matches_hand_computation() -> None:
    # Top-label confidences 0.85, 0.75, 0.65, 0.55; correct, wrong, correct, wrong.
    probs = np.array([[0.85, 0.15], [0.75, 0.25], [0.35, 0.65], [0.45, 0.55]])
    y = np.array([0, 1, 1, 0])
    # 10 bins: each sample alone in its bin -> mean |acc - conf| over samples.
    assert expected_calibration_error(probs, y, 10) == pytest.approx(
        (0.15 + 0.75 + 0.35 + 0.55) / 4
    )
    # 2 bins: all in [0.5, 1] -> |0.5 accuracy - 0.7 mean confidence|.
    assert expected_calibration_error(probs, y, 2) == pytest.approx(0.2)
    m = compute_metrics(y, ["a", "b"], {"argmax": (probs, probs.argmax(1))}, ece_bins=2)
    assert m["argmax/ece"] == pytest.approx(0.2)


def test_invalid_label_value_names_value_and_labels() -> None:
    y = np.array([0, 5, 1])
    with pytest.raises(DataError, match=r"label id\(s\) 5 .*'sadness'"):
        compute_metrics(y, LABELS, {"argmax": (one_hot([0, 1, 1], 3), np.array([0, 1, 1]))})
    with pytest.raises(DataError, match="-1"):
        compute_metrics(np.array([-1, 0]), LABELS, {"argmax": (one_hot([0, 0], 3), [0, 0])})
    with pytest.raises(DataError, match="integer label ids"):
        compute_metrics(np.array([0.5, 1.0]), LABELS, {"argmax": (one_hot([0, 1], 3), [0, 1])})


def test_shape_mismatches_raise_with_shapes() -> None:
    y = np.array([0, 1, 2])
    with pytest.raises(DataError, match=r"\(3, 4\).*\(3, 3\)"):
        compute_metrics(y, LABELS, {"argmax": (np.full((3, 4), 0.25), y)})
    with pytest.raises(DataError, match=r"\(2,\).*\(3,\)"):
        compute_metrics(y, LABELS, {"argmax": (one_hot([0, 1, 2], 3), np.array([0, 1]))})
    with pytest.raises(DataError, match=r"shape \(3, 3\)"):
        compute_metrics(one_hot([0, 1, 2], 3), LABELS, {"argmax": (one_hot([0, 1, 2], 3), y)})


def test_logits_instead_of_probs_are_rejected() -> None:
    y = np.array([0, 1])
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 3.0, -2.0]])
    with pytest.raises(DataError, match="softmax"):
        compute_metrics(y, LABELS, {"argmax": (logits, logits.argmax(1))})


# --------------------------------------------------------------------------- error_analysis


def test_error_analysis_keeps_mistakes_most_confident_first() -> None:
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7], [0.9, 0.05, 0.05]])
    y_true = np.array([1, 1, 0, 2])
    y_pred = probs.argmax(1)
    df = error_analysis(["a", "b", "c", "d"], ["A", "B", "C", "D"], y_true, y_pred, probs, LABELS)
    assert list(df.columns) == [
        "text",
        "clean_text",
        "true_label",
        "predicted_label",
        "confidence",
        "true_label_prob",
        "prob_anger",
        "prob_joy",
        "prob_sadness",
    ]
    assert list(df.index) == [3, 2, 0]  # row "b" is correct; rest by confidence 0.9, 0.7, 0.6
    assert list(df["text"]) == ["d", "c", "a"]
    assert list(df["confidence"]) == [0.9, 0.7, 0.6]
    assert list(df["true_label_prob"]) == [0.05, 0.2, 0.3]
    assert list(df["predicted_label"]) == ["anger", "sadness", "anger"]


# --------------------------------------------------------------------------- report


@pytest.fixture(scope="module")
def evaluation() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    n = 40
    y = rng.integers(0, 3, size=n)
    logits = rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[y]
    raw = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    soft = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum(1, keepdims=True)
    rules = {"argmax": (raw, raw.argmax(1)), "calibrated": (soft, soft.argmax(1))}
    texts = [f'text, number {i} | with "quotes"\nand a newline' for i in range(n)]
    return {
        "y_true": y,
        "rules": rules,
        "texts": texts,
        "clean_texts": [t.lower() for t in texts],
        "metrics": compute_metrics(y, LABELS, rules),
    }


@pytest.fixture(scope="module")
def report(evaluation: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("report") / "eval"
    return write_evaluation_report(
        out,
        metrics=evaluation["metrics"],
        label_names=LABELS,
        y_true=evaluation["y_true"],
        rules=evaluation["rules"],
        texts=evaluation["texts"],
        clean_texts=evaluation["clean_texts"],
        decision_rule="calibrated",
        run_name="tiny-run",
        config_dict={"model": {"name": "tiny", "lr": 3e-5}, "labels": LABELS},
        extra={"split": "test"},
    )


def test_report_writes_every_artifact_and_no_temp_files(report: dict[str, Path]) -> None:
    names = {
        "metrics.json",
        "confusion_matrix.png",
        "reliability_diagram.png",
        "error_analysis.csv",
        "report.md",
        "config.yaml",
    }
    assert {p.name for p in report.values()} == names
    out = report["metrics"].parent
    assert {p.name for p in out.iterdir()} == names  # no leftover temp files
    assert all(p.stat().st_size > 0 for p in report.values())


def test_metrics_json_layout(report: dict[str, Path], evaluation: dict[str, Any]) -> None:
    payload = json.loads(report["metrics"].read_text(encoding="utf-8"))
    assert list(payload) == [
        "run_name",
        "decision_rule",
        "primary_metric",
        "n_samples",
        "label_names",
        "metrics",
        "confusion_matrix",
        "split",
    ]
    assert payload["run_name"] == "tiny-run"
    assert payload["decision_rule"] == "calibrated"
    assert payload["primary_metric"] == "calibrated/macro_f1"
    assert payload["n_samples"] == 40
    assert payload["label_names"] == LABELS
    assert payload["metrics"] == pytest.approx(evaluation["metrics"])
    for rule, (_, y_pred) in evaluation["rules"].items():
        cm = np.array(payload["confusion_matrix"][rule])
        assert cm.sum() == 40
        assert np.trace(cm) == np.sum(y_pred == evaluation["y_true"])
        for i, label in enumerate(LABELS):
            assert cm[i].sum() == payload["metrics"][f"{rule}/{label}/support"]
    assert yaml.safe_load(report["config"].read_text(encoding="utf-8")) == {
        "model": {"name": "tiny", "lr": 3e-5},
        "labels": LABELS,
    }


@pytest.mark.parametrize("name", ["confusion_matrix", "reliability_diagram"])
def test_pngs_are_valid_high_resolution_images(report: dict[str, Path], name: str) -> None:
    import matplotlib.image
    from PIL import Image

    path = report[name]
    assert path.read_bytes()[:8] == PNG_MAGIC
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 500 and pixels.shape[1] > 500
    with Image.open(path) as img:
        assert img.info["dpi"][0] == pytest.approx(200, abs=1)


def test_error_analysis_csv(report: dict[str, Path], evaluation: dict[str, Any]) -> None:
    df = pd.read_csv(report["error_analysis"], index_col="row", keep_default_na=False)
    probs, y_pred = evaluation["rules"]["calibrated"]
    wrong = np.flatnonzero(y_pred != evaluation["y_true"])
    assert len(wrong) > 0
    assert sorted(df.index) == list(wrong)
    assert (df["true_label"] != df["predicted_label"]).all()
    assert df["confidence"].is_monotonic_decreasing
    assert list(df["text"]) == [evaluation["texts"][i] for i in df.index]  # quoting round-trips
    assert np.allclose(df["confidence"], probs[df.index, y_pred[df.index]])


def parse_markdown_tables(markdown: str) -> list[dict[str, Any]]:
    """Every pipe table as ``{"heading", "header", "rows"}`` (heading = the last ``#`` line)."""
    tables: list[dict[str, Any]] = []
    heading, current = None, None
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading, current = line.lstrip("#").strip(), None
        elif line.startswith("|"):
            cells = [c.strip().replace(r"\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if current is None:
                current = {"heading": heading, "header": cells, "rows": []}
                tables.append(current)
            elif not set("".join(cells)) <= set("-:"):
                current["rows"].append(cells)
        else:
            current = None
    return tables


def test_report_md_numbers_agree_with_metrics_json(report: dict[str, Path]) -> None:
    payload = json.loads(report["metrics"].read_text(encoding="utf-8"))
    m = payload["metrics"]
    md = report["report"].read_text(encoding="utf-8")
    rules = ["argmax", "calibrated"]
    tables = parse_markdown_tables(md)
    assert len(tables) == 1 + len(rules)

    summary = tables[0]
    assert summary["heading"] == "Summary"
    assert summary["header"] == ["Metric", "`argmax`", "`calibrated`"]
    suffix = {
        "Accuracy": "accuracy",
        "Macro F1": "macro_f1",
        "Weighted F1": "weighted_f1",
        "Macro precision": "macro_precision",
        "Macro recall": "macro_recall",
        "ECE": "ece",
        "NLL": "nll",
    }
    assert [row[0] for row in summary["rows"]] == list(suffix)
    for heading, *values in summary["rows"]:
        assert values == [f"{m[f'{r}/{suffix[heading]}']:.4f}" for r in rules]

    for rule, table in zip(rules, tables[1:], strict=True):
        assert table["heading"] == f"Per-class report: `{rule}`"
        assert table["header"] == ["Class", "Precision", "Recall", "F1", "Support"]
        assert [row[0] for row in table["rows"]] == [*LABELS, "**macro avg**"]
        for label, p, r, f1, support in table["rows"][:-1]:
            assert [p, r, f1] == [
                f"{m[f'{rule}/{label}/{k}']:.4f}" for k in ("precision", "recall", "f1")
            ]
            assert int(support) == m[f"{rule}/{label}/support"]
        _, p, r, f1, support = table["rows"][-1]
        assert [p, r, f1] == [
            f"{m[f'{rule}/macro_{k}']:.4f}" for k in ("precision", "recall", "f1")
        ]
        assert int(support) == payload["n_samples"]

    # Every 4-decimal number anywhere in the report is one of metrics.json's values.
    rendered = {f"{v:.4f}" for v in m.values()}
    assert set(re.findall(r"\d+\.\d{4}", md)) <= rendered

    # Summary bullets: headline, best/worst class and most confused pair for the default rule.
    rule = payload["decision_rule"]
    assert f"{m[payload['primary_metric']]:.4f}" in md
    f1s = {c: m[f"{rule}/{c}/f1"] for c in LABELS}
    best, worst = max(f1s, key=f1s.get), min(f1s, key=f1s.get)
    assert f"Best class by F1 (`{rule}`):** {best} ({f1s[best]:.4f})" in md
    assert f"Worst class by F1 (`{rule}`):** {worst} ({f1s[worst]:.4f})" in md
    cm = np.array(payload["confusion_matrix"][rule])
    np.fill_diagonal(cm, 0)
    i, j = np.unravel_index(cm.argmax(), cm.shape)
    assert f"{LABELS[i]} predicted as {LABELS[j]} ({cm[i, j]} of" in md
    for name in ("metrics.json", "error_analysis.csv", "config.yaml", "confusion_matrix.png"):
        assert f"]({name})" in md


def test_report_rejects_unknown_decision_rule_and_reserved_extra(
    evaluation: dict[str, Any], tmp_path: Path
) -> None:
    kwargs: dict[str, Any] = {
        "metrics": evaluation["metrics"],
        "label_names": LABELS,
        "y_true": evaluation["y_true"],
        "rules": evaluation["rules"],
        "texts": evaluation["texts"],
        "clean_texts": evaluation["clean_texts"],
        "run_name": "x",
    }
    with pytest.raises(ConfigError, match=r"'thresholds'.*\['argmax', 'calibrated'\]"):
        write_evaluation_report(tmp_path, decision_rule="thresholds", **kwargs)
    with pytest.raises(ValueError, match="metrics"):
        write_evaluation_report(tmp_path, decision_rule="argmax", extra={"metrics": {}}, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_report_without_config_writes_no_config_yaml(tmp_path: Path) -> None:
    y = np.array([0, 1, 2, 1])
    probs = one_hot([0, 1, 2, 1], 3)  # every prediction correct
    rules = {"argmax": (probs, y)}
    paths = write_evaluation_report(
        tmp_path,
        metrics=compute_metrics(y, LABELS, rules),
        label_names=LABELS,
        y_true=y,
        rules=rules,
        texts=["a", "b", "c", "d"],
        clean_texts=["a", "b", "c", "d"],
        decision_rule="argmax",
        run_name="perfect",
    )
    assert "config" not in paths
    assert not (tmp_path / "config.yaml").exists()
    assert len(pd.read_csv(paths["error_analysis"])) == 0
    assert "none, every sample is correct" in paths["report"].read_text(encoding="utf-8")


# --------------------------------------------------------------------------- atomic writes


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_atomic_writes_create_parents_and_leave_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    atomic_write_text(target, "héllo\n")
    atomic_write_bytes(tmp_path / "a" / "raw.bin", b"\x00\x01")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "a" / "raw.bin").read_bytes() == b"\x00\x01"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]
    # The temp file's 0600 mode must not leak into the result.
    assert target.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def test_atomic_write_json_converts_numpy_and_nan(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    atomic_write_json(
        path, {"a": np.float32(0.5), "b": np.arange(3), "c": float("nan"), "d": (np.int64(1),)}
    )
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"a": 0.5, "b": [0, 1, 2], "c": None, "d": [1]}
    assert "NaN" not in text and text.startswith('{\n  "a"')


def test_exception_inside_atomic_path_keeps_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".md"
        tmp.write_text("half-written", encoding="utf-8")
        raise RuntimeError("boom")
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_failed_replace_keeps_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"v": 1})

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(_io.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(path, {"v": 2})
    assert json.loads(path.read_text(encoding="utf-8")) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_unserialisable_json_leaves_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"v": object()})
    assert json.loads(path.read_text(encoding="utf-8")) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
