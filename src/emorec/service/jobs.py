"""Batch classification jobs on a Huey task queue.

An upload is stored under ``{data_dir}/jobs/<id>/input.<ext>``, checked (UTF-8, the text column,
at least one row, the per-text limit) and recorded as a ``jobs`` row; its id goes on the queue.
Huey keeps the queue in SQLite (``{data_dir}/queue.db``, no server) or, for workers on several
machines, in Redis (``queue_url=redis://...``); the job state itself lives in the database, so
jobs survive restarts of the API and of the workers.

A worker processes a job in chunks of ``job_chunk_size`` rows. Each chunk's result rows and the
job's new ``rows_done`` are committed in one transaction, guarded by the worker's lease on the
job (``lease_owner``/``lease_until``, renewed with every chunk): a worker that lost its lease
can commit nothing, and ``job_results``' primary key ``(job_id, row_index)`` makes a duplicate
row impossible anyway. A killed worker's lease runs out; the periodic ``requeue_stale_jobs``
task (every minute, and at every worker start) puts its job back on the queue, and the next
worker continues after the last committed chunk. When every row is done the annotated file
(CSV for CSV and TXT inputs, JSONL for JSONL) is written atomically and the job is ``done``.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer, Scheduler, Worker
from sqlalchemy import Engine, and_, delete, insert, or_, select, update
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from emorec._io import atomic_path
from emorec.errors import ConfigError, DataError
from emorec.predict_io import AnnotatedWriter, annotate_row, iter_rows
from emorec.service.db import make_engine, session_factory, utcnow
from emorec.service.job_models import Job, JobResult

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
    """Another worker took the job over (this one stalled past its lease)."""


class _Stopping(Exception):
    """The consumer is shutting down; hand the job back between chunks."""


@dataclass(frozen=True)
class JobSnapshot:
    """The fields of a job a worker needs, read once when it claims the job."""

    id: str
    filename: str
    input_format: str
    text_column: str
    rows_total: int
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
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        try:
            self.enqueue(job_id)
        except Exception as error:
            # Undone, so that every queued job is on the queue and the client may simply retry.
            logger.error("Could not enqueue job %s: %s", job_id, type(error).__name__)
            with self.sessions().begin() as session:
                session.execute(delete(Job).where(Job.id == job_id))
            shutil.rmtree(directory, ignore_errors=True)
            raise JobInputError(
                "The job queue is not reachable right now; try again shortly.", status_code=503
            ) from None
        return job

    def get(self, job_id: str) -> Job | None:
        with self.sessions()() as session:
            return session.get(Job, job_id)

    def enqueue(self, job_id: str, delay: float | None = None) -> None:
        """Put ``process_job(job_id)`` on the queue (after ``delay`` seconds)."""
        if delay:
            self.process_task.schedule((job_id,), delay=delay)
        else:
            self.process_task(job_id)

    # -- recovery
    def requeue_stale_jobs(self, at_start: bool = False) -> list[str]:
        """Re-enqueue running jobs whose lease ran out (their worker died); returns their ids.

        ``at_start`` (a worker starting) also re-enqueues every queued job, in case the queue
        lost it (a Redis without persistence), and schedules a check of the running jobs for
        when their lease ends. Enqueuing twice is harmless: a job is claimed once.
        """
        now = utcnow()
        with self.sessions().begin() as session:
            stale = list(
                session.scalars(
                    select(Job.id).where(Job.status == "running", Job.lease_until < now)
                )
            )
            for job_id in stale:
                session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == "running", Job.lease_until < now)
                    .values(status="queued", lease_owner=None, lease_until=None)
                )
            queued = list(session.scalars(select(Job.id).where(Job.status == "queued")))
            live = list(
                session.execute(
                    select(Job.id, Job.lease_until).where(
                        Job.status == "running", Job.lease_until >= now
                    )
                )
            )
        again = queued if at_start else stale
        for job_id in again:
            self.enqueue(job_id)
        if at_start:
            for job_id, lease_until in live:
                self.enqueue(job_id, delay=(lease_until - now).total_seconds() + 1)
        if stale:
            logger.warning("Re-enqueued %d job(s) whose worker stopped: %s", len(stale), stale)
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
        """The Huey task: classify a job's remaining rows, then write its annotated file."""
        owner = uuid.uuid4().hex
        job = self._claim(job_id, owner)
        if job is None:
            return
        logger.info(
            "Job %s: %d of %d rows done; continuing.", job_id, job.rows_done, job.rows_total
        )
        try:
            self._run(job, owner)
        except _LeaseLost:
            logger.warning("Job %s: lease lost to another worker; stopping here.", job_id)
        except (_Stopping, KeyboardInterrupt) as stop:
            self._release(job_id, owner)
            logger.info("Job %s: handed back to the queue (worker stopping).", job_id)
            if isinstance(stop, KeyboardInterrupt):
                raise
        except Exception as error:
            logger.error("Job %s failed.", job_id, exc_info=error)
            reason = str(error) if isinstance(error, DataError) else type(error).__name__
            self._finish(
                job_id,
                owner,
                status="failed",
                error=f"The job failed while classifying ({reason}); see the worker log.",
            )

    def _claim(self, job_id: str, owner: str) -> JobSnapshot | None:
        now = utcnow()
        lease = dt.timedelta(seconds=self.settings.job_lease_seconds)
        with self.sessions().begin() as session:
            claimed = session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    or_(
                        Job.status == "queued",
                        and_(Job.status == "running", Job.lease_until < now),
                    ),
                )
                .values(status="running", lease_owner=owner, lease_until=now + lease)
            ).rowcount
            job = session.get(Job, job_id)
            if not claimed or job is None:
                # Done, failed, unknown, or held by a live worker: nothing to do here.
                return None
            return JobSnapshot(
                job.id,
                job.filename,
                job.input_format,
                job.text_column,
                job.rows_total,
                job.rows_done,
            )

    def _renew(self, session: Session, job_id: str, owner: str, **values: Any) -> None:
        lease = dt.timedelta(seconds=self.settings.job_lease_seconds)
        held = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
            .values(lease_until=utcnow() + lease, **values)
        ).rowcount
        if not held:
            raise _LeaseLost

    def _run(self, job: JobSnapshot, owner: str) -> None:
        settings = self.settings
        path = self.input_path(job)
        if not path.is_file():
            logger.error("Job %s: input file %s not found.", job.id, path)
            raise DataError(
                "its uploaded file is not in this worker's data directory; workers must share "
                "EMOREC_DATA_DIR with the API"
            )
        classifier = self.classifier()
        done = job.rows_done
        start = 0
        for chunk in iter_rows(path, job.text_column, settings.job_chunk_size):
            end = start + len(chunk)
            if end > done:
                if self.stop_flag is not None and self.stop_flag.is_set():
                    raise _Stopping
                rows = chunk[done - start :] if done > start else chunk
                predictions = classifier.predict([row[job.text_column] for row in rows])
                results = [
                    {
                        "job_id": job.id,
                        "row_index": done + i,
                        "result": {
                            "label": p.label,
                            "labels": p.labels,
                            "scores": {name: round(prob, 6) for name, prob in p.scores.items()},
                        },
                    }
                    for i, p in enumerate(predictions)
                ]
                with self.sessions().begin() as session:
                    # The lease check comes first: a worker that lost the job inserts nothing.
                    self._renew(session, job.id, owner, rows_done=end)
                    session.execute(insert(JobResult), results)
                done = end
                if settings.job_chunk_pause_seconds:
                    time.sleep(settings.job_chunk_pause_seconds)
            start = end
        if done != job.rows_total:
            raise DataError(
                f"the input has {done} rows but {job.rows_total} were counted at upload"
            )
        with self.sessions().begin() as session:
            self._renew(session, job.id, owner)
        relative = self._write_result(job, classifier.labels)
        self._finish(job.id, owner, status="done", result_path=relative)
        logger.info("Job %s done: %d rows.", job.id, done)

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
        from emorec.inference import Prediction

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
                prediction = Prediction(
                    row[column], result["label"], result["labels"], result["scores"]
                )
                writer.write(annotate_row(row, prediction, names, jsonl=jsonl))
        return relative

    def _finish(self, job_id: str, owner: str, **values: Any) -> None:
        with self.sessions().begin() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_owner == owner)
                .values(finished_at=utcnow(), lease_owner=None, lease_until=None, **values)
            )

    def _release(self, job_id: str, owner: str) -> None:
        with contextlib.suppress(Exception):  # best effort: the lease expires anyway
            with self.sessions().begin() as session:
                session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
                    .values(status="queued", lease_owner=None, lease_until=None)
                )
            self.enqueue(job_id)


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
            f"The database {_redact(settings.db_url)} is not reachable: {reason}."
        ) from None
    # The cores are shared among the worker processes rather than oversubscribed.
    queue = JobQueue(settings, num_threads=max(1, (os.cpu_count() or 1) // workers))
    try:
        queue.huey.pending_count()
    except Exception as error:  # redis-py and sqlite3 raise their own connection errors
        where = _redact(settings.queue_url) if settings.queue_url else settings.data_dir
        raise ConfigError(
            f"The job queue ({where}) is not reachable: {str(error).rstrip('.')}."
        ) from None
    queue.requeue_stale_jobs(at_start=True)
    queue.close()  # the forked workers open their own connections
    consumer = _ProcessConsumer(
        queue.huey, workers=workers, worker_type="process", max_delay=_MAX_POLL_DELAY
    )
    queue.stop_flag = consumer.stop_flag
    logger.info(
        "Worker: %d process(es), queue %s, database %s.",
        workers,
        _redact(settings.queue_url) if settings.queue_url else settings.data_dir / "queue.db",
        _redact(settings.db_url),
    )
    consumer.run()


def _redact(url: str) -> str:
    """A database or Redis URL without its password, for logs and messages."""
    from sqlalchemy import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("://")[0] + "://..."
