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

Modules: :mod:`~emorec.service.jobs.uploads` (input files: format, storing, checks, reading rows
back), :mod:`~emorec.service.jobs.leases` (the lease protocol in SQL),
:mod:`~emorec.service.jobs.results` (stored results and the annotated file),
:mod:`~emorec.service.jobs.queue` (:class:`JobQueue`: submission, the task, recovery) and
:mod:`~emorec.service.jobs.worker` (the consumers: embedded, ``emorec worker``). The public names
are importable from this package, as they were from the former ``jobs`` module.
"""

from emorec.service.jobs.leases import JobSnapshot, LeaseLost, PartSnapshot
from emorec.service.jobs.queue import JobQueue, make_huey
from emorec.service.jobs.results import RESULT_SUFFIX, job_result
from emorec.service.jobs.uploads import (
    FORMATS,
    JobInputError,
    count_rows,
    input_format,
    row_chunks,
    store_upload,
)
from emorec.service.jobs.worker import (
    EmbeddedWorker,
    quiet_huey,
    run_worker,
    start_embedded_consumer,
)

__all__ = [
    "FORMATS",
    "RESULT_SUFFIX",
    "EmbeddedWorker",
    "JobInputError",
    "JobQueue",
    "JobSnapshot",
    "LeaseLost",
    "PartSnapshot",
    "count_rows",
    "input_format",
    "job_result",
    "make_huey",
    "quiet_huey",
    "row_chunks",
    "run_worker",
    "start_embedded_consumer",
    "store_upload",
]
