"""The card's evaluation and calibration sections, from metrics.json and calibration.json."""

from __future__ import annotations

from typing import Any

from emorec.hub.card.markdown import format_number, markdown_table
from emorec.hub.card.sources import Dataset
from emorec.hub.card.tasks import CardTask


def _rules(values: dict[str, Any]) -> list[str]:
    """Decision rules present in a metrics dict, raw first (``argmax``/``fixed``)."""
    found = {key.split("/", 1)[0] for key in values}
    return [r for r in ("argmax", "fixed", "calibrated") if r in found]


def _scored_rows(
    metrics_file: dict[str, Any],
    published: dict[str, Any] | None,
    dataset: Dataset,
) -> str:
    """What the scored split is, from metrics.json's ``data`` record: whole, part, whose."""
    split, record = metrics_file["split"], metrics_file.get("data")
    hub_id, display, _ = dataset
    if published is not None:
        return f"It is the whole published {split} split of {display}."
    if not record:
        return (
            "How these rows relate to the source's splits was not recorded (a model directory "
            "from an older emorec), so the card claims no published split."
        )
    used, available = record["used"][split], record["available"][split]
    if record["split_by"] == "emorec":
        seed = record["self_split"]["seed"]
        facts = [f"the {split} part of emorec's own split of one file (seed {seed})"]
    else:
        facts = [f"the source's own {split} split"]
        read = record["read"][split]
        if available < read:
            facts.append(
                f"{read - available:,} of its {read:,} rows removed (label mapping, or texts "
                "also in training)"
            )
    if used < available:
        facts.append(
            f"a {used:,}-row stratified subsample of its {available:,} rows "
            f"(`data.max_eval_samples: {record['subsample'][split]}`)"
        )
    if hub_id is None:  # local data: there is no published split to compare with
        return f"It is {', '.join(facts)}."
    return (
        f"It is {', '.join(facts)}: not a whole published split of {display}, so the scores "
        "are not comparable with published results on it."
    )


def evaluation_section(
    metrics_file: dict[str, Any] | None,
    names: list[str],
    task: CardTask,
    published: dict[str, Any] | None = None,
    dataset: Dataset = (None, "local data", None),
) -> str:
    """Scores on the evaluated split per decision rule, then per class (or label).

    ``published`` and ``dataset`` say which rows were scored (see :func:`_scored_rows`).
    """
    if not metrics_file:
        return (
            "## Evaluation\n\nNot evaluated yet: run `emorec evaluate MODEL_DIR` to score the "
            "model and refresh this card."
        )
    values, split, rule = (
        metrics_file["metrics"],
        metrics_file["split"],
        metrics_file["decision_rule"],
    )
    rules = _rules(values)
    explained = {
        "argmax": "`argmax`: the most probable emotion, no calibration",
        "fixed": "`fixed`: every label with sigmoid probability ≥ 0.5",
        "calibrated": f"`calibrated`: temperature scaling plus {task.calibrated_rule}",
    }
    # ``n_examples``: what model directories of older emorec versions recorded.
    size = metrics_file.get("n_samples", metrics_file.get("n_examples"))
    counted = f" ({size} texts)" if size is not None else ""
    seen = (
        "on which the calibration was fitted, so `calibrated` scores are optimistic"
        if split == "validation"
        else "which training and calibration never saw"
    )
    parts = [
        "## Evaluation",
        f"Scores on the **{split}** split{counted}, {seen}. "
        f"{_scored_rows(metrics_file, published, dataset)} "
        f"The model's default decision rule is **{rule}**. "
        + "; ".join(explained[r] for r in rules)
        + ".",
    ]
    rows = [
        [metric, *(format_number(values.get(f"{r}/{metric}")) for r in rules)]
        for metric in task.summary
        if any(f"{r}/{metric}" in values for r in rules)
    ]
    parts.append(markdown_table(["metric", *rules], rows))
    parts.append(f"Per {task.unit} ({rule} precision and recall; F1 under each rule):")
    per_class = []
    for label in names:
        per_class.append(
            [
                label,
                format_number(values.get(f"{rule}/{label}/support"), 0),
                format_number(values.get(f"{rule}/{label}/precision")),
                format_number(values.get(f"{rule}/{label}/recall")),
                *(format_number(values.get(f"{r}/{label}/f1")) for r in rules),
            ]
        )
    header = ["label", "support", "precision", "recall", *(f"F1 ({r})" for r in rules)]
    parts.append(markdown_table(header, per_class))
    if task.raw_rule not in rules:
        parts.append(f"(No `{task.raw_rule}` scores in metrics.json.)")
    return "\n\n".join(parts)


def calibration_section(calibration: dict[str, Any] | None, names: list[str]) -> str:
    """The fitted temperature and decision rule, with per-label thresholds or offsets."""
    if not calibration:
        return (
            "## Calibration and decision rule\n\nNot calibrated: predictions use softmax argmax "
            "(single-label) or a 0.5 sigmoid threshold (multi-label)."
        )
    parts = [
        "## Calibration and decision rule",
        "Fitted on the validation split only (`calibration.json`, applied by `EmotionClassifier`):",
    ]
    lines = [
        f"- Temperature T = {format_number(calibration.get('temperature'))} "
        "(probabilities are softmax/sigmoid of logits / T).",
        f"- Decision: `{calibration.get('decision')}`.",
    ]
    for key, text in (("ece", "ECE"), ("macro_f1", "macro-F1")):
        before, after = calibration.get(f"{key}_before"), calibration.get(f"{key}_after")
        if before is not None and after is not None:
            lines.append(
                f"- Validation {text}: {format_number(before)} before, "
                f"{format_number(after)} after."
            )
    parts.append("\n".join(lines))
    per_label = calibration.get("thresholds") or calibration.get("biases")
    if per_label:
        kind = "threshold" if calibration.get("thresholds") else "log-probability offset"
        rows = [[n, format_number(v)] for n, v in zip(names, per_label, strict=False)]
        parts.append(markdown_table(["label", kind], rows))
    return "\n\n".join(parts)
