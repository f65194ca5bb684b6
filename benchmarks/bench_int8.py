"""Benchmark: is the int8 export right on every CPU, across retrainings? And how much do the
calibrated scores move with the seed?

    .venv/bin/python -m benchmarks.bench_int8 [--config configs/dair-emotion.yaml]
        [--seeds 42 43 44] [--reuse-models] [--emulated-texts 200]

For each seed the config is trained (or, with ``--reuse-models``, re-calibrated and re-evaluated
from its model directory), exported to ONNX fp32, and quantized two ways:

* ``full_range``: what emorec did before (dynamic, per channel, 8-bit int8 weights, the head
  quantized too);
* ``default``: what ``emorec export --quantize int8`` does now (7-bit weights, head in fp32);
* ``uint8_weights``: the alternative that also cannot saturate (8-bit unsigned weights, head in
  fp32).

Each int8 model is scored against PyTorch on the validation split with the calibrated rule
(the export gate's figures: cross-fitted, since the rule was fitted on these rows, with the
in-sample deltas beside them), on the test split with the stored rule, and for speed (texts/s
on the test texts).
Then ``--emulated-texts`` validation texts are run through ONNX Runtime under
``qemu-x86_64 -cpu Haswell``, a CPU without VNNI (AVX2 only): the machines where the full-range
weights saturate. Writes benchmarks/results/int8.json.
"""

from __future__ import annotations

import argparse
import copy
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import write_result
from benchmarks.bench_goemotions import run_or_reuse
from emorec.config import load_config
from emorec.data import prepare
from emorec.export import accuracy_gate, cpu_int8_instructions, export_onnx, quantize_graph
from emorec.inference import EmotionClassifier, OnnxBackend

logging.basicConfig(level=logging.WARNING)

EMULATOR = (
    "import sys, numpy as np, onnxruntime as ort\n"
    "inputs = dict(np.load(sys.argv[2]))\n"
    "options = ort.SessionOptions(); options.intra_op_num_threads = 1\n"
    "session = ort.InferenceSession(sys.argv[1], options, providers=['CPUExecutionProvider'])\n"
    "np.save(sys.argv[3], session.run(None, inputs)[0])\n"
)


VARIANTS = ("full_range", "default", "uint8_weights")


def quantize_full_range(source: Path, target: Path) -> None:
    """The int8 recipe of emorec before this benchmark (commit 4430477)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        per_channel=True,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def with_backend(classifier: EmotionClassifier, path: Path, name: str) -> EmotionClassifier:
    candidate = copy.copy(classifier)
    candidate.backend = OnnxBackend(path, name=name)
    return candidate


def throughput(classifier: EmotionClassifier, texts: list[str]) -> float:
    classifier.logits(texts[:64])  # warm-up
    started = time.perf_counter()
    classifier.logits(texts)
    return len(texts) / (time.perf_counter() - started)


def emulated_agreement(
    classifier: EmotionClassifier, onnx_path: Path, texts: list[str], work: Path
) -> dict[str, Any]:
    """Decisions of ``onnx_path`` run natively and as a Haswell (no VNNI) would, vs PyTorch."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        return {"skipped": "qemu-x86_64 not installed (scripts/install-system-deps.sh)"}
    cleaned = [classifier.cleaner.clean(text) for text in texts]
    encoded = classifier.tokenizer(
        cleaned,
        padding=True,
        truncation=True,
        max_length=classifier.max_length,
        return_tensors="np",
    )
    names = OnnxBackend(onnx_path).input_names
    np.savez(work / "inputs.npz", **{k: encoded[k].astype(np.int64) for k in names})
    started = time.perf_counter()
    outputs = {}
    # The same script and inputs natively and under emulation: any difference is the CPU's.
    for name, prefix in (("native", []), ("emulated", [qemu, "-cpu", "Haswell"])):
        outputs[name] = work / f"{name}.npy"
        subprocess.run(
            [*prefix, sys.executable, "-c", EMULATOR, str(onnx_path), str(work / "inputs.npz"),
             str(outputs[name])],
            check=True, capture_output=True,
        )  # fmt: skip
    emulated, onnx_native = np.load(outputs["emulated"]), np.load(outputs["native"])
    torch_logits = classifier.logits(texts)
    rule = classifier.calibration
    reference = rule.decide(torch_logits)
    return {
        "n": len(texts),
        "agreement_native": float((rule.decide(onnx_native) == reference).mean()),
        "agreement_emulated_haswell": float((rule.decide(emulated) == reference).mean()),
        "max_abs_logit_diff_emulated_vs_native": float(np.abs(emulated - onnx_native).max()),
        "seconds": round(time.perf_counter() - started, 1),
    }


def study_seed(config_path: str, seed: int, overrides: list[str], args: Any) -> dict[str, Any]:
    run_name = f"{Path(config_path).stem}-seed{seed}"
    config = load_config(config_path, [f"training.seed={seed}", f"run_name={run_name}", *overrides])
    result = run_or_reuse(config, args.reuse_models)
    metrics, rule = result.evaluation.metrics, result.evaluation.decision_rule
    record: dict[str, Any] = {
        "seed": seed,
        "model_dir": str(result.model_dir),
        "decision_rule": rule,
        "test_accuracy_calibrated": metrics[f"{rule}/accuracy"],
        "test_macro_f1_calibrated": metrics[f"{rule}/macro_f1"],
        "test_accuracy_argmax": metrics["argmax/accuracy"],
        "test_macro_f1_argmax": metrics["argmax/macro_f1"],
        "train_seconds": result.train_metrics.get("train_seconds"),
    }
    model_dir = result.model_dir
    export_onnx(model_dir)  # model.onnx: fp32, optimised, parity-checked
    # The shipped path end to end: the gate's verdict on the new default.
    try:
        record["export_gate_default"] = export_onnx(model_dir, "int8").gate
    except Exception as error:
        record["export_gate_default"] = {"refused": str(error)}
    torch_clf = EmotionClassifier.from_pretrained(model_dir, backend="torch")
    prepared = prepare(config)  # cached: the splits the model was trained and scored on
    val_texts = list(prepared.splits["validation"]["text"])
    val_targets = np.asarray(prepared.splits["validation"]["labels"])
    test_texts = list(prepared.splits["test"]["text"])
    test_targets = np.asarray(prepared.splits["test"]["labels"])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        variants = {name: work / f"{name}.onnx" for name in VARIANTS}
        quantize_full_range(model_dir / "model.onnx", variants["full_range"])
        quantize_graph(model_dir / "model.onnx", variants["default"])
        quantize_graph(model_dir / "model.onnx", variants["uint8_weights"], weight_type="uint8")
        fp32 = with_backend(torch_clf, model_dir / "model.onnx", "onnx-fp32")
        record["fp32_texts_per_s"] = throughput(fp32, test_texts)
        for name, path in variants.items():
            candidate = with_backend(torch_clf, path, f"int8-{name}")
            validation = accuracy_gate(  # what the export gate judges: cross-fitted
                torch_clf,
                candidate,
                val_texts,
                val_targets,
                max_drop=0.5,
                check_parity=False,
                refit=config.calibration,
            )
            test = accuracy_gate(
                torch_clf, candidate, test_texts, test_targets, max_drop=0.5, check_parity=False
            )
            record[name] = {
                "validation": {
                    k: validation.get(k)
                    for k in (
                        "decision_rule",
                        "delta_points",
                        "in_sample_delta_points",
                        "agreement",
                        "passed",
                    )
                },
                "test": {k: test[k] for k in ("onnx", "delta_points", "agreement")},
                "texts_per_s": throughput(candidate, test_texts),
                "emulated_no_vnni": emulated_agreement(
                    torch_clf, path, val_texts[: args.emulated_texts], work
                ),
            }
            print(f"seed {seed} {name}: {record[name]}", flush=True)
    return record


def spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/dair-emotion.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--reuse-models", action="store_true")
    parser.add_argument("--emulated-texts", type=int, default=200)
    args = parser.parse_args()
    overrides = ["training.resume=false", *args.overrides]
    seeds = [study_seed(args.config, seed, overrides, args) for seed in args.seeds]
    summary = {
        key: spread([s[key] for s in seeds])
        for key in (
            "test_accuracy_calibrated",
            "test_macro_f1_calibrated",
            "test_accuracy_argmax",
            "test_macro_f1_argmax",
        )
    }
    for name in VARIANTS:
        for split in ("validation", "test"):
            for metric in ("accuracy", "macro_f1"):
                summary[f"{name}_{split}_{metric}_delta_points"] = spread(
                    [s[name][split]["delta_points"][metric] for s in seeds]
                )
        for metric in ("accuracy", "macro_f1"):
            in_sample = [s[name]["validation"]["in_sample_delta_points"] for s in seeds]
            if all(in_sample):
                summary[f"{name}_validation_in_sample_{metric}_delta_points"] = spread(
                    [values[metric] for values in in_sample]
                )
        summary[f"{name}_gate_passed"] = sum(s[name]["validation"]["passed"] for s in seeds)
        summary[f"{name}_texts_per_s"] = spread([s[name]["texts_per_s"] for s in seeds])
    payload = {
        "config": args.config,
        "overrides": args.overrides,
        "seeds": args.seeds,
        "reused_trained_models": args.reuse_models,
        "cpu_int8_instructions": cpu_int8_instructions(),
        "per_seed": seeds,
        "summary": summary,
    }
    path = write_result(f"int8_{Path(args.config).stem}", payload)
    print(f"wrote {path}")
    for key, value in summary.items():
        print(f"{key:>45}: {value}")


if __name__ == "__main__":
    main()
