"""Benchmark: CPU inference — transformers' pipeline vs emorec on PyTorch, ONNX fp32, ONNX int8.

    .venv/bin/python -m benchmarks.bench_inference [--model-dir models/dair-emotion] [--threads 2]

One run measures every variant on the same texts (default: the model's test split, for
dair-ai/emotion the 2,000 test rows) with the same thread count:

* ``pipeline``: ``transformers.pipeline("text-classification")`` on the same fine-tuned model,
  raw texts, ``batch_size=64`` (the baseline a user would write; argmax decisions);
* ``torch``, ``onnx-fp32``, ``onnx-int8``: ``EmotionClassifier.predict`` with that backend
  (cleaning, length-sorted batches of 64, calibrated decisions), ONNX models made by
  ``emorec export`` (transformer fusions, then per-channel dynamic int8) when missing.

Each variant runs in a fresh subprocess, so its peak RSS is its own. Reported per variant:
throughput (texts/s over all texts, median of --repeats passes), single-text latency (p50/p95
of --latency-calls calls on one text each), accuracy and macro-F1, peak RSS, load time, and the
share of time spent in the model itself. A thread sweep re-measures the fastest backend at
other thread counts. The compute limit is estimated from a GEMM of the encoder's shape timed
with ONNX Runtime (fp32 and int8) and the FLOPs per text; each variant's fraction of it is
reported. Writes benchmarks/results/inference.json (--results-name to change).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import write_result

VARIANTS = ("pipeline", "torch", "onnx-fp32", "onnx-int8")
EMOREC_VARIANTS = {
    "torch": ("torch", "auto"),
    "onnx-fp32": ("onnx", "fp32"),
    "onnx-int8": ("onnx", "int8"),
}
MAX_DROP = 0.5  # points: a faster backend only counts when it keeps accuracy and macro-F1


# ---- the texts -----------------------------------------------------------------------------
def load_texts(model_dir: Path, data: str | None, limit: int | None) -> tuple[list[str], list[str]]:
    """Texts and gold label names: ``--data`` file, else the test split of the model's config."""
    if data is not None:
        from emorec.data import read_file

        frame = read_file(Path(data), "auto")
        texts, labels = frame["text"].tolist(), [str(x) for x in frame["label"]]
    else:
        from emorec.config import load_config
        from emorec.data import prepare
        from emorec.modeling import load_tokenizer

        prepared = prepare(load_config(model_dir / "config.yaml"), load_tokenizer(str(model_dir)))
        names = json.loads((model_dir / "emorec.json").read_text())["label_space"]["names"]
        split = prepared.splits["test"]
        texts, labels = list(split["text"]), [names[i] for i in split["labels"]]
    return texts[:limit], labels[:limit]


# ---- one variant, in its own process -------------------------------------------------------
def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def _scores(predicted: list[str], gold: list[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, average="macro")),
    }


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one variant; called in a child process."""
    import torch

    payload = json.loads(Path(args.texts_file).read_text())
    texts, gold = payload["texts"], payload["labels"]
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model_seconds = 0.0
    if args.child == "pipeline":
        from transformers import pipeline

        config = json.loads((Path(args.model_dir) / "config.json").read_text())
        if config.get("emorec_head"):
            raise SystemExit("the pipeline baseline needs a model trained with model.head=auto")
        max_length = json.loads((Path(args.model_dir) / "emorec.json").read_text())["max_length"]
        pipe = pipeline("text-classification", model=args.model_dir, device=-1)
        options = {"truncation": True, "max_length": max_length}
        load_s = time.perf_counter() - started

        def classify(batch: list[str]) -> list[str]:
            return [r["label"] for r in pipe(batch, batch_size=args.batch_size, **options)]

        def classify_one(text: str) -> object:
            return pipe(text, **options)
    else:
        from emorec.inference import EmotionClassifier

        backend, precision = EMOREC_VARIANTS[args.child]
        clf = EmotionClassifier.from_pretrained(
            args.model_dir,
            backend=backend,  # type: ignore[arg-type]
            precision=precision,  # type: ignore[arg-type]
            num_threads=args.threads,
            batch_size=args.batch_size,
        )
        load_s = time.perf_counter() - started
        inner = clf.backend

        def timed(batch: dict[str, np.ndarray]) -> np.ndarray:
            nonlocal model_seconds
            tick = time.perf_counter()
            out = inner(batch)
            model_seconds += time.perf_counter() - tick
            return out

        timed.name = inner.name  # type: ignore[attr-defined]
        clf.backend = timed  # type: ignore[assignment]

        def classify(batch: list[str]) -> list[str]:
            return [p.label for p in clf.predict(batch)]  # type: ignore[misc]

        def classify_one(text: str) -> object:
            return clf.predict(text)

    classify(texts[: args.batch_size])  # warm-up: first-call allocations, lazy initialisation
    passes, shares, predicted = [], [], []
    for _ in range(args.repeats):
        model_seconds = 0.0
        tick = time.perf_counter()
        predicted = classify(texts)
        passes.append(time.perf_counter() - tick)
        shares.append(model_seconds / passes[-1])
    pass_s = statistics.median(passes)
    latencies = []
    for i in range(args.latency_calls + 10):
        tick = time.perf_counter()
        classify_one(texts[i % len(texts)])
        if i >= 10:  # the first calls warm caches
            latencies.append(time.perf_counter() - tick)
    p50, p95 = _percentiles(latencies)
    return {
        "texts_per_s": len(texts) / pass_s,
        "p50_ms": p50,
        "p95_ms": p95,
        **_scores(predicted, gold),
        "peak_rss_mib": _peak_rss_mib(),
        "load_s": load_s,
        # Share of the throughput pass spent in the backend (the rest: cleaning, tokenizing,
        # batching, calibration, Prediction objects).
        "model_time_share": statistics.median(shares) if args.child != "pipeline" else None,
        "threads": args.threads,
    }


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM).

    Not ``getrusage().ru_maxrss``: Linux keeps that across ``execve``, so a child started from
    a big parent would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # non-Linux fallback


def measure(variant: str, args: argparse.Namespace, texts_file: Path, threads: int) -> dict:
    """Run one variant in a fresh interpreter; returns its measurements."""
    command = [
        *(sys.executable, "-m", "benchmarks.bench_inference", "--child", variant),
        *("--texts-file", str(texts_file), "--model-dir", str(args.model_dir)),
        *("--threads", str(threads), "--batch-size", str(args.batch_size)),
        *("--repeats", str(args.repeats), "--latency-calls", str(args.latency_calls)),
    ]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the compute limit ---------------------------------------------------------------------
def gemm_gflops(m: int, k: int, n: int, threads: int) -> dict[str, float]:
    """GFLOP/s of an (m, k) × (k, n) MatMul in ONNX Runtime, fp32 and dynamic int8."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((m, k)).astype(np.float32)
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(fp32))
        logging.disable(logging.WARNING)  # the quantizer's advice on pre-processing
        try:
            quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        for name, path in (("fp32", fp32), ("int8", int8)):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for _ in range(5):
                session.run(None, {"x": x})
            runs = []
            for _ in range(30):
                tick = time.perf_counter()
                session.run(None, {"x": x})
                runs.append(time.perf_counter() - tick)
            result[name] = 2 * m * k * n / statistics.median(runs) / 1e9
    return result


def compute_limit(model_dir: Path, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Texts/s if every FLOP of the encoder ran at the measured GEMM rate (an upper bound)."""
    from transformers import AutoConfig

    from emorec.inference import EmotionClassifier

    clf = EmotionClassifier.from_pretrained(model_dir, backend="torch")
    encoded, _ = clf._encode(clf.clean(texts))
    tokens = np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.float64)
    config = AutoConfig.from_pretrained(str(model_dir))
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    # Per layer and token: Q, K, V, output projections (4·H²) and the FFN (2·H·I) multiply-adds,
    # plus attention scores and mixing (2·S·H); 2 FLOPs per multiply-add.
    flops = layers * (2 * tokens * (4 * h * h + 2 * h * inter) + 4 * tokens**2 * h)
    gemm = gemm_gflops(round(float(tokens.mean()) * args.batch_size), h, inter, args.threads)
    per_text = float(flops.mean())
    return {
        "mean_tokens": float(tokens.mean()),
        "flops_per_text": per_text,
        "gemm_gflops": gemm,
        "texts_per_s": {name: rate * 1e9 / per_text for name, rate in gemm.items()},
        "note": "upper bound: all encoder FLOPs at the GEMM rate of a (64·mean tokens, H)×(H, I) "
        "MatMul in ONNX Runtime with the same threads; embeddings, softmax, LayerNorm, padding "
        "and tokenization cost extra",
    }


# ---- the run -------------------------------------------------------------------------------
def ensure_exports(model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Export fp32 and int8 ONNX models when missing (or with --reexport); gate results."""
    from emorec.export import ExportRefusedError, export_onnx, read_export_metadata
    from emorec.inference import ONNX_FILES

    refused = {}
    for precision, quantize in (("fp32", None), ("int8", "int8")):
        if args.reexport or not (model_dir / ONNX_FILES[precision]).is_file():
            try:
                export_onnx(model_dir, quantize, num_threads=args.threads)  # type: ignore[arg-type]
            except ExportRefusedError as error:
                refused[precision] = {"message": str(error), "gate": error.gate}
    exports = read_export_metadata(model_dir).get("exports", {})
    summary = {
        precision: {
            "gate": entry["gate"],
            "fused_operators": (entry["optimization"] or {}).get("fused_operators"),
            "quantization": entry["quantization"],
            "export_seconds": entry.get("export_seconds"),
        }
        for precision, entry in exports.items()
    }
    return {"exports": summary, "refused": refused}


def file_sizes(model_dir: Path) -> dict[str, float]:
    names = ("model.safetensors", "head.safetensors", "model.onnx", "model.int8.onnx")
    return {n: (model_dir / n).stat().st_size / 2**20 for n in names if (model_dir / n).is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", default="models/dair-emotion")
    parser.add_argument("--data", help="labelled texts (default: the model's test split)")
    parser.add_argument("--limit", type=int, help="use the first N texts only (smoke tests)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="throughput passes (median)")
    parser.add_argument("--latency-calls", type=int, default=300)
    parser.add_argument(
        "--sweep",
        default=f"1,2,{os.cpu_count()}",
        help="thread counts tried on the best backend (default: 1, 2 and all cores)",
    )
    parser.add_argument("--reexport", action="store_true", help="export ONNX again")
    parser.add_argument("--results-name", default="inference")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--texts-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_variant(args)))
        return

    model_dir = Path(args.model_dir)
    texts, labels = load_texts(model_dir, args.data, args.limit)
    exports = ensure_exports(model_dir, args)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps({"texts": texts, "labels": labels}))
        for variant in VARIANTS:
            if variant.startswith("onnx") and variant.split("-")[1] in exports["refused"]:
                continue  # the gate refused this export: there is nothing to measure
            results[variant] = measure(variant, args, texts_file, args.threads)
            print(f"{variant:>10}: {json.dumps(results[variant])}", flush=True)

        torch_scores = results["torch"]

        def drops(variant: str) -> tuple[float, float]:
            r = results[variant]
            return (
                100 * (torch_scores["accuracy"] - r["accuracy"]),
                100 * (torch_scores["macro_f1"] - r["macro_f1"]),
            )

        eligible = [v for v in EMOREC_VARIANTS if v in results and max(drops(v)) <= MAX_DROP]
        best = max(eligible, key=lambda v: results[v]["texts_per_s"])
        sweep = {}
        for threads in sorted({int(t) for t in args.sweep.split(",") if t} - {args.threads}):
            sweep[threads] = measure(best, args, texts_file, threads)
            print(f"{best:>10} @ {threads} threads: {json.dumps(sweep[threads])}", flush=True)
    sweep[args.threads] = results[best]

    limit = compute_limit(model_dir, texts, args)
    for variant, r in results.items():
        ceiling = limit["texts_per_s"]["int8" if variant == "onnx-int8" else "fp32"]
        r["fraction_of_compute_limit"] = r["texts_per_s"] / ceiling
    pipeline_tps = results["pipeline"]["texts_per_s"]
    accuracy_drop, macro_f1_drop = drops(best)
    best_r = results[best]
    payload = {
        "model_dir": str(model_dir),
        "n_texts": len(texts),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "latency_calls": args.latency_calls,
        "pipeline_texts_per_s": pipeline_tps,
        "best_backend": best,
        "best_texts_per_s": best_r["texts_per_s"],
        "speedup": best_r["texts_per_s"] / pipeline_tps,
        "accuracy_drop": accuracy_drop,
        "macro_f1_drop": macro_f1_drop,
        "p50_ms": best_r["p50_ms"],
        "p95_ms": best_r["p95_ms"],
        "targets": {
            "speedup_at_least_3x": best_r["texts_per_s"] / pipeline_tps >= 3,
            "accuracy_drop_at_most_0.5": max(accuracy_drop, macro_f1_drop) <= MAX_DROP,
            "p50_at_most_4ms": best_r["p50_ms"] <= 4.0,
        },
        "backends": results,
        "thread_sweep": {"backend": best, "by_threads": dict(sorted(sweep.items()))},
        "compute_limit": limit,
        "file_sizes_mib": file_sizes(model_dir),
        **exports,
    }
    path = write_result(args.results_name, payload)
    print(f"wrote {path}")
    header = f"{'variant':>10} {'texts/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'acc':>6} {'F1':>6}"
    print(header + f" {'RSS MiB':>8} {'limit':>6}")
    for variant, r in results.items():
        print(
            f"{variant:>10} {r['texts_per_s']:8.1f} {r['p50_ms']:7.2f} {r['p95_ms']:7.2f} "
            f"{r['accuracy']:6.4f} {r['macro_f1']:6.4f} {r['peak_rss_mib']:8.0f} "
            f"{r['fraction_of_compute_limit']:6.0%}"
        )
    print(f"best {best}: {payload['speedup']:.2f}× the pipeline, accuracy drop {accuracy_drop:.2f}")


if __name__ == "__main__":
    main()
