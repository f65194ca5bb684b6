"""Batch jobs: uploads through the API, the embedded worker, and `emorec worker` being killed."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("huey", reason="needs the service extra")

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from emorec.inference import EmotionClassifier, Prediction
from emorec.service.app import create_app
from emorec.service.auth import create_api_key
from emorec.service.db import upgrade_database
from emorec.service.job_models import Job, JobPart, JobResult
from emorec.service.jobs import JobQueue, start_embedded_consumer
from emorec.service.settings import ServiceSettings

from .servers import free_port

TEXTS = [
    "i feel so happy today",
    'she said "no, never" and left',
    "this is so unfair, i am furious",
    "what if it goes wrong",
    "héllo wörld ✨ émotions",
    "",
    "i miss you, come back",
    "the storm scared me",
    "line with, many, commas",
    "done",
]


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def csv_bytes(texts: list[str], column: str = "text") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", column])
    writer.writerows([i, text] for i, text in enumerate(texts))
    return out.getvalue().encode("utf-8")


def predict_each(classifier: EmotionClassifier, texts: list[str]) -> list[Prediction | None]:
    """Each text's Prediction; None for an empty one, which a job answers with a row error."""
    return [classifier.predict(text) if text.strip() else None for text in texts]


def labels_of(predictions: list[Prediction | None], empty: Any = "") -> list[Any]:
    return [empty if p is None else p.label for p in predictions]


@pytest.fixture(scope="module")
def classifier(tiny_classifier_dir: Path) -> EmotionClassifier:
    return EmotionClassifier.from_pretrained(tiny_classifier_dir, backend="torch")


@pytest.fixture
def make_client(
    tmp_path: Path, tiny_classifier_dir: Path, classifier: EmotionClassifier
) -> Iterator[Callable[..., tuple[TestClient, dict[str, str]]]]:
    """A running app (lifespan entered) and headers with a valid API key."""
    clients: list[TestClient] = []

    def build(**overrides: Any) -> tuple[TestClient, dict[str, str]]:
        values: dict[str, Any] = {
            "model_dir": tiny_classifier_dir,
            "data_dir": tmp_path / "data",
            "database_url": f"sqlite:///{tmp_path / 'jobs.db'}",
            "job_chunk_size": 4,
        }
        values.update(overrides)
        client = TestClient(create_app(ServiceSettings(**values), classifier))
        client.__enter__()
        clients.append(client)
        with client.app.state.service.sessions() as session:
            _record, key = create_api_key(session, "tests")
        return client, {"X-API-Key": key}

    yield build
    for client in clients:
        client.__exit__(None, None, None)  # a second exit (after a test's own) does nothing


def submit(client: TestClient, headers: dict[str, str], name: str, data: bytes, **form: str) -> Any:
    return client.post("/v1/jobs", headers=headers, files={"file": (name, data)}, data=form or None)


def finished(client: TestClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        assert body["status"] != "failed", body
        return body if body["status"] == "done" else None

    return wait_for(done, 30, f"job {job_id} to finish")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_csv_job_through_the_api(
    database: str,
    make_client: Callable[..., tuple[TestClient, dict[str, str]]],
    classifier: EmotionClassifier,
    request: pytest.FixtureRequest,
) -> None:
    overrides = {}
    if database == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    client, headers = make_client(**overrides)
    response = submit(client, headers, "tweets.csv", csv_bytes(TEXTS))
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["rows_total"] == len(TEXTS)
    assert job["status"] in ("queued", "running", "done")
    assert job["filename"] == "tweets.csv"

    status = finished(client, headers, job["id"])
    assert status["rows_done"] == len(TEXTS)
    assert status["progress"] == 1.0
    assert status["finished_at"] is not None
    assert status["result_url"] == f"/v1/jobs/{job['id']}/result"

    result = client.get(status["result_url"], headers=headers)
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/csv")
    assert "tweets.emotions.csv" in result.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(result.text)))
    expected = predict_each(classifier, TEXTS)
    assert [row["id"] for row in rows] == [str(i) for i in range(len(TEXTS))]
    assert [row["text"] for row in rows] == TEXTS
    assert [row["pred_label"] for row in rows] == labels_of(expected)
    for row, prediction in zip(rows, expected, strict=True):
        if prediction is None:  # the empty text: its reason instead of probabilities
            assert row["pred_error"].startswith("the text is empty"), row
            continue
        assert row["pred_error"] == ""
        for label in classifier.labels:
            assert float(row[f"prob_{label}"]) == pytest.approx(prediction.scores[label], abs=1e-5)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_jsonl_and_txt_jobs(
    database: str,
    make_client: Callable[..., tuple[TestClient, dict[str, str]]],
    classifier: EmotionClassifier,
    request: pytest.FixtureRequest,
) -> None:
    overrides = {}
    if database == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    client, headers = make_client(**overrides)
    texts = TEXTS[:5]
    lines = [json.dumps({"content": t, "n": i}, ensure_ascii=False) for i, t in enumerate(texts)]
    jsonl = ("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n").encode("utf-8")
    first = submit(client, headers, "posts.jsonl", jsonl, text_column="content")
    assert first.status_code == 202, first.text
    second = submit(client, headers, "lines.txt", ("\r\n".join(texts) + "\r\n").encode("utf-8"))
    assert second.status_code == 202, second.text
    expected = classifier.predict(texts)

    finished(client, headers, first.json()["id"])
    result = client.get(f"/v1/jobs/{first.json()['id']}/result", headers=headers)
    assert result.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in result.text.splitlines()]
    assert [(r["n"], r["content"]) for r in rows] == list(enumerate(texts))
    assert [r["pred_labels"] for r in rows] == [p.labels for p in expected]
    assert [sorted(s["label"] for s in r["scores"]) for r in rows] == [
        sorted(classifier.labels)
    ] * len(texts)

    finished(client, headers, second.json()["id"])
    result = client.get(f"/v1/jobs/{second.json()['id']}/result", headers=headers)
    rows = list(csv.DictReader(io.StringIO(result.text)))
    assert [r["text"] for r in rows] == texts
    assert [r["pred_label"] for r in rows] == [p.label for p in expected]


def test_progress_is_reported_while_running(
    make_client: Callable[..., tuple[TestClient, dict[str, str]]],
) -> None:
    client, headers = make_client(job_chunk_size=2, job_chunk_pause_seconds=0.2)
    job = submit(client, headers, "t.csv", csv_bytes(TEXTS)).json()
    seen: list[tuple[str, int, float]] = []

    def done() -> bool:
        body = client.get(f"/v1/jobs/{job['id']}", headers=headers).json()
        seen.append((body["status"], body["rows_done"], body["progress"]))
        return body["status"] == "done"

    wait_for(done, 30, "the job to finish")
    partial = [s for s in seen if s[0] == "running" and 0 < s[1] < len(TEXTS)]
    assert partial, f"no intermediate progress seen: {seen}"
    assert all(p == pytest.approx(n / len(TEXTS)) for _status, n, p in seen)
    done_counts = [n for _status, n, _p in seen]
    assert done_counts == sorted(done_counts)


def test_bad_uploads_are_refused_clearly(
    make_client: Callable[..., tuple[TestClient, dict[str, str]]], tmp_path: Path
) -> None:
    client, headers = make_client(
        embedded_worker=False, max_upload_bytes=5000, max_chars_per_text=100
    )
    cases = {
        ("bad.csv", b"id,text\n1,hello\n2,caf\xe9 au lait\n"): (422, ["line 3", "UTF-8"]),
        ("cols.csv", b"id,content\n1,hello\n"): (422, ["no column 'text'", "'content'"]),
        ("empty.csv", b""): (422, ["empty"]),
        ("header.csv", b"id,text\n"): (422, ["no rows"]),
        ("blank.txt", b""): (422, ["empty"]),
        ("bad.jsonl", b'{"text": "ok"}\n{"text": \n'): (422, ["line 2", "not valid JSON"]),
        ("list.jsonl", b'["text"]\n'): (422, ["line 1", "JSON object"]),
        ("wrong.jsonl", b'{"text": 3}\n'): (422, ["line 1", "no text"]),
        ("extra.csv", b"id,text\n1,a,b\n"): (422, ["line 2", "more fields"]),
        ("long.txt", b"short\n" + b"x" * 101 + b"\n"): (422, ["line 2", "limit is 100"]),
        ("sheet.xlsx", b"PK\x03\x04"): (422, ["Unsupported file type '.xlsx'"]),
        ("big.txt", b"hello\n" * 1000): (413, ["larger than", "5,000 bytes"]),
    }
    for (name, data), (status, phrases) in cases.items():
        response = submit(client, headers, name, data)
        assert response.status_code == status, (name, response.text)
        detail = response.json()["detail"]
        for phrase in phrases:
            assert phrase in detail, (name, detail)
        assert "Traceback" not in detail
    # A UTF-8 byte-order mark (spreadsheet exports) does not hide the first column.
    assert submit(client, headers, "bom.csv", b"\xef\xbb\xbftext\nhi\n").status_code == 202
    # Nothing of the refused uploads is left behind, and the service keeps serving.
    assert len(list((tmp_path / "data" / "jobs").iterdir())) == 1
    assert client.get("/health").json() == {"status": "ok"}
    # No field at all: a validation error naming it.
    response = client.post("/v1/jobs", headers=headers, data={"text_column": "text"})
    assert response.status_code == 422
    assert "file" in response.json()["detail"]


def test_unreadable_uploads_are_422_not_400(
    make_client: Callable[..., tuple[TestClient, dict[str, str]]],
) -> None:
    """Bodies Starlette cannot parse as a form are validation errors, like README says."""
    client, headers = make_client(embedded_worker=False)
    cases = {
        "no boundary": ("multipart/form-data", b"--x\r\n"),
        "garbage": ("multipart/form-data; boundary=x", b"garbage"),
    }
    for what, (content_type, body) in cases.items():
        response = client.post(
            "/v1/jobs", headers={**headers, "Content-Type": content_type}, content=body
        )
        assert response.status_code == 422, (what, response.text)
        answer = response.json()
        assert "multipart/form-data" in answer["detail"], what
        assert "form field named file" in answer["detail"], what
        assert answer["errors"][0]["field"] == "body", what
    assert client.get("/health").status_code == 200


def test_job_lookup_errors_and_auth(
    make_client: Callable[..., tuple[TestClient, dict[str, str]]],
) -> None:
    client, headers = make_client(embedded_worker=False)
    for method, url in [
        ("post", "/v1/jobs"),
        ("get", "/v1/jobs"),
        ("get", "/v1/jobs/abc"),
        ("delete", "/v1/jobs/abc"),
        ("get", "/v1/jobs/abc/result"),
    ]:
        for bad in ({}, {"X-API-Key": "emorec_wrong"}):
            kwargs: dict[str, Any] = {"headers": bad}
            if method == "post":
                kwargs["files"] = {"file": ("a.txt", b"hi\n")}
            response = getattr(client, method)(url, **kwargs)
            assert response.status_code == 401, (url, bad)
            assert "API key" in response.json()["detail"]
    assert client.get("/v1/jobs/nope", headers=headers).status_code == 404
    assert "no job with id 'nope'" in client.get("/v1/jobs/nope", headers=headers).text
    assert client.get("/v1/jobs/nope/result", headers=headers).status_code == 404
    assert client.delete("/v1/jobs/nope", headers=headers).status_code == 404
    # Without a worker the job stays queued: its result is not there yet.
    job = submit(client, headers, "a.txt", b"hi\nthere\n").json()
    assert job["status"] == "queued"
    response = client.get(f"/v1/jobs/{job['id']}/result", headers=headers)
    assert response.status_code == 409
    assert "is queued (0 of 2 rows done)" in response.json()["detail"]


def test_jobs_are_listed_and_deleted(
    make_client: Callable[..., tuple[TestClient, dict[str, str]]], tmp_path: Path
) -> None:
    client, headers = make_client(embedded_worker=False)
    queue = client.app.state.service.jobs
    ids = [submit(client, headers, f"f{i}.txt", b"hi\nthere\n").json()["id"] for i in range(3)]
    queue.process_job(ids[0])  # done; the other two stay queued
    page = client.get("/v1/jobs", headers=headers).json()
    assert page["total"] == 3
    assert [item["id"] for item in page["items"]] == ids[::-1]  # newest first
    queued = client.get("/v1/jobs", params={"status": "queued"}, headers=headers).json()
    assert {item["id"] for item in queued["items"]} == set(ids[1:])
    second = client.get("/v1/jobs", params={"limit": 1, "offset": 1}, headers=headers).json()
    assert [item["id"] for item in second["items"]] == [ids[1]]
    assert (second["total"], second["limit"], second["offset"]) == (3, 1, 1)
    bad = client.get("/v1/jobs", params={"status": "lost"}, headers=headers)
    assert bad.status_code == 422

    job_dir = tmp_path / "data" / "jobs" / ids[0]
    assert (job_dir / "result.csv").is_file()
    assert client.delete(f"/v1/jobs/{ids[0]}", headers=headers).status_code == 204
    assert not job_dir.exists()
    assert client.get(f"/v1/jobs/{ids[0]}", headers=headers).status_code == 404
    with queue.sessions()() as session:
        assert session.scalar(select(func.count()).select_from(JobResult)) == 0
        assert session.scalar(select(func.count()).select_from(JobPart)) == 2
    # A queued job is cancelled: the task still on the queue finds nothing to do.
    assert client.delete(f"/v1/jobs/{ids[1]}", headers=headers).status_code == 204
    queue.process_job(ids[1])
    assert client.get(f"/v1/jobs/{ids[1]}", headers=headers).status_code == 404
    assert client.get("/v1/jobs", headers=headers).json()["total"] == 1


def test_deleting_a_running_job_cancels_it(
    make_client: Callable[..., tuple[TestClient, dict[str, str]]], tmp_path: Path
) -> None:
    client, headers = make_client(job_chunk_size=2, job_chunk_pause_seconds=0.2)
    queue = client.app.state.service.jobs
    job = submit(client, headers, "t.csv", csv_bytes(TEXTS)).json()

    def rows_done() -> int:
        return client.get(f"/v1/jobs/{job['id']}", headers=headers).json().get("rows_done", 0)

    wait_for(lambda: 0 < rows_done() < len(TEXTS), 30, "the job to be part-way")
    assert client.delete(f"/v1/jobs/{job['id']}", headers=headers).status_code == 204
    time.sleep(0.6)  # the worker's next chunk finds its part gone and stops
    assert client.get(f"/v1/jobs/{job['id']}", headers=headers).status_code == 404
    assert not (tmp_path / "data" / "jobs" / job["id"]).exists()
    with queue.sessions()() as session:
        assert session.scalar(select(func.count()).select_from(JobResult)) == 0
    # The worker goes on with the next job.
    other = submit(client, headers, "u.txt", b"one\ntwo\n").json()
    assert finished(client, headers, other["id"])["rows_done"] == 2


def test_an_unreachable_queue_is_a_503_and_leaves_nothing(
    make_client: Callable[..., tuple[TestClient, dict[str, str]]], tmp_path: Path
) -> None:
    client, headers = make_client(
        embedded_worker=False, queue_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    response = submit(client, headers, "a.txt", b"hi\n")
    assert response.status_code == 503
    assert "job queue is not reachable right now" in response.json()["detail"]
    assert list((tmp_path / "data" / "jobs").iterdir()) == []
    with client.app.state.service.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_jobs_survive_a_restart_of_the_server(
    make_client: Callable[..., tuple[TestClient, dict[str, str]]],
    classifier: EmotionClassifier,
) -> None:
    client, headers = make_client(embedded_worker=False)
    job = submit(client, headers, "later.csv", csv_bytes(TEXTS)).json()
    client.__exit__(None, None, None)  # the server stops with the job still queued
    # The same data dir and database, now with the embedded worker: it finds the queued job.
    client, headers = make_client()
    status = finished(client, headers, job["id"])
    assert status["rows_done"] == len(TEXTS)
    rows = list(csv.DictReader(io.StringIO(client.get(status["result_url"], headers=headers).text)))
    assert [row["pred_label"] for row in rows] == labels_of(predict_each(classifier, TEXTS))


def test_a_failing_job_is_reported_and_not_retried(
    make_client: Callable[..., tuple[TestClient, dict[str, str]]], tmp_path: Path
) -> None:
    client, headers = make_client(embedded_worker=False)
    job = submit(client, headers, "a.txt", b"hi\nthere\n").json()
    # A worker that does not share the API's data directory cannot find the upload.
    (tmp_path / "data" / "jobs" / job["id"] / "input.txt").unlink()
    queue = client.app.state.service.jobs
    queue.process_job(job["id"])
    status = client.get(f"/v1/jobs/{job['id']}", headers=headers).json()
    assert status["status"] == "failed"
    assert "EMOREC_DATA_DIR" in status["error"]
    assert status["finished_at"] is not None
    response = client.get(f"/v1/jobs/{job['id']}/result", headers=headers)
    assert response.status_code == 409
    assert "failed" in response.json()["detail"]
    queue.process_job(job["id"])  # a duplicate task finds the job finished and does nothing
    assert client.get(f"/v1/jobs/{job['id']}", headers=headers).json() == status
    assert queue.requeue_stale_jobs(at_start=True) == []  # a failed job is not picked up again


JOB_TEXTS = ["i am so happy", "this makes me furious", "i am scared of the dark", "i love it"]


def test_job_rows_join_the_history_and_statistics(
    make_client: Callable[..., tuple[TestClient, dict[str, str]]],
    classifier: EmotionClassifier,
    tmp_path: Path,
) -> None:
    client, headers = make_client(embedded_worker=False, job_chunk_size=3)
    queue = client.app.state.service.jobs
    job = submit(client, headers, "rows.csv", csv_bytes(JOB_TEXTS)).json()
    assert client.get("/v1/history", headers=headers).json()["total"] == 0
    queue.process_job(job["id"])
    queue.process_job(job["id"])  # a duplicate task adds nothing
    history = client.get("/v1/history", headers=headers).json()
    assert history["total"] == len(JOB_TEXTS)
    expected = {p.text: p.label for p in classifier.predict(JOB_TEXTS)}
    assert {item["text"]: item["label"] for item in history["items"]} == expected
    stats = client.get("/v1/stats", headers=headers).json()
    assert stats["total"] == len(JOB_TEXTS)
    assert sum(stats["counts"].values()) == len(JOB_TEXTS)
    for label in classifier.labels:
        assert stats["counts"][label] == list(expected.values()).count(label)

    # Off by setting: EMOREC_JOB_HISTORY=false, or no history at all.
    for n, off in enumerate(({"job_history": False}, {"store_history": False})):
        other, other_headers = make_client(
            embedded_worker=False, database_url=f"sqlite:///{tmp_path / f'off{n}.db'}", **off
        )
        job = submit(other, other_headers, "rows.csv", csv_bytes(JOB_TEXTS)).json()
        other.app.state.service.jobs.process_job(job["id"])
        assert other.get(f"/v1/jobs/{job['id']}", headers=other_headers).json()["status"] == "done"
        assert other.get("/v1/history", headers=other_headers).json()["total"] == 0, off


def test_job_history_setting_from_the_environment(
    tiny_classifier_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emorec.service.settings import load_settings

    assert load_settings(model_dir=tiny_classifier_dir).job_history is True
    monkeypatch.setenv("EMOREC_JOB_HISTORY", "false")
    assert load_settings(model_dir=tiny_classifier_dir).job_history is False


@pytest.mark.parametrize(("level", "shown"), [("info", False), ("debug", True)])
def test_huey_routine_lines_stay_out_of_the_default_log(
    level: str,
    shown: bool,
    tiny_classifier_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The minutely stale-job check made Huey log three INFO lines a minute."""
    import datetime as dt
    import logging

    settings = ServiceSettings(
        model_dir=tiny_classifier_dir,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'quiet.db'}",
        log_level=level,
    )
    upgrade_database(settings.db_url)
    queue = JobQueue(settings)
    worker = start_embedded_consumer(queue)
    try:
        with caplog.at_level(logging.DEBUG if shown else logging.INFO):
            # What the consumer's scheduler and worker do every minute.
            (periodic,) = queue.huey.read_periodic(dt.datetime(2030, 1, 1, 12, 0))
            logging.getLogger("huey.consumer.Scheduler").info("Enqueueing periodic task %s.", 1)
            queue.huey.execute(periodic)
            logging.getLogger("huey").warning("a warning")
        huey_lines = [r for r in caplog.records if r.name.startswith("huey")]
        assert any(r.levelno == logging.WARNING for r in huey_lines)
        assert any(r.levelno == logging.INFO for r in huey_lines) == shown, huey_lines
    finally:
        worker.stop()
        queue.close()
        logging.getLogger("huey").setLevel(logging.NOTSET)


def test_multilabel_job_run_by_the_task_directly(
    tiny_multilabel_classifier_dir: Path, tmp_path: Path
) -> None:
    settings = ServiceSettings(
        model_dir=tiny_multilabel_classifier_dir,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'ml.db'}",
        job_chunk_size=3,
    )
    upgrade_database(settings.db_url)
    queue = JobQueue(settings)
    lines = [json.dumps({"text": t}, ensure_ascii=False) for t in TEXTS]
    job = queue.submit(io.BytesIO("\n".join(lines).encode("utf-8")), "many.jsonl")
    queue.process_job(job.id)  # what a worker runs for the queued task
    done = queue.get(job.id)
    assert done is not None and done.status == "done" and done.rows_done == len(TEXTS)
    path = queue.result_file(done)
    assert path is not None
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    multilabel = EmotionClassifier.from_pretrained(tiny_multilabel_classifier_dir)
    expected = predict_each(multilabel, TEXTS)
    assert [r["text"] for r in rows] == TEXTS
    assert [r["pred_labels"] for r in rows] == [[] if p is None else p.labels for p in expected]
    assert [r["pred_label"] for r in rows] == labels_of(expected, empty=None)
    assert [r["pred_error"] is None for r in rows] == [p is not None for p in expected]
    queue.close()


def test_worker_command_explains_bad_settings(tiny_classifier_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from emorec.cli import app

    runner = CliRunner()
    env = {"EMOREC_DATA_DIR": str(tmp_path / "data"), "EMOREC_DATABASE_URL": ""}
    model = str(tiny_classifier_dir)
    secret_redis = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    cases = [
        (["--queue-url", "http://queue"], "queue_url must be a Redis URL"),
        (["--queue-url", secret_redis], "The job queue (redis://:***@127.0.0.1"),
        (["--database-url", "nope://x"], "The database URL is not usable"),
        (["--workers", "0"], "Invalid value for '--workers'"),
    ]
    for options, message in cases:
        result = runner.invoke(app, ["worker", model, *options], env=env)
        assert result.exit_code == 2, (options, result.output)
        output = " ".join(result.output.split())
        assert message in output, (options, output)
        assert "hunter2" not in output
        assert "Traceback" not in output


def result_indexes(queue: JobQueue, job_id: str) -> list[int]:
    with queue.sessions()() as session:
        return list(
            session.scalars(
                select(JobResult.row_index)
                .where(JobResult.job_id == job_id)
                .order_by(JobResult.row_index)
            )
        )


# ---- workers as separate processes, killed mid-job ---------------------------------------
def start_worker(model_dir: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    # Its own session, so the whole process group (the consumer and its forked worker) can be
    # killed at once, as when a machine dies.
    return subprocess.Popen(
        [sys.executable, "-m", "emorec.cli", "worker", str(model_dir)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def killed_worker_scenario(
    settings: ServiceSettings,
    model_dir: Path,
    tmp_path: Path,
    env_extra: dict[str, str],
    stop_signal: signal.Signals,
    kill_group: bool,
) -> None:
    n_rows = 60
    texts = [f"text number {i}, {TEXTS[i % len(TEXTS)]}" for i in range(n_rows)]
    upgrade_database(settings.db_url)
    queue = JobQueue(settings)
    queue.huey.flush()  # the Redis queue is shared by the session's tests
    job = queue.submit(io.BytesIO(csv_bytes(texts)), "input.csv")
    sessions = queue.sessions()

    def read_job() -> Job:
        with sessions() as session:
            found = session.get(Job, job.id)
            assert found is not None
            return found

    env = {
        **os.environ,
        "EMOREC_DATA_DIR": str(settings.data_dir),
        "EMOREC_DATABASE_URL": settings.db_url,
        "EMOREC_JOB_CHUNK_SIZE": "2",
        "EMOREC_JOB_LEASE_SECONDS": "2",
        "EMOREC_JOB_CHUNK_PAUSE_SECONDS": "0.15",
        **env_extra,
    }
    log = tmp_path / "worker.log"
    first = start_worker(model_dir, env, log)
    try:
        wait_for(lambda: read_job().rows_done > 0, 60, "the first worker to commit a chunk")
    finally:
        if kill_group:  # the machine dies
            os.killpg(first.pid, signal.SIGKILL)
        else:  # only the consumer is killed: its forked worker must exit by itself
            first.kill()
        first.wait(10)
    wait_for(lambda: not group_alive(first.pid), 10, "the worker processes to exit")
    if not kill_group:
        assert "its consumer is gone; exiting" in log.read_text()
    killed_at = read_job()
    assert killed_at.status == "running"
    assert 0 < killed_at.rows_done < n_rows, "the job ended before the kill; slow it down"

    second = start_worker(model_dir, env, log)
    try:
        # The second worker continues after the last committed chunk; stopped part-way (SIGINT:
        # gracefully after its chunk, SIGTERM: at once) it hands the job back to the queue.
        wait_for(lambda: read_job().rows_done > killed_at.rows_done + 2, 60, "the second worker")
        os.kill(second.pid, stop_signal)
        assert second.wait(30) == 0
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
    handed_back = read_job()
    assert handed_back.status == "queued", handed_back.status
    assert killed_at.rows_done < handed_back.rows_done < n_rows
    text = log.read_text()
    assert f"{killed_at.rows_done} of {n_rows} rows done; continuing" in text
    assert "handed back to the queue" in text

    # An embedded worker (as in `emorec serve`) picks the job up from the queue and ends it.
    worker = start_embedded_consumer(queue)
    try:
        wait_for(lambda: read_job().status == "done", 60, "the embedded worker to finish")
    finally:
        worker.stop()

    done = read_job()
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(JobResult)) == n_rows
    assert result_indexes(queue, job.id) == list(range(n_rows))
    path = queue.result_file(done)
    assert path is not None
    rows = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    assert [row["id"] for row in rows] == [str(i) for i in range(n_rows)]
    assert [row["text"] for row in rows] == texts
    assert all(row["pred_label"] for row in rows)
    queue.close()


def test_job_survives_killed_worker_sqlite(tiny_classifier_dir: Path, tmp_path: Path) -> None:
    settings = ServiceSettings(
        model_dir=tiny_classifier_dir,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
    )
    killed_worker_scenario(
        settings, tiny_classifier_dir, tmp_path, {}, signal.SIGINT, kill_group=False
    )


def test_job_survives_killed_worker_redis_postgres(
    tiny_classifier_dir: Path, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    settings = ServiceSettings(
        model_dir=tiny_classifier_dir,
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        queue_url=redis_url,
        job_part_rows=16,  # four parts: the killed and the stopped worker each leave one behind
    )
    env = {"EMOREC_QUEUE_URL": redis_url, "EMOREC_JOB_PART_ROWS": "16"}
    killed_worker_scenario(
        settings, tiny_classifier_dir, tmp_path, env, signal.SIGTERM, kill_group=True
    )


def test_two_workers_share_one_job(tiny_classifier_dir: Path, tmp_path: Path) -> None:
    settings = ServiceSettings(
        model_dir=tiny_classifier_dir,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
        job_part_rows=6,
    )
    n_rows = 48
    texts = [f"row {i}: {TEXTS[i % len(TEXTS)]}" for i in range(n_rows)]
    upgrade_database(settings.db_url)
    queue = JobQueue(settings)
    job = queue.submit(io.BytesIO(csv_bytes(texts)), "big.csv")
    with queue.sessions()() as session:
        parts = session.execute(
            select(JobPart.start_row, JobPart.stop_row).order_by(JobPart.part_index)
        ).all()
    assert [tuple(p) for p in parts] == [(i, min(i + 6, n_rows)) for i in range(0, n_rows, 6)]
    assert queue.huey.pending_count() == len(parts)  # a task per part

    env = {
        **os.environ,
        "EMOREC_DATA_DIR": str(settings.data_dir),
        "EMOREC_DATABASE_URL": settings.db_url,
        "EMOREC_JOB_CHUNK_SIZE": "2",
        "EMOREC_JOB_PART_ROWS": "6",
        # Long enough (8 parts × 3 chunks) that the second process joins before the first is done.
        "EMOREC_JOB_CHUNK_PAUSE_SECONDS": "0.2",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "emorec.cli", "worker", str(tiny_classifier_dir), "--workers", "2"],
        env=env,
        stdout=(tmp_path / "worker.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def read_job() -> Job:
        found = queue.get(job.id)
        assert found is not None
        return found

    try:
        wait_for(lambda: read_job().status == "done", 120, "the two workers to finish")
    finally:
        os.killpg(worker.pid, signal.SIGINT)
        worker.wait(30)
    with queue.sessions()() as session:
        owners = set(session.scalars(select(JobPart.lease_owner)))
        statuses = set(session.scalars(select(JobPart.status)))
    assert statuses == {"done"}
    assert len(owners) >= 2, f"one worker did every part: {owners}"  # both processes took parts
    assert result_indexes(queue, job.id) == list(range(n_rows))
    done = read_job()
    assert done.rows_done == n_rows
    path = queue.result_file(done)
    assert path is not None
    rows = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    assert [row["text"] for row in rows] == texts
    queue.close()


def test_an_unfinished_job_of_the_previous_schema_resumes_after_upgrade(
    tiny_classifier_dir: Path, tmp_path: Path, classifier: EmotionClassifier
) -> None:
    from sqlalchemy import text

    from emorec.service.db import make_engine

    settings = ServiceSettings(
        model_dir=tiny_classifier_dir,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'old.db'}",
        job_chunk_size=3,
    )
    # A job half done by a worker of revision 0002 (one lease per job, no parts).
    upgrade_database(settings.db_url, "0002_jobs")
    job_dir = settings.data_dir / "jobs" / "old"
    job_dir.mkdir(parents=True)
    (job_dir / "input.txt").write_text("\n".join(TEXTS[:7]) + "\n", encoding="utf-8")
    engine = make_engine(settings.db_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO jobs (id, created_at, updated_at, status, filename, input_format, "
                "text_column, rows_total, rows_done, lease_owner, lease_until) VALUES ('old', "
                "'2026-11-22 10:00:00', '2026-11-22 10:00:00', 'running', 'old.txt', 'txt', "
                "'text', 7, 3, 'gone', '2026-11-22 10:01:00')"
            )
        )
        first_label = classifier.labels[0]
        kept = {
            "label": first_label,
            "labels": [first_label],
            "scores": {name: float(name == first_label) for name in classifier.labels},
        }
        connection.execute(
            text("INSERT INTO job_results (job_id, row_index, result) VALUES ('old', :i, :r)"),
            [{"i": i, "r": json.dumps(kept)} for i in range(3)],
        )
    engine.dispose()

    upgrade_database(settings.db_url)
    queue = JobQueue(settings)
    with queue.sessions()() as session:
        part = session.get(JobPart, ("old", 0))
        assert part is not None
        assert (part.start_row, part.stop_row, part.rows_done, part.status) == (0, 7, 3, "queued")
    assert queue.requeue_stale_jobs(at_start=True) == ["old"]
    queue.process_job("old")
    done = queue.get("old")
    assert done is not None and done.status == "done" and done.rows_done == 7
    assert result_indexes(queue, "old") == list(range(7))
    path = queue.result_file(done)
    assert path is not None
    rows = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    assert [row["text"] for row in rows] == TEXTS[:7]
    # The three rows classified before the upgrade were kept, not redone.
    probability = f"prob_{first_label}"
    assert [row[probability] for row in rows[:3]] == ["1.000000"] * 3
    assert all(row[probability] != "1.000000" for row in rows[3:])  # classified by the model
    queue.close()


def test_rows_that_cannot_be_classified_get_an_error_and_the_rest_results(
    make_client: Callable[..., tuple[TestClient, dict[str, str]]],
    classifier: EmotionClassifier,
) -> None:
    client, headers = make_client(embedded_worker=False, job_chunk_size=3)
    queue = client.app.state.service.jobs
    texts = ["i am so happy", "i am happy \ud800", " \t ", "the storm scared me", "i love it"]
    # json.dumps writes the lone surrogate as the escape \ud800, as a client would.
    jsonl = "".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts))
    job = submit(client, headers, "mixed.jsonl", jsonl.encode("ascii")).json()
    queue.process_job(job["id"])
    status = client.get(f"/v1/jobs/{job['id']}", headers=headers).json()
    assert status["status"] == "done", status
    assert status["rows_done"] == len(texts)
    result = client.get(status["result_url"], headers=headers)
    rows = [json.loads(line) for line in result.text.splitlines()]
    assert [(r["n"], r["text"]) for r in rows] == list(enumerate(texts))  # surrogate row too
    valid = [0, 3, 4]
    expected = classifier.predict([texts[i] for i in valid])
    assert [rows[i]["pred_label"] for i in valid] == [p.label for p in expected]
    assert all(rows[i]["pred_error"] is None for i in valid)
    assert rows[1]["pred_error"].startswith("the text contains a lone surrogate (U+D800")
    assert rows[2]["pred_error"].startswith("the text holds only whitespace")
    assert rows[1]["pred_label"] is None and rows[1]["scores"] is None
    # Only the classified rows join the history.
    history = client.get("/v1/history", headers=headers).json()
    assert sorted(item["text"] for item in history["items"]) == sorted(texts[i] for i in valid)

    # TXT: a blank line keeps its row (the output lines up with the input) and gets an error.
    job = submit(client, headers, "lines.txt", b"so happy\n\nso sad\n").json()
    queue.process_job(job["id"])
    status = client.get(f"/v1/jobs/{job['id']}", headers=headers).json()
    rows = list(csv.DictReader(io.StringIO(client.get(status["result_url"], headers=headers).text)))
    assert [r["text"] for r in rows] == ["so happy", "", "so sad"]
    assert [bool(r["pred_label"]) for r in rows] == [True, False, True]
    assert rows[1]["pred_error"].startswith("the text is empty") and rows[1]["prob_joy"] == ""

    # A chunk in which every row is refused (here the whole job) still ends done, row by row.
    job = submit(client, headers, "blank.jsonl", b'{"text": ""}\n{"text": "  "}\n').json()
    queue.process_job(job["id"])
    status = client.get(f"/v1/jobs/{job['id']}", headers=headers).json()
    assert status["status"] == "done", status
    rows = [
        json.loads(line)
        for line in client.get(status["result_url"], headers=headers).text.splitlines()
    ]
    assert [r["pred_label"] for r in rows] == [None, None]
    assert rows[0]["pred_error"].startswith("the text is empty")


def test_api_and_workers_name_the_model_alike(tmp_path: Path) -> None:
    """History rows of /v1/predict and of jobs must count one model under one name."""
    from emorec.service.db import model_name

    real = tmp_path / "models" / "dair-emotion"
    real.mkdir(parents=True)
    link = tmp_path / "current"
    link.symlink_to(real)
    assert model_name(real) == model_name(link) == model_name(f"{real}/") == "dair-emotion"
