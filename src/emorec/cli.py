"""The ``emorec`` command line: thin shells over the Python API."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from emorec.errors import EmorecError

if TYPE_CHECKING:
    from emorec.config import Config

app = typer.Typer(
    name="emorec",
    help="Text emotion recognition: prepare, train, calibrate, evaluate and predict.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

ConfigArg = Annotated[
    Path, typer.Argument(help="Run config (YAML), e.g. configs/dair-emotion.yaml.")
]
ModelDirArg = Annotated[Path, typer.Argument(help="A model directory written by `emorec train`.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config value: --set training.learning_rate=3e-5"),
]
SetFileOpt = Annotated[
    list[Path] | None,
    typer.Option("--set-file", help="A YAML file of overrides merged into the config."),
]


def _friendly_errors(command: F) -> F:
    """Show emorec's input errors as one clear message and exit 2, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EmorecError as error:
            err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
    # Quiet the libraries' informational chatter; progress bars stay on.
    for name in ("transformers", "datasets", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _load(config: Path, overrides: list[str] | None, files: list[Path] | None = None) -> Config:
    from emorec.config import load_config

    return load_config(config, overrides or [], files or [])


def _print_metrics(metrics: dict[str, float], rules: list[str]) -> None:
    table = Table(title="Evaluation")
    table.add_column("metric")
    for rule in rules:
        table.add_column(rule, justify="right")
    names = ("accuracy", "micro_f1", "macro_f1", "weighted_f1", "samples_f1", "roc_auc_macro",
             "hamming_score", "exact_match", "ece")
    for name in names:
        if f"{rules[0]}/{name}" in metrics:
            table.add_row(name, *(f"{metrics[f'{rule}/{name}']:.4f}" for rule in rules))
    console.print(table)


@app.command()
@_friendly_errors
def prepare(config: ConfigArg, set_: SetOpt = None, set_file: SetFileOpt = None) -> None:
    """Read, clean, split and tokenize the data of CONFIG (cached)."""
    from emorec.data import prepare as prepare_data

    prepared = prepare_data(_load(config, set_, set_file))
    report = prepared.report
    table = Table(title=f"Prepared data ({'from cache' if report.get('cached') else 'new'})")
    for column in ("split", "rows", "labels"):
        table.add_column(column)
    for split, size in report["sizes"].items():
        distribution = report["label_distribution"][split]
        table.add_row(split, str(size), ", ".join(f"{k} {v}" for k, v in distribution.items()))
    console.print(table)
    leakage = report["leakage"]
    console.print(
        f"Cross-split duplicates: train∩test {leakage['train_test_overlap']}, "
        f"train∩validation {leakage['train_validation_overlap']}, validation∩test "
        f"{leakage['validation_test_overlap']}; removed ({leakage['policy']}): {leakage['removed']}"
    )
    mapping = report.get("label_mapping")
    if mapping:
        console.print(
            f"Label mapping → {', '.join(mapping['labels'])}; rows dropped with no label left: "
            f"{mapping['rows_dropped']}"
        )
    console.print(f"Cache: [bold]{prepared.cache_path}[/]")


@app.command()
@_friendly_errors
def train(config: ConfigArg, set_: SetOpt = None, set_file: SetFileOpt = None) -> None:
    """Fine-tune a classifier; writes a self-contained model directory."""
    from emorec.train import train as train_model

    result = train_model(_load(config, set_, set_file))
    m = result.metrics
    console.print(
        f"Trained in {m['train_seconds']:.0f} s ({m['train_samples_per_s']:.1f} samples/s); "
        f"best validation macro-F1 {m['best_validation_macro_f1']:.4f}."
    )
    console.print(f"Model: [bold]{result.model_dir}[/]")


@app.command()
@_friendly_errors
def calibrate(model_dir: ModelDirArg, set_: SetOpt = None) -> None:
    """Fit temperature and decision offsets/thresholds on the validation split."""
    from emorec.config import load_config
    from emorec.pipeline import calibrate_model

    config = load_config(model_dir / "config.yaml", set_ or []) if set_ else None
    calibration = calibrate_model(model_dir, config)
    console.print(
        f"Temperature {calibration.temperature:.3f}; validation ECE {calibration.ece_before:.4f} → "
        f"{calibration.ece_after:.4f}; macro-F1 {calibration.macro_f1_before:.4f} → "
        f"{calibration.macro_f1_after:.4f}."
    )
    console.print(f"Saved: [bold]{model_dir / 'calibration.json'}[/]")


@app.command()
@_friendly_errors
def evaluate(
    model_dir: ModelDirArg,
    split: Annotated[str | None, typer.Option(help="test or validation (default: config).")] = None,
    output: Annotated[Path | None, typer.Option(help="Artifacts directory.")] = None,
) -> None:
    """Evaluate on the test split; write metrics.json, report.md, plots and error analysis."""
    from emorec.pipeline import evaluate_model

    result = evaluate_model(model_dir, split, output)
    rules = sorted({key.split("/")[0] for key in result.metrics})
    _print_metrics(result.metrics, rules)
    console.print(f"Artifacts: [bold]{result.artifacts['metrics'].parent}[/]")


@app.command()
@_friendly_errors
def run(config: ConfigArg, set_: SetOpt = None, set_file: SetFileOpt = None) -> None:
    """prepare → train → calibrate → evaluate, from one config."""
    from emorec.pipeline import run as run_pipeline

    result = run_pipeline(_load(config, set_, set_file))
    rules = sorted({key.split("/")[0] for key in result.evaluation.metrics})
    _print_metrics(result.evaluation.metrics, rules)
    console.print(f"Model: [bold]{result.model_dir}[/]   Results: [bold]{result.results_dir}[/]")


@app.command()
@_friendly_errors
def predict(
    model_dir: ModelDirArg,
    texts: Annotated[list[str] | None, typer.Argument(help="Text(s) to classify.")] = None,
    interactive: Annotated[
        bool, typer.Option("--interactive", "-i", help="A prompt loop.")
    ] = False,
    input_file: Annotated[Path | None, typer.Option("--input", help=".csv, .jsonl or .txt")] = None,
    output_file: Annotated[Path | None, typer.Option("--output", help=".csv or .jsonl")] = None,
    text_column: Annotated[str, typer.Option(help="Text column of --input.")] = "text",
    top_k: Annotated[int, typer.Option(help="Emotions shown per text.")] = 3,
    decision: Annotated[str, typer.Option(help="calibrated or argmax.")] = "calibrated",
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 64,
) -> None:
    """Classify texts given as arguments, interactively, or from a file into a file."""
    from emorec.inference import EmotionClassifier
    from emorec.predict_io import predict_file

    if not (texts or interactive or input_file):
        raise typer.BadParameter("give TEXT arguments, --interactive or --input FILE")
    classifier = EmotionClassifier.from_pretrained(model_dir)
    classifier.batch_size = batch_size
    if input_file:
        if output_file is None:
            raise typer.BadParameter("--input needs --output (a .csv or .jsonl path)")
        rows = predict_file(classifier, input_file, output_file, text_column, decision)  # type: ignore[arg-type]
        console.print(f"Classified {rows} texts → [bold]{output_file}[/]")
    for prediction in classifier.predict(texts, top_k=top_k, decision=decision) if texts else []:  # type: ignore[arg-type]
        _show(prediction)
    while interactive:
        try:
            text = console.input("[bold cyan]text>[/] ")
        except (EOFError, KeyboardInterrupt):
            break
        if text.strip() in {"", ":q", "quit", "exit"}:
            if text.strip():
                break
            continue
        _show(classifier.predict(text, top_k=top_k, decision=decision))  # type: ignore[arg-type]


def _show(prediction: Any) -> None:
    decided = ", ".join(prediction.labels) or "(none above threshold)"
    console.print(f"[bold]{decided}[/]  ←  {prediction.text}", highlight=False)
    for label, score in prediction.scores.items():
        bar = "█" * round(score * 30)
        console.print(f"  {label:>14} {score:6.3f} {bar}", highlight=False)


if __name__ == "__main__":
    app()
