"""``/v1/jobs``: upload a file for batch classification, follow it, download the result."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from emorec.service.deps import ERRORS, StateDep, require_api_key
from emorec.service.job_models import Job
from emorec.service.jobs.queue import JobQueue
from emorec.service.jobs.uploads import JobInputError
from emorec.service.schemas import ErrorResponse

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(require_api_key)])

MEDIA_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No job has this id."}
}


class JobStatus(BaseModel):
    """Where a batch job stands."""

    id: str = Field(examples=["3f2c9a4e5b6d4c8e9f0a1b2c3d4e5f60"])
    status: Literal["queued", "running", "done", "failed"]
    filename: str = Field(examples=["tweets.csv"])
    rows_total: int = Field(examples=[1000])
    rows_done: int = Field(examples=[256])
    progress: float = Field(ge=0, le=1, examples=[0.256])
    error: str | None = None
    created_at: dt.datetime
    finished_at: dt.datetime | None = None
    result_url: str | None = Field(None, examples=["/v1/jobs/3f2c.../result"])


class JobPage(BaseModel):
    """One page of jobs, newest first."""

    items: list[JobStatus]
    total: int = Field(description="Jobs matching the filter, over all pages.")
    limit: int
    offset: int


def job_status(job: Job) -> JobStatus:
    done = job.status == "done"
    return JobStatus(
        id=job.id,
        status=job.status,  # type: ignore[arg-type]  (one of JOB_STATUSES)
        filename=job.filename,
        rows_total=job.rows_total,
        rows_done=job.rows_done,
        progress=min(1.0, job.rows_done / job.rows_total) if job.rows_total else 1.0,
        error=job.error,
        created_at=job.created_at,
        finished_at=job.finished_at,
        result_url=f"/v1/jobs/{job.id}/result" if done else None,
    )


def _queue(state: StateDep) -> JobQueue:
    queue = getattr(state, "jobs", None)
    if queue is None:
        raise HTTPException(503, "The job queue is not available; try again shortly.")
    return queue


QueueDep = Annotated[JobQueue, Depends(_queue)]


def _job(queue: JobQueue, job_id: str) -> Job:
    job = queue.get(job_id) if len(job_id) <= 64 else None
    if job is None:
        raise HTTPException(404, f"There is no job with id {job_id[:64]!r}.")
    return job


@router.post(
    "",
    status_code=202,
    response_model=JobStatus,
    responses={
        **ERRORS,
        413: {"model": ErrorResponse, "description": "The file is larger than the limit."},
        422: {"model": ErrorResponse, "description": "The file cannot be classified."},
        503: {"model": ErrorResponse, "description": "The job queue is unreachable."},
    },
)
def submit_job(
    queue: QueueDep,
    file: Annotated[
        UploadFile,
        File(
            description="A .csv (with a header), .jsonl (JSON objects) or .txt (one text per "
            "line) file, UTF-8, at most EMOREC_MAX_UPLOAD_BYTES bytes."
        ),
    ],
    text_column: Annotated[
        str | None,
        Form(
            max_length=200,
            description="The column (CSV) or field (JSONL) holding the text; default text.",
        ),
    ] = None,
) -> JobStatus:
    """Upload a file to classify every row in the background; returns the queued job."""
    try:
        job = queue.submit(file.file, file.filename or "upload", text_column or None)
    except JobInputError as error:
        raise HTTPException(error.status_code, str(error)) from None
    return job_status(job)


@router.get("", response_model=JobPage, responses=ERRORS)
def list_jobs(
    queue: QueueDep,
    status: Annotated[
        Literal["queued", "running", "done", "failed"] | None, Query(description="Only these.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
) -> JobPage:
    """The jobs, newest first, optionally of one status."""
    jobs, total = queue.list_jobs(status, limit, offset)
    return JobPage(items=[job_status(job) for job in jobs], total=total, limit=limit, offset=offset)


@router.delete("/{job_id}", status_code=204, responses={**ERRORS, **NOT_FOUND})
def delete_job(queue: QueueDep, job_id: str) -> Response:
    """Remove a job with its results and files; a job still running is cancelled."""
    if len(job_id) > 64 or not queue.delete(job_id):
        raise HTTPException(404, f"There is no job with id {job_id[:64]!r}.")
    return Response(status_code=204)


@router.get("/{job_id}", response_model=JobStatus, responses={**ERRORS, **NOT_FOUND})
def get_job(queue: QueueDep, job_id: str) -> JobStatus:
    """The status and progress of a job."""
    return job_status(_job(queue, job_id))


@router.get(
    "/{job_id}/result",
    response_class=FileResponse,
    responses={
        **ERRORS,
        200: {
            "content": {"text/csv": {}, "application/x-ndjson": {}},
            "description": "The input rows with pred_label, pred_labels and probabilities.",
        },
        **NOT_FOUND,
        409: {"model": ErrorResponse, "description": "The job is not done (yet) or failed."},
        410: {"model": ErrorResponse, "description": "The result file was removed."},
    },
)
def job_result(queue: QueueDep, job_id: str) -> Any:
    """The annotated file of a done job: CSV for CSV and TXT uploads, JSONL for JSONL."""
    job = _job(queue, job_id)
    if job.status == "failed":
        raise HTTPException(409, f"Job {job.id} failed, so it has no result: {job.error}")
    path = queue.result_file(job)
    if job.status != "done" or path is None:
        raise HTTPException(
            409,
            f"Job {job.id} is {job.status} ({job.rows_done} of {job.rows_total} rows done); "
            "its result is ready when its status is done.",
        )
    if not path.is_file():
        raise HTTPException(410, f"The result file of job {job.id} is no longer on the server.")
    suffix = path.suffix.lstrip(".")
    download = f"{Path(job.filename).stem}.emotions.{suffix}"
    return FileResponse(path, media_type=MEDIA_TYPES[suffix], filename=download)
