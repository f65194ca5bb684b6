"""The HTTP API (FastAPI TestClient, tiny model) on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the service extra")

from fastapi.testclient import TestClient  # noqa: E402

from emorec.inference import EmotionClassifier  # noqa: E402
from emorec.service.app import create_app  # noqa: E402
from emorec.service.settings import ServiceSettings  # noqa: E402


@pytest.fixture(scope="module")
def classifier(tiny_classifier_dir: Path) -> EmotionClassifier:
    return EmotionClassifier.from_pretrained(tiny_classifier_dir, backend="torch")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'api.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(tmp_path: Path, tiny_classifier_dir: Path, database_url: str) -> ServiceSettings:
    return ServiceSettings(
        model_dir=tiny_classifier_dir,
        data_dir=tmp_path / "data",
        database_url=database_url,
        embedded_worker=False,
    )


@pytest.fixture
def client(settings: ServiceSettings, classifier: EmotionClassifier) -> Iterator[TestClient]:
    with TestClient(create_app(settings, classifier)) as test_client:
        yield test_client


def test_health_and_ready(client: TestClient, classifier: EmotionClassifier) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert body["labels"] == classifier.labels
    assert body["backend"] == "torch"
    assert body["database"] == "ok"
    assert body["model"] == "model"
