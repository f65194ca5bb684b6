"""Model-use commands: `predict` (arguments, a prompt, or files) and `explain`."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from emorec.cli._common import (
    AggregateChoice,
    BackendChoice,
    DecisionChoice,
    LongTextChoice,
    MethodChoice,
    ModelDirArg,
    PrecisionChoice,
    console,
    err_console,
    friendly_errors,
)
from emorec.errors import DataError

logger = logging.getLogger(__name__)


@friendly_errors
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
    from emorec.inference.files import check_input, predict_file
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
                err_console.print(
                    f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True
                )


@friendly_errors
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
            console.print(f"  {escape(f'{word:>16}')} {score:+10.4g}", highlight=False)
    if output is not None:
        paths = write_explanation(explanations, output, curves)
        console.print(f"Wrote {', '.join(p.name for p in paths.values())} to [bold]{output}[/]")


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
            logger.warning("cannot read the history %s: %s", path, error)
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
            logger.warning("cannot save the history %s: %s", path, error)


def _show(prediction: Any) -> None:
    decided = ", ".join(prediction.labels) or "(none above threshold)"
    # Texts and label names are the user's: "[laughs]" must print, not be read as markup.
    console.print(f"[bold]{escape(decided)}[/]  ←  {escape(prediction.text)}", highlight=False)
    for label, score in prediction.scores.items():
        bar = "█" * round(score * 30)
        console.print(f"  {escape(f'{label:>14}')} {score:6.3f} {bar}", highlight=False)
