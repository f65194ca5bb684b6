"""Batch classification jobs on a Huey task queue.

An upload is stored under ``{data_dir}/jobs/<id>/input.<ext>``, checked (UTF-8, the text column,
at least one row, the per-text limit) and recorded as a ``jobs`` row, split into parts of
``job_part_rows`` rows (``job_parts`` rows); the job's id goes on the queue once per part.
Huey keeps the queue in SQLite (``{data_dir}/queue.db``, no server) or, for workers on several
machines, in Redis (``queue_url=redis://...``); the job state itself lives in the database, so
jobs survive restarts of the API and of the workers.

A task takes the job's parts one at a time until none is left, so idle workers share a big job.
A part is processed in chunks of ``job_chunk_size`` rows. Each chunk's result rows, the part's
and the job's new ``rows_done`` are committed in one transaction, guarded by the worker's lease
on the part (``lease_owner``/``lease_until``, renewed with every chunk): a worker that lost its
lease can commit nothing, and ``job_results``' primary key ``(job_id, row_index)`` makes a
duplicate row impossible anyway. A killed worker's lease runs out; the periodic
``requeue_stale_jobs`` task (every minute, and at every worker start) puts its part back on the
queue, and the next worker continues after the part's last committed chunk. The worker that
finds every part done writes the annotated file (CSV for CSV and TXT inputs, JSONL for JSONL)
atomically under the job's own lease, and the job is ``done``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer, Scheduler, Worker
from sqlalchemy import Engine, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from emorec._io import atomic_path
from emorec.errors import ConfigError, DataError
from emorec.inference import Prediction
from emorec.predict_io import AnnotatedWriter, annotate_row, iter_rows, predict_rows
from emorec.service.db import (
    PredictionRecord,
    make_engine,
    model_name,
    prediction_rows,
    redact_url,
    session_factory,
    utcnow,
)
from emorec.service.job_models import Job, JobPart, JobResult

if TYPE_CHECKING:
    from emorec.inference import EmotionClassifier
    from emorec.service.settings import ServiceSettings

logger = logging.getLogger("emorec.service.jobs")

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".txt": "txt"}
RESULT_SUFFIX = {"csv": "csv", "txt": "csv", "jsonl": "jsonl"}
_COPY_BLOCK = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"
# Idle workers poll an SQLite queue at most this many seconds apart (Redis blocks instead).
_MAX_POLL_DELAY = 1.0
_UNFINISHED = ("queued", "running")
# Classifiers by (model dir, backend, threads), one per worker process (loaded on first job).
_CLASSIFIERS: dict[tuple[str, str, int | None], EmotionClassifier] = {}
_CLASSIFIERS_LOCK = threading.Lock()


class JobInputError(DataError):
    """An upload the service cannot take: ``status_code`` 413 (too big), 422 (malformed) or
    503 (the queue is unreachable)."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


class _Flag(Protocol):
    def is_set(self) -> bool: ...


class _LeaseLost(Exception):
    """Another worker took the part over (this one stalled past its lease), or the job ended."""


class _NothingToClaim(Exception):
    """No part of the job is free (or the job has ended): roll the claim back."""


class _Stopping(Exception):
    """The consumer is shutting down; hand the job back between chunks."""


@dataclass(frozen=True)
class JobSnapshot:
    """The fields of a job a worker needs, read once when it claims a part of it."""

    id: str
    filename: str
    input_format: str
    text_column: str
    rows_total: int
    rows_done: int

    @classmethod
    def of(cls, job: Job) -> JobSnapshot:
        return cls(
            job.id, job.filename, job.input_format, job.text_column, job.rows_total, job.rows_done
        )


@dataclass(frozen=True)
class PartSnapshot:
    """A claimed part: rows ``start_row + rows_done`` up to ``stop_row`` are left to do."""

    job: JobSnapshot
    index: int
    start_row: int
    stop_row: int
    rows_done: int


# ---- uploads ------------------------------------------------------------------------------
def input_format(filename: str) -> str:
    """``csv``, ``jsonl`` or ``txt`` from the file name; JobInputError for anything else."""
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise JobInputError(
            f"Unsupported file type {suffix or '(none)'!r} for {filename!r}: upload a .csv (with "
            "a header row), .jsonl (one JSON object per line) or .txt (one text per line) file."
        )
    return FORMATS[suffix]


def store_upload(source: BinaryIO, target: Path, max_bytes: int) -> int:
    """Copy ``source`` to ``target`` atomically in blocks, at most ``max_bytes``; returns bytes.

    A leading UTF-8 byte-order mark (spreadsheet exports) is dropped, so it cannot glue itself
    to the first column name.
    """
    size = 0
    with atomic_path(target) as temp, temp.open("wb") as out:
        first = True
        for block in iter(lambda: source.read(_COPY_BLOCK), b""):
            size += len(block)
            if size > max_bytes:
                raise JobInputError(
                    f"The file is larger than the upload limit of {max_bytes:,} bytes; split it "
                    "into smaller files.",
                    status_code=413,
                )
            if first and block.startswith(_UTF8_BOM):
                block = block[len(_UTF8_BOM) :]
            first = False
            out.write(block)
    return size


def _check_utf8(path: Path, name: str) -> None:
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise JobInputError(
                    f"{name}: line {line_no} is not valid UTF-8 (byte 0x{line[error.start]:02x} "
                    f"at column {error.start + 1}); save the file as UTF-8 and upload it again."
                ) from None


def _check_text(text: Any, name: str, line_no: int, column: str, max_chars: int) -> None:
    if not isinstance(text, str):
        raise JobInputError(f"{name}: line {line_no} has no text in column {column!r}.")
    if len(text) > max_chars:
        raise JobInputError(
            f"{name}: line {line_no} has a text of {len(text):,} characters; the limit is "
            f"{max_chars:,} per text."
        )


def count_rows(path: Path, fmt: str, text_column: str, max_chars: int, name: str) -> int:
    """Validate an input file the way a worker will read it; returns its number of rows.

    Problems raise :class:`JobInputError` naming the file (``name``), line and column.
    """
    if path.stat().st_size == 0:
        raise JobInputError(f"{name} is empty: there is nothing to classify.")
    _check_utf8(path, name)
    rows = 0
    with path.open(encoding="utf-8", newline="" if fmt == "csv" else None) as handle:
        if fmt == "csv":
            reader = csv.DictReader(handle)
            try:
                header = reader.fieldnames
                if not header or text_column not in header:
                    raise JobInputError(
                        f"{name} has no column {text_column!r}; its header is "
                        f"{', '.join(repr(c) for c in header or [])}. Name the text column with "
                        "the form field text_column."
                    )
                for row in reader:
                    rows += 1
                    if None in row:
                        raise JobInputError(
                            f"{name}: line {reader.line_num} has more fields than the header."
                        )
                    _check_text(row[text_column], name, reader.line_num, text_column, max_chars)
            except csv.Error as error:
                raise JobInputError(
                    f"{name}: line {reader.line_num} is not valid CSV ({error})."
                ) from None
        elif fmt == "jsonl":
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue  # blank lines are skipped by the worker too
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise JobInputError(
                        f"{name}: line {line_no} is not valid JSON ({error.msg})."
                    ) from None
                if not isinstance(row, dict):
                    raise JobInputError(
                        f"{name}: line {line_no} is not a JSON object with a {text_column!r} field."
                    )
                _check_text(row.get(text_column), name, line_no, text_column, max_chars)
                rows += 1
        else:
            for line_no, line in enumerate(handle, start=1):
                _check_text(line.rstrip("\r\n"), name, line_no, text_column, max_chars)
                rows += 1
    if rows == 0:
        raise JobInputError(f"{name} has no rows to classify.")
    return rows


# ---- the queue ----------------------------------------------------------------------------
def make_huey(settings: ServiceSettings) -> Huey:
    """The Huey instance of ``settings``: Redis for ``redis://`` queue URLs, else SQLite."""
    url = settings.queue_url
    # Task results are not kept: the job's state is in the database.
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("emorec", url=url, results=False)
    if url:
        raise ConfigError(
            f"queue_url must be a Redis URL (redis://host:6379/0) or unset for the SQLite queue "
            f"in data_dir; got {url.split('://')[0]}://..."
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The same 30 s busy timeout as the database: several processes poll this file.
    return SqliteHuey(
        "emorec", filename=str(settings.data_dir / "queue.db"), results=False, timeout=30
    )


class JobQueue:
    """The jobs of one service configuration: submission, the Huey queue and its tasks.

    Built the same way by the API (which enqueues) and by the workers (which run the tasks);
    tasks are registered on this instance's own Huey, so several queues can live in a process.
    ``num_threads`` caps the inference threads of the worker's classifier.
    """

    def __init__(self, settings: ServiceSettings, num_threads: int | None = None) -> None:
        self.settings = settings
        self.num_threads = num_threads
        self.huey = make_huey(settings)
        self._engine: Engine | None = None
        self._engine_pid = 0
        self._sessions: sessionmaker[Session] | None = None
        self._engine_lock = threading.Lock()
        # Set by the consumer running this queue: checked between chunks.
        self.stop_flag: _Flag | None = None
        self.process_task = self.huey.task(name="process_job")(self.process_job)
        self.huey.periodic_task(crontab(minute="*"), name="requeue_stale_jobs")(
            self.requeue_stale_jobs
        )

    # -- database and files
    def sessions(self) -> sessionmaker[Session]:
        """Sessions on this process's own engine (a forked worker never reuses its parent's)."""
        with self._engine_lock:
            if self._engine is None or self._engine_pid != os.getpid():
                if self._engine is not None:
                    # Inherited over fork: drop the parent's pooled connections without closing
                    # them, which would close them for the parent too.
                    self._engine.dispose(close=False)
                self._engine = make_engine(self.settings.db_url)
                self._engine_pid = os.getpid()
                self._sessions = session_factory(self._engine)
            assert self._sessions is not None  # noqa: S101  (set together with the engine)
            return self._sessions

    def close(self) -> None:
        """Release the database connections (before forking workers, or at shutdown)."""
        with self._engine_lock:
            if self._engine is not None and self._engine_pid == os.getpid():
                self._engine.dispose()
            self._engine = None
            self._sessions = None

    def job_dir(self, job_id: str) -> Path:
        return self.settings.data_dir / "jobs" / job_id

    def input_path(self, job: Job | JobSnapshot) -> Path:
        return self.job_dir(job.id) / f"input.{job.input_format}"

    def result_file(self, job: Job) -> Path | None:
        """The annotated file of a done job."""
        return self.settings.data_dir / job.result_path if job.result_path else None

    # -- API side
    def submit(self, source: BinaryIO, filename: str, text_column: str | None = None) -> Job:
        """Store, validate, record and enqueue an uploaded file; returns the queued job.

        Raises :class:`JobInputError` for files the workers could not process.
        """
        settings = self.settings
        filename = Path(filename or "upload").name[:255]
        fmt = input_format(filename)
        column = "text" if fmt == "txt" else (text_column or "text")
        job_id = uuid.uuid4().hex
        directory = self.job_dir(job_id)
        try:
            path = directory / f"input.{fmt}"
            store_upload(source, path, settings.max_upload_bytes)
            total = count_rows(path, fmt, column, settings.max_chars_per_text, filename)
            with self.sessions().begin() as session:
                job = Job(
                    id=job_id,
                    filename=filename,
                    input_format=fmt,
                    text_column=column,
                    rows_total=total,
                    rows_done=0,
                    status="queued",
                )
                session.add(job)
                session.flush()  # the job row before its parts (foreign key)
                size = settings.job_part_rows
                session.add_all(
                    JobPart(
                        job_id=job_id,
                        part_index=index,
                        start_row=start,
                        stop_row=min(start + size, total),
                        rows_done=0,
                        status="queued",
                    )
                    for index, start in enumerate(range(0, total, size))
                )
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        try:
            # One task per part, so that as many idle workers as there are parts can join in.
            for _ in range(0, total, settings.job_part_rows):
                self.enqueue(job_id)
        except Exception as error:
            # Undone, so that every queued job is on the queue and the client may simply retry
            # (a task already enqueued finds no job and does nothing).
            logger.error("Could not enqueue job %s: %s", job_id, type(error).__name__)
            with self.sessions().begin() as session:
                session.execute(delete(JobPart).where(JobPart.job_id == job_id))
                session.execute(delete(Job).where(Job.id == job_id))
            shutil.rmtree(directory, ignore_errors=True)
            raise JobInputError(
                "The job queue is not reachable right now; try again shortly.", status_code=503
            ) from None
        return job

    def get(self, job_id: str) -> Job | None:
        with self.sessions()() as session:
            return session.get(Job, job_id)

    def list_jobs(
        self, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Job], int]:
        """Jobs newest first (optionally of one status), and how many match in all."""
        conditions = [Job.status == status] if status else []
        with self.sessions()() as session:
            total = session.scalar(select(func.count()).select_from(Job).where(*conditions))
            jobs = session.scalars(
                select(Job)
                .where(*conditions)
                .order_by(Job.created_at.desc(), Job.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return list(jobs), total or 0

    def delete(self, job_id: str) -> bool:
        """Remove a job, its results and its files; False if there is no such job.

        A job still running is cancelled: its workers find their part gone at their next
        chunk and stop.
        """
        with self.sessions().begin() as session:
            # Parts first: on PostgreSQL this waits for a chunk being committed under them.
            session.execute(delete(JobPart).where(JobPart.job_id == job_id))
            session.execute(delete(JobResult).where(JobResult.job_id == job_id))
            deleted = session.execute(delete(Job).where(Job.id == job_id)).rowcount
        if deleted:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return bool(deleted)

    def enqueue(self, job_id: str, delay: float | None = None) -> None:
        """Put ``process_job(job_id)`` on the queue (after ``delay`` seconds)."""
        if delay:
            self.process_task.schedule((job_id,), delay=delay)
        else:
            self.process_task(job_id)

    # -- recovery
    def requeue_stale_jobs(self, at_start: bool = False) -> list[str]:
        """Re-enqueue the parts whose lease ran out (their worker died), and the jobs whose
        parts are all done but whose annotated file nobody is writing; returns the job ids
        enqueued (once per task).

        ``at_start`` (a worker starting) also re-enqueues every queued part, in case the queue
        lost it (a Redis without persistence), and schedules a check of the running parts for
        when their lease ends. Enqueuing twice is harmless: a part is claimed once.
        """
        now = utcnow()
        # Parts of failed jobs are left as they are: nothing will take them.
        of_unfinished = JobPart.job_id.in_(select(Job.id).where(Job.status.in_(_UNFINISHED)))
        expired = and_(JobPart.status == "running", JobPart.lease_until < now, of_unfinished)
        with self.sessions().begin() as session:
            stale = list(session.execute(select(JobPart.job_id, JobPart.part_index).where(expired)))
            stale_jobs = [job_id for job_id, _ in stale]
            for job_id, index in stale:
                session.execute(
                    update(JobPart)
                    .where(JobPart.job_id == job_id, JobPart.part_index == index, expired)
                    .values(status="queued", lease_owner=None, lease_until=None)
                )
            for job_id in set(stale_jobs):
                self._requeue_if_idle(session, job_id)
            unwritten = list(session.scalars(select(Job.id).where(*_ready_to_write(now))))
            queued = list(
                session.scalars(
                    select(JobPart.job_id).where(JobPart.status == "queued", of_unfinished)
                )
            )
            live = list(
                session.execute(
                    select(JobPart.job_id, JobPart.lease_until).where(
                        JobPart.status == "running", JobPart.lease_until >= now, of_unfinished
                    )
                )
            )
        again = [*(queued if at_start else stale_jobs), *unwritten]
        for job_id in again:
            self.enqueue(job_id)
        if at_start:
            for job_id, lease_until in live:
                self.enqueue(job_id, delay=(lease_until - now).total_seconds() + 1)
        if stale:
            logger.warning(
                "Re-enqueued %d part(s) whose worker stopped, of job(s) %s",
                len(stale),
                sorted(set(stale_jobs)),
            )
        return again

    @staticmethod
    def _requeue_if_idle(session: Session, job_id: str) -> None:
        """A job none of whose parts is running any more is ``queued`` again."""
        session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == "running",
                ~exists().where(JobPart.job_id == job_id, JobPart.status == "running"),
            )
            .values(status="queued")
        )

    # -- worker side
    def classifier(self) -> EmotionClassifier:
        """This process's classifier for the configured model (loaded on first use)."""
        from emorec.inference import EmotionClassifier

        settings = self.settings
        key = (str(Path(settings.model_dir).resolve()), settings.backend, self.num_threads)
        with _CLASSIFIERS_LOCK:
            if key not in _CLASSIFIERS:
                logger.info("Loading %s for jobs (pid %d).", settings.model_dir, os.getpid())
                _CLASSIFIERS[key] = EmotionClassifier.from_pretrained(
                    settings.model_dir, backend=settings.backend, num_threads=self.num_threads
                )
            return _CLASSIFIERS[key]

    def process_job(self, job_id: str) -> None:
        """The Huey task: classify the job's free parts one after the other; the worker that
        finds every part done writes the annotated file."""
        owner = uuid.uuid4().hex
        while (part := self._claim(job_id, owner)) is not None:
            job = part.job
            logger.info(
                "Job %s: %d of %d rows done; continuing with rows %d-%d.",
                job_id,
                job.rows_done,
                job.rows_total,
                part.start_row + part.rows_done,
                part.stop_row - 1,
            )
            try:
                self._run_part(part, owner)
            except _LeaseLost:
                logger.warning("Job %s: part lost to another worker, or the job ended.", job_id)
                return
            except (_Stopping, KeyboardInterrupt) as stop:
                self._release(part, owner)
                logger.info("Job %s: part handed back to the queue (worker stopping).", job_id)
                if isinstance(stop, KeyboardInterrupt):
                    raise
                return
            except Exception as error:
                self._fail(job_id, error)
                return
        try:
            self._write_if_complete(job_id, owner)
        except Exception as error:
            self._fail(job_id, error)

    def _claim(self, job_id: str, owner: str) -> PartSnapshot | None:
        """Lease the first free part of an unfinished job (queued, or its lease ran out)."""
        now = utcnow()
        lease = dt.timedelta(seconds=self.settings.job_lease_seconds)
        free = or_(
            JobPart.status == "queued",
            and_(JobPart.status == "running", JobPart.lease_until < now),
        )
        try:
            with self.sessions().begin() as session:
                candidates = session.scalars(
                    select(JobPart.part_index)
                    .where(JobPart.job_id == job_id, free)
                    .order_by(JobPart.part_index)
                ).all()
                for index in candidates:
                    # Parts are locked before their job everywhere (no deadlock on PostgreSQL).
                    claimed = session.execute(
                        update(JobPart)
                        .where(JobPart.job_id == job_id, JobPart.part_index == index, free)
                        .values(status="running", lease_owner=owner, lease_until=now + lease)
                    ).rowcount
                    if claimed:
                        break
                else:
                    raise _NothingToClaim  # every part is done or held by a live worker
                started = session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status.in_(_UNFINISHED))
                    .values(status="running")
                ).rowcount
                if not started:
                    raise _NothingToClaim  # the job failed or is unknown
                job = session.get(Job, job_id)
                part = session.get(JobPart, (job_id, index))
                assert job is not None and part is not None  # noqa: S101  (updated just now)
                return PartSnapshot(
                    JobSnapshot.of(job), index, part.start_row, part.stop_row, part.rows_done
                )
        except _NothingToClaim:
            return None

    def _commit_chunk(self, session: Session, part: PartSnapshot, owner: str, done: int) -> None:
        """Record ``done`` rows of ``part`` (and the job's progress) if the lease still holds."""
        lease = dt.timedelta(seconds=self.settings.job_lease_seconds)
        complete = part.start_row + done >= part.stop_row
        held = session.execute(
            update(JobPart)
            .where(*_held(part, owner))
            .values(
                rows_done=done,
                lease_until=utcnow() + lease,
                status="done" if complete else "running",
            )
        ).rowcount
        if not held:
            raise _LeaseLost
        counted = session.execute(
            update(Job)
            .where(Job.id == part.job.id, Job.status.in_(_UNFINISHED))
            .values(rows_done=Job.rows_done + (done - part.rows_done), status="running")
        ).rowcount
        if not counted:
            raise _LeaseLost  # the job failed in another worker

    def _run_part(self, part: PartSnapshot, owner: str) -> None:
        settings = self.settings
        job = part.job
        path = self.input_path(job)
        if not path.is_file():
            logger.error("Job %s: input file %s not found.", job.id, path)
            raise DataError(
                "its uploaded file is not in this worker's data directory; workers must share "
                "EMOREC_DATA_DIR with the API"
            )
        classifier = self.classifier()
        # The job's rows join the prediction history (and so the statistics) chunk by chunk,
        # in the chunk's own transaction: a chunk redone after a lost lease adds nothing twice.
        history = settings.store_history and settings.job_history
        model = model_name(classifier.model_dir or settings.model_dir)
        begin = part.start_row + part.rows_done
        size = part.stop_row - begin
        chunks = _row_chunks(path, job.text_column, begin, part.stop_row, settings.job_chunk_size)
        for rows in chunks:
            if self.stop_flag is not None and self.stop_flag.is_set():
                raise _Stopping
            # A row whose text cannot be classified (empty, a lone surrogate) gets its reason
            # as its result; the other rows of the chunk are classified as usual.
            outcomes = predict_rows(classifier, [row[job.text_column] for row in rows])
            predictions = [p for p in outcomes if isinstance(p, Prediction)]
            first = part.start_row + part.rows_done
            results = [
                {"job_id": job.id, "row_index": first + i, "result": _job_result(p)}
                for i, p in enumerate(outcomes)
            ]
            with self.sessions().begin() as session:
                # The lease check comes first: a worker that lost the part inserts nothing.
                self._commit_chunk(session, part, owner, part.rows_done + len(rows))
                session.execute(insert(JobResult), results)
                # A chunk of refused rows only has nothing to add: an empty insert would be an
                # INSERT of one row of defaults, which the NOT NULL columns refuse.
                if history and predictions:
                    records = prediction_rows(predictions, model, utcnow())
                    session.execute(insert(PredictionRecord), records)
            part = replace(part, rows_done=part.rows_done + len(rows))
            if settings.job_chunk_pause_seconds:
                time.sleep(settings.job_chunk_pause_seconds)
        if part.start_row + part.rows_done != part.stop_row:
            read = part.start_row + part.rows_done
            raise DataError(
                f"the input has {read} rows but {job.rows_total} were counted at upload"
            )
        if size == 0:  # claimed with nothing left (its last chunk's worker died at the commit)
            with self.sessions().begin() as session:
                self._commit_chunk(session, part, owner, part.rows_done)

    def _write_if_complete(self, job_id: str, owner: str) -> None:
        """Write the annotated file if every part is done and no other worker is writing it."""
        now = utcnow()
        lease = dt.timedelta(seconds=self.settings.job_lease_seconds)
        with self.sessions().begin() as session:
            claimed = session.execute(
                update(Job)
                .where(Job.id == job_id, *_ready_to_write(now))
                .values(status="running", lease_owner=owner, lease_until=now + lease)
            ).rowcount
            job = session.get(Job, job_id) if claimed else None
            if job is None:
                return  # parts left, finished, failed, or being written by another worker
            snapshot = JobSnapshot.of(job)
        relative = self._write_result(snapshot, self.classifier().labels)
        with self.sessions().begin() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
                .values(
                    status="done",
                    result_path=relative,
                    finished_at=utcnow(),
                    lease_owner=None,
                    lease_until=None,
                )
            )
        logger.info("Job %s done: %d rows.", job_id, snapshot.rows_total)

    def _results(self, session: Session, job_id: str) -> Iterator[dict[str, Any]]:
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

    def _write_result(self, job: JobSnapshot, names: list[str]) -> str:
        suffix = RESULT_SUFFIX[job.input_format]
        relative = f"jobs/{job.id}/result.{suffix}"
        jsonl = suffix == "jsonl"
        column = job.text_column
        inputs = (row for chunk in iter_rows(self.input_path(job), column, 2048) for row in chunk)
        with (
            atomic_path(self.settings.data_dir / relative) as temp,
            temp.open("w", encoding="utf-8", newline="") as out,
            self.sessions()() as session,
        ):
            writer = AnnotatedWriter(out, jsonl=jsonl)
            for row, result in zip(inputs, self._results(session, job.id), strict=True):
                outcome = result.get("error") or Prediction(
                    row[column], result["label"], result["labels"], result["scores"]
                )
                writer.write(annotate_row(row, outcome, names, jsonl=jsonl))
        return relative

    def _fail(self, job_id: str, error: Exception) -> None:
        """Mark an unfinished job failed (its other parts' workers stop at their next chunk)."""
        logger.error("Job %s failed.", job_id, exc_info=error)
        reason = str(error) if isinstance(error, DataError) else type(error).__name__
        with self.sessions().begin() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status.in_(_UNFINISHED))
                .values(
                    status="failed",
                    error=f"The job failed while classifying ({reason}); see the worker log.",
                    finished_at=utcnow(),
                    lease_owner=None,
                    lease_until=None,
                )
            )

    def _release(self, part: PartSnapshot, owner: str) -> None:
        with contextlib.suppress(Exception):  # best effort: the lease expires anyway
            with self.sessions().begin() as session:
                released = session.execute(
                    update(JobPart)
                    .where(*_held(part, owner))
                    .values(status="queued", lease_owner=None, lease_until=None)
                ).rowcount
                if released:
                    self._requeue_if_idle(session, part.job.id)
            self.enqueue(part.job.id)


def _job_result(outcome: Prediction | str) -> dict[str, Any]:
    """A ``job_results.result``: the prediction, or ``{"error": why}`` for a refused text."""
    if isinstance(outcome, str):
        return {"error": outcome}
    return {
        "label": outcome.label,
        "labels": outcome.labels,
        "scores": {name: round(prob, 6) for name, prob in outcome.scores.items()},
    }


def _held(part: PartSnapshot, owner: str) -> tuple[Any, ...]:
    """Conditions on ``job_parts`` that hold while ``owner`` still has the lease of ``part``."""
    return (
        JobPart.job_id == part.job.id,
        JobPart.part_index == part.index,
        JobPart.lease_owner == owner,
        JobPart.status == "running",
    )


def _ready_to_write(now: dt.datetime) -> tuple[Any, ...]:
    """Conditions on ``jobs``: unfinished, every part done, and nobody writing the result."""
    return (
        Job.status.in_(_UNFINISHED),
        or_(Job.lease_owner.is_(None), Job.lease_until < now),
        ~exists().where(JobPart.job_id == Job.id, JobPart.status != "done"),
    )


def _row_chunks(
    path: Path, column: str, begin: int, stop: int, size: int
) -> Iterator[list[dict[str, Any]]]:
    """Rows ``begin <= i < stop`` of an input file, in lists of at most ``size`` rows."""
    pending: list[dict[str, Any]] = []
    index = 0
    for block in iter_rows(path, column, max(size, 2048)):
        end = index + len(block)
        if end > begin:
            pending.extend(block[max(begin - index, 0) : stop - index])
            while len(pending) >= size:
                yield pending[:size]
                pending = pending[size:]
        index = end
        if index >= stop:
            break
    if pending:
        yield pending


# ---- consumers ----------------------------------------------------------------------------
def _exit_with_parent(parent: int) -> None:
    """In a forked worker: exit at once when the consumer process that forked it is gone.

    Killed alone (``kill -9``), the consumer cannot stop its workers, which would go on taking
    jobs unsupervised; exiting like it leaves the job to the lease recovery.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        logger.warning("Worker process %d: its consumer is gone; exiting.", os.getpid())
        os._exit(1)

    threading.Thread(target=watch, name="watch-consumer", daemon=True).start()


class _ChildWorker(Worker):
    consumer_pid = 0  # set in the consumer process before the fork

    def initialize(self) -> None:
        _exit_with_parent(self.consumer_pid)
        super().initialize()


class _ChildScheduler(Scheduler):
    consumer_pid = 0  # set in the consumer process before the fork

    def initialize(self) -> None:
        _exit_with_parent(self.consumer_pid)
        super().initialize()


class _ProcessConsumer(Consumer):
    """Huey's consumer with worker processes that do not outlive it."""

    worker_class = _ChildWorker
    scheduler_class = _ChildScheduler

    def _create_worker(self) -> Worker:
        worker = super()._create_worker()
        worker.consumer_pid = os.getpid()
        return worker

    def _create_scheduler(self) -> Scheduler:
        scheduler = super()._create_scheduler()
        scheduler.consumer_pid = os.getpid()
        return scheduler


class _EmbeddedConsumer(Consumer):
    """A consumer that leaves signal handling to its host (uvicorn, or a test's thread)."""

    def _set_signal_handlers(self) -> None:
        pass


@dataclass
class EmbeddedWorker:
    """A Huey consumer running in background threads of the API process."""

    queue: JobQueue
    consumer: Consumer

    def stop(self) -> None:
        """Stop after the current chunk; the job in hand goes back on the queue."""
        self.consumer.stop(graceful=True)


def start_embedded_consumer(queue: JobQueue, workers: int = 1) -> EmbeddedWorker:
    """Run ``queue``'s tasks in ``workers`` threads of this process (``emorec serve``)."""
    quiet_huey(queue.settings.log_level)
    queue.requeue_stale_jobs(at_start=True)
    consumer = _EmbeddedConsumer(
        queue.huey, workers=workers, worker_type="thread", max_delay=_MAX_POLL_DELAY
    )
    queue.stop_flag = consumer.stop_flag
    consumer.start()
    return EmbeddedWorker(queue, consumer)


def run_worker(settings: ServiceSettings, workers: int = 1) -> None:
    """``emorec worker``: run ``workers`` worker processes until SIGINT or SIGTERM.

    SIGINT stops gracefully (each worker finishes its chunk and hands its job back), SIGTERM
    interrupts the chunk (its rows are simply redone by the next worker).
    """
    from emorec.service.db import upgrade_database

    if workers < 1:
        raise ConfigError(f"--workers must be at least 1; got {workers}.")
    try:
        upgrade_database(settings.db_url)
    except (ArgumentError, NoSuchModuleError) as error:
        raise ConfigError(f"The database URL is not usable: {error}.") from None
    except OperationalError as error:
        reason = str(error.orig or error).strip().splitlines()[0].rstrip(".")
        raise ConfigError(
            f"The database {redact_url(settings.db_url)} is not reachable: {reason}."
        ) from None
    # The cores are shared among the worker processes rather than oversubscribed.
    queue = JobQueue(settings, num_threads=max(1, (os.cpu_count() or 1) // workers))
    try:
        queue.huey.pending_count()
    except Exception as error:  # redis-py and sqlite3 raise their own connection errors
        where = redact_url(settings.queue_url) if settings.queue_url else settings.data_dir
        raise ConfigError(
            f"The job queue ({where}) is not reachable: {str(error).rstrip('.')}."
        ) from None
    queue.requeue_stale_jobs(at_start=True)
    queue.close()  # the forked workers open their own connections
    consumer = _ProcessConsumer(
        queue.huey, workers=workers, worker_type="process", max_delay=_MAX_POLL_DELAY
    )
    queue.stop_flag = consumer.stop_flag
    quiet_huey(settings.log_level)
    logger.info(
        "Worker: %d process(es), queue %s, database %s, data dir %s.",
        workers,
        redact_url(settings.queue_url) if settings.queue_url else settings.data_dir / "queue.db",
        redact_url(settings.db_url),
        settings.data_dir.absolute(),
    )
    consumer.run()


def quiet_huey(log_level: str) -> None:
    """Keep Huey's routine INFO lines (every periodic check, every task started and finished:
    several a minute) out of the log unless ``log_level`` is debug; its warnings stay."""
    logging.getLogger("huey").setLevel(logging.DEBUG if log_level == "debug" else logging.WARNING)
