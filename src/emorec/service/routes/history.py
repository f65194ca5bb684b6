"""``/v1/history`` and ``/v1/stats``: the stored predictions, and counts and mean probabilities
over them. Both need an API key."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import Engine, case, func, select

from emorec.service.db import PredictionRecord
from emorec.service.deps import ERRORS, SessionDep, StateDep, require_api_key
from emorec.service.schemas import HistoryItem, HistoryPage, Stats, StatsBucket, ranked_scores

router = APIRouter(tags=["history"], dependencies=[Depends(require_api_key)], responses=ERRORS)


def _as_utc(value: dt.datetime | None) -> dt.datetime | None:
    # Times without an offset are read as UTC, the zone everything is stored in.
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@router.get("/v1/history", response_model=HistoryPage)
def history(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
    label: Annotated[str | None, Query(max_length=100, description="Top emotion.")] = None,
    since: Annotated[dt.datetime | None, Query(description="ISO time, inclusive.")] = None,
    until: Annotated[dt.datetime | None, Query(description="ISO time, exclusive.")] = None,
) -> HistoryPage:
    """Stored predictions, newest first, filtered by top emotion and time."""
    conditions = _time_filter(since, until)
    if label is not None and "\x00" in label:
        raise HTTPException(422, "label must not contain NUL characters.")
    if label is not None:
        conditions.append(PredictionRecord.top_label == label)
    total = session.scalar(select(func.count()).select_from(PredictionRecord).where(*conditions))
    rows = session.scalars(
        select(PredictionRecord)
        .where(*conditions)
        .order_by(PredictionRecord.created_at.desc(), PredictionRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return HistoryPage(
        items=[
            HistoryItem(
                id=row.id,
                created_at=row.created_at,
                text=row.text,
                label=row.top_label,
                labels=row.labels,
                # Stored as {label: probability}, which the statistics look labels up in.
                scores=ranked_scores(row.scores),
            )
            for row in rows
        ],
        total=total or 0,
        limit=limit,
        offset=offset,
    )


def _time_filter(since: dt.datetime | None, until: dt.datetime | None) -> list[Any]:
    since, until = _as_utc(since), _as_utc(until)
    if since is not None and until is not None and since >= until:
        raise HTTPException(422, "since must be earlier than until.")
    conditions: list[Any] = []
    if since is not None:
        conditions.append(PredictionRecord.created_at >= since)
    if until is not None:
        conditions.append(PredictionRecord.created_at < until)
    return conditions


def _bucket_start(engine: Engine, bucket: Literal["hour", "day"]) -> Any:
    """SQL for the start of each row's time bucket, in UTC, per dialect."""
    column = PredictionRecord.created_at
    if engine.dialect.name == "postgresql":
        return func.date_trunc(bucket, func.timezone("UTC", column))
    if engine.dialect.name == "sqlite":
        # Stored as naive UTC text ("YYYY-MM-DD HH:MM:SS.ffffff").
        fmt = "%Y-%m-%d %H:00:00" if bucket == "hour" else "%Y-%m-%d 00:00:00"
        return func.strftime(fmt, column)
    raise HTTPException(501, f"Statistics are not implemented for {engine.dialect.name}.")


def _parse_bucket(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@router.get("/v1/stats", response_model=Stats)
def stats(
    state: StateDep,
    session: SessionDep,
    bucket: Literal["hour", "day"] = "day",
    since: Annotated[dt.datetime | None, Query(description="ISO time, inclusive.")] = None,
    until: Annotated[dt.datetime | None, Query(description="ISO time, exclusive.")] = None,
) -> Stats:
    """Counts (by top emotion) and mean probabilities per emotion, overall and per bucket."""
    labels = state.classifier.labels
    conditions = _time_filter(since, until)
    record = PredictionRecord
    columns = [func.count()]
    for label in labels:
        columns.append(func.sum(case((record.top_label == label, 1), else_=0)))
        columns.append(func.avg(record.scores[label].as_float()))

    def unpack(values: Any) -> tuple[int, dict[str, int], dict[str, float]]:
        total, rest = int(values[0] or 0), values[1:]
        counts = {label: int(rest[2 * i] or 0) for i, label in enumerate(labels)}
        means = {
            label: float(rest[2 * i + 1])
            for i, label in enumerate(labels)
            if rest[2 * i + 1] is not None
        }
        return total, counts, means

    total, counts, means = unpack(session.execute(select(*columns).where(*conditions)).one())
    start = _bucket_start(state.engine, bucket).label("bucket")
    rows = session.execute(
        select(start, *columns).where(*conditions).group_by(start).order_by(start)
    ).all()
    buckets = []
    for row in rows:
        b_total, b_counts, b_means = unpack(row[1:])
        buckets.append(
            StatsBucket(
                start=_parse_bucket(row[0]),
                total=b_total,
                counts=b_counts,
                mean_probability=b_means,
            )
        )
    return Stats(labels=labels, total=total, counts=counts, mean_probability=means, buckets=buckets)
