"""The former import paths of ``emorec.service`` still work (its import rules, and the size of
its files, are checked with the whole package in tests/test_architecture.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="needs the service extra")


def test_former_import_paths_still_work() -> None:
    from emorec.service import app, jobs, routes_jobs
    from emorec.service.jobs import queue, uploads, worker
    from emorec.service.routes import jobs as job_routes

    # emorec.service.jobs was one module: its public names now re-export the package's.
    assert jobs.JobQueue is queue.JobQueue
    assert jobs.JobInputError is uploads.JobInputError
    for name in ("run_worker", "start_embedded_consumer", "quiet_huey", "EmbeddedWorker"):
        assert getattr(jobs, name) is getattr(worker, name)
    for name in ("input_format", "store_upload", "count_rows", "make_huey", "FORMATS"):
        assert hasattr(jobs, name), name
    # The app module keeps the names that lived in it.
    for name in (
        "create_app",
        "INTERNAL_ERROR",
        "STATIC_DIR",
        "BodyLimitMiddleware",
        "SecurityHeadersMiddleware",
        "AccessLogQueryFilter",
        "CONTENT_SECURITY_POLICY",
        "SECURITY_HEADERS",
        "swagger_ui_dir",
        "predict",
        "explain",
        "history",
        "stats",
        "health",
        "ready",
    ):
        assert hasattr(app, name), name
    assert callable(app.predict)  # the route, not the router module of the same name
    assert routes_jobs.router is job_routes.router
    assert routes_jobs.JobStatus is job_routes.JobStatus
