"""The command line as a user meets it: option validation, help text, overrides, the prompt."""

from __future__ import annotations

import enum
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
import typer
from typer.testing import CliRunner

from emorec import cli
from emorec.cli import app

runner = CliRunner()

# String options whose values are free text (paths, names, URLs). Any other str option must be a
# Literal choice, so that typer validates and completes it: a new one fails here until decided.
FREE_TEXT = {
    "predict": {"text_column"},
    "tune": {"storage", "study_name"},
    "push": {"repo_id", "revision", "message", "license_"},
    "serve": {"host", "database_url"},
    "worker": {"queue_url", "database_url"},
    "apikey create": {"database_url"},
    "apikey list": {"database_url"},
    "apikey revoke": {"database_url"},
}


def _commands(
    group: typer.Typer = app, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    """(command path, the Python function behind it) for every command, sub-apps included."""
    found = []
    for info in group.registered_commands:
        name = info.name or info.callback.__name__.lower().replace("_", "-")
        found.append(((*prefix, name), info.callback))
    for sub in group.registered_groups:
        found.extend(_commands(sub.typer_instance, (*prefix, sub.name)))
    return found


def _click_command(path: tuple[str, ...]) -> Any:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _value_type(annotation: Any) -> Any:
    """The option's type without Annotated and None: `Literal[...]`, int, Path, ..."""
    annotation = (
        get_args(annotation)[0] if get_origin(annotation) is typing.Annotated else annotation
    )
    if get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    return annotation


def _choices(kind: Any) -> list[str] | None:
    if get_origin(kind) is Literal:
        return [str(v) for v in get_args(kind)]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return [str(member.value) for member in kind]
    return None


def _required_args(command: Any) -> list[str]:
    """Placeholders for the required arguments and options, so parsing reaches the bad value."""
    argv: list[str] = []
    for param in command.params:
        if param.required and param.param_type_name == "argument":
            argv.append("placeholder")
        elif param.required:
            argv += [param.opts[0], "placeholder"]
    return argv


def _options() -> list[tuple[tuple[str, ...], Any, Any, Any]]:
    """(command path, click option, its value type, its typer.Option) for every option."""
    found = []
    for path, function in _commands():
        hints = typing.get_type_hints(function, include_extras=True)
        for param in _click_command(path).params:
            if param.param_type_name == "option":
                annotation = hints[param.name]
                found.append((path, param, _value_type(annotation), get_args(annotation)[1]))
    return found


def _bad_values() -> list[Any]:
    cases = []
    for path, param, kind, info in _options():
        choices = _choices(kind)
        if choices is not None:
            bad, expected = ["not-a-choice"], choices
        elif kind in (int, float) and (info.min is not None or info.max is not None):
            bound = info.min if info.min is not None else info.max
            bad = [str(bound - 1 if info.min is not None else bound + 1), "abc"]
            expected = [str(bound)]
        elif kind in (int, float) or (
            kind is str and param.name not in FREE_TEXT.get(" ".join(path), set())
        ):
            bad, expected = ["not-a-choice"], []  # fails below until it is a choice or a range
        else:
            continue
        cases += [
            pytest.param(path, param, value, expected, id=f"{' '.join(path)} {param.opts[0]}")
            for value in bad
        ]
    return cases


def test_every_option_is_a_choice_a_range_or_free_text() -> None:
    for path, param, kind, info in _options():
        where = f"emorec {' '.join(path)} {param.opts[0]}"
        if kind in (int, float):
            assert info.min is not None or info.max is not None, (
                f"{where}: give the number a range (typer.Option(min=..., max=...))"
            )
        elif kind is str:
            assert param.name in FREE_TEXT.get(" ".join(path), set()), (
                f"{where} is a str option: make it a Literal of its choices, or list it in "
                "FREE_TEXT if any text is valid"
            )


@pytest.mark.parametrize(("path", "param", "value", "expected"), _bad_values())
def test_every_bad_option_value_is_one_line_and_exit_2(
    path: tuple[str, ...], param: Any, value: str, expected: list[str]
) -> None:
    command = _click_command(path)
    result = runner.invoke(app, [*path, *_required_args(command), param.opts[0], value])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert lines[0].startswith("error: ") and f"'{param.opts[0]}'" in lines[0]
    assert all(str(v) in lines[0] for v in expected), lines[0]


def test_bad_value_cases_cover_the_known_crashes() -> None:
    # The reproductions: both used to print a ValueError traceback with exit 1.
    ids = {(" ".join(case.values[0]), case.values[1].opts[0]) for case in _bad_values()}
    assert {("predict", "--decision"), ("predict", "--top-k"), ("export", "--quantize")} <= ids


def test_cli_choices_are_the_library_choices() -> None:
    from emorec import inference
    from emorec.config import EvaluationConfig
    from emorec.explain import core
    from emorec.export import Quantize

    def values(kind: Any) -> set[Any]:
        return {v for a in (get_args(kind) or (kind,)) for v in (get_args(a) or [a])} - {None}

    assert values(cli.DecisionChoice) == values(inference.Decision)
    assert values(cli.BackendChoice) == values(inference.BackendName) == set(inference.BACKENDS)
    assert values(cli.PrecisionChoice) == values(inference.Precision)
    assert values(cli.LongTextChoice) == values(inference.LongText)
    assert values(cli.AggregateChoice) == values(inference.WindowAggregate)
    assert values(cli.MethodChoice) == values(core.Method) == set(core.METHODS)
    assert values(cli.SplitChoice) == values(EvaluationConfig.model_fields["split"].annotation)
    assert values(cli.QuantizeChoice) == values(Quantize) - {type(None)}


@pytest.mark.parametrize(
    "path", [(), *(path for path, _ in _commands()), ("apikey",)], ids=" ".join
)
def test_help_names_values_plainly(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for bad in ("<bool>", "<list[", "{"):
        assert bad not in result.output, (bad, result.output)
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    arguments = usage.split("[OPTIONS]")[1].split()
    # Arguments are named like CONFIG and MODEL_DIR, optional ones in brackets.
    assert all(re.fullmatch(r"\[?[A-Z_]+\]?(\.\.\.)?|COMMAND|\[ARGS\]\.\.\.", a) for a in arguments)
    if path and path[0] in ("train", "run", "prepare", "tune"):
        assert "CONFIG" in arguments
    if path and path[0] in ("predict", "evaluate", "calibrate", "export", "serve", "worker"):
        assert "MODEL_DIR" in arguments
    if path == ("predict",):
        assert "<calibrated|argmax>" in result.output or "[calibrated|argmax]" in result.output


@pytest.fixture
def model_with_config(tiny_classifier_dir: Path, make_config: Any, tmp_path: Path) -> Path:
    """The tiny classifier with the config.yaml `emorec train` writes, on the tiny data."""
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_classifier_dir, model_dir)
    (model_dir / "config.yaml").write_text(make_config().to_yaml())
    return model_dir


@pytest.mark.parametrize("command", ["train", "run", "prepare", "calibrate", "evaluate"])
def test_commands_take_set_and_set_file(command: str) -> None:
    names = {opt for param in _click_command((command,)).params for opt in param.opts}
    assert {"--set", "--set-file"} <= names


@pytest.mark.parametrize("path", [("serve",), ("worker",), ("apikey", "create")], ids=" ".join)
def test_service_commands_take_database_url(path: tuple[str, ...]) -> None:
    assert "--database-url" in {opt for param in _click_command(path).params for opt in param.opts}


def test_calibrate_and_evaluate_apply_overrides(model_with_config: Path, tmp_path: Path) -> None:
    model = str(model_with_config)
    result = runner.invoke(app, ["calibrate", model, "--set", "calibration.decision=argmax"])
    assert result.exit_code == 0, result.output
    assert json.loads((model_with_config / "calibration.json").read_text())["decision"] == "argmax"

    overrides = tmp_path / "eval.yaml"
    overrides.write_text("evaluation:\n  split: validation\n")
    out = tmp_path / "results"
    result = runner.invoke(app, ["evaluate", model, "--set-file", str(overrides), "--output", out])
    assert result.exit_code == 0, result.output
    assert json.loads((model_with_config / "metrics.json").read_text())["split"] == "validation"

    # A bad override is named as given (brackets and all), not as the model's config.yaml.
    result = runner.invoke(app, ["evaluate", model, "--set", "model.labels=[joy]"])
    assert result.exit_code == 2
    assert "--set model.labels=[joy]: `model.labels`" in result.output
    assert "config.yaml" not in result.output

    (model_with_config / "config.yaml").unlink()
    result = runner.invoke(app, ["calibrate", model, "--set", "calibration.decision=argmax"])
    assert result.exit_code == 2 and "has no config.yaml" in result.output


def _read(fd: int, buffer: bytearray, until: bytes, count: int = 1, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while buffer.count(until) < count:
        assert time.monotonic() < deadline, f"waited for {until!r} x{count}: {bytes(buffer)!r}"
        if select.select([fd], [], [], 0.2)[0]:
            try:
                buffer += os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                return


def _drain(fd: int, buffer: bytearray) -> None:
    """What the child wrote before it exited."""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child's side is closed and everything was read
            return
        if not chunk:
            return
        buffer += chunk


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal and GNU readline")
def test_interactive_prompt_recalls_history_and_ends_cleanly(
    tiny_classifier_dir: Path, tmp_path: Path
) -> None:
    env = os.environ | {
        "EMOREC_HOME": str(tmp_path / "home"),
        "NO_COLOR": "1",
        "TERM": "xterm",
        "INPUTRC": os.devnull,  # the user's key bindings stay out of the test
    }
    main, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "emorec.cli", "predict", str(tiny_classifier_dir), "-i"],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
    )
    os.close(child)
    output = bytearray()
    try:
        _read(main, output, b"text> ")
        os.write(main, b"so happy today\r")
        _read(main, output, b"text> ", count=2)
        os.write(main, b"\x1b[A\r")  # up-arrow recalls the line, enter classifies it again
        _read(main, output, b"text> ", count=3)
        os.write(main, b"\x04")  # Ctrl-D
        assert process.wait(timeout=30) == 0
        _drain(main, output)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode())
    assert text.count("←  so happy today") == 2, text
    assert "^[[A" not in text
    assert text.endswith("text> \r\n"), repr(text[-40:])  # Ctrl-D ends the prompt's line
    history = tmp_path / "home" / "predict_history"
    assert "so happy today" in history.read_text()
