"""What the commands share: help rendering, option types, error handling, the consoles."""

from __future__ import annotations

import functools
import re
import signal
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

from emorec.errors import EmorecError

if TYPE_CHECKING:
    from emorec.config import Config
    from emorec.task import Task

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


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
            fail(f"{message}; see `{ctx.command_path} --help`.")


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


def make_app(**kwargs: Any) -> typer.Typer:
    """A command group with emorec's help and one-line errors for bad option values."""
    return _Typer(cls=_Group, **kwargs)


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


def fail(message: str) -> NoReturn:
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


def friendly_errors(command: F) -> F:
    """Show emorec's input errors as one clear message and exit 2, without a traceback.

    SIGTERM ends the command as an exception too (exit 143), so it cleans up after itself.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _sigterm_unwinds():
                return command(*args, **kwargs)
        except EmorecError as error:
            fail(str(error))
        except typer.BadParameter as error:  # raised by a command once it has its arguments
            fail(error.format_message())

    return wrapper  # type: ignore[return-value]


@contextmanager
def value_error_as_bad_parameter() -> Iterator[None]:
    """A library ``ValueError`` about the user's input, shown as a bad parameter (exit 2)."""
    try:
        yield
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def load(config: Path, overrides: list[str] | None, files: list[Path] | None = None) -> Config:
    """CONFIG with --set and --set-file applied."""
    from emorec.config import load_config

    return load_config(config, overrides or [], files or [])


def model_config(
    model_dir: Path, overrides: list[str] | None, files: list[Path] | None
) -> Config | None:
    """MODEL_DIR's saved config.yaml with --set/--set-file applied (None: the saved one as is)."""
    if not (overrides or files):
        return None
    from emorec.artifacts import CONFIG_FILE

    if not (model_dir / CONFIG_FILE).is_file():
        raise EmorecError(
            f"--set and --set-file change the config saved with the model, and {model_dir} has "
            f"no {CONFIG_FILE}; point at a model directory written by `emorec train`."
        )
    return load(model_dir / CONFIG_FILE, overrides, files)


def require_model_dir(model_dir: Path) -> None:
    """Refuse a directory that `emorec train` did not write, before anything slow starts."""
    from emorec.artifacts import ModelDir

    ModelDir.open(model_dir)


def quiet_libraries() -> None:
    """Silence the libraries' own bars and load reports (emorec's displays replace them)."""
    from emorec.progress import quiet_library_output

    quiet_library_output()


def print_metrics(metrics: dict[str, float], task: Task) -> None:
    """A table of the task's headline metrics, one column per decision rule (``rule/metric``)."""
    rules = sorted({key.split("/")[0] for key in metrics})
    table = Table(title="Evaluation")
    table.add_column("metric")
    for rule in rules:
        table.add_column(rule, justify="right")
    for name in task.summary_metrics:
        if f"{rules[0]}/{name}" in metrics:
            table.add_row(name, *(f"{metrics[f'{rule}/{name}']:.4f}" for rule in rules))
    console.print(table)
