"""Shipping commands: `export` (ONNX behind an accuracy gate) and `push` (to the Hub)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from emorec.cli._common import (
    FormatChoice,
    ModelDirArg,
    QuantizeChoice,
    console,
    err_console,
    friendly_errors,
)


@friendly_errors
def export(
    model_dir: ModelDirArg,
    format_: Annotated[FormatChoice, typer.Option("--format", help="Export format.")] = "onnx",
    quantize: Annotated[
        QuantizeChoice | None,
        typer.Option(help="int8: dynamic int8 quantization (smaller, faster)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Labelled file for the accuracy gate (default: validation split)."),
    ] = None,
    max_drop: Annotated[
        float,
        typer.Option(
            min=-100,
            max=100,
            help="Refuse when accuracy or macro-F1 drops more (points; below 0 demands a gain).",
        ),
    ] = 0.5,
    optimize: Annotated[
        bool, typer.Option(help="ONNX Runtime transformer fusions before quantizing.")
    ] = True,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all).")] = None,
) -> None:
    """Export to ONNX next to the weights, behind an accuracy gate (exit 1 when refused)."""
    from emorec.export import ExportRefusedError, export_onnx

    try:
        result = export_onnx(
            model_dir,
            quantize,
            data=data,
            max_drop=max_drop,
            optimize=optimize,
            num_threads=threads,
        )
    except ExportRefusedError as error:
        _show_gate(error.gate)
        err_console.print(f"[bold red]refused:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    _show_gate(result.gate)
    size = result.metadata["size_bytes"] / 2**20
    console.print(f"Wrote [bold]{result.path}[/] ({size:.1f} MiB); details in export.json.")


@friendly_errors
def push(
    model_dir: ModelDirArg,
    repo_id: Annotated[
        str, typer.Option("--repo-id", help="Hub model repo, user/name (created if missing).")
    ],
    private: Annotated[bool, typer.Option(help="Create the repo private.")] = False,
    revision: Annotated[
        str | None, typer.Option(help="Branch to commit to (created if missing).")
    ] = None,
    message: Annotated[str | None, typer.Option(help="Commit message.")] = None,
    license_: Annotated[
        str, typer.Option("--license", help="License id in the model card.")
    ] = "apache-2.0",
) -> None:
    """Upload MODEL_DIR with its model card to the Hugging Face Hub in one commit (needs network).

    The token comes from HF_TOKEN or `hf auth login`; it is never printed.
    """
    from emorec.hub import DEFAULT_COMMIT_MESSAGE, push_to_hub

    url = push_to_hub(
        model_dir,
        repo_id,
        private=private,
        revision=revision,
        commit_message=message or DEFAULT_COMMIT_MESSAGE,
        license=license_,
    )
    console.print(f"Uploaded [bold]{model_dir}[/] → {url}")


def _show_gate(gate: dict[str, Any]) -> None:
    table = Table(title=f"Accuracy gate ({gate['n']} texts, max drop {gate['max_drop_points']:g})")
    for column in ("metric", "torch", "onnx", "delta (points)"):
        table.add_column(column, justify="right")
    for name in ("accuracy", "macro_f1"):
        table.add_row(
            name,
            f"{gate['torch'][name]:.4f}",
            f"{gate['onnx'][name]:.4f}",
            f"{gate['delta_points'][name]:+.2f}",
        )
    console.print(table)
    console.print(f"Decisions by {gate.get('decision_rule', 'the stored calibration')}.")
    in_sample = gate.get("in_sample_delta_points")
    if in_sample:
        console.print(
            "In sample (the stored rule on the rows it was fitted on, which favours PyTorch): "
            f"accuracy {in_sample['accuracy']:+.2f}, macro_f1 {in_sample['macro_f1']:+.2f} points."
        )
    console.print(
        f"Decisions identical to PyTorch: {100 * gate['agreement']:.2f}%; largest probability "
        f"difference {gate['max_abs_prob_diff']:.2g}."
    )
