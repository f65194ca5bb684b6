"""Benchmark: does EDA augmentation help the rare emotions? With vs without, same seeds.

    .venv/bin/python -m benchmarks.bench_augmentation [--config C] [--rare love surprise]
        [--target 2000] [--methods synonym swap delete insert] [--seeds 42 43]
        [--goemotions-config C | --no-goemotions | --no-dair] [--goemotions-rare-k 5] [--set k=v]

For each seed, trains the dair-emotion config twice in one process: augmentation off, then on
(`data.augmentation`, training split only, classes below `--target` brought up to it), and
scores the same test split with the default (calibrated) decision rule. The same comparison runs
on GoEmotions, where the rare labels are the `--goemotions-rare-k` labels with the fewest
training positives. Reported as measured, whichever way it goes (EDA often does nothing for
pretrained transformers, Longpre et al. 2020). Synonym methods need WordNet
(`emorec setup-wordnet`). Writes benchmarks/results/augmentation.json (`--output NAME`);
`--no-dair` runs only the GoEmotions half, into augmentation_goemotions.json by default.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from benchmarks._common import write_result
from emorec.config import load_config
from emorec.pipeline import RunResult, run


def summarise(result: RunResult, rare: list[str]) -> dict[str, Any]:
    """Test scores of one run under its default decision rule, plus what augmentation added."""
    m = result.evaluation.metrics
    rule = result.evaluation.decision_rule
    names = result.prepare_report["label_space"]["names"]
    raw = "fixed" if result.prepare_report["label_space"]["multi_label"] else "argmax"
    augmentation = result.prepare_report.get("augmentation") or {}
    return {
        "decision_rule": rule,
        "macro_f1": m[f"{rule}/macro_f1"],
        "rare_f1": statistics.fmean(m[f"{rule}/{name}/f1"] for name in rare),
        "macro_f1_uncalibrated": m[f"{raw}/macro_f1"],
        "rare_f1_uncalibrated": statistics.fmean(m[f"{raw}/{name}/f1"] for name in rare),
        "per_class_f1": {name: m[f"{rule}/{name}/f1"] for name in names},
        "train_rows": result.prepare_report["sizes"]["train"],
        "rows_added": augmentation.get("rows_added", 0),
        "added_per_class": augmentation.get("added", {}),
        "below_target": augmentation.get("below_target", {}),
        "train_seconds": result.train_metrics["train_seconds"],
        "epochs": result.train_metrics["epochs"],
    }


def rarest(result: RunResult, k: int) -> list[str]:
    """The k labels with the fewest training rows (positives) in a run's prepared data."""
    counts = result.prepare_report["label_distribution"]["train"]
    return sorted(counts, key=lambda name: (counts[name], name))[:k]


def compare(
    config_path: str,
    overrides: list[str],
    augmentation: list[str],
    seeds: list[int],
    rare: list[str] | None,
    rare_k: int,
    progress: bool,
) -> dict[str, Any]:
    """Without/with augmentation for every seed; means over seeds and per-seed records."""
    runs = []
    for seed in seeds:
        common = ["training.resume=false", f"training.seed={seed}", *overrides]
        name = load_config(config_path, common).run_name
        without = run(
            load_config(
                config_path,
                [*common, "data.augmentation.enabled=false", f"run_name={name}-noaug-s{seed}"],
            ),
            progress=progress,
        )
        rare = rare or rarest(without, rare_k)
        with_ = run(
            load_config(
                config_path,
                [
                    *common,
                    *augmentation,
                    f"data.augmentation.seed={seed}",
                    f"run_name={name}-aug-s{seed}",
                ],
            ),
            progress=progress,
        )
        runs.append(
            {"seed": seed, "without": summarise(without, rare), "with": summarise(with_, rare)}
        )

    def mean(arm: str, key: str) -> float:
        return statistics.fmean(r[arm][key] for r in runs)

    out: dict[str, Any] = {
        "config": config_path,
        "seeds": seeds,
        "rare_classes": rare,
        "decision_rule": runs[0]["without"]["decision_rule"],
        "macro_f1_without": mean("without", "macro_f1"),
        "macro_f1_with": mean("with", "macro_f1"),
        "rare_f1_without": mean("without", "rare_f1"),
        "rare_f1_with": mean("with", "rare_f1"),
        "macro_f1_uncalibrated_without": mean("without", "macro_f1_uncalibrated"),
        "macro_f1_uncalibrated_with": mean("with", "macro_f1_uncalibrated"),
        "rare_f1_uncalibrated_without": mean("without", "rare_f1_uncalibrated"),
        "rare_f1_uncalibrated_with": mean("with", "rare_f1_uncalibrated"),
        "runs": runs,
    }
    out["delta_macro_f1_points"] = 100 * (out["macro_f1_with"] - out["macro_f1_without"])
    out["delta_rare_f1_points"] = 100 * (out["rare_f1_with"] - out["rare_f1_without"])
    if len(seeds) > 1:
        deltas = [100 * (r["with"]["rare_f1"] - r["without"]["rare_f1"]) for r in runs]
        out["delta_rare_f1_points_stdev"] = statistics.stdev(deltas)
    return out


def conclusion(name: str, result: dict[str, Any]) -> str:
    """One plain sentence on the measured effect (no significance is claimed from one seed)."""
    macro, rare = result["delta_macro_f1_points"], result["delta_rare_f1_points"]
    seeds = len(result["seeds"])
    caveat = (
        "single seed: differences under ~1 point may be noise"
        if seeds == 1
        else f"mean over {seeds} seeds"
    )
    return (
        f"{name}: augmentation changed test macro-F1 by {macro:+.2f} points and the mean F1 of "
        f"{', '.join(result['rare_classes'])} by {rare:+.2f} points ({caveat})."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/dair-emotion.yaml")
    parser.add_argument("--rare", nargs="+", default=["love", "surprise"])
    parser.add_argument("--target", type=int, default=2000, help="dair: rows per class")
    parser.add_argument("--goemotions-config", default="configs/goemotions.yaml")
    parser.add_argument("--no-goemotions", action="store_true")
    parser.add_argument("--no-dair", action="store_true", help="only the GoEmotions half")
    parser.add_argument("--goemotions-target", type=int, default=1000)
    parser.add_argument("--goemotions-rare-k", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=["synonym", "swap", "delete", "insert"])
    parser.add_argument("--max-per-example", type=int, default=4)
    parser.add_argument("--probability", type=float, default=0.1)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--output", help="results/<NAME>.json (default: augmentation[_goemotions])")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    def augmentation(target: int) -> list[str]:
        return [
            "data.augmentation.enabled=true",
            f"data.augmentation.methods=[{', '.join(args.methods)}]",
            f"data.augmentation.target_per_class={target}",
            f"data.augmentation.max_per_example={args.max_per_example}",
            f"data.augmentation.probability={args.probability}",
        ]

    if args.no_dair and args.no_goemotions:
        parser.error("--no-dair and --no-goemotions leave nothing to run")
    progress = not args.no_progress
    settings = {
        "overrides": args.overrides,
        "augmentation": {
            "methods": args.methods,
            "max_per_example": args.max_per_example,
            "probability": args.probability,
        },
    }
    payload: dict[str, Any]
    if args.no_dair:
        payload = {"conclusion": []}
    else:
        dair = compare(
            args.config,
            args.overrides,
            augmentation(args.target),
            args.seeds,
            args.rare,
            0,
            progress,
        )
        payload = {
            **{k: v for k, v in dair.items() if k != "config"},
            "config": args.config,
            **settings,
            "conclusion": [conclusion("dair-emotion", dair)],
        }
        payload["augmentation"]["target_per_class"] = args.target
    if not args.no_goemotions:
        goemotions = compare(
            args.goemotions_config,
            args.overrides,
            augmentation(args.goemotions_target),
            args.seeds,
            None,
            args.goemotions_rare_k,
            progress,
        )
        goemotions["target_per_class"] = args.goemotions_target
        conclusion_line = conclusion("GoEmotions", goemotions)
        if args.no_dair:
            # The GoEmotions half alone: its figures at the top level, under the same keys.
            payload = {**goemotions, **settings, "conclusion": [conclusion_line]}
            payload["augmentation"]["target_per_class"] = args.goemotions_target
        else:
            payload["goemotions"] = goemotions
            payload["conclusion"].append(conclusion_line)
    output = args.output or ("augmentation_goemotions" if args.no_dair else "augmentation")
    path = write_result(output, payload)
    print(f"wrote {path}")
    for line in payload["conclusion"]:
        print(line)


if __name__ == "__main__":
    main()
