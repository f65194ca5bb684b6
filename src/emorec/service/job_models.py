"""Database tables of the batch jobs: one ``jobs`` row per upload, its ``job_parts`` (ranges of
rows that workers take one at a time, so several workers share a big job) and one
``job_results`` row per line.

``job_results`` is keyed by ``(job_id, row_index)``: a chunk that is classified twice (its worker
was killed after the commit was sent, or two workers raced on an expired lease) cannot add a
row twice. The worker holding a part is named in its ``lease_owner`` and must renew
``lease_until`` with every chunk it commits; the job's own lease guards the final step (writing
the annotated file). See :mod:`emorec.service.jobs`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from emorec.service.db import Base, utcnow

JOB_STATUSES = ("queued", "running", "done", "failed")
INPUT_FORMATS = ("csv", "jsonl", "txt")


class Job(Base):
    """A batch classification job over an uploaded file."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    filename: Mapped[str] = mapped_column(String(255))
    input_format: Mapped[str] = mapped_column(String(8))
    text_column: Mapped[str] = mapped_column(String(200))
    rows_total: Mapped[int] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # The worker run writing the annotated file, and until when (the parts have their own).
    lease_owner: Mapped[str | None] = mapped_column(String(32), default=None)
    lease_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Relative to the service's data_dir, so API and workers may mount it at different paths.
    result_path: Mapped[str | None] = mapped_column(Text, default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class JobPart(Base):
    """Rows ``start_row <= i < stop_row`` of a job, processed by one worker at a time."""

    __tablename__ = "job_parts"

    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    part_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    start_row: Mapped[int] = mapped_column(Integer)
    stop_row: Mapped[int] = mapped_column(Integer)
    # Rows of this part committed so far: the next one to classify is start_row + rows_done.
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    # queued, running or done (a failed job's parts are left as they were).
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    # The worker run that holds the part and until when; a run that finds its lease gone stops.
    lease_owner: Mapped[str | None] = mapped_column(String(32), default=None)
    lease_until: Mapped[dt.datetime | None] = mapped_column(default=None)


class JobResult(Base):
    """The prediction of one input row: ``{"label", "labels", "scores": {label: p}}``."""

    __tablename__ = "job_results"

    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    row_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    result: Mapped[dict[str, Any]] = mapped_column()
