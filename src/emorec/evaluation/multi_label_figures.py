"""The figures of a multi-label report: F1 against threshold, per-label scores, co-occurrence.

Each one is drawn from the ``metrics.json`` payload (and, for the threshold curves, the
decision rule's probabilities) that :func:`~emorec.evaluation.multi_label.write_multilabel_report`
writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from emorec.calibration import DEFAULT_THRESHOLD
from emorec.evaluation.common import agg_figure, heatmap, heatmap_geometry, save_figure
from emorec.evaluation.multi_label_metrics import _HEADINGS

# Thresholds at which threshold_curves.png evaluates each label's F1.
_CURVE_GRID = np.round(np.linspace(0.05, 0.95, 91), 2)


def _threshold_f1_curves(y: np.ndarray, probs: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """F1 of each label when thresholded at each grid value: (G, C)."""
    pred = probs[None, :, :] >= grid[:, None, None]  # (G, N, C)
    tp = (pred & (y[None] == 1)).sum(1)
    denom = y.sum(0)[None, :] + pred.sum(1)
    return np.divide(2.0 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)


def _small_multiples(n: int, panel: tuple[float, float], ncols: int = 7) -> tuple[Any, Any]:
    ncols = min(n, ncols)
    nrows = math.ceil(n / ncols)
    fig, axes = agg_figure(
        (panel[0] * ncols + 0.5, panel[1] * nrows + 1.0),
        ncols=ncols,
        nrows=nrows,
        sharex=True,
        sharey=True,
    )
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_axis_off()
    # sharex hides tick labels above another row; keep them where the panel below is empty.
    for ax in flat[max(0, n - ncols) : n]:
        ax.tick_params(labelbottom=True)
    return fig, flat[:n]


def _plot_threshold_curves(
    path: Path,
    y: np.ndarray,
    probs: np.ndarray,
    thresholds: np.ndarray,
    payload: Mapping[str, Any],
) -> None:
    names: list[str] = payload["label_names"]
    rule = payload["decision_rule"]
    m = payload["metrics"]
    curves = _threshold_f1_curves(y, probs, _CURVE_GRID)
    fig, axes = _small_multiples(len(names), (2.4, 1.9))
    for c, (ax, label) in enumerate(zip(axes, names, strict=True)):
        ax.plot(_CURVE_GRID, curves[:, c], color="C0", label="F1 on this split")
        ax.axvline(thresholds[c], color="C3", label=f"{rule} threshold")
        ax.axvline(DEFAULT_THRESHOLD, color="grey", linestyle="--", label="default threshold")
        ax.set_title(f"{label} (n={int(m[f'{rule}/{label}/support'])})", fontsize=8)
        ax.set(xlim=(0, 1), ylim=(0, 1.02))
        ax.tick_params(labelsize=7)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper")
    fig.supxlabel("Threshold")
    fig.supylabel("F1")
    fig.suptitle(f"{payload['run_name']}: F1 against threshold ({rule} probabilities)")
    save_figure(fig, path)


def _plot_precision_recall(path: Path, payload: Mapping[str, Any]) -> None:
    m = payload["metrics"]
    rule = payload["decision_rule"]
    # Best label on top: barh draws the first bar at the bottom.
    names = sorted(payload["label_names"], key=lambda c: m[f"{rule}/{c}/f1"])
    pos = np.arange(len(names))
    height = 0.27
    fig, axes = agg_figure((8.0, max(3.0, 0.4 * len(names) + 1.5)))
    ax = axes[0, 0]
    for i, k in enumerate(("precision", "recall", "f1")):
        values = [m[f"{rule}/{c}/{k}"] for c in names]
        ax.barh(pos + (1 - i) * height, values, height=height, label=_HEADINGS[k])
    ax.set_yticks(pos, [f"{c} (n={int(m[f'{rule}/{c}/support'])})" for c in names])
    ax.set(xlim=(0, 1), xlabel="Score", title=f"{payload['run_name']}: per-label scores ({rule})")
    ax.legend(loc="lower right")
    save_figure(fig, path)


def _plot_cooccurrence(path: Path, payload: Mapping[str, Any]) -> None:
    names: list[str] = payload["label_names"]
    rule = payload["decision_rule"]
    cooc = np.asarray(payload["label_cooccurrence"], dtype=np.float64)
    confusion = np.asarray(payload["label_confusion"][rule], dtype=np.float64)
    # Divide row i by label i's support (the co-occurrence diagonal): P(column | row true).
    support = np.diag(cooc)[:, None]
    side, _ = heatmap_geometry(len(names))
    fig, axes = agg_figure((2 * side + 1, side), ncols=2)
    panels = (
        (cooc, "True-label co-occurrence: P(column true | row true)", "True label"),
        (confusion, f"True → predicted ({rule}): P(column predicted | row true)", "Predicted"),
    )
    for ax, (counts, title, xlabel) in zip(axes[0], panels, strict=True):
        normed = np.divide(counts, support, out=np.zeros(counts.shape), where=support > 0)
        heatmap(
            fig,
            ax,
            normed,
            names,
            title=title,
            fmt=".2f",
            vmax=1.0,
            xlabel=xlabel,
            ylabel="True label",
        )
    fig.suptitle(f"{payload['run_name']}: label co-occurrence and multi-label confusion")
    save_figure(fig, path)
