"""What a study leaves behind: best.yaml, trials.csv, summary.json and the Optuna plots."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from emorec._io import atomic_path, atomic_write_json, atomic_write_text, to_builtin
from emorec.tune.space import _nest
from emorec.tune.storage import _counted, mask_url

logger = logging.getLogger(__name__)


@dataclass
class TuneResult:
    """What :func:`tune` left behind: the study's state and the files written."""

    study_name: str
    storage: str
    output_dir: Path
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    best_value: float | None
    best_trial: int | None
    best_overrides: dict[str, Any]
    base_value: float | None
    wall_seconds: float
    artifacts: dict[str, Path] = field(default_factory=dict)
    skipped_plots: dict[str, str] = field(default_factory=dict)


def write_outputs(study: Any, out: Path, url: str, wall_seconds: float) -> TuneResult:
    """best.yaml, trials.csv, summary.json and the Optuna plots of ``study`` in ``out``."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    artifacts: dict[str, Path] = {}

    frame = study.trials_dataframe()
    with atomic_path(out / "trials.csv") as tmp:
        frame.to_csv(tmp, index=False)
    artifacts["trials"] = out / "trials.csv"

    best = max(complete, key=lambda t: t.value) if complete else None
    best_overrides = _nest(best.user_attrs["overrides"]) if best else {}
    if best is not None:
        header = (
            f"# Best trial {best.number} of study {study.study_name!r}: objective {best.value:.4f}"
            f"\n# Use: emorec train CONFIG --set-file {out / 'best.yaml'}\n"
        )
        atomic_write_text(
            out / "best.yaml", header + yaml.safe_dump(best_overrides, sort_keys=False)
        )
        artifacts["best"] = out / "best.yaml"
    base = [t for t in complete if t.user_attrs.get("base")]
    counted = _counted(trials)
    result = TuneResult(
        study_name=study.study_name,
        storage=mask_url(url),
        output_dir=out,
        n_trials=len(counted),
        n_complete=len(complete),
        n_pruned=sum(t.state == TrialState.PRUNED for t in trials),
        n_failed=sum(t.state == TrialState.FAIL for t in counted),
        best_value=best.value if best else None,
        best_trial=best.number if best else None,
        best_overrides=best_overrides,
        base_value=base[0].value if base else None,
        wall_seconds=round(wall_seconds, 2),
        artifacts=artifacts,
    )
    artifacts.update(_write_plots(study, out, result.skipped_plots))
    summary = {k: v for k, v in dataclasses.asdict(result).items() if k != "artifacts"}
    summary["artifacts"] = {k: str(p) for k, p in artifacts.items()}
    atomic_write_json(out / "summary.json", to_builtin(summary, nan_to_none=True))
    artifacts["summary"] = out / "summary.json"
    if best is None:
        reasons = sorted(
            {str(t.user_attrs.get("error")) for t in trials if "error" in t.user_attrs}
        )
        logger.warning(
            "No trial of study %r completed%s",
            study.study_name,
            f"; failures: {'; '.join(reasons)}" if reasons else ".",
        )
    return result


def _write_plots(study: Any, out: Path, skipped: dict[str, str]) -> dict[str, Path]:
    """Optimisation history, parameter importances, parallel coordinates as PNG (best effort:
    a plot Optuna cannot draw yet, e.g. importances from one trial, is skipped and said so)."""
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as vis

    plots = {
        "optimization_history": vis.plot_optimization_history,
        "param_importances": vis.plot_param_importances,
        "parallel_coordinate": vis.plot_parallel_coordinate,
    }
    written: dict[str, Path] = {}
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():
                # "experimental" since Optuna 2.2, and degenerate-axis notes on small studies.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.simplefilter("ignore", UserWarning)
                ax = plot(study)
            figure = (ax.flat[0] if isinstance(ax, np.ndarray) else ax).get_figure()
            figure.set_size_inches(10, 6)
            with atomic_path(out / f"{name}.png") as tmp:
                figure.savefig(tmp, dpi=100, bbox_inches="tight")
            plt.close(figure)
            written[name] = out / f"{name}.png"
        except (ValueError, RuntimeError, ImportError, ZeroDivisionError, IndexError) as error:
            skipped[name] = f"{type(error).__name__}: {error}"
            logger.info("Plot %s skipped: %s", name, error)
        finally:
            plt.close("all")
    return written
