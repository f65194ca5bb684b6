"""What a training run shows while it runs: one progress display, and nothing from the libraries.

:class:`TrainingProgress` is a transformers ``TrainerCallback``. On a terminal it draws one live
rich bar (step, epoch, ETA, last training loss, last validation macro-F1) and prints a line
above it per evaluation; elsewhere (a log file, a pipe, CI) it prints only that line, plain: no
carriage returns, no colours. :func:`quiet_library_output` silences what datasets,
transformers and huggingface_hub print on their own (tqdm bars, load reports).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from transformers import TrainerCallback

__all__ = ["TrainingProgress", "evaluation_line", "quiet_library_output"]


def quiet_library_output() -> None:
    """Turn off the progress bars and load reports that datasets, transformers and the Hub print.

    For the CLI, whose own displays replace them: in a log their ``\\r`` bars ("Map", "Saving
    the dataset", "Loading weights") and the ANSI-coloured weight-loading report are noise.
    Process-wide, so a library user calls it only if they want the same.
    """
    import datasets
    import huggingface_hub.utils
    import transformers.utils.logging

    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def evaluation_line(
    step: int,
    max_steps: int,
    epoch: float | None,
    metrics: dict[str, Any],
    train_loss: float | None,
    eta_s: float | None,
) -> str:
    """``step 30/60  epoch 1.00  loss 0.4321  val_loss 0.3987  val macro-F1 0.8123 ...``."""
    parts = [f"step {step}/{max_steps}"]
    if epoch is not None:
        parts.append(f"epoch {epoch:.2f}")
    if train_loss is not None:
        parts.append(f"loss {train_loss:.4f}")
    for key, name in (
        ("eval_loss", "val loss"),
        ("eval_macro_f1", "val macro-F1"),
        ("eval_accuracy", "val accuracy"),
    ):
        value = metrics.get(key)
        if isinstance(value, int | float):
            parts.append(f"{name} {value:.4f}")
    if eta_s is not None:
        parts.append(f"ETA {_clock(eta_s)}")
    return "  ".join(parts)


class TrainingProgress(TrainerCallback):
    """Training progress through the Trainer's callbacks (replaces its tqdm and log printer).

    ``console`` defaults to stdout; whether it is a terminal decides between the live bar and
    plain lines. Only evaluations during training are reported: the re-evaluation of the best
    checkpoint after training is the caller's to print.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.live = self.console.is_terminal
        self._progress: Progress | None = None
        self._task: Any = None
        self._training = False
        self._loss: float | None = None
        self._macro_f1: float | None = None
        self._started = 0.0
        self._first_step = 0

    def _eta(self, state: Any) -> float | None:
        done = state.global_step - self._first_step
        if done <= 0 or not state.max_steps:
            return None
        return (time.perf_counter() - self._started) / done * (state.max_steps - state.global_step)

    def _fields(self, state: Any, status: str) -> dict[str, Any]:
        return {
            "status": status,
            "epoch": f"{state.epoch or 0.0:.2f}",
            "loss": "-" if self._loss is None else f"{self._loss:.4f}",
            "f1": "-" if self._macro_f1 is None else f"{self._macro_f1:.4f}",
        }

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = True
        self._started = time.perf_counter()
        self._first_step = state.global_step  # > 0 when resuming from a checkpoint
        if not (self.live and state.is_world_process_zero):
            return
        self._progress = Progress(
            TextColumn("[bold]{task.fields[status]}"),
            BarColumn(),
            TextColumn("step"),
            MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("loss {task.fields[loss]}  val macro-F1 {task.fields[f1]}"),
            console=self.console,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train",
            total=state.max_steps,
            completed=state.global_step,
            **self._fields(state, "training"),
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task, completed=state.global_step, **self._fields(state, "training")
            )

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._progress is not None and self._training:
            self._progress.update(self._task, status="evaluating")

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        loss = (logs or {}).get("loss")
        if isinstance(loss, int | float):
            self._loss = float(loss)

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not (self._training and state.is_world_process_zero):
            return
        metrics = metrics or {}
        if isinstance(metrics.get("eval_macro_f1"), int | float):
            self._macro_f1 = float(metrics["eval_macro_f1"])
        line = evaluation_line(
            state.global_step, state.max_steps, state.epoch, metrics, self._loss, self._eta(state)
        )
        if self._progress is not None:
            self._progress.update(self._task, **self._fields(state, "training"))
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            # soft_wrap: one line however long, whatever width rich assumes for a file.
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the live display; also for a training that raised before its end."""
        self._training = False
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
