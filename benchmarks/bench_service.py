"""Benchmark: the HTTP service under load, and a 100,000-line batch job.

    .venv/bin/python -m benchmarks.bench_service [--model-dir models/dair-emotion] [--duration 60]

Everything runs on 127.0.0.1, each server in its own process, with a fresh data directory
(SQLite database and queue, the defaults) per run:

* **predict**: for each backend (``torch``, ``onnx``; ``EMOREC_BACKEND``), ``emorec serve`` with
  one API worker and no embedded job worker, driven by ``wrk`` (a second process) with
  ``POST /v1/predict`` carrying one tweet-length text (the median-length text of --texts;
  the service's defaults otherwise, so each prediction is also stored in the history) at each
  concurrency (connections) for --duration seconds after a --warmup run. Recorded per backend
  and concurrency: requests/s, p50/p95/p99/max latency, errors (non-2xx responses + socket
  connect/read/write errors + timeouts). For ``onnx`` the model file that ``backend="onnx"``
  picks (int8 when exported, else fp32) is recorded.
* **batch**: for each worker count N, ``emorec serve`` (API only) plus ``emorec worker
  --workers N`` (--batch-backend), a small warm-up job per worker (so model loading is not
  timed), then one job of --batch-lines lines (the --texts texts cycled, TXT format) submitted
  over HTTP and polled until done: wall time (submission to done, from the job's own
  timestamps) and texts/s, and a check that the result has every row. The job is split into
  parts (``EMOREC_JOB_PART_ROWS``) that the N workers share; for N > 1 the same lines are also
  submitted as N separate jobs at once (``split_jobs``), for comparison.

Writes benchmarks/results/service.json (--output to change) with, per backend and
concurrency, ``rps``, ``p50_ms``, ``p95_ms``, ``p99_ms``, ``errors``, and the top-level
``onnx_c10_p99_ms``, ``total_errors``, ``batch_100k_seconds_1_worker``,
``batch_100k_seconds_2_workers`` (one job; named after 100k whatever --batch-lines is,
``batch_lines`` says how many it was) and ``batch_100k_split_seconds_2_workers``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks._common import write_result

EMOREC = str(Path(sys.executable).with_name("emorec"))
KEY_PATTERN = re.compile(r"emorec_[A-Za-z0-9_-]{20,}")

# wrk script: the POST body, per-thread non-2xx counts, and a JSON summary from done().
WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%(body)s]==]

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "non2xx": %%d, "connect": %%d, "read": %%d, '
    .. '"write": %%d, "timeout": %%d, "p50_us": %%.1f, "p95_us": %%.1f, "p99_us": %%.1f, '
    .. '"max_us": %%.1f, "mean_us": %%.1f}\\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""


# ---- inputs --------------------------------------------------------------------------------
def read_texts(path: Path) -> list[str]:
    """Texts of a dair-ai emotion split file (``text;label`` lines) or of a plain TXT file."""
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.rsplit(";", 1)[0] if ";" in line else line
        if text.strip():
            texts.append(text.strip())
    if not texts:
        raise SystemExit(f"{path} has no texts")
    return texts


def median_length_text(texts: list[str]) -> str:
    """The text of median length (a typical tweet-length input), first of its length."""
    target = statistics.median_low(len(t) for t in texts)
    return next(t for t in texts if len(t) == target)


def onnx_file_picked(model_dir: Path) -> str | None:
    """The ONNX model ``backend="onnx"`` (precision auto) loads: int8 when exported, else fp32."""
    from emorec.inference import ONNX_FILES

    return next((n for n in ONNX_FILES.values() if (model_dir / n).is_file()), None)


# ---- processes -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(data_dir: Path, backend: str, **extra: str) -> dict[str, str]:
    """Environment of a server or worker: its own data dir and backend, nothing inherited."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("EMOREC_") and key != "DATABASE_URL"
    }
    return {
        **env,
        "EMOREC_DATA_DIR": str(data_dir),
        "EMOREC_BACKEND": backend,
        "EMOREC_LOG_LEVEL": "warning",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


@contextmanager
def started(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Run ``command`` for the duration of the block; stopped with SIGINT, then SIGKILL."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_ready(base: str, process: subprocess.Popen, log: Path, timeout: float = 300) -> dict:
    """Poll ``/ready`` until it answers 200; fail with the server's log when it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited ({process.returncode}):\n{tail(log)}")
        try:
            response = httpx.get(f"{base}/ready", timeout=5)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.5)
    raise SystemExit(f"the server was not ready after {timeout:.0f} s:\n{tail(log)}")


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.is_file() else "(no log)"


def serve_command(model_dir: Path, port: int, api_workers: int) -> list[str]:
    return [
        *(EMOREC, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port)),
        *("--workers", str(api_workers)),
    ]


# ---- predict under load --------------------------------------------------------------------
def run_wrk(url: str, script: Path, connections: int, seconds: float, timeout: float) -> dict:
    """One wrk run; returns its JSON summary with rps, latencies in ms and the error count."""
    command = [
        *("wrk", "-t", "1", "-c", str(connections)),
        *("-d", f"{seconds:g}s", "--timeout", f"{timeout:g}s", "-s", str(script), url),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(lines[-1])
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1e3,
        "p95_ms": raw["p95_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3,
        "max_ms": raw["max_us"] / 1e3,
        "mean_ms": raw["mean_us"] / 1e3,
        "requests": raw["requests"],
        "errors": raw["non2xx"] + socket_errors,
        "error_breakdown": {
            "non_2xx": raw["non2xx"],
            **{k: raw[k] for k in ("connect", "read", "write", "timeout")},
        },
        "seconds": raw["duration_us"] / 1e6,
    }


def bench_predict(backend: str, text: str, args: argparse.Namespace, work: Path) -> dict:
    """Start a server with ``backend``; wrk it at every concurrency."""
    data_dir = work / f"predict-{backend}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    script = work / "predict.lua"
    body = json.dumps({"texts": [text]})
    if "]==]" in body:
        raise SystemExit("the request text contains ]==], which ends the Lua string")
    script.write_text(WRK_LUA % {"body": body})
    env = service_env(data_dir, backend, EMOREC_EMBEDDED_WORKER="false")
    log = work / f"serve-{backend}.log"
    command = serve_command(args.model_dir, port, args.api_workers)
    with started(command, env, log) as server:
        ready = wait_ready(base, server, log)
        if ready.get("backend") != backend:
            raise SystemExit(f"asked for backend {backend}, the server runs {ready.get('backend')}")
        check = httpx.post(
            f"{base}/v1/predict",
            content=body,
            timeout=30,
            headers={"Content-Type": "application/json"},
        )
        if check.status_code != 200:
            raise SystemExit(f"POST /v1/predict answered {check.status_code}: {check.text}")
        if args.warmup > 0:
            run_wrk(f"{base}/v1/predict", script, 10, args.warmup, args.wrk_timeout)
        by_concurrency = {}
        for connections in args.concurrency:
            result = run_wrk(
                f"{base}/v1/predict", script, connections, args.duration, args.wrk_timeout
            )
            by_concurrency[str(connections)] = result
            print(
                f"{backend:>5} c={connections:<3} {result['rps']:7.1f} req/s  "
                f"p50 {result['p50_ms']:6.1f}  p95 {result['p95_ms']:6.1f}  "
                f"p99 {result['p99_ms']:6.1f} ms  errors {result['errors']}",
                flush=True,
            )
        if server.poll() is not None:
            raise SystemExit(f"the server died during the run:\n{tail(log)}")
    return {
        "server_backend": ready.get("backend"),
        "onnx_file": onnx_file_picked(args.model_dir) if backend == "onnx" else None,
        "concurrency": by_concurrency,
    }


# ---- the batch job -------------------------------------------------------------------------
def create_api_key(env: dict[str, str]) -> str:
    done = subprocess.run(
        [EMOREC, "apikey", "create", "bench"], env=env, capture_output=True, text=True, check=False
    )
    match = KEY_PATTERN.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"`emorec apikey create` failed:\n{done.stdout}\n{done.stderr}")
    return match.group(0)


def submit(client: httpx.Client, path: Path) -> str:
    with path.open("rb") as handle:
        response = client.post("/v1/jobs", files={"file": (path.name, handle, "text/plain")})
    if response.status_code != 202:
        raise SystemExit(f"POST /v1/jobs answered {response.status_code}: {response.text}")
    return str(response.json()["id"])


def wait_done(client: httpx.Client, job_id: str, timeout: float, poll: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/v1/jobs/{job_id}").json()
        if status["status"] == "done":
            return status
        if status["status"] == "failed":
            raise SystemExit(f"job {job_id} failed: {status.get('error')}")
        time.sleep(poll)
    raise SystemExit(f"job {job_id} was not done after {timeout:.0f} s")


def count_result_rows(client: httpx.Client, job_id: str) -> int:
    """Data rows of the annotated CSV (header excluded), parsed so quoted newlines count once."""
    with client.stream("GET", f"/v1/jobs/{job_id}/result") as response:
        if response.status_code != 200:
            raise SystemExit(f"the result answered {response.status_code}")
        rows = csv.reader(response.iter_lines())
        next(rows, None)
        return sum(1 for _ in rows)


def write_lines(path: Path, texts: list[str], count: int, offset: int = 0) -> Path:
    """``count`` lines of ``texts`` (cycled from ``offset``), one per line: a TXT job input."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(offset, offset + count):
            out.write(texts[i % len(texts)] + "\n")
    return path


def run_jobs(client: httpx.Client, files: list[Path], timeout: float) -> dict:
    """Submit ``files`` together and wait for all; seconds from the first submission to the
    last finish (the jobs' own timestamps), and a check that every result has every row."""
    jobs = [submit(client, path) for path in files]
    statuses = [wait_done(client, job_id, timeout, 1.0) for job_id in jobs]
    first = min(datetime.fromisoformat(s["created_at"]) for s in statuses)
    last = max(datetime.fromisoformat(s["finished_at"]) for s in statuses)
    lines = 0
    for path, job_id, status in zip(files, jobs, statuses, strict=True):
        expected = sum(1 for _ in path.open(encoding="utf-8"))
        rows = count_result_rows(client, job_id)
        if rows != expected or status["rows_total"] != expected:
            raise SystemExit(
                f"job {job_id}: the result has {rows} rows (rows_total {status['rows_total']}); "
                f"expected {expected}"
            )
        lines += rows
    seconds = (last - first).total_seconds()
    return {"jobs": len(files), "lines": lines, "seconds": seconds, "texts_per_s": lines / seconds}


def bench_batch(workers: int, texts: list[str], args: argparse.Namespace, work: Path) -> dict:
    """API server + ``emorec worker --workers N``: one --batch-lines job, and (N > 1) the same
    lines as N jobs submitted together.

    One job is one queue task, processed by one worker process, so extra workers can only
    speed up several jobs at once; the split run measures that.
    """
    data_dir = work / f"batch-{workers}"
    data_dir.mkdir()
    env = service_env(data_dir, args.batch_backend, EMOREC_EMBEDDED_WORKER="false")
    key = create_api_key(env)
    whole = write_lines(data_dir / "batch.txt", texts, args.batch_lines)
    share = args.batch_lines // workers
    parts = [
        write_lines(
            data_dir / f"part-{i}.txt",
            texts,
            share + (args.batch_lines % workers if i == workers - 1 else 0),
            offset=i * share,
        )
        for i in range(workers)
    ]
    warmup = [write_lines(data_dir / f"warmup-{i}.txt", texts, 64) for i in range(workers)]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve_log = work / f"batch-{workers}-serve.log"
    worker_log = work / f"batch-{workers}-worker.log"
    worker_command = [EMOREC, "worker", str(args.model_dir), "--workers", str(workers)]
    with (
        started(serve_command(args.model_dir, port, 1), env, serve_log) as server,
        started(worker_command, env, worker_log) as worker,
        httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client,
    ):
        wait_ready(base, server, serve_log)
        # One small job per worker first, so that model loading is not timed.
        run_jobs(client, warmup, 600)
        single = run_jobs(client, [whole], args.batch_timeout)
        split = run_jobs(client, parts, args.batch_timeout) if workers > 1 else None
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited during the run:\n{tail(worker_log)}")
    print(
        f"batch {args.batch_lines} lines, {workers} worker(s): one job {single['seconds']:.1f} s "
        f"({single['texts_per_s']:.0f} texts/s)"
        + (
            f"; {workers} jobs {split['seconds']:.1f} s ({split['texts_per_s']:.0f} texts/s)"
            if split
            else ""
        ),
        flush=True,
    )
    return {"workers": workers, "one_job": single, "split_jobs": split}


# ---- the run -------------------------------------------------------------------------------
def int_list(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models/dair-emotion"))
    parser.add_argument(
        "--texts",
        type=Path,
        default=Path("../shared/data/dair-emotion/test.txt"),
        help="texts for the request body (the median-length one) and the batch job",
    )
    parser.add_argument("--backends", default="torch,onnx")
    parser.add_argument("--concurrency", type=int_list, default=[1, 10, 50])
    parser.add_argument("--duration", type=float, default=60, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of wrk before timing")
    parser.add_argument("--wrk-timeout", type=float, default=10, help="a request slower fails")
    parser.add_argument("--api-workers", type=int, default=1, help="`emorec serve --workers`")
    parser.add_argument("--batch-lines", type=int, default=100_000)
    parser.add_argument("--batch-workers", type=int_list, default=[1, 2])
    parser.add_argument("--batch-backend", default="onnx")
    parser.add_argument("--batch-timeout", type=float, default=3600)
    parser.add_argument("--skip-predict", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--output", default="service", help="results/<output>.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None and not args.skip_predict:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    if not (args.model_dir / "emorec.json").is_file():
        raise SystemExit(f"{args.model_dir} is not an emorec model directory")

    texts = read_texts(args.texts)
    text = median_length_text(texts)
    backends: dict[str, Any] = {}
    batch: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        work = Path(tmp)
        try:
            if not args.skip_predict:
                for backend in args.backends.split(","):
                    backends[backend] = bench_predict(backend, text, args, work)
            if not args.skip_batch:
                for workers in args.batch_workers:
                    batch[str(workers)] = bench_batch(workers, texts, args, work)
        except BaseException:
            for log in sorted(work.glob("*.log")):
                print(f"---- {log.name}\n{tail(log, 1500)}", file=sys.stderr)
            raise

    runs = [r for b in backends.values() for r in b["concurrency"].values()]

    def one_job(workers: str, key: str) -> float | None:
        return batch[workers]["one_job"][key] if workers in batch else None

    def split_jobs(workers: str, key: str) -> float | None:
        split = batch.get(workers, {}).get("split_jobs")
        return split[key] if split else None

    onnx_c10 = backends.get("onnx", {}).get("concurrency", {}).get("10")
    payload = {
        "model_dir": str(args.model_dir),
        "request": {"text": text, "chars": len(text), "body": {"texts": [text]}},
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "wrk_timeout_s": args.wrk_timeout,
        "api_workers": args.api_workers,
        "store_history": True,
        "backends": backends,
        "onnx_c10_p99_ms": onnx_c10["p99_ms"] if onnx_c10 else None,
        "total_errors": sum(r["errors"] for r in runs),
        "targets": {
            "zero_errors": all(r["errors"] == 0 for r in runs),
            "onnx_c10_p99_at_most_100ms": bool(onnx_c10 and onnx_c10["p99_ms"] <= 100),
        },
        "batch_lines": args.batch_lines,
        "batch_backend": args.batch_backend,
        "batch_format": "txt",
        "batch": batch,
        "batch_100k_seconds_1_worker": one_job("1", "seconds"),
        "batch_100k_seconds_2_workers": one_job("2", "seconds"),
        "batch_texts_per_s_1_worker": one_job("1", "texts_per_s"),
        "batch_texts_per_s_2_workers": one_job("2", "texts_per_s"),
        # The same lines as two jobs of half the size at once: what a second worker adds.
        "batch_100k_split_seconds_2_workers": split_jobs("2", "seconds"),
        "batch_split_texts_per_s_2_workers": split_jobs("2", "texts_per_s"),
    }
    path = write_result(args.output, payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
