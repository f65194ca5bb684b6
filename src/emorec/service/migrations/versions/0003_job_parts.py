"""Batch jobs split into parts that several workers process at once.

Revision ID: 0003_job_parts
Revises: 0002_jobs
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_job_parts"
down_revision: str | None = "0002_jobs"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "job_parts",
        sa.Column(
            "job_id",
            sa.String(32),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("part_index", sa.Integer(), primary_key=True),
        sa.Column("start_row", sa.Integer(), nullable=False),
        sa.Column("stop_row", sa.Integer(), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lease_owner", sa.String(32), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_job_parts_status", "job_parts", ["status"])
    # Unfinished jobs of revision 0002 become one part each, continuing where they stopped;
    # their workers (of the previous version) are gone by the time the schema is upgraded.
    op.execute(
        "INSERT INTO job_parts (job_id, part_index, start_row, stop_row, rows_done, status) "
        "SELECT id, 0, 0, rows_total, rows_done, "
        "CASE WHEN rows_done >= rows_total THEN 'done' ELSE 'queued' END FROM jobs "
        "WHERE status IN ('queued', 'running')"
    )
    op.execute("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE status = 'running'")


def downgrade() -> None:
    op.drop_index("ix_job_parts_status", table_name="job_parts")
    op.drop_table("job_parts")
