"""`emorec evaluate`: score a model directory and write its evaluation artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emorec.cli._common import (
    ModelDirArg,
    SetFileOpt,
    SetOpt,
    SplitChoice,
    console,
    friendly_errors,
    model_config,
    print_metrics,
    quiet_libraries,
)


@friendly_errors
def evaluate(
    model_dir: ModelDirArg,
    split: Annotated[
        SplitChoice | None, typer.Option(help="Split to score (default: evaluation.split).")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Artifacts directory.")] = None,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
) -> None:
    """Evaluate on the test split; write metrics.json, report.md, plots and error analysis."""
    from emorec.pipeline import evaluate_model

    quiet_libraries()
    result = evaluate_model(
        model_dir, split, output, config=model_config(model_dir, set_, set_file)
    )
    print_metrics(result.metrics, result.task)
    console.print(f"Artifacts: [bold]{result.artifacts['metrics'].parent}[/]")
