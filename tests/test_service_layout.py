"""The layout of ``emorec.service``: routers that never import the app, modules under 500 lines,
and the former import paths still working."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the service extra")

import emorec.service

SERVICE = Path(emorec.service.__file__).parent
MAX_LINES = 500


def _modules() -> list[Path]:
    return sorted(p for p in SERVICE.rglob("*.py") if "migrations" not in p.parts)


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_the_app_imports_the_app() -> None:
    """Routers, dependencies, middleware and jobs import ``service.deps``, never the app module
    that includes them (which would be an import circle)."""
    importers = [
        path.relative_to(SERVICE).as_posix()
        for path in _modules()
        if path.name != "app.py" and "emorec.service.app" in _imported(path)
    ]
    assert importers == []


def test_routers_take_shared_dependencies_from_deps() -> None:
    routers = sorted((SERVICE / "routes").glob("*.py"))
    assert {p.stem for p in routers} >= {"health", "predict", "history", "jobs"}
    for path in routers:
        if path.stem not in ("__init__", "health"):
            assert "emorec.service.deps" in _imported(path), path.name


def test_no_service_module_is_over_500_lines() -> None:
    lengths = {
        path.relative_to(SERVICE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in _modules()
    }
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


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
