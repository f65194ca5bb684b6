"""The job queue: submitting uploads, the Huey task that classifies a job's parts, recovery of
the parts whose worker died (see :mod:`emorec.service.jobs` for the whole design)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from huey import Huey, RedisHuey, SqliteHuey, crontab
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from emorec.errors import ConfigError, DataError
from emorec.inference import Prediction
from emorec.inference.files import predict_rows
from emorec.service.db import (
    PredictionRecord,
    make_engine,
    model_name,
    prediction_rows,
    session_factory,
    utcnow,
)
from emorec.service.job_models import Job, JobPart, JobResult
from emorec.service.jobs.leases import (
    UNFINISHED,
    JobSnapshot,
    LeaseLost,
    PartSnapshot,
    claim_part,
    commit_chunk,
    free_stale_parts,
    held,
    ready_to_write,
    requeue_if_idle,
)
from emorec.service.jobs.results import job_result, result_path, write_annotated
from emorec.service.jobs.uploads import (
    JobInputError,
    count_rows,
    input_format,
    row_chunks,
    store_upload,
)

if TYPE_CHECKING:
    from emorec.inference import EmotionClassifier
    from emorec.service.settings import ServiceSettings

logger = logging.getLogger("emorec.service.jobs")

# Classifiers by (model dir, backend, threads), one per worker process (loaded on first job).
_CLASSIFIERS: dict[tuple[str, str, int | None], EmotionClassifier] = {}
_CLASSIFIERS_LOCK = threading.Lock()


class _Flag(Protocol):
    def is_set(self) -> bool: ...


class _Stopping(Exception):
    """The consumer is shutting down; hand the job back between chunks."""


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

    @property
    def lease(self) -> dt.timedelta:
        """How long a worker holds a part (or the writing of a job's file) without renewing."""
        return dt.timedelta(seconds=self.settings.job_lease_seconds)

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
        with self.sessions().begin() as session:
            work = free_stale_parts(session, now)
        again = [*(work.queued if at_start else work.stale), *work.unwritten]
        for job_id in again:
            self.enqueue(job_id)
        if at_start:
            for job_id, lease_until in work.live:
                self.enqueue(job_id, delay=(lease_until - now).total_seconds() + 1)
        if work.stale:
            logger.warning(
                "Re-enqueued %d part(s) whose worker stopped, of job(s) %s",
                len(work.stale),
                sorted(set(work.stale)),
            )
        return again

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
        while (part := claim_part(self.sessions(), job_id, owner, self.lease)) is not None:
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
            except LeaseLost:
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
        chunks = row_chunks(path, job.text_column, begin, part.stop_row, settings.job_chunk_size)
        for rows in chunks:
            if self.stop_flag is not None and self.stop_flag.is_set():
                raise _Stopping
            # A row whose text cannot be classified (empty, a lone surrogate) gets its reason
            # as its result; the other rows of the chunk are classified as usual.
            outcomes = predict_rows(classifier, [row[job.text_column] for row in rows])
            predictions = [p for p in outcomes if isinstance(p, Prediction)]
            first = part.start_row + part.rows_done
            results = [
                {"job_id": job.id, "row_index": first + i, "result": job_result(p)}
                for i, p in enumerate(outcomes)
            ]
            with self.sessions().begin() as session:
                # The lease check comes first: a worker that lost the part inserts nothing.
                commit_chunk(session, part, owner, part.rows_done + len(rows), self.lease)
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
                commit_chunk(session, part, owner, part.rows_done, self.lease)

    def _write_if_complete(self, job_id: str, owner: str) -> None:
        """Write the annotated file if every part is done and no other worker is writing it."""
        now = utcnow()
        with self.sessions().begin() as session:
            claimed = session.execute(
                update(Job)
                .where(Job.id == job_id, *ready_to_write(now))
                .values(status="running", lease_owner=owner, lease_until=now + self.lease)
            ).rowcount
            job = session.get(Job, job_id) if claimed else None
            if job is None:
                return  # parts left, finished, failed, or being written by another worker
            snapshot = JobSnapshot.of(job)
        relative = result_path(snapshot)
        target = self.settings.data_dir / relative
        labels = self.classifier().labels
        with self.sessions()() as session:
            write_annotated(snapshot, self.input_path(snapshot), target, session, labels)
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

    def _fail(self, job_id: str, error: Exception) -> None:
        """Mark an unfinished job failed (its other parts' workers stop at their next chunk)."""
        logger.error("Job %s failed.", job_id, exc_info=error)
        reason = str(error) if isinstance(error, DataError) else type(error).__name__
        with self.sessions().begin() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status.in_(UNFINISHED))
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
                    .where(*held(part, owner))
                    .values(status="queued", lease_owner=None, lease_until=None)
                ).rowcount
                if released:
                    requeue_if_idle(session, part.job.id)
            self.enqueue(part.job.id)
