"""What a job produces: one ``job_results`` row per input row, and the annotated file written
from them when every part is done.

A stored result is ``{"label", "labels", "scores": {label: probability}}`` (highest first), or
``{"error": reason}`` for a row whose text could not be classified. The scores stay a mapping in
the database (the same as the ``predictions`` history, whose statistics look labels up in it);
the annotated file is written by :mod:`emorec.inference.files`, as ``emorec predict`` writes files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from emorec._io import atomic_path
from emorec.inference import Prediction
from emorec.inference.files import AnnotatedWriter, annotate_row, iter_rows
from emorec.service.job_models import JobResult
from emorec.service.jobs.leases import JobSnapshot

RESULT_SUFFIX = {"csv": "csv", "txt": "csv", "jsonl": "jsonl"}


def job_result(outcome: Prediction | str) -> dict[str, Any]:
    """A ``job_results.result``: the prediction, or ``{"error": why}`` for a refused text."""
    if isinstance(outcome, str):
        return {"error": outcome}
    return {
        "label": outcome.label,
        "labels": outcome.labels,
        "scores": {name: round(prob, 6) for name, prob in outcome.scores.items()},
    }


def stored_outcome(result: dict[str, Any], text: str) -> Prediction | str:
    """The prediction (or the refusal's reason) a ``job_results.result`` holds for ``text``."""
    if result.get("error"):
        return str(result["error"])
    return Prediction(text, result["label"], result["labels"], result["scores"])


def result_path(job: JobSnapshot) -> str:
    """Where the annotated file of ``job`` goes, relative to the data dir: CSV for CSV and TXT
    inputs, JSONL for JSONL."""
    return f"jobs/{job.id}/result.{RESULT_SUFFIX[job.input_format]}"


def _results(session: Session, job_id: str) -> Iterator[dict[str, Any]]:
    rows = session.execute(
        select(JobResult.row_index, JobResult.result)
        .where(JobResult.job_id == job_id)
        .order_by(JobResult.row_index)
        .execution_options(yield_per=2000)
    )
    for expected, (index, result) in enumerate(rows):
        if index != expected:
            raise RuntimeError(f"job {job_id}: result row {expected} is missing")
        yield result


def write_annotated(
    job: JobSnapshot, input_path: Path, target: Path, session: Session, names: list[str]
) -> None:
    """Write ``target`` atomically: each row of ``input_path`` with its stored result."""
    jsonl = target.suffix == ".jsonl"
    column = job.text_column
    inputs = (row for chunk in iter_rows(input_path, column, 2048) for row in chunk)
    with atomic_path(target) as temp, temp.open("w", encoding="utf-8", newline="") as out:
        writer = AnnotatedWriter(out, jsonl=jsonl)
        for row, result in zip(inputs, _results(session, job.id), strict=True):
            outcome = stored_outcome(result, row[column])
            writer.write(annotate_row(row, outcome, names, jsonl=jsonl))
