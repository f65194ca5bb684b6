"""Running the queue's tasks: a consumer in threads of the API process (``emorec serve``), or
``emorec worker``'s worker processes, which exit with the consumer that forked them."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from huey.consumer import Consumer, Scheduler, Worker
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from emorec.errors import ConfigError
from emorec.service.db import redact_url
from emorec.service.jobs.queue import JobQueue

if TYPE_CHECKING:
    from emorec.service.settings import ServiceSettings

logger = logging.getLogger("emorec.service.jobs")

# Idle workers poll an SQLite queue at most this many seconds apart (Redis blocks instead).
_MAX_POLL_DELAY = 1.0


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
