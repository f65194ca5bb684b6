"""The HTTP API (FastAPI TestClient, tiny model) on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the service extra")

from fastapi.testclient import TestClient
from sqlalchemy import inspect
from typer.testing import CliRunner

from emorec.cli import app as cli_app
from emorec.errors import ConfigError, DataError
from emorec.inference import EmotionClassifier
from emorec.service.app import INTERNAL_ERROR, create_app
from emorec.service.auth import create_api_key, revoke_api_key
from emorec.service.db import PredictionRecord, make_engine, normalize_url, upgrade_database
from emorec.service.settings import ServiceSettings, load_settings

UTC = dt.UTC


@pytest.fixture(scope="module")
def classifier(tiny_classifier_dir: Path) -> EmotionClassifier:
    return EmotionClassifier.from_pretrained(tiny_classifier_dir, backend="torch")


@pytest.fixture(scope="module")
def multilabel_classifier(tiny_multilabel_classifier_dir: Path) -> EmotionClassifier:
    return EmotionClassifier.from_pretrained(tiny_multilabel_classifier_dir, backend="torch")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'api.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def make_client(
    tmp_path: Path, tiny_classifier_dir: Path, classifier: EmotionClassifier
) -> Iterator[Callable[..., TestClient]]:
    """Start an app (lifespan included) on a database; stopped at teardown."""
    clients: list[TestClient] = []

    def start(
        database_url: str | None = None,
        clf: EmotionClassifier | None = None,
        raise_server_exceptions: bool = True,
        **values: object,
    ) -> TestClient:
        settings = ServiceSettings(
            model_dir=tiny_classifier_dir,
            data_dir=tmp_path / "data",
            database_url=database_url or f"sqlite:///{tmp_path / 'api.db'}",
            embedded_worker=False,
            **values,
        )
        test_client = TestClient(
            create_app(settings, clf or classifier),
            raise_server_exceptions=raise_server_exceptions,
        )
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield start
    for test_client in clients:
        test_client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient], database_url: str) -> TestClient:
    return make_client(database_url)


@pytest.fixture
def sqlite_client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def new_key(client: TestClient, name: str = "test") -> str:
    with client.app.state.service.sessions() as session:
        return create_api_key(session, name)[1]


def add_records(client: TestClient, rows: list[tuple[dt.datetime, str, dict[str, float]]]) -> None:
    """History rows with chosen times, top labels and scores."""
    with client.app.state.service.sessions() as session:
        session.add_all(
            PredictionRecord(
                created_at=created,
                text=f"text {i}",
                labels=[label],
                top_label=label,
                scores=scores,
                model="model",
            )
            for i, (created, label, scores) in enumerate(rows)
        )
        session.commit()


# ---- health --------------------------------------------------------------------------------
def test_health_and_ready(client: TestClient, classifier: EmotionClassifier) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert body["labels"] == classifier.labels
    assert body["multi_label"] is False
    assert body["backend"] == "torch"
    assert body["database"] == "ok"
    assert body["model"] == "model"


def test_ready_is_503_when_the_database_is_gone(sqlite_client: TestClient) -> None:
    state = sqlite_client.app.state.service
    healthy = state.engine
    # Nothing listens on port 1: the database is unreachable.
    state.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        response = sqlite_client.get("/ready")
    finally:
        state.engine.dispose()
        state.engine = healthy
    assert response.status_code == 503
    assert response.json()["ready"] is False
    assert response.json()["database"] == "unavailable"
    assert sqlite_client.get("/ready").status_code == 200


# ---- predict -------------------------------------------------------------------------------
def test_predict_one_and_many_match_the_classifier(
    client: TestClient, classifier: EmotionClassifier
) -> None:
    texts = ["i feel so happy today", "this is so unfair and i am furious", "i am scared"]
    response = client.post("/v1/predict", json={"texts": texts})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "model"
    assert body["multi_label"] is False
    expected = classifier.predict(texts)
    probs = classifier.predict_proba(texts)
    assert [p["text"] for p in body["predictions"]] == texts
    for got, want, row in zip(body["predictions"], expected, probs, strict=True):
        assert got["label"] == want.label
        assert got["labels"] == [want.label]
        # The transformers pipeline format: [{"label", "score"}], highest first.
        assert all(set(score) == {"label", "score"} for score in got["scores"])
        ranked = [s["score"] for s in got["scores"]]
        assert ranked == sorted(ranked, reverse=True)
        assert len(got["scores"]) == len(classifier.labels)
        for score in got["scores"]:
            index = classifier.labels.index(score["label"])
            assert score["score"] == pytest.approx(float(row[index]), abs=1e-6)
        assert sum(ranked) == pytest.approx(1.0, abs=1e-5)
    single = client.post("/v1/predict", json={"texts": [texts[0]]}).json()
    assert single["predictions"][0]["label"] == expected[0].label


def test_predict_top_k(sqlite_client: TestClient, classifier: EmotionClassifier) -> None:
    text = "what a wonderful surprise"
    full = sqlite_client.post("/v1/predict", json={"texts": [text]}).json()["predictions"][0]
    top = sqlite_client.post("/v1/predict", json={"texts": [text], "top_k": 2}).json()
    assert top["predictions"][0]["scores"] == full["scores"][:2]
    too_many = sqlite_client.post("/v1/predict", json={"texts": [text], "top_k": 5})
    assert too_many.status_code == 422
    assert "top_k" in too_many.json()["detail"]
    assert str(len(classifier.labels)) in too_many.json()["detail"]
    zero = sqlite_client.post("/v1/predict", json={"texts": [text], "top_k": 0})
    assert zero.status_code == 422
    assert "top_k" in zero.json()["detail"]


def test_predict_multilabel(
    make_client: Callable[..., TestClient], multilabel_classifier: EmotionClassifier
) -> None:
    client = make_client(clf=multilabel_classifier)
    texts = ["i am happy and scared", "so angry", "meh"]
    body = client.post("/v1/predict", json={"texts": texts}).json()
    assert body["multi_label"] is True
    thresholds = np.asarray(multilabel_classifier.calibration.thresholds)
    probs = multilabel_classifier.predict_proba(texts)
    for got, row in zip(body["predictions"], probs, strict=True):
        decided = {
            label
            for label, p, t in zip(multilabel_classifier.labels, row, thresholds, strict=True)
            if p >= t
        }
        assert set(got["labels"]) == decided
        assert got["label"] == (got["labels"][0] if got["labels"] else None)
    assert client.get("/ready").json()["multi_label"] is True


def test_predictions_are_stored_in_history(client: TestClient) -> None:
    key = new_key(client)
    client.post("/v1/predict", json={"texts": ["first text", "second text"]})
    client.post("/v1/predict", json={"texts": ["not kept"], "store": False})
    predicted = client.post("/v1/predict", json={"texts": ["third text"]}).json()
    page = client.get("/v1/history", headers={"X-API-Key": key}).json()
    assert page["total"] == 3
    assert page["items"][0]["text"] == "third text"
    assert {item["text"] for item in page["items"]} == {"first text", "second text", "third text"}
    newest = page["items"][0]
    assert newest["label"] == predicted["predictions"][0]["label"]
    # The same [{"label", "score"}] list, highest first, as /v1/predict answered.
    assert [s["label"] for s in newest["scores"]] == [
        s["label"] for s in predicted["predictions"][0]["scores"]
    ]
    assert [s["score"] for s in newest["scores"]] == pytest.approx(
        [s["score"] for s in predicted["predictions"][0]["scores"]]
    )
    assert dt.datetime.fromisoformat(newest["created_at"]).tzinfo is not None


def test_store_history_setting_turns_storing_off(make_client: Callable[..., TestClient]) -> None:
    client = make_client(store_history=False)
    key = new_key(client)
    assert client.post("/v1/predict", json={"texts": ["hello"]}).status_code == 200
    assert client.get("/v1/history", headers={"X-API-Key": key}).json()["total"] == 0


# ---- history and stats ---------------------------------------------------------------------
def test_history_pagination_and_filters(client: TestClient) -> None:
    key = new_key(client)
    base = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    labels = ["joy", "sadness", "joy", "anger", "joy", "fear", "joy"]
    add_records(
        client,
        [
            (base + dt.timedelta(minutes=10 * i), label, {label: 0.9})
            for i, label in enumerate(labels)
        ],
    )
    headers = {"X-API-Key": key}
    pages = [
        client.get("/v1/history", params={"limit": 3, "offset": o}, headers=headers).json()
        for o in (0, 3, 6)
    ]
    texts = [item["text"] for page in pages for item in page["items"]]
    assert texts == [f"text {i}" for i in reversed(range(len(labels)))]  # newest first
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert all(p["total"] == len(labels) for p in pages)
    assert pages[1]["limit"] == 3 and pages[1]["offset"] == 3

    joy = client.get("/v1/history", params={"label": "joy"}, headers=headers).json()
    assert joy["total"] == labels.count("joy")
    assert {item["label"] for item in joy["items"]} == {"joy"}

    window = {
        "since": (base + dt.timedelta(minutes=10)).isoformat(),
        "until": (base + dt.timedelta(minutes=40)).isoformat(),
    }
    timed = client.get("/v1/history", params=window, headers=headers).json()
    assert [item["text"] for item in timed["items"]] == ["text 3", "text 2", "text 1"]
    # A time without an offset is UTC; another offset is converted.
    naive = client.get(
        "/v1/history", params={"since": "2026-03-01T13:00:00"}, headers=headers
    ).json()
    assert naive["total"] == 1
    shifted = client.get(
        "/v1/history", params={"until": "2026-03-01T13:15:00+01:00"}, headers=headers
    ).json()
    assert shifted["total"] == 2
    both = client.get(
        "/v1/history", params={"label": "joy", "since": window["since"]}, headers=headers
    ).json()
    assert both["total"] == 3
    backwards = client.get(
        "/v1/history", params={"since": window["until"], "until": window["since"]}, headers=headers
    )
    assert backwards.status_code == 422
    assert "since" in backwards.json()["detail"]


def test_history_scores_are_ranked_lists_of_stored_maps(client: TestClient) -> None:
    """Rows store scores as {label: probability} (so do rows stored before the API answered
    lists); history answers them as [{"label", "score"}], highest first."""
    key = new_key(client)
    when = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    add_records(client, [(when, "sadness", {"joy": 0.15, "sadness": 0.8, "anger": 0.05})])
    (item,) = client.get("/v1/history", headers={"X-API-Key": key}).json()["items"]
    assert item["scores"] == [
        {"label": "sadness", "score": pytest.approx(0.8)},
        {"label": "joy", "score": pytest.approx(0.15)},
        {"label": "anger", "score": pytest.approx(0.05)},
    ]


def test_stats_buckets(client: TestClient, classifier: EmotionClassifier) -> None:
    key = new_key(client)
    day1 = dt.datetime(2026, 3, 1, 9, 15, tzinfo=UTC)
    day2 = dt.datetime(2026, 3, 2, 23, 59, tzinfo=UTC)
    rows = [
        (day1, "joy", {"joy": 0.8, "sadness": 0.1, "anger": 0.05, "fear": 0.05}),
        (
            day1 + dt.timedelta(minutes=30),
            "joy",
            {"joy": 0.6, "sadness": 0.2, "anger": 0.1, "fear": 0.1},
        ),
        (
            day1 + dt.timedelta(hours=1),
            "sadness",
            {"joy": 0.2, "sadness": 0.7, "anger": 0.05, "fear": 0.05},
        ),
        (day2, "anger", {"joy": 0.1, "sadness": 0.1, "anger": 0.7, "fear": 0.1}),
    ]
    add_records(client, rows)
    headers = {"X-API-Key": key}
    daily = client.get("/v1/stats", params={"bucket": "day"}, headers=headers).json()
    assert daily["labels"] == classifier.labels
    assert daily["total"] == 4
    assert daily["counts"] == {"sadness": 1, "joy": 2, "anger": 1, "fear": 0}
    for label in classifier.labels:
        expected = np.mean([scores[label] for _, _, scores in rows])
        assert daily["mean_probability"][label] == pytest.approx(expected)
    starts = [dt.datetime.fromisoformat(b["start"]) for b in daily["buckets"]]
    assert starts == [
        dt.datetime(2026, 3, 1, tzinfo=UTC),
        dt.datetime(2026, 3, 2, tzinfo=UTC),
    ]
    assert [b["total"] for b in daily["buckets"]] == [3, 1]
    assert daily["buckets"][0]["counts"]["joy"] == 2
    assert daily["buckets"][0]["mean_probability"]["joy"] == pytest.approx((0.8 + 0.6 + 0.2) / 3)

    hourly = client.get("/v1/stats", params={"bucket": "hour"}, headers=headers).json()
    assert [b["start"][:13] for b in hourly["buckets"]] == [
        "2026-03-01T09",
        "2026-03-01T10",
        "2026-03-02T23",
    ]
    assert [b["total"] for b in hourly["buckets"]] == [2, 1, 1]

    since = client.get(
        "/v1/stats", params={"since": "2026-03-02T00:00:00Z"}, headers=headers
    ).json()
    assert since["total"] == 1
    assert since["counts"]["anger"] == 1
    empty = client.get(
        "/v1/stats", params={"since": "2030-01-01T00:00:00Z"}, headers=headers
    ).json()
    assert empty["total"] == 0
    assert empty["buckets"] == []
    assert empty["mean_probability"] == {}
    assert client.get("/v1/stats", params={"bucket": "week"}, headers=headers).status_code == 422


# ---- explain -------------------------------------------------------------------------------
def test_explain(sqlite_client: TestClient, classifier: EmotionClassifier) -> None:
    text = "Today I feel SO alone, don't you?"
    response = sqlite_client.post("/v1/explain", json={"text": text, "method": "grad_x_input"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == text
    assert body["label"] == classifier.predict(text).label
    assert 0 <= body["probability"] <= 1
    assert body["method"] == "grad_x_input"
    assert body["words"]
    # Every word points at the part of the text it was cleaned from: "don't" -> "do not".
    for word in body["words"]:
        assert word["end"] > word["start"] and text[word["start"] : word["end"]] == word["source"]
    assert [(w["word"], w["source"]) for w in body["words"]][-4:] == [
        ("alone,", "alone,"),
        ("do", "don't"),
        ("not", "don't"),
        ("you?", "you?"),
    ]
    starts = [w["start"] for w in body["words"]]
    assert starts == sorted(starts)
    chosen = sqlite_client.post("/v1/explain", json={"text": text, "label": "fear"}).json()
    assert chosen["label"] == "fear"
    assert chosen["method"] == "lrp"
    unknown = sqlite_client.post("/v1/explain", json={"text": text, "label": "boredom"})
    assert unknown.status_code == 422
    assert "boredom" in unknown.json()["detail"]
    method = sqlite_client.post("/v1/explain", json={"text": text, "method": "magic"})
    assert method.status_code == 422
    assert "method" in method.json()["detail"]


def test_explain_offsets_are_code_points_of_the_original_text(sqlite_client: TestClient) -> None:
    # An emoji is one code point (two UTF-16 units); words after it must not shift, and words
    # cleaning rewrote ('loooove', the emoji, ':(') point at what the user typed.
    text = "i loooove this song 😍 ... so nervous about tomorrow :("
    body = sqlite_client.post("/v1/explain", json={"text": text}).json()
    pairs = [(w["word"], w["source"], text[w["start"] : w["end"]]) for w in body["words"]]
    assert all(source == typed for _, source, typed in pairs)
    cleaned_from = {word: source for word, source, _ in pairs}
    assert cleaned_from["love"] == "loooove" and cleaned_from["smiling"] == "😍"
    assert cleaned_from["nervous"] == "nervous" and cleaned_from["tomorrow"] == "tomorrow"
    assert cleaned_from["sad"] == ":("
    assert {source for _, source, _ in pairs} == set(text.split())


# ---- auth ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/history", "/v1/stats"])
def test_keys_are_required_and_checked(
    client: TestClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = new_key(client)
    missing = client.get(path)
    assert missing.status_code == 401
    assert "X-API-Key" in missing.json()["detail"]
    wrong = client.get(path, headers={"X-API-Key": key[:-4] + "abcd"})
    assert wrong.status_code == 401
    assert "not valid" in wrong.json()["detail"]
    assert client.get(path, headers={"X-API-Key": "garbage"}).status_code == 401
    assert client.get(path, headers={"X-API-Key": key}).status_code == 200
    with client.app.state.service.sessions() as session:
        assert revoke_api_key(session, "test") is not None
    revoked = client.get(path, headers={"X-API-Key": key})
    assert revoked.status_code == 401
    assert key not in caplog.text
    assert key[len("emorec_") :] not in caplog.text


def test_predict_key_is_optional_by_setting(make_client: Callable[..., TestClient]) -> None:
    open_client = make_client()
    assert open_client.post("/v1/predict", json={"texts": ["hi"]}).status_code == 200
    locked = make_client(
        database_url=f"sqlite:///{open_client.app.state.settings.data_dir / 'locked.db'}",
        require_api_key_for_predict=True,
    )
    assert locked.post("/v1/predict", json={"texts": ["hi"]}).status_code == 401
    assert locked.post("/v1/explain", json={"text": "hi"}).status_code == 401
    key = new_key(locked)
    ok = locked.post("/v1/predict", json={"texts": ["hi"]}, headers={"X-API-Key": key})
    assert ok.status_code == 200


def test_docs_are_served_without_a_cdn(sqlite_client: TestClient) -> None:
    page = sqlite_client.get("/docs")
    assert page.status_code == 200
    assert "/openapi.json" in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets, page.text
    # Every script, style sheet and icon of the page comes from this app, and it is there.
    for asset in assets:
        assert asset.startswith(("/docs-static/", "/static/")), asset
        assert sqlite_client.get(asset).status_code == 200, asset
    assert sqlite_client.get("/redoc").status_code == 404


def test_docs_use_swagger_ui_5_for_openapi_3_1(sqlite_client: TestClient) -> None:
    """Swagger UI 4 answers OpenAPI 3.1 with "Unable to render this definition"."""
    assert sqlite_client.get("/openapi.json").json()["openapi"].startswith("3.1")
    bundle = sqlite_client.get("/docs-static/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle.text)
    assert version is not None and int(version.group(1)) >= 5, bundle.text[:200]


# ---- security headers, logs ------------------------------------------------------------------
def test_security_headers_on_every_response(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_texts_per_request=1, max_chars_per_text=10)
    answers = {
        "dashboard": client.get("/"),
        "script": client.get("/static/app.js"),
        "style sheet": client.get("/static/app.css"),
        "docs": client.get("/docs"),
        "docs asset": client.get("/docs-static/swagger-ui.css"),
        "API": client.get("/health"),
        "404": client.get("/nowhere"),
        "401": client.get("/v1/history"),
        "413 of the body limit": client.post("/v1/predict", json={"texts": ["x" * 10_000]}),
        "422": client.post("/v1/predict", json={}),
    }
    for what, answer in answers.items():
        headers = answer.headers
        assert headers["x-content-type-options"] == "nosniff", what
        assert headers["x-frame-options"] == "DENY", what
        assert headers["referrer-policy"] == "no-referrer", what
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, what
        assert "default-src 'none'" in policy, what
        # Scripts and styles from the service itself, never inline or from elsewhere.
        for directive in ("script-src", "style-src"):
            value = re.search(rf"{directive} ([^;]+)", policy)
            assert value is not None and value.group(1).strip() == "'self'", (what, policy)
    assert answers["docs"].headers["content-security-policy"]


def test_dashboard_and_docs_pages_have_no_inline_script_or_style(
    sqlite_client: TestClient,
) -> None:
    """What the CSP forbids: inline <script>/<style>, style="..." and on...= handlers."""
    for path in ("/", "/docs"):
        page = sqlite_client.get(path).text
        scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.DOTALL | re.IGNORECASE)
        assert scripts and all(not body.strip() for body in scripts), (path, scripts)
        assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", page)), path
        assert not re.search(r"<style\b", page, re.IGNORECASE), path
        assert not re.search(r"\sstyle\s*=", page, re.IGNORECASE), path
        assert not re.search(r"\son[a-z]+\s*=", page, re.IGNORECASE), path


@pytest.fixture
def live_server(
    tmp_path: Path, tiny_classifier_dir: Path, classifier: EmotionClassifier
) -> Iterator[str]:
    """The app under a real uvicorn server in a thread (its access log goes to caplog)."""
    import threading
    import time

    import uvicorn

    from .servers import free_port

    settings = ServiceSettings(
        model_dir=tiny_classifier_dir,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'live.db'}",
        embedded_worker=False,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, classifier), host="127.0.0.1", port=port, log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_access_log_keeps_keys_in_query_strings_out(
    live_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    secret = "emorec_QuerySecretThatMustNotBeLogged"
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    with httpx.Client(base_url=live_server, timeout=30) as http:
        rejected = http.get("/v1/history", params={"api_key": secret, "label": "joy"})
        assert rejected.status_code == 401
        # Accepted (predict needs no key by default), but it carries one.
        keyed = http.post("/v1/predict", params={"api_key": secret}, json={"texts": ["hi"]})
        assert keyed.status_code == 200
        elsewhere = http.get("/health", params={"token": "abc123"})
        assert elsewhere.status_code == 200
        plain = http.get("/health", params={"probe": "1"})
        assert plain.status_code == 200
    deadline = dt.datetime.now() + dt.timedelta(seconds=10)
    while "probe=1" not in caplog.text and dt.datetime.now() < deadline:
        time.sleep(0.05)  # the server thread logs after answering
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/v1/history?<hidden>" in line and "401" in line for line in access), access
    assert any("/v1/predict?<hidden>" in line for line in access), access
    assert any("/health?<hidden>" in line for line in access), access
    assert secret not in caplog.text
    assert "abc123" not in caplog.text
    # An ordinary accepted query stays readable.
    assert any("/health?probe=1" in line for line in access), access


def test_startup_logs_the_database_and_data_dir(
    make_client: Callable[..., TestClient],
    postgres_server: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Trust authentication: the password is accepted and ignored, but must not be logged.
    url = postgres_server.create_database().replace("://emorec@", "://emorec:hunter2@")
    with caplog.at_level(logging.INFO, logger="emorec"):
        make_client(database_url=url)
    assert "hunter2" not in caplog.text
    assert "emorec:***@127.0.0.1" in caplog.text
    assert str((tmp_path / "data").absolute()) in caplog.text


def test_stored_keys_are_hashes(sqlite_client: TestClient) -> None:
    key = new_key(sqlite_client, "hashed")
    with sqlite_client.app.state.service.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT key_prefix, key_hash FROM api_keys").all()
    assert len(rows) == 1
    prefix, digest = rows[0]
    assert key.startswith(prefix) and len(prefix) < len(key) // 2
    assert key not in digest and len(digest) == 64


# ---- limits and malformed input --------------------------------------------------------------
def test_limits_and_malformed_input(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_texts_per_request=4, max_chars_per_text=100)
    cases = [
        ({"content": b'{"texts": ["unclosed'}, 422, "not valid JSON"),
        ({"content": b"[1, 2"}, 422, "not valid JSON"),
        ({"json": {"texts": "one text"}}, 422, "texts"),
        ({"json": {"texts": [1, 2]}}, 422, "texts.0"),
        ({"json": {"texts": []}}, 422, "texts"),
        ({"json": {}}, 422, "texts"),
        ({"json": ["a list"]}, 422, "body"),
        ({"json": {"texts": ["a"], "top_k": "three"}}, 422, "top_k"),
        ({"json": {"texts": ["a"], "txts": ["b"]}}, 422, "txts"),
        ({"json": {"texts": ["a"] * 5}}, 413, "at most 4"),
        ({"json": {"texts": ["ok", "x" * 101]}}, 413, "Text 1 has 101 characters"),
        ({"json": {"texts": ["x" * 10_000_000]}}, 413, "larger than the limit"),
    ]
    for request, status, message in cases:
        headers = {"Content-Type": "application/json"} if "content" in request else None
        response = client.post("/v1/predict", headers=headers, **request)
        assert response.status_code == status, (request, response.text[:200])
        detail = response.json()["detail"]
        assert message in detail, detail
        assert "Traceback" not in response.text
        assert len(response.content) < 5000  # the input is never echoed back
        if status == 422:
            assert isinstance(response.json()["errors"], list)
        # The service keeps serving.
        assert client.post("/v1/predict", json={"texts": ["still here"]}).status_code == 200
    long_explain = client.post("/v1/explain", json={"text": "x" * 101})
    assert long_explain.status_code == 413
    assert "101 characters" in long_explain.json()["detail"]
    missing = client.get("/v1/nowhere")
    assert missing.status_code == 404
    assert "/docs" in missing.json()["detail"]
    assert client.get("/v1/predict").status_code == 405


def test_chunked_oversized_body_is_refused(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_texts_per_request=1, max_chars_per_text=10)

    def chunks() -> Iterator[bytes]:
        yield b'{"texts": ["'
        for _ in range(200):
            yield b"x" * 1024
        yield b'"]}'

    response = client.post(
        "/v1/predict", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["detail"]


class _Broken(EmotionClassifier):
    def predict(self, texts: object, top_k: object = None, decision: object = "calibrated"):
        raise RuntimeError("secret internal state 0xdeadbeef")


def test_unexpected_errors_are_logged_not_shown(
    make_client: Callable[..., TestClient],
    classifier: EmotionClassifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = _Broken.__new__(_Broken)
    broken.__dict__.update(classifier.__dict__)
    client = make_client(clf=broken, raise_server_exceptions=False)
    caplog.set_level(logging.ERROR, logger="emorec.service")
    response = client.post("/v1/predict", json={"texts": ["boom"]})
    assert response.status_code == 500
    assert response.json() == {"detail": INTERNAL_ERROR}
    assert "deadbeef" not in response.text
    assert "deadbeef" in caplog.text  # the trace is in the server log
    assert client.get("/health").status_code == 200


class _Refusing(EmotionClassifier):
    def predict(self, texts: object, top_k: object = None, decision: object = "calibrated"):
        raise DataError("Text 0 is not something this model can read.")


def test_input_errors_of_the_model_are_422(
    make_client: Callable[..., TestClient], classifier: EmotionClassifier
) -> None:
    refusing = _Refusing.__new__(_Refusing)
    refusing.__dict__.update(classifier.__dict__)
    client = make_client(clf=refusing)
    response = client.post("/v1/predict", json={"texts": ["x"]})
    assert response.status_code == 422
    assert response.json() == {"detail": "Text 0 is not something this model can read."}


def test_cors_origins_from_settings(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origins=["https://dash.example"])
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key",
    }
    allowed = client.options("/v1/predict", headers={"Origin": "https://dash.example", **preflight})
    assert allowed.headers.get("access-control-allow-origin") == "https://dash.example"
    other = client.options("/v1/predict", headers={"Origin": "https://evil.example", **preflight})
    assert other.headers.get("access-control-allow-origin") is None


# ---- settings, migrations, CLI -----------------------------------------------------------------
def test_settings_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_classifier_dir: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("EMOREC_MODEL_DIR", str(tiny_classifier_dir))
    monkeypatch.setenv("EMOREC_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("EMOREC_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("EMOREC_MAX_TEXTS_PER_REQUEST", "8")
    settings = load_settings()
    assert settings.model_dir == tiny_classifier_dir
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.max_texts_per_request == 8
    assert settings.db_url == f"sqlite:///{(tmp_path / 'd' / 'emorec.db').absolute()}"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/emorec")
    assert load_settings().db_url == "postgresql://u@db.example/emorec"
    assert normalize_url(load_settings().db_url).drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    monkeypatch.setenv("EMOREC_DATABASE_URL", "sqlite:////tmp/x.db")
    assert load_settings().db_url == "sqlite:////tmp/x.db"
    monkeypatch.setenv("EMOREC_CORS_ORIGINS", '["https://c.example"]')
    assert load_settings().cors_origins == ["https://c.example"]
    (tmp_path / ".env").write_text("EMOREC_MAX_CHARS_PER_TEXT=77\n")
    assert load_settings().max_chars_per_text == 77
    monkeypatch.setenv("EMOREC_MAX_TEXTS_PER_REQUEST", "many")
    with pytest.raises(ConfigError, match="EMOREC_MAX_TEXTS_PER_REQUEST"):
        load_settings()
    monkeypatch.delenv("EMOREC_MODEL_DIR")
    monkeypatch.setenv("EMOREC_MAX_TEXTS_PER_REQUEST", "8")
    with pytest.raises(ConfigError, match="EMOREC_MODEL_DIR"):
        load_settings()


def test_migrations_create_the_schema(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    import emorec.service.job_models  # noqa: F401  (registers the job tables on Base)
    from emorec.service.db import Base, alembic_config

    upgrade_database(database_url)
    upgrade_database(database_url)  # a second run is a no-op
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"api_keys", "predictions", "alembic_version"} <= tables
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert context.get_current_revision() == head
            # The models and the migrations describe the same schema.
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_migrations_are_safe_to_run_concurrently(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    url = f"sqlite:///{tmp_path / 'race.db'}"
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: upgrade_database(url), range(4)))
    engine = make_engine(url)
    try:
        assert "predictions" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_apikey_cli(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    created = runner.invoke(cli_app, ["apikey", "create", "dashboard", "--database-url", url])
    assert created.exit_code == 0, created.output
    assert f"in the database {url}" in " ".join(created.output.split())
    key = next(line for line in created.output.split() if line.startswith("emorec_"))
    client = make_client(database_url=url)
    headers = {"X-API-Key": key}
    assert client.get("/v1/history", headers=headers).status_code == 200
    listed = runner.invoke(cli_app, ["apikey", "list", "--database-url", url])
    assert listed.exit_code == 0
    assert "dashboard" in listed.output
    assert key not in listed.output
    revoked = runner.invoke(cli_app, ["apikey", "revoke", "dashboard", "--database-url", url])
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/v1/history", headers=headers).status_code == 401
    unknown = runner.invoke(cli_app, ["apikey", "revoke", "nobody", "--database-url", url])
    assert unknown.exit_code != 0
    assert "nobody" in unknown.output
    empty = runner.invoke(cli_app, ["apikey", "create", " ", "--database-url", url])
    assert empty.exit_code != 0
    for _ in range(2):
        runner.invoke(cli_app, ["apikey", "create", "twin", "--database-url", url])
    ambiguous = runner.invoke(cli_app, ["apikey", "revoke", "twin", "--database-url", url])
    assert ambiguous.exit_code != 0
    assert "several keys" in ambiguous.output


def test_apikey_commands_name_their_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_server: Any
) -> None:
    """A key made in another directory lands in another SQLite file: say which one."""
    monkeypatch.delenv("EMOREC_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMOREC_DATA_DIR", "keys-here")
    runner = CliRunner()
    created = runner.invoke(cli_app, ["apikey", "create", "mine"])
    assert created.exit_code == 0, created.output
    database = tmp_path / "keys-here" / "emorec.db"
    assert database.is_file()
    assert f"sqlite:///{database}" in "".join(created.output.split())
    listed = runner.invoke(cli_app, ["apikey", "list"])
    assert f"sqlite:///{database}" in "".join(listed.output.split())
    # A password in the URL is masked.
    url = postgres_server.create_database().replace("://emorec@", "://emorec:hunter2@")
    secret = runner.invoke(cli_app, ["apikey", "create", "pg", "--database-url", url])
    assert secret.exit_code == 0, secret.output
    assert "hunter2" not in secret.output
    assert "emorec:***@127.0.0.1" in secret.output
    revoked = runner.invoke(cli_app, ["apikey", "revoke", "pg", "--database-url", url])
    assert "hunter2" not in revoked.output and "emorec:***@" in revoked.output


def test_serve_takes_a_database_url(
    tmp_path: Path, tiny_classifier_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--database-url`` like worker and apikey; the service's own log lines reach every API
    worker process through uvicorn's log config."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    for name in ("EMOREC_DATABASE_URL", "EMOREC_MODEL_DIR", "EMOREC_BACKEND"):
        monkeypatch.setenv(name, "set by the test")  # restored after it
    monkeypatch.delenv("EMOREC_BACKEND")
    url = f"sqlite:///{tmp_path / 'served.db'}"
    result = CliRunner().invoke(
        cli_app, ["serve", str(tiny_classifier_dir), "--database-url", url, "--workers", "2"]
    )
    assert result.exit_code == 0, result.output
    assert os.environ["EMOREC_DATABASE_URL"] == url
    (call,) = calls
    assert call["workers"] == 2
    assert call["log_config"]["loggers"]["emorec"]["handlers"] == ["default"]


def test_serve_refuses_a_non_model_dir(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", str(tmp_path)])
    assert result.exit_code == 2
    assert "not an emorec model directory" in result.output


def test_onnx_backend_loaded_at_startup(
    tmp_path: Path, tiny_classifier_dir: Path, classifier: EmotionClassifier
) -> None:
    """The lifespan loads the model itself; explanations fall back to the PyTorch weights."""
    import shutil

    from emorec.export import export_onnx

    from .conftest import make_rows, write_dair

    model_dir = tmp_path / "onnx-model"
    shutil.copytree(tiny_classifier_dir, model_dir)
    gate = write_dair(tmp_path / "gate.txt", make_rows(2))
    export_onnx(model_dir, data=gate, max_drop=100.0, optimize=False)
    settings = ServiceSettings(
        model_dir=model_dir,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'onnx.db'}",
        embedded_worker=False,
        backend="onnx",
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready").json()
        assert ready["backend"] == "onnx"
        assert ready["model"] == "onnx-model"
        texts = ["i feel so happy", "i am furious"]
        body = client.post("/v1/predict", json={"texts": texts}).json()
        probs = classifier.predict_proba(texts)
        for got, row in zip(body["predictions"], probs, strict=True):
            for score in got["scores"]:
                index = classifier.labels.index(score["label"])
                assert score["score"] == pytest.approx(float(row[index]), abs=1e-4)
        explained = client.post("/v1/explain", json={"text": "i feel so happy"})
        assert explained.status_code == 200, explained.text
        assert [w["word"] for w in explained.json()["words"]] == ["i", "feel", "so", "happy"]


def test_nul_characters(client: TestClient) -> None:
    """PostgreSQL text cannot hold NUL: the history keeps a replacement character instead."""
    key = new_key(client)
    response = client.post("/v1/predict", json={"texts": ["bad\x00byte"]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["text"] == "bad\x00byte"
    page = client.get("/v1/history", headers={"X-API-Key": key}).json()
    assert page["items"][0]["text"] == "bad\ufffdbyte"
    for path in ("/v1/history", "/v1/stats"):
        odd = client.get(path, params={"label": "j\x00y"}, headers={"X-API-Key": key})
        assert odd.status_code in (200, 422), odd.text


def test_texts_that_cannot_be_classified_are_422_naming_the_text(client: TestClient) -> None:
    key = new_key(client)
    # The JSON escape \ud800 (half of a UTF-16 pair) is how a client sends a lone surrogate.
    cases = {
        '"i am happy \\ud800"': r"texts\[1\] contains a lone surrogate \(U\+D800 at character 11\)",
        '""': r"texts\[1\] is empty",
        '" \\n\\t "': r"texts\[1\] holds only whitespace",
    }
    for text, detail in cases.items():
        body = f'{{"texts": ["i feel so happy", {text}]}}'.encode()
        response = client.post(
            "/v1/predict", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert re.match(detail, response.json()["detail"]), response.json()
        explained = client.post(
            "/v1/explain",
            content=f'{{"text": {text}}}'.encode(),
            headers={"Content-Type": "application/json"},
        )
        assert explained.status_code == 422, explained.text
        assert explained.json()["detail"]
    # Nothing refused was stored, and the service goes on answering.
    assert client.get("/v1/history", headers={"X-API-Key": key}).json()["total"] == 0
    assert client.post("/v1/predict", json={"texts": ["so happy"]}).status_code == 200


def test_concurrent_predictions_and_explanations(
    sqlite_client: TestClient, classifier: EmotionClassifier
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"i feel so happy number {i}" for i in range(6)]
    expected = [p.label for p in classifier.predict(texts)]

    def call(i: int) -> tuple[int, str | None]:
        if i % 4 == 3:
            response = sqlite_client.post("/v1/explain", json={"text": texts[i % 6]})
            return response.status_code, None
        response = sqlite_client.post("/v1/predict", json={"texts": texts, "store": i % 2 == 0})
        return response.status_code, [p["label"] for p in response.json()["predictions"]]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(24)))
    assert all(status == 200 for status, _ in results)
    assert all(labels == expected for _, labels in results if labels is not None)
