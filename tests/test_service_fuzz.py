"""Schemathesis fuzzing of the OpenAPI document: no generated request makes the server fail.

Each operation is fuzzed with schema-valid and schema-violating data (a few examples each, to
keep the suite fast), with a valid API key, on SQLite and on PostgreSQL, and checked with
``not_a_server_error``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis (dev extra)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from emorec.inference import EmotionClassifier  # noqa: E402
from emorec.service.app import create_app  # noqa: E402
from emorec.service.auth import create_api_key  # noqa: E402
from emorec.service.db import make_engine, session_factory, upgrade_database  # noqa: E402
from emorec.service.settings import ServiceSettings  # noqa: E402

OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("POST", "/v1/predict"),
    ("POST", "/v1/explain"),
    ("GET", "/v1/history"),
    ("GET", "/v1/stats"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/{job_id}"),
    ("DELETE", "/v1/jobs/{job_id}"),
    ("GET", "/v1/jobs/{job_id}/result"),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_classifier_dir: Path,
) -> dict[str, Any]:
    """The app's schema (schemathesis runs the app's lifespan) and a valid API key."""
    data = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url = f"sqlite:///{data / 'fuzz.db'}"
    else:  # PostgreSQL refuses some text SQLite takes (NUL characters)
        url = request.getfixturevalue("postgres_server").create_database()
    upgrade_database(url)
    engine = make_engine(url)
    with session_factory(engine)() as session:
        key = create_api_key(session, "fuzz")[1]
    engine.dispose()
    classifier = EmotionClassifier.from_pretrained(tiny_classifier_dir, backend="torch")
    app = create_app(
        ServiceSettings(
            model_dir=tiny_classifier_dir,
            data_dir=data,
            database_url=url,
            embedded_worker=False,
            max_texts_per_request=8,
            max_chars_per_text=300,
            max_upload_bytes=100_000,
        ),
        classifier,
    )
    return {"schema": schemathesis.openapi.from_asgi("/openapi.json", app), "key": key}


def test_every_operation_is_fuzzed(service: dict[str, Any]) -> None:
    found = {
        (op.method.upper(), op.path)
        for op in (r.ok() for r in service["schema"].get_all_operations())
    }
    assert found == set(OPERATIONS)


# Operations without parameters or body have no invalid input to generate.
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if p not in ("/health", "/ready")
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_server_errors(
    service: dict[str, Any], method: str, path: str, mode: GenerationMode
) -> None:
    operation = service["schema"][path][method]
    headers = {"X-API-Key": service["key"]}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    check()
