"""Benchmark: faithfulness (deletion test) and speed of every explanation method, in one run.

    .venv/bin/python -m benchmarks.bench_explain [--model-dir models/dair-emotion] [--n-texts 200]

On ``--n-texts`` texts of the model's test split (a seeded sample; ``--data FILE`` for another
file), every method explains the calibrated decision (multi-label: each predicted label) and the
deletion test masks the words most-important-first and least-important-first
(:func:`emorec.explain.deletion_curve`). Per method: mean AOPC (most-important-first; higher =
more faithful), mean AOPC least-important-first (lower = better), mean area between the curves,
and seconds per explanation (mean, median, p95; after one warm-up call). ``random`` is the
seeded random-order baseline, measured on the same texts. LRP is compared with gradient × input
and random per explanation (mean AOPC difference with a bootstrap 95% interval, win rate).
Integrated gradients also reports its completeness gap. Writes benchmarks/results/explain.json
(``--results-name`` to change).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import write_result

METHODS = ("grad_x_input", "integrated_gradients", "lrp", "attention", "attention_raw", "random")
BOOTSTRAP = 2000  # resamples of the paired AOPC differences


def load_texts(model_dir: Path, data: str | None, n_texts: int, seed: int) -> list[str]:
    """A seeded sample of ``--data`` or of the test split rebuilt from the model's config."""
    if data is not None:
        from emorec.data import read_file

        texts = read_file(Path(data), "auto")["text"].tolist()
    else:
        from emorec.config import load_config
        from emorec.data import prepare
        from emorec.modeling import load_tokenizer

        prepared = prepare(load_config(model_dir / "config.yaml"), load_tokenizer(str(model_dir)))
        texts = list(prepared.splits["test"]["text"])
    if n_texts < len(texts):
        keep = np.sort(np.random.default_rng(seed).choice(len(texts), n_texts, replace=False))
        texts = [texts[i] for i in keep]
    return texts


def run_method(
    classifier: Any, texts: list[str], method: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Explain every text with ``method`` and run the deletion test on each explanation."""
    from emorec.errors import DataError
    from emorec.explain import deletion_curve

    options = {"n_steps": args.ig_steps, "baseline": args.ig_baseline, "attentions": False}
    classifier.explain(texts[0], method, **options)  # warm-up: imports, first-call overhead
    rows: list[dict[str, Any]] = []
    seconds, deletion_seconds, skipped = [], [], 0
    for i, text in enumerate(texts):
        started = time.perf_counter()
        try:
            explanations = classifier.explain(text, method, seed=i, **options)
        except DataError:  # empty after cleaning: nothing to explain
            skipped += 1
            continue
        seconds.append((time.perf_counter() - started) / len(explanations))
        for e in explanations:
            started = time.perf_counter()
            curve = deletion_curve(classifier, e, max_steps=args.max_steps)
            deletion_seconds.append(time.perf_counter() - started)
            rows.append(
                {
                    "text": i,
                    "target": e.target,
                    "aopc": curve.aopc,
                    "aopc_least_first": curve.aopc_least_first,
                    "area_between": curve.area_between,
                    "gap": e.completeness_gap,
                    "words": len(e.words),
                }
            )
    return {
        "rows": rows,
        "seconds": seconds,
        "deletion_seconds": deletion_seconds,
        "skipped": skipped,
    }


def paired(a: list[dict], b: list[dict], seed: int) -> dict[str, float]:
    """Mean of AOPC(a) − AOPC(b) over the same explanations, bootstrap 95% CI, a's win rate."""
    diff = np.array([x["aopc"] - y["aopc"] for x, y in zip(a, b, strict=True)])
    rng = np.random.default_rng(seed)
    means = rng.choice(diff, (BOOTSTRAP, diff.size), replace=True).mean(axis=1)
    return {
        "mean_aopc_difference": float(diff.mean()),
        "ci95_low": float(np.percentile(means, 2.5)),
        "ci95_high": float(np.percentile(means, 97.5)),
        "win_rate": float(np.mean(diff > 0)),
        "n": int(diff.size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", default="models/dair-emotion")
    parser.add_argument("--data", help="texts to explain (default: the model's test split)")
    parser.add_argument("--n-texts", type=int, default=200)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--ig-steps", type=int, default=50, help="integrated gradients steps")
    parser.add_argument("--ig-baseline", default="pad", choices=("pad", "mask", "zeros"))
    parser.add_argument("--max-steps", type=int, default=50, help="deletion steps per text")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-name", default="explain")
    args = parser.parse_args()

    from emorec.inference import EmotionClassifier

    model_dir = Path(args.model_dir)
    classifier = EmotionClassifier.from_pretrained(
        model_dir, backend="torch", num_threads=args.threads
    )
    texts = load_texts(model_dir, args.data, args.n_texts, args.seed)
    results = {method: run_method(classifier, texts, method, args) for method in args.methods}

    def mean(method: str, key: str) -> float:
        return float(np.mean([row[key] for row in results[method]["rows"]]))

    payload: dict[str, Any] = {
        "model_dir": str(model_dir),
        "n_texts": len(texts),
        "n_explanations": {m: len(r["rows"]) for m, r in results.items()},
        "skipped_texts": {m: r["skipped"] for m, r in results.items()},
        "settings": {
            "ig_steps": args.ig_steps,
            "ig_baseline": args.ig_baseline,
            "max_deletion_steps": args.max_steps,
            "threads": args.threads,
            "seed": args.seed,
            "target": "calibrated decision (multi-label: each predicted label)",
        },
        "aopc": {m: mean(m, "aopc") for m in results},
        "aopc_least_first": {m: mean(m, "aopc_least_first") for m in results},
        "area_between_curves": {m: mean(m, "area_between") for m in results},
        "seconds_per_explanation": {m: float(np.mean(r["seconds"])) for m, r in results.items()},
        "seconds_per_explanation_median": {
            m: statistics.median(r["seconds"]) for m, r in results.items()
        },
        "seconds_per_explanation_p95": {
            m: float(np.percentile(r["seconds"], 95)) for m, r in results.items()
        },
        "seconds_per_deletion_test": float(
            np.mean([s for r in results.values() for s in r["deletion_seconds"]])
        ),
        "mean_words_per_text": float(
            np.mean([row["words"] for row in next(iter(results.values()))["rows"]])
        ),
    }
    if "integrated_gradients" in results:
        gaps = [row["gap"] for row in results["integrated_gradients"]["rows"]]
        payload["ig_completeness_gap"] = {
            "mean": float(np.mean(gaps)),
            "median": float(np.median(gaps)),
            "max": float(np.max(gaps)),
        }
    if "lrp" in results:
        payload["lrp_vs"] = {
            other: paired(results["lrp"]["rows"], results[other]["rows"], args.seed)
            for other in ("grad_x_input", "random")
            if other in results
        }
    path = write_result(args.results_name, payload)

    print(f"{'method':<22}{'AOPC':>8}{'AOPC least':>12}{'between':>10}{'s/expl':>10}")
    for m in results:
        print(
            f"{m:<22}{payload['aopc'][m]:>8.4f}{payload['aopc_least_first'][m]:>12.4f}"
            f"{payload['area_between_curves'][m]:>10.4f}"
            f"{payload['seconds_per_explanation'][m]:>10.4f}"
        )
    for other, stats in payload.get("lrp_vs", {}).items():
        print(
            f"lrp − {other}: {stats['mean_aopc_difference']:+.4f} "
            f"[{stats['ci95_low']:+.4f}, {stats['ci95_high']:+.4f}], wins {stats['win_rate']:.0%}"
        )
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
