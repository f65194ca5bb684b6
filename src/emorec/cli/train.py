"""Training commands: `train`, `calibrate`, `run` (the whole pipeline) and `tune`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from emorec.cli._common import (
    ConfigArg,
    ModelDirArg,
    SetFileOpt,
    SetOpt,
    console,
    err_console,
    friendly_errors,
    load,
    model_config,
    print_metrics,
    quiet_libraries,
)


def _print_calibration(calibration: Any) -> None:
    """Temperature, validation scores, and the decision rule with why it was (not) adopted."""
    console.print(
        f"Calibration: temperature {calibration.temperature:.3f}; validation ECE "
        f"{calibration.ece_before:.4f} → {calibration.ece_after:.4f}; macro-F1 "
        f"{calibration.macro_f1_before:.4f} → {calibration.macro_f1_after:.4f}.",
        highlight=False,
        soft_wrap=True,
    )
    if calibration.reason:
        tuned = calibration.task.tuned_parameters  # "per-class offsets", "thresholds"
        verdict = "adopted" if calibration.adopted else "not adopted"
        console.print(
            f"Decision: {calibration.decision} ({tuned} {verdict}: {calibration.reason})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@friendly_errors
def train(config: ConfigArg, set_: SetOpt = None, set_file: SetFileOpt = None) -> None:
    """Fine-tune a classifier; writes a self-contained model directory."""
    from emorec.train import train as train_model

    quiet_libraries()
    result = train_model(load(config, set_, set_file))
    m = result.metrics
    console.print(
        f"Trained in {m['train_seconds']:.0f} s ({m['train_samples_per_s']:.1f} samples/s); "
        f"best validation macro-F1 {m['best_validation_macro_f1']:.4f}."
    )
    console.print(f"Model: [bold]{result.model_dir}[/]")


@friendly_errors
def calibrate(model_dir: ModelDirArg, set_: SetOpt = None, set_file: SetFileOpt = None) -> None:
    """Fit temperature and decision offsets/thresholds on the validation split."""
    from emorec.pipeline import calibrate_model

    quiet_libraries()
    calibration = calibrate_model(model_dir, model_config(model_dir, set_, set_file))
    _print_calibration(calibration)
    console.print(f"Saved: [bold]{model_dir / 'calibration.json'}[/]")


@friendly_errors
def run(config: ConfigArg, set_: SetOpt = None, set_file: SetFileOpt = None) -> None:
    """prepare → train → calibrate → evaluate, from one config."""
    from emorec.pipeline import run as run_pipeline

    quiet_libraries()
    result = run_pipeline(load(config, set_, set_file))
    _print_calibration(result.calibration)
    print_metrics(result.evaluation.metrics, result.evaluation.task)
    console.print(f"Model: [bold]{result.model_dir}[/]   Results: [bold]{result.results_dir}[/]")
    # Logged when prepare ran, but long since scrolled away behind the training output.
    for warning in result.prepare_report.get("warnings", []):
        err_console.print(
            f"[bold yellow]data warning:[/] {warning}", highlight=False, soft_wrap=True
        )


@friendly_errors
def tune(
    config: ConfigArg,
    sweep: Annotated[
        Path, typer.Option(help="Sweep file (YAML), e.g. configs/sweep-dair-emotion.yaml.")
    ],
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the study (default: sqlite:///<results_dir>/tune/study.db)."
        ),
    ] = None,
    study_name: Annotated[str | None, typer.Option(help="Study name (default: run_name).")] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue an existing study, or join it as another worker.")
    ] = False,
    n_trials: Annotated[
        int | None, typer.Option(min=1, help="Trials in the whole study (default: the sweep's).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="Start no trial after this many seconds.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Outputs directory (default: <results_dir>/tune).")
    ] = None,
) -> None:
    """Search hyperparameters with Optuna; writes best.yaml for `emorec train --set-file`."""
    from emorec.tune import load_sweep
    from emorec.tune import tune as run_tune

    result = run_tune(
        load(config, set_, set_file),
        load_sweep(sweep),
        storage=storage,
        study_name=study_name,
        resume=resume,
        n_trials=n_trials,
        timeout_s=timeout,
        output_dir=output,
    )
    console.print(
        f"Study {result.study_name!r} ({result.storage}): {result.n_trials} trials, "
        f"{result.n_complete} complete, {result.n_pruned} pruned, {result.n_failed} failed."
    )
    if result.best_value is None:
        err_console.print(f"No trial completed; see {result.output_dir / 'trials.csv'}.")
        raise typer.Exit(1)
    base = "" if result.base_value is None else f" (base config: {result.base_value:.4f})"
    console.print(f"Best trial {result.best_trial}: objective {result.best_value:.4f}{base}.")
    console.print(
        f"Best parameters: [bold]{result.artifacts['best']}[/]   Outputs: {result.output_dir}"
    )
