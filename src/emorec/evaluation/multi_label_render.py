"""The tables of a multi-label report: ``report.md`` and ``per_label.csv``.

Every number is formatted from the ``metrics.json`` payload that
:func:`~emorec.evaluation.multi_label.write_multilabel_report` writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from emorec.evaluation.common import fmt, md_cell, md_table
from emorec.evaluation.multi_label_metrics import _HEADINGS, _PER_LABEL_METRICS, _SUMMARY_METRICS

# Row names of the two average rows in per_label.csv and report.md.
_MEAN_ROWS = (("mean", "label_mean"), ("weighted mean", "label_weighted"))
_N_RANKED_LABELS = 3


# --------------------------------------------------------------------------- renderers


def _fmt_threshold(value: float) -> str:
    # Tuned thresholds live on a 0.01 grid, so two decimals lose nothing there.
    return f"{value:.2f}"


def _fmt_metric(metric: str, value: float) -> str:
    return _fmt_threshold(value) if metric == "threshold" else fmt(value)


def _ranked_labels(m: Mapping[str, float], rule: str, names: list[str]) -> list[str]:
    """Labels with support, by ascending F1 (absent labels have F1 forced to 0)."""
    present = [c for c in names if m[f"{rule}/{c}/support"] > 0]
    return sorted(present, key=lambda c: m[f"{rule}/{c}/f1"])


def _per_label_rows(
    m: Mapping[str, float], rules: list[str], names: list[str]
) -> list[tuple[str, dict[str, float]]]:
    """``(row name, {column: value})`` for each label and the two average rows.

    Columns are ``support`` and ``{rule}_{metric}``; the average rows' support is the total
    (as in scikit-learn's ``classification_report``).
    """
    rows = [
        (c, {f"{r}_{k}": m[f"{r}/{c}/{k}"] for r in rules for k in _PER_LABEL_METRICS})
        for c in names
    ]
    total = sum(m[f"{rules[0]}/{c}/support"] for c in names)
    for row_name, prefix in _MEAN_ROWS:
        cells = {
            f"{r}_{k}": total if k == "support" else m[f"{r}/{prefix}_{k}"]
            for r in rules
            for k in _PER_LABEL_METRICS
        }
        rows.append((row_name, cells))
    return rows


def _per_label_frame(payload: Mapping[str, Any], rules: list[str]) -> pd.DataFrame:
    rows = _per_label_rows(payload["metrics"], rules, payload["label_names"])
    frame = pd.DataFrame(
        [cells for _, cells in rows], index=pd.Index([name for name, _ in rows], name="label")
    )
    for r in rules:
        frame[f"{r}_support"] = frame[f"{r}_support"].astype(np.int64)
    return frame


def _render_report_md(
    payload: Mapping[str, Any], rules: list[str], files: Mapping[str, str]
) -> str:
    """Markdown summary and side-by-side per-label table, every number from ``payload``."""
    m: dict[str, float] = payload["metrics"]
    names: list[str] = payload["label_names"]
    rule = payload["decision_rule"]
    n_auc = int(m[f"{rule}/roc_auc_labels"])
    lines = [
        f"# Evaluation report: {payload['run_name']}",
        "",
        "## Summary",
        "",
        f"- **Samples:** {payload['n_samples']}",
        f"- **Labels:** {len(names)} (multi-label)",
        f"- **Label cardinality:** {fmt(payload['label_cardinality'])} true labels per sample",
        f"- **Default decision rule:** `{rule}` (primary metric `{payload['primary_metric']}` "
        f"= {fmt(m[payload['primary_metric']])})",
        f"- **ROC-AUC:** macro average over {n_auc} of {len(names)} labels "
        f"({len(names) - n_auc} with a single class in the data excluded)",
    ]
    ranked = _ranked_labels(m, rule, names)
    k = max(1, min(_N_RANKED_LABELS, len(ranked) // 2))
    for title, chosen in (("Best", ranked[::-1][:k]), ("Worst", ranked[:k])):
        shown = ", ".join(f"{c} ({fmt(m[f'{rule}/{c}/f1'])})" for c in chosen) or "n/a"
        lines.append(f"- **{title} labels by F1 (`{rule}`):** {shown}")
    lines.append("")
    lines += md_table(
        ["Metric", *(f"`{r}`" for r in rules)],
        (
            [heading, *(fmt(m[f"{r}/{suffix}"]) for r in rules)]
            for suffix, heading in _SUMMARY_METRICS
        ),
    )
    lines += [
        "",
        "Hamming score is the mean per-sample |true ∩ predicted| / |true ∪ predicted| (a sample "
        "with neither scores 1); samples F1 scores such a sample 0, as scikit-learn does. "
        "Macro averages run over all labels; ECE treats every (example, label) probability as "
        "one forecast.",
        "",
        "## Per-label report",
        "",
    ]
    metrics = [k for k in _PER_LABEL_METRICS if k != "support"]
    header = ["Label", "Support"]
    header += [f"{_HEADINGS[k]} (`{r}`)" for k in metrics for r in rules]
    body = []
    for name, cells in _per_label_rows(m, rules, names):
        label = md_cell(name) if name in names else f"**{name}**"
        values = [_fmt_metric(k, cells[f"{r}_{k}"]) for k in metrics for r in rules]
        body.append([label, str(int(cells[f"{rules[0]}_support"])), *values])
    lines += md_table(header, body)
    lines += ["", "## Artifacts", ""]
    lines += [f"- [{name}]({name})" for name in files.values() if name != "report.md"]
    for key, alt in (
        ("threshold_curves", "F1 against threshold per label"),
        ("precision_recall", "Per-label precision, recall and F1"),
        ("cooccurrence", "Label co-occurrence and multi-label confusion"),
        ("reliability_diagram", "Reliability diagram"),
        ("training_curves", "Training curves"),
    ):
        if key in files:
            lines += ["", f"![{alt}]({files[key]})"]
    lines.append("")
    return "\n".join(lines)
