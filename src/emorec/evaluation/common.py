"""What single- and multi-label evaluation share: input checks, Markdown, figures, report checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from emorec._io import atomic_path, atomic_write_text, to_builtin
from emorec.artifacts import CONFIG_FILE, METRICS_FILE, TRAINING_CURVES_FILE
from emorec.calibration import reliability_curve
from emorec.errors import ConfigError, DataError

PRIMARY_METRIC_SUFFIX = "macro_f1"
# Drawn from train_metrics.json's log history, in the model directory and the results.
# Keys of metrics.json that `extra` may not overwrite.
RESERVED_KEYS = frozenset(
    {
        "run_name",
        "decision_rule",
        "primary_metric",
        "n_samples",
        "label_names",
        "metrics",
        "confusion_matrix",
    }
)
# Resolution of every PNG.
DPI = 200


def check_label_names(label_names: Sequence[str]) -> list[str]:
    names = [str(n) for n in label_names]
    if not names:
        raise DataError("label_names is empty; evaluation needs the model's label names.")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"label_names must be unique; {dupes} appear more than once.")
    return names


def fmt(value: float) -> str:
    # NaN marks an undefined metric (e.g. ROC-AUC with no label having both classes).
    return f"{value:.4f}" if np.isfinite(value) else "n/a"


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Lines of a pipe table: first column left-aligned, the (numeric) rest right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def md_cell(text: str) -> str:
    return str(text).replace("|", r"\|")


def agg_figure(figsize: tuple[float, float], ncols: int = 1, nrows: int = 1, **kw: Any) -> Any:
    """A figure on an explicit Agg canvas: no pyplot, no GUI, no global backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save_figure(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI)


def training_curves(
    log_history: Sequence[Mapping[str, Any]],
) -> dict[str, tuple[list[int], list[float]]]:
    """``(steps, values)`` of ``loss``, ``eval_loss`` and ``eval_macro_f1`` in a Trainer log.

    ``log_history`` is ``trainer.state.log_history`` (as kept in ``train_metrics.json``): one
    dict per logging step (``loss``) or evaluation (``eval_*``), each with its ``step``.
    Non-finite values (a diverged step) are left out.
    """
    curves: dict[str, tuple[list[int], list[float]]] = {
        key: ([], []) for key in ("loss", "eval_loss", "eval_macro_f1")
    }
    for entry in log_history:
        step = entry.get("step")
        if not isinstance(step, int):
            continue
        for key, (steps, values) in curves.items():
            value = entry.get(key)
            if isinstance(value, int | float) and np.isfinite(value):
                steps.append(step)
                values.append(float(value))
    return curves


def plot_training_curves(
    log_history: Sequence[Mapping[str, Any]], path: str | Path, run_name: str
) -> bool:
    """Draw training loss, validation loss and validation macro-F1 against the step to ``path``.

    Returns False, writing nothing, when the history holds neither a loss nor an evaluation.
    """
    curves = training_curves(log_history)
    if not any(steps for steps, _ in curves.values()):
        return False
    fig, axes = agg_figure((11.0, 4.0), ncols=2)
    loss_ax, f1_ax = axes[0]
    for key, label, style in (
        ("loss", "training loss", {}),
        ("eval_loss", "validation loss", {"marker": "o"}),
    ):
        steps, values = curves[key]
        if steps:
            loss_ax.plot(steps, values, label=label, **style)
    loss_ax.set(xlabel="Step", ylabel="Loss", title="Loss")
    if loss_ax.lines:
        loss_ax.legend(loc="best")
    steps, values = curves["eval_macro_f1"]
    if steps:
        f1_ax.plot(steps, values, marker="o", color="C2", label="validation macro-F1")
        best = int(np.argmax(values))
        f1_ax.axvline(
            steps[best],
            linestyle=":",
            color="grey",
            label=f"best {fmt(values[best])} (step {steps[best]})",
        )
        f1_ax.legend(loc="best")
    f1_ax.set(xlabel="Step", ylabel="Macro F1", title="Validation macro-F1 per evaluation")
    fig.suptitle(f"{run_name}: training curves")
    save_figure(fig, Path(path))
    return True


def heatmap_geometry(n_labels: int) -> tuple[float, float]:
    """(side of one square panel in inches, annotation font size) for ``n_labels`` labels."""
    return max(5.0, 0.45 * n_labels + 2.5), max(4.0, min(10.0, 180.0 / n_labels))


def heatmap(
    fig: Any,
    ax: Any,
    mat: np.ndarray,
    names: list[str],
    *,
    title: str,
    fmt: str,
    vmax: float | None,
    xlabel: str,
    ylabel: str,
) -> None:
    """One annotated C x C heatmap panel with label names on both axes."""
    c = len(names)
    _, font = heatmap_geometry(c)
    im = ax.imshow(mat, cmap="Blues", vmin=0, vmax=vmax)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    threshold = (mat.max() if vmax is None else vmax) / 2
    for i in range(c):
        for j in range(c):
            ax.text(
                j,
                i,
                format(mat[i, j], fmt),
                ha="center",
                va="center",
                fontsize=font,
                color="white" if mat[i, j] > threshold else "black",
            )
    ax.set(xticks=range(c), yticks=range(c), xlabel=xlabel, ylabel=ylabel, title=title)
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=font + 1)
    ax.set_yticklabels(names, fontsize=font + 1)


def plot_reliability(
    path: Path,
    y_true: np.ndarray,
    rules: Mapping[str, tuple[np.ndarray, np.ndarray]],
    metrics: Mapping[str, float],
    ece_bins: int,
    run_name: str,
    *,
    forecast: str = "Confidence (top-label probability)",
    outcome: str = "Accuracy",
    unit: str = "samples",
) -> None:
    """Reliability curve per rule over a histogram of forecasts; ``y_true`` (N,) or (N, C).

    ``forecast``, ``outcome`` and ``unit`` name the axes: for multi-label data every
    (example, label) probability is a forecast and the outcome is the fraction positive.
    """
    fig, axes = agg_figure((7.0, 8.0), nrows=2, height_ratios=(3, 1), sharex=True)
    curve, hist = axes[0, 0], axes[1, 0]
    curve.plot([0, 1], [0, 1], linestyle="--", color="grey", label="Perfect calibration")
    edges = np.linspace(0.0, 1.0, ece_bins + 1)
    for rule, (probs, _) in rules.items():
        bins = reliability_curve(probs, y_true, ece_bins)
        count = bins["counts"].astype(np.float64)
        filled = count > 0
        line = curve.plot(
            bins["confidence"][filled],
            bins["accuracy"][filled],
            marker="o",
            label=f"{rule} (ECE {fmt(metrics[f'{rule}/ece'])})",
        )[0]
        hist.stairs(count / count.sum(), edges, color=line.get_color(), label=rule)
    curve.set(
        xlim=(0, 1),
        ylim=(0, 1),
        ylabel=outcome,
        title=f"{run_name}: reliability ({ece_bins} equal-width bins)",
    )
    curve.legend(loc="best")
    hist.set(xlabel=forecast, ylabel=f"Fraction of {unit}")
    hist.legend(loc="best")
    save_figure(fig, path)


def check_decision_rule(decision_rule: str, rules: Iterable[str]) -> None:
    if decision_rule not in rules:
        raise ConfigError(
            f"decision_rule {decision_rule!r} is not one of the evaluated rules {list(rules)}."
        )


def check_metrics_keys(metrics: Mapping[str, float], needed: Iterable[str], producer: str) -> None:
    missing = [key for key in needed if key not in metrics]
    if missing:
        raise ValueError(
            f"metrics lacks {missing[:5]}; pass the dict {producer}() returned for the same rules."
        )


def check_extra(extra: Mapping[str, Any] | None, reserved: frozenset[str]) -> None:
    clash = reserved & set(extra or {})
    if clash:
        raise ValueError(f"extra may not overwrite the metrics.json keys {sorted(clash)}.")


def report_paths(
    output_dir: Path,
    files: Mapping[str, str],
    *,
    config_dict: dict[str, Any] | None,
    log_history: Sequence[Mapping[str, Any]] | None,
    run_name: str,
) -> dict[str, Path]:
    """Paths of a report's files: ``metrics.json``, ``report.md`` and ``files``; the config
    when one is written, the training curves when the history draws them (drawn here)."""
    names = {"metrics": METRICS_FILE, "report": "report.md", **files}
    if config_dict is not None:
        names["config"] = CONFIG_FILE
    if log_history and plot_training_curves(
        log_history, output_dir / TRAINING_CURVES_FILE, run_name
    ):
        names["training_curves"] = TRAINING_CURVES_FILE
    return {key: output_dir / name for key, name in names.items()}


def write_config_yaml(path: Path, config_dict: dict[str, Any]) -> None:
    text = yaml.safe_dump(to_builtin(config_dict), sort_keys=False, allow_unicode=True)
    atomic_write_text(path, text)
