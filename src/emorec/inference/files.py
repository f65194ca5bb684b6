"""Streaming file prediction: read a CSV/JSONL/TXT file in chunks, write annotated rows.

Memory stays constant in the file size: rows are read lazily, ``chunk_size`` at a time, each
chunk is classified (length-sorted batches inside it) and written before the next is read.
Output rows keep the input order and columns.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from emorec._io import atomic_path, open_text
from emorec.errors import ConfigError, DataError
from emorec.inference.classifier import EmotionClassifier
from emorec.inference.prediction import Decision, Prediction
from emorec.text import text_problem

logger = logging.getLogger(__name__)

INPUT_FORMATS = (".csv", ".jsonl", ".txt")
OUTPUT_FORMATS = (".csv", ".jsonl")


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def check_input(path: Path) -> None:
    """Raise :class:`DataError` unless ``path`` is an existing file of a readable format."""
    suffix = path.suffix.lower()
    if suffix not in INPUT_FORMATS:
        raise DataError(f"{path}: unsupported input format {suffix!r}; use one of {INPUT_FORMATS}.")
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "not found"
        raise DataError(f"Input file {what}: {path} (resolved to {path.resolve()}).")


def iter_rows(path: Path, text_column: str, chunk_size: int) -> Iterator[list[dict[str, Any]]]:
    """Chunks of input rows as dicts; each has the text under ``text_column``.

    A generator: the file is read as the chunks are consumed, never whole.
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer; got {chunk_size!r}.")
    check_input(path)
    suffix = path.suffix.lower()
    chunk: list[dict[str, Any]] = []
    with open_text(path, newline="" if suffix == ".csv" else None) as handle:
        try:
            if suffix == ".csv":
                reader = csv.DictReader(handle)
                if reader.fieldnames is None or text_column not in reader.fieldnames:
                    raise DataError(
                        f"{path}: no column {text_column!r}; columns: {reader.fieldnames}. "
                        "Use --text-column."
                    )
                rows: Iterator[dict[str, Any]] = iter(reader)
            elif suffix == ".jsonl":
                rows = _jsonl_rows(handle, path, text_column)
            else:
                rows = ({text_column: line.rstrip("\r\n")} for line in handle)
            for row in rows:
                chunk.append(row)
                if len(chunk) == chunk_size:
                    yield chunk
                    chunk = []
        except UnicodeDecodeError as error:
            raise DataError(f"{path} is not valid UTF-8 ({error.reason}).") from None
    if chunk:
        yield chunk


def _jsonl_rows(handle: Any, path: Path, text_column: str) -> Iterator[dict[str, Any]]:
    for line_no, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{line_no}: not valid JSON ({error.msg}).") from None
        if not isinstance(row, dict) or not isinstance(row.get(text_column), str):
            raise DataError(f"{path}:{line_no}: expected an object with a string {text_column!r}.")
        yield row


def predict_rows(
    classifier: EmotionClassifier, texts: list[Any], decision: Decision = "calibrated"
) -> list[Prediction | str]:
    """Each row's Prediction, or (a str) why its text cannot be classified.

    The rows of a file are judged one by one (:func:`emorec.text.text_problem`, the rule of
    ``predict``), so an empty or broken text costs its own row only, never the file's others.
    """
    problems = [text_problem(text) for text in texts]
    valid = [text for text, problem in zip(texts, problems, strict=True) if problem is None]
    predictions = iter(classifier.predict(valid, decision=decision) if valid else [])
    return [next(predictions) if problem is None else f"the text {problem}" for problem in problems]


def annotate_row(
    row: dict[str, Any], prediction: Prediction | str, names: list[str], jsonl: bool
) -> dict[str, Any]:
    """``row`` plus the prediction's columns, as written to a JSONL or a CSV output file.

    JSONL rows get ``pred_label``, ``pred_labels`` (a list) and ``scores`` (every label as
    ``{"label", "score"}``, highest first: the format of the Python and the HTTP API); CSV
    rows ``pred_label``, ``pred_labels`` joined by ``|`` and one ``prob_<label>`` column per
    label, in ``names`` order. Both end with ``pred_error``: empty (null) for a classified row;
    for a row whose text could not be classified (``prediction`` is then the reason) the
    reason, with the prediction columns empty.
    """
    row = dict(row)
    if isinstance(prediction, str):
        row["pred_label"] = None
        if jsonl:
            row.update(pred_labels=[], scores=None)
        else:
            row.update({"pred_labels": "", **{f"prob_{n}": "" for n in names}})
        row["pred_error"] = prediction
        return row
    row["pred_label"] = prediction.label
    if jsonl:
        row["pred_labels"] = prediction.labels
        row["scores"] = [
            {"label": item["label"], "score": round(item["score"], 6)}
            for item in prediction.to_pipeline()
        ]
    else:
        row["pred_labels"] = "|".join(prediction.labels)
        row.update({f"prob_{n}": f"{prediction.scores[n]:.6f}" for n in names})
    row["pred_error"] = None if jsonl else ""
    return row


def _encodable(value: Any) -> Any:
    """``value`` writable as UTF-8: a lone surrogate becomes its visible ``\\udXXX`` escape."""
    if isinstance(value, str) and not value.isascii() and text_problem(value) is not None:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


class AnnotatedWriter:
    """Writes annotated rows to ``out``: JSON lines, or CSV headed by the first row's keys."""

    def __init__(self, out: TextIO, jsonl: bool) -> None:
        self.out = out
        self.jsonl = jsonl
        self._csv: csv.DictWriter | None = None

    def write(self, row: dict[str, Any]) -> None:
        # A row refused for a lone surrogate (read from a JSON escape) still gets its line:
        # JSON keeps the text exactly as ``\\udXXX`` escapes, CSV shows the escape as text.
        if self.jsonl:
            line = json.dumps(row, ensure_ascii=False)
            if not line.isascii() and text_problem(line) is not None:
                line = json.dumps(row)
            self.out.write(line + "\n")
            return
        if self._csv is None:
            self._csv = csv.DictWriter(self.out, fieldnames=list(row))
            self._csv.writeheader()
        self._csv.writerow({key: _encodable(value) for key, value in row.items()})


def predict_file(
    classifier: EmotionClassifier,
    input_path: str | Path,
    output_path: str | Path,
    text_column: str = "text",
    decision: Decision = "calibrated",
    chunk_size: int = 2048,
    progress: bool = True,
) -> int:
    """Classify every row of ``input_path`` into ``output_path``; returns the row count.

    ``output_path`` appears only when every row is written (an error or an interrupt leaves
    it as it was), and an input without rows is an error rather than an empty output.
    """
    from rich.progress import Progress

    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.suffix.lower() not in OUTPUT_FORMATS:
        raise DataError(f"{output_path}: output must be one of {OUTPUT_FORMATS}.")
    check_input(input_path)  # before _count_lines opens it
    if input_path.stat().st_size == 0:
        raise DataError(f"{input_path} is empty: there is nothing to classify.")
    names = classifier.labels
    as_jsonl = output_path.suffix.lower() == ".jsonl"
    total = _count_lines(input_path)
    written = refused = 0
    first_refused = ""
    with atomic_path(output_path) as temp, temp.open("w", encoding="utf-8", newline="") as out:
        writer = AnnotatedWriter(out, jsonl=as_jsonl)
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(f"Classifying {input_path.name}", total=total)
            for chunk in iter_rows(input_path, text_column, chunk_size):
                texts = [row[text_column] for row in chunk]
                outcomes = predict_rows(classifier, texts, decision)
                for i, (row, outcome) in enumerate(zip(chunk, outcomes, strict=True)):
                    writer.write(annotate_row(row, outcome, names, jsonl=as_jsonl))
                    if isinstance(outcome, str):
                        refused += 1
                        first_refused = first_refused or f"row {written + i + 1}: {outcome}"
                written += len(chunk)
                bar.update(task, advance=len(chunk))
        if written == 0:  # raised inside atomic_path: the temporary output is removed
            raise DataError(f"{input_path} has no rows to classify; {output_path} not written.")
    if refused:
        logger.warning(
            "%s: %d of %d rows were not classified; their pred_error column says why (first: %s).",
            input_path,
            refused,
            written,
            first_refused,
        )
    return written
