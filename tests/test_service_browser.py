"""The dashboard in a real headless Chromium, against a real ``emorec serve`` process.

Debian's ``chromium`` is driven by Playwright (``executable_path``: no downloaded browser).
Where Chromium is missing the tests are skipped with the reason, except under CI (``CI`` set),
where that is a failure.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import LABELS
from .servers import free_port

EMOREC = str(Path(sys.executable).with_name("emorec"))
# Markup that would run script if the page ever inserted user text as HTML.
HOSTILE = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the browser test.")
        pytest.skip(message)
    return found


@dataclass
class Service:
    base: str
    key: str
    log: Path


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, tiny_classifier_dir: Path
) -> Iterator[Service]:
    """``emorec serve`` on a free port with its embedded job worker and an API key."""
    work = tmp_path_factory.mktemp("browser-service")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOREC_")}
    env.pop("DATABASE_URL", None)
    env.update(
        EMOREC_DATA_DIR=str(work / "data"),
        EMOREC_EMBEDDED_WORKER="true",
        # Small chunks, so a 30-row upload reports progress more than once.
        EMOREC_JOB_CHUNK_SIZE="8",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    created = subprocess.run(
        [EMOREC, "apikey", "create", "browser-test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r"^emorec_[A-Za-z0-9_-]+$", created.stdout, re.MULTILINE)
    assert created.returncode == 0 and match, created.stdout + created.stderr
    port = free_port()
    log = work / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [EMOREC, "serve", str(tiny_classifier_dir), "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, log)
        yield Service(base, match.group(0), log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(base: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"emorec serve exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.25)
    pytest.fail(f"emorec serve was not ready within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser(service: Service) -> Iterator[Any]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


# Recorded before any script of the page runs (Playwright's init scripts are not subject to
# the page's CSP): every Content-Security-Policy violation, with what was blocked.
RECORD_CSP_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@dataclass
class Watched:
    """A page and what went wrong on it: script errors, console errors, CSP violations."""

    page: Any
    errors: list[str]
    console: list[str]

    def check(self) -> None:
        violations = self.page.evaluate("window.__csp")
        assert not self.errors, f"script errors in the page: {self.errors}"
        assert violations == [], f"Content-Security-Policy violations: {violations}"
        assert not self.console, f"console errors: {self.console}"


def _watched_page(browser: Any) -> tuple[Any, Watched]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(30_000)
    # expect() has its own clock (5 s by default): an explanation on a busy 2-core CI machine
    # can take longer than that, so assertions wait as long as actions do.
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    watched = Watched(page, [], [])
    page.on("pageerror", lambda error: watched.errors.append(str(error)))

    def on_console(message: Any) -> None:
        # An expected 401 (a wrong key) is logged by Chromium as a failed resource: not ours.
        if message.type == "error" and "Failed to load resource" not in message.text:
            watched.console.append(message.text)

    page.on("console", on_console)
    return context, watched


@pytest.fixture
def page(browser: Any, service: Service) -> Iterator[Any]:
    """A fresh page (own localStorage) on the dashboard; fails the test on any script error
    or Content-Security-Policy violation."""
    context, watched = _watched_page(browser)
    page = watched.page
    page.goto(f"{service.base}/")
    yield page
    xss = page.evaluate("window.__xss")
    try:
        watched.check()
    finally:
        context.close()
    assert xss is None, "user text was inserted as markup and ran"


def _save_key(page: Any, key: str) -> None:
    page.fill("#api-key", key)
    page.click("#api-key-save")


def test_analyse_shows_the_models_emotion(page: Any, service: Service) -> None:
    from playwright.sync_api import expect

    text = f"i feel so happy and thrilled today {HOSTILE}"
    expect(page.locator("#model-status")).to_contain_text("4 emotions")
    page.fill("#text-input", text)
    page.uncheck("#store-input")
    page.click("#analyse-button")

    label = page.locator("#predicted-label")
    expect(label).to_have_text(re.compile("|".join(LABELS)))
    # The explanation is the user's text, verbatim (tags included), with words highlighted.
    expect(page.locator("#explanation .w").first).to_be_visible()
    assert page.locator("#explanation").text_content() == text
    assert page.locator("#explanation img, #explanation script").count() == 0
    # The page shows what the API decides for the same text.
    api = httpx.post(
        f"{service.base}/v1/predict", json={"texts": [text], "store": False}, timeout=30
    ).json()["predictions"][0]
    assert label.text_content() == api["label"]
    rows = page.locator("#prediction .bar-row")
    expect(rows).to_have_count(len(LABELS))
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.label)") == [
        s["label"] for s in api["scores"]
    ]
    # Each bar is the API's score ({"label", "score"}) of its emotion.
    shown = rows.evaluate_all("rs => rs.map(r => Number(r.getAttribute('aria-valuenow')))")
    assert shown == pytest.approx([s["score"] for s in api["scores"]], abs=1e-6)
    decided = page.locator("#prediction .bar-row.decided")
    expect(decided).to_have_count(1)
    assert decided.get_attribute("data-label") == api["label"]


def test_highlights_are_the_words_typed_after_an_emoji(page: Any) -> None:
    from playwright.sync_api import expect

    # The API counts code points, a JavaScript string UTF-16 units: before the fix, every
    # highlight after the emoji was shifted ('nervou|s', 'tomorro w'), and the words cleaning
    # rewrote (loooove, the emoji, ':(') were never highlighted.
    text = "i loooove this song 😍 ... so nervous about tomorrow :("
    page.fill("#text-input", text)
    page.uncheck("#store-input")
    page.click("#analyse-button")

    highlights = page.locator("#explanation .w")
    expect(highlights).to_have_count(len(text.split()))
    assert highlights.all_text_contents() == text.split()
    assert page.locator("#explanation").text_content() == text
    sad = highlights.filter(has_text=":(")
    assert "read as “sad”" in (sad.get_attribute("title") or "")
    emoji = highlights.filter(has_text="😍")
    assert "read as “smiling face with heart-eyes”" in (emoji.get_attribute("title") or "")


def test_upload_runs_a_job_and_downloads_the_result(page: Any, service: Service) -> None:
    from playwright.sync_api import expect

    rows = [(i, f'text {i}, with a comma and "quotes" {HOSTILE}') for i in range(30)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "text"])
    writer.writerows(rows)
    _save_key(page, service.key)
    page.set_input_files(
        "#file-input",
        files=[
            {"name": "tweets.csv", "mimeType": "text/csv", "buffer": buffer.getvalue().encode()}
        ],
    )
    page.click("#upload-button")

    expect(page.locator("#job-id")).to_have_text(re.compile(r"\S+"))
    expect(page.locator("#job-status")).to_have_text("done")
    expect(page.locator("#job-rows")).to_have_text("30 of 30")
    download_link = page.locator("#job-download")
    expect(download_link).to_be_visible()
    with page.expect_download() as download:
        download_link.click()
    assert download.value.suggested_filename == "tweets.emotions.csv"
    result = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [int(r["id"]) for r in result] == [i for i, _ in rows]
    assert [r["text"] for r in result] == [t for _, t in rows]
    assert all(r["pred_label"] in LABELS for r in result)


def test_history_and_analytics_show_stored_predictions(page: Any, service: Service) -> None:
    from playwright.sync_api import expect

    texts = [f"history entry {i} {HOSTILE}" for i in range(3)]
    stored = httpx.post(
        f"{service.base}/v1/predict", json={"texts": texts, "store": True}, timeout=30
    ).json()["predictions"]
    wanted = stored[0]["label"]

    _save_key(page, service.key)
    table = page.locator("#history-table tbody")
    for text in texts:
        expect(table).to_contain_text(text)
    # The probability column is the stored top emotion's score.
    first = stored[0]
    top = next(s["score"] for s in first["scores"] if s["label"] == first["label"])
    expect(table.locator("tr", has_text=texts[0]).first.locator("td.num")).to_have_text(
        f"{top:.2f}"
    )
    filtered = httpx.get(
        f"{service.base}/v1/history",
        params={"label": wanted},
        headers={"X-API-Key": service.key},
        timeout=30,
    ).json()["total"]
    page.select_option("#history-label", wanted)
    expect(page.locator("#history-info")).to_have_text(re.compile(f" of {filtered}$"))
    expect(table.locator(".chip").filter(has_not_text=wanted)).to_have_count(0)
    assert table.locator(".chip").count() >= 1

    stats = httpx.get(
        f"{service.base}/v1/stats", headers={"X-API-Key": service.key}, timeout=30
    ).json()
    page.select_option("#stats-range", "")  # all time, as the API call above
    expect(page.locator("#stats-total")).to_have_text(f"{stats['total']} texts")
    expect(page.locator("#chart-distribution svg")).to_be_visible()
    expect(page.locator("#chart-timeline svg rect").first).to_be_attached()


def test_a_wrong_key_is_reported_with_the_services_message(page: Any, service: Service) -> None:
    from playwright.sync_api import expect

    _save_key(page, "emorec_not-a-real-key")
    message = page.locator("#history-message")
    expect(message).to_be_visible()
    detail = httpx.get(
        f"{service.base}/v1/history", headers={"X-API-Key": "emorec_not-a-real-key"}, timeout=30
    ).json()["detail"]
    expect(message).to_contain_text(detail)
    expect(message).to_contain_text("emorec apikey create")


def test_an_oversized_text_shows_the_services_limit(page: Any, service: Service) -> None:
    from playwright.sync_api import expect

    text = "so happy " * 1000  # 9,000 characters: over the default limit of 5,000
    answer = httpx.post(f"{service.base}/v1/predict", json={"texts": [text]}, timeout=30)
    assert answer.status_code == 413
    page.fill("#text-input", text)
    page.click("#analyse-button")
    message = page.locator("#analyse-message")
    expect(message).to_contain_text(answer.json()["detail"])
    expect(message).to_contain_text("Too large")
    # The page keeps working: a normal text is analysed after the refusal.
    page.fill("#text-input", "i feel scared")
    page.click("#analyse-button")
    expect(page.locator("#predicted-label")).to_have_text(re.compile("|".join(LABELS)))
    expect(message).to_be_hidden()


def test_dashboard_is_served_with_a_strict_csp(browser: Any, service: Service) -> None:
    """The page works under its policy and the policy forbids inline script, so injected
    markup could not run even if it got in."""
    from playwright.sync_api import expect

    policy = httpx.get(f"{service.base}/", timeout=30).headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    context, watched = _watched_page(browser)
    page = watched.page
    try:
        page.goto(f"{service.base}/")
        expect(page.locator("#model-status")).to_contain_text("4 emotions")
        watched.check()  # the dashboard itself violates nothing
        injected = page.evaluate(
            """() => new Promise((resolve) => {
                const script = document.createElement("script");
                script.textContent = "window.__injected = 1";
                document.body.append(script);
                setTimeout(() => resolve(window.__injected === 1 ? "ran" : "blocked"), 500);
            })"""
        )
        assert injected == "blocked"
        assert page.evaluate("window.__csp") == ["script-src-elem blocked inline"]
    finally:
        context.close()


def test_docs_draw_the_operations(browser: Any, service: Service) -> None:
    """Swagger UI renders the OpenAPI 3.1 document (4.x answered "Unable to render this
    definition"), offline and under its own CSP."""
    from playwright.sync_api import expect

    context, watched = _watched_page(browser)
    page = watched.page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(f"{service.base}/docs")
        predict = page.locator(".opblock.opblock-post").filter(
            has=page.locator('[data-path="/v1/predict"]')
        )
        expect(predict).to_be_visible()
        expect(page.locator(".opblock")).to_have_count(len(OPERATIONS))
        assert page.get_by_text("Unable to render this definition").count() == 0
        expect(page.locator(".info .title")).to_contain_text("emorec")
        # Opening an operation draws its request body schema.
        predict.locator(".opblock-summary").click()
        expect(predict.locator(".opblock-body")).to_contain_text("texts")
        watched.check()
    finally:
        context.close()
    assert requested and all(url.startswith(service.base) for url in requested), requested


OPERATIONS = [
    "/health",
    "/ready",
    "/v1/predict",
    "/v1/explain",
    "/v1/history",
    "/v1/stats",
    "POST /v1/jobs",
    "GET /v1/jobs",
    "DELETE /v1/jobs/{job_id}",
    "GET /v1/jobs/{job_id}",
    "/v1/jobs/{job_id}/result",
]


def _upload(service: Service, name: str, texts: list[str]) -> dict[str, Any]:
    data = "".join(f"{text}\n" for text in texts).encode()
    response = httpx.post(
        f"{service.base}/v1/jobs",
        headers={"X-API-Key": service.key},
        files={"file": (name, data)},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_dashboard_lists_the_jobs(page: Any, service: Service) -> None:
    from playwright.sync_api import expect

    texts = [f"line {i} of the listed job {HOSTILE}" for i in range(12)]
    # Upload names keep their last path component only, and httpx escapes quotes in them.
    name = "listed <img src=x onerror=window.__xss=3>"
    job = _upload(service, f"{name}.txt", texts)
    _save_key(page, service.key)
    row = page.locator(f'#jobs-table tr[data-job="{job["id"]}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text(f"{name}.txt")
    # The list follows the job until it is done, then offers its result.
    expect(row.locator(".badge")).to_have_text("done")
    expect(row).to_contain_text(f"{len(texts)} of {len(texts)}")
    listed = httpx.get(
        f"{service.base}/v1/jobs", params={"limit": 10}, headers={"X-API-Key": service.key}
    ).json()
    rows = page.locator("#jobs-table tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.job)") == [
        item["id"] for item in listed["items"]
    ]
    with page.expect_download() as download:
        row.locator("a.job-result").click()
    assert download.value.suggested_filename.endswith(".emotions.csv")
    result = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["text"] for r in result] == texts
    # Without a key the list asks for one instead.
    page.fill("#api-key", "")
    page.click("#api-key-save")
    expect(page.locator("#jobs-message")).to_contain_text("API key")
    expect(rows).to_have_count(0)


def test_server_log_names_its_database_and_hides_keys_in_urls(service: Service) -> None:
    secret = "emorec_SentInTheQueryString"
    rejected = httpx.get(f"{service.base}/v1/history", params={"api_key": secret}, timeout=30)
    assert rejected.status_code == 401
    keyed = httpx.post(
        f"{service.base}/v1/predict",
        params={"api_key": secret},
        json={"texts": ["hi"], "store": False},
        timeout=30,
    )
    assert keyed.status_code == 200
    time.sleep(0.5)  # the access log line follows the answer
    log = service.log.read_text()
    assert secret not in log
    assert "/v1/history?<hidden>" in log and "/v1/predict?<hidden>" in log
    database = service.log.parent / "data" / "emorec.db"
    assert f"database sqlite:///{database}" in log
    assert f"data dir {service.log.parent / 'data'}" in log
