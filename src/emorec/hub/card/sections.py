"""The card's sections on training data, training, usage, limitations and environment."""

from __future__ import annotations

import json
from typing import Any

from emorec.artifacts import TRAINING_CURVES_FILE
from emorec.hub.card.markdown import format_duration, format_number, markdown_table
from emorec.hub.card.sources import Dataset
from emorec.hub.card.tasks import CardTask

SPLIT_NAMES = {"train": "training", "validation": "validation", "test": "test"}

LEAKAGE = {
    "drop_from_train": "removed from training, so the evaluation splits keep all their rows",
    "drop_from_eval": "removed from the evaluation splits",
    "keep": "kept in both, so the scores may be optimistic",
}


def _rows_lines(record: dict[str, Any]) -> list[str]:
    """The card's account of the splits and of the rows used in each (prepare's ``rows``)."""
    if record["split_by"] == "emorec":
        spec = record["self_split"]
        validation, test = spec["validation_size"], spec["test_size"]
        removed = spec.get("duplicates_removed")
        lines = [
            f"- Splits: **made by emorec**, not published ones: one source of "
            f"{record['read']['all']:,} rows"
            + (f" ({removed:,} exact duplicates removed first)" if removed else "")
            + f", split {1 - validation - test:.0%} / {validation:.0%} / {test:.0%} into "
            f"train / validation / test (stratified where the classes allow, seed {spec['seed']})."
        ]
    else:
        lines = ["- Splits: the source's own train / validation / test splits."]
    rows = []
    for split in ("train", "validation", "test"):
        used, available = record["used"][split], record["available"][split]
        asked = record["subsample"][split]
        option = "max_train_samples" if split == "train" else "max_eval_samples"
        if used < available:
            note = f"stratified subsample (`data.{option}: {asked}`)"
        elif asked:
            note = f"all (`data.{option}: {asked}` is more than there are)"
        else:
            note = "all"
        source = record["read"].get(split)
        rows.append(
            [
                SPLIT_NAMES[split],
                f"{source:,}" if source is not None else "—",
                f"{available:,}",
                f"{used:,}",
                note,
            ]
        )
    header = [
        "split",
        "rows in the source",
        "after label mapping and leak removal",
        "rows used",
        "selection",
    ]
    lines.append("\n" + markdown_table(header, rows) + "\n")
    return lines


def data_section(config: Any, train: dict[str, Any], dataset: Dataset) -> str:
    """Where the data came from, its license, the rows of each split, mapping and cleaning."""
    hub_id, display, license_note = dataset
    source = f"[{display}](https://huggingface.co/datasets/{hub_id})" if hub_id else display
    lines = [f"- Source: {source}."]
    if license_note:
        lines.append(f"- Data license: {license_note}")
    record = train.get("data")
    if record:
        lines += _rows_lines(record)
    else:
        sizes = [
            f"{train[key]} {split}"
            for key, split in (("train_samples", "training"), ("validation_samples", "validation"))
            if key in train
        ]
        if sizes:
            lines.append(
                f"- Rows used: {', '.join(sizes)} (their share of the source's rows was not "
                "recorded: a model directory from an older emorec)."
            )
    if config is not None:
        data = config.data
        if data.label_mapping.active:
            mapping = data.label_mapping.model_dump(exclude_defaults=True)
            lines.append(f"- Label mapping: `{json.dumps(mapping, sort_keys=True)}`.")
        lines.append(
            f"- Texts found in both training and an evaluation split: {LEAKAGE[data.leakage]} "
            f"(`data.leakage: {data.leakage}`)."
        )
        steps = [name for name, on in data.cleaning.model_dump().items() if on is True]
        lines.append(
            "- Cleaning (the same at inference): "
            + (", ".join(f"`{s}`" for s in steps) or "none")
            + "."
        )
        aug = data.augmentation
        if aug.enabled:
            added = train.get("augmented_train_samples")
            lines.append(
                f"- Augmentation (training split only): {', '.join(aug.methods)}; target "
                f"{aug.target_per_class} per class, ≤ {aug.max_per_example} copies per row, "
                f"word rate {aug.probability}, seed {aug.seed}"
                + (f"; {added} rows added." if added is not None else ".")
            )
    return "## Training data\n\n" + "\n".join(lines)


def training_section(config: Any, train: dict[str, Any], curves: bool = False) -> str:
    """Hyperparameters, time and hardware, and a link to the training curves when drawn."""
    parts = ["## Training procedure"]
    if config is not None:
        t = config.training
        rows = [
            ["loss", f"`{t.loss_type}`"],
            ["learning rate", f"{t.learning_rate:g}"],
            ["batch size", f"{t.per_device_train_batch_size} × {t.gradient_accumulation_steps}"],
            ["epochs (max)", f"{t.num_epochs:g}"],
            ["max steps", str(t.max_steps)],
            ["warmup ratio", f"{t.warmup_ratio:g}"],
            ["weight decay", f"{t.weight_decay:g}"],
            ["scheduler", t.lr_scheduler_type],
            ["label smoothing", f"{t.label_smoothing:g}"],
            ["early stopping patience", str(t.early_stopping_patience)],
            ["max length (tokens)", str(config.model.max_length)],
            ["seed", str(t.seed)],
        ]
        parts.append(markdown_table(["hyperparameter", "value"], rows))
    if train:
        lines = [
            f"- Training time: {format_duration(train.get('train_seconds'))}"
            + (
                f" ({train['epochs']:g} epochs, {train['global_steps']} steps)"
                if "epochs" in train and "global_steps" in train
                else ""
            )
            + ".",
            f"- Hardware: {train.get('hardware', 'not recorded')}.",
        ]
        if "best_validation_macro_f1" in train:
            lines.append(
                f"- Best validation macro-F1 during training: "
                f"{format_number(train['best_validation_macro_f1'])} (that checkpoint was kept)."
            )
        parts.append("\n".join(lines))
    if curves:
        parts.append(
            "Training loss, validation loss and validation macro-F1 per evaluation (the log "
            f"history in `train_metrics.json`):\n\n![Training curves]({TRAINING_CURVES_FILE})"
        )
    return "\n\n".join(parts)


def usage_section(repo_id: str, task: CardTask, custom_head: bool) -> str:
    """Snippets for emorec and, unless the head is emorec's own, plain transformers."""
    emorec_code = (
        "```python\n"
        "from emorec.inference import EmotionClassifier\n\n"
        f'clf = EmotionClassifier.from_pretrained("{repo_id}")\n'
        'pred = clf.predict("i loooove this song 😍 #blessed")\n'
        "print(pred.labels, pred.scores)   # cleaned and calibrated like at training time\n"
        "```"
    )
    if custom_head:
        plain = (
            "The classification head is emorec's own (`head.safetensors`), so plain "
            "transformers cannot load this model: use emorec."
        )
    else:
        plain = (
            "With plain transformers (no emorec text cleaning, no calibration: raw "
            f"{task.activation} scores):\n\n"
            "```python\n"
            "from transformers import pipeline\n\n"
            f'classifier = pipeline("text-classification", model="{repo_id}", top_k=None'
            f"{task.pipeline_args})\n"
            'print(classifier("i feel so happy today"))\n'
            "```"
        )
    return f"## How to use\n\n`pip install emorec`, then:\n\n{emorec_code}\n\n{plain}"


LIMITATIONS = """## Intended uses

Classifying the emotion of short English texts (posts, comments, reviews, chat messages) for
research, analytics and moderation support, where an aggregate picture or a human in the loop
absorbs individual mistakes. Not for decisions about individuals (hiring, credit, health,
policing), nor as evidence of what a person really feels.

## Limitations and biases

- **English only.** The backbone and the cleaning rules (slang, contractions, emoticons) are
  English; other languages give unreliable scores.
- **Sarcasm and irony** ("great, another monday 🙃") are often read literally.
- **Slang drift.** Internet language changes; new slang, memes and emoji uses unseen in training
  are misread, and the slang dictionary ages.
- **Domain shift.** Scores hold for text like the training data; reviews, news, long documents
  or clinical text can score much lower. Re-evaluate on your own labelled sample.
- **Label set and annotation.** Emotions are subjective and the labels are one annotation
  scheme (sometimes distant supervision, e.g. hashtags); rare classes have the lowest F1, see
  the per-class table.
- **Biases of the data.** Social-media corpora over-represent some groups, dialects and topics;
  texts in under-represented dialects (e.g. African-American English) may be misclassified more
  often."""


def environment_section(train: dict[str, Any]) -> str:
    """Training time and hardware, and how to estimate the emissions from them."""
    return (
        "## Environmental impact\n\n"
        f"Fine-tuning took {format_duration(train.get('train_seconds'))} on "
        f"{train.get('hardware', 'unrecorded hardware')}. Energy use and emissions were not "
        "measured; estimate them from this time and hardware with the ML CO2 Impact calculator "
        "(Lacoste et al. 2019, https://mlco2.github.io/impact). Inference on a CPU, or with the "
        "ONNX int8 export (`emorec export`), costs far less than training."
    )
