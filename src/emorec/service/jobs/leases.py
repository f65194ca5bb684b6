"""The lease protocol on ``job_parts`` and ``jobs``, as SQL: claiming a free part, committing a
chunk under the lease, finding the parts whose worker died.

A part is held by the worker run named in its ``lease_owner`` until ``lease_until``; every
committed chunk renews the lease, and every write a worker makes is conditioned on still holding
it, so a worker that stalled past its lease can commit nothing. Parts are locked before their
job everywhere (no deadlock on PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from emorec.service.db import utcnow
from emorec.service.job_models import Job, JobPart

UNFINISHED = ("queued", "running")


class LeaseLost(Exception):
    """Another worker took the part over (this one stalled past its lease), or the job ended."""


class _NothingToClaim(Exception):
    """No part of the job is free (or the job has ended): roll the claim back."""


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


def held(part: PartSnapshot, owner: str) -> tuple[Any, ...]:
    """Conditions on ``job_parts`` that hold while ``owner`` still has the lease of ``part``."""
    return (
        JobPart.job_id == part.job.id,
        JobPart.part_index == part.index,
        JobPart.lease_owner == owner,
        JobPart.status == "running",
    )


def ready_to_write(now: dt.datetime) -> tuple[Any, ...]:
    """Conditions on ``jobs``: unfinished, every part done, and nobody writing the result."""
    return (
        Job.status.in_(UNFINISHED),
        or_(Job.lease_owner.is_(None), Job.lease_until < now),
        ~exists().where(JobPart.job_id == Job.id, JobPart.status != "done"),
    )


def claim_part(
    sessions: sessionmaker[Session], job_id: str, owner: str, lease: dt.timedelta
) -> PartSnapshot | None:
    """Lease the first free part of an unfinished job (queued, or its lease ran out) to
    ``owner``; None when every part is done or held by a live worker, or the job has ended."""
    now = utcnow()
    free = or_(
        JobPart.status == "queued",
        and_(JobPart.status == "running", JobPart.lease_until < now),
    )
    try:
        with sessions.begin() as session:
            candidates = session.scalars(
                select(JobPart.part_index)
                .where(JobPart.job_id == job_id, free)
                .order_by(JobPart.part_index)
            ).all()
            for index in candidates:
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
                .where(Job.id == job_id, Job.status.in_(UNFINISHED))
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


def commit_chunk(
    session: Session, part: PartSnapshot, owner: str, done: int, lease: dt.timedelta
) -> None:
    """Record ``done`` rows of ``part`` (and the job's progress) and renew the lease, in the
    chunk's transaction; :class:`LeaseLost` if ``owner`` no longer holds it."""
    complete = part.start_row + done >= part.stop_row
    renewed = session.execute(
        update(JobPart)
        .where(*held(part, owner))
        .values(
            rows_done=done,
            lease_until=utcnow() + lease,
            status="done" if complete else "running",
        )
    ).rowcount
    if not renewed:
        raise LeaseLost
    counted = session.execute(
        update(Job)
        .where(Job.id == part.job.id, Job.status.in_(UNFINISHED))
        .values(rows_done=Job.rows_done + (done - part.rows_done), status="running")
    ).rowcount
    if not counted:
        raise LeaseLost  # the job failed in another worker


def requeue_if_idle(session: Session, job_id: str) -> None:
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


@dataclass(frozen=True)
class StaleWork:
    """What :func:`free_stale_parts` found, as job ids (one per part)."""

    stale: list[str]  # parts whose lease ran out, queued again now
    unwritten: list[str]  # jobs with every part done whose annotated file nobody is writing
    queued: list[str]  # parts waiting for a worker
    live: list[tuple[str, dt.datetime]]  # parts held by a live worker, and until when


def free_stale_parts(session: Session, now: dt.datetime) -> StaleWork:
    """Put the parts whose lease ran out back to ``queued`` and list the work to enqueue.

    Parts of failed jobs are left as they are: nothing will take them.
    """
    of_unfinished = JobPart.job_id.in_(select(Job.id).where(Job.status.in_(UNFINISHED)))
    expired = and_(JobPart.status == "running", JobPart.lease_until < now, of_unfinished)
    stale = list(session.execute(select(JobPart.job_id, JobPart.part_index).where(expired)))
    for job_id, index in stale:
        session.execute(
            update(JobPart)
            .where(JobPart.job_id == job_id, JobPart.part_index == index, expired)
            .values(status="queued", lease_owner=None, lease_until=None)
        )
    for job_id in {job_id for job_id, _ in stale}:
        requeue_if_idle(session, job_id)
    unwritten = session.scalars(select(Job.id).where(*ready_to_write(now)))
    queued = session.scalars(
        select(JobPart.job_id).where(JobPart.status == "queued", of_unfinished)
    )
    live = session.execute(
        select(JobPart.job_id, JobPart.lease_until).where(
            JobPart.status == "running", JobPart.lease_until >= now, of_unfinished
        )
    )
    return StaleWork(
        stale=[job_id for job_id, _ in stale],
        unwritten=list(unwritten),
        queued=list(queued),
        live=[(job_id, until) for job_id, until in live],
    )
