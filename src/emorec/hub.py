"""Model cards and Hugging Face Hub upload for emorec model directories.

:func:`model_card` renders a model directory's ``README.md`` in the Hub's model-card format
(YAML front matter with a ``model-index``, then Markdown) from the files the pipeline wrote:
``metrics.json``, ``config.yaml``, ``emorec.json``, ``calibration.json`` and
``train_metrics.json``. Every number in it comes from those files; nothing is typed by hand.

:func:`push_to_hub` uploads a model directory to a Hub model repo in one commit. The token is
an argument, ``HF_TOKEN`` or the ``hf auth login`` cache; it never appears in logs or errors.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from emorec._io import atomic_write_text
from emorec.errors import ConfigError, EmorecError, ModelDirError
from emorec.evaluation import TRAINING_CURVES_FILE

MODEL_CARD_FILE = "README.md"
METRICS_FILE = "metrics.json"
logger = logging.getLogger(__name__)

DEFAULT_LICENSE = "apache-2.0"
DEFAULT_COMMIT_MESSAGE = "Upload emorec emotion classifier"
TOKEN_HELP = (
    "Log in with `hf auth login` (huggingface_hub's CLI), or set the HF_TOKEN environment "
    "variable to a token with write access (https://huggingface.co/settings/tokens)."
)

# Local data directories that are copies of Hub datasets: (Hub id, display name, license note).
KNOWN_DATASETS = {
    "dair-emotion": (
        "dair-ai/emotion",
        "dair-ai/emotion",
        "The dataset card limits use to educational and research purposes.",
    ),
    "goemotions": (
        "google-research-datasets/go_emotions",
        "GoEmotions",
        "CC BY 4.0 (Demszky et al. 2020); cite the paper.",
    ),
}
# The published splits of KNOWN_DATASETS: (Hub config, rows per split). A local copy is
# that published split only when it holds all of its rows.
PUBLISHED_SPLITS = {
    "dair-ai/emotion": ("split", {"train": 16000, "validation": 2000, "test": 2000}),
    "google-research-datasets/go_emotions": (
        "simplified",
        {"train": 43410, "validation": 5426, "test": 5427},
    ),
}
SPLIT_NAMES = {"train": "training", "validation": "validation", "test": "test"}
# Backbone aliases that emorec resolves to a local copy of a Hub model.
KNOWN_BACKBONES = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

LEAKAGE = {
    "drop_from_train": "removed from training, so the evaluation splits keep all their rows",
    "drop_from_eval": "removed from the evaluation splits",
    "keep": "kept in both, so the scores may be optimistic",
}
SINGLE_LABEL_SUMMARY = (
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "macro_precision",
    "macro_recall",
    "ece",
    "nll",
)
MULTI_LABEL_SUMMARY = (
    "micro_f1",
    "macro_f1",
    "weighted_f1",
    "samples_f1",
    "roc_auc_macro",
    "hamming_score",
    "exact_match",
    "ece",
)


class HubError(EmorecError):
    """An upload to the Hugging Face Hub failed (network, permissions, bad repo id)."""


class HubAuthError(HubError):
    """No Hugging Face token was found, or the Hub refused it."""


# ---- reading the model directory -----------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelDirError(f"{path} is not readable JSON ({error}).") from None
    if not isinstance(data, dict):
        raise ModelDirError(f"{path} must hold a JSON object.")
    return data


def _read_config(model_dir: Path) -> Any:
    path = model_dir / "config.yaml"
    if not path.is_file():
        return None
    from emorec.config import load_config

    return load_config(path)


def _parameter_count(model_dir: Path) -> int | None:
    """Parameters of every ``*.safetensors`` file, read from their headers (no weights loaded)."""
    total, found = 0, False
    for path in sorted(model_dir.glob("*.safetensors")):
        with path.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
        found = True
    return total if found else None


def _dataset(config: Any) -> tuple[str | None, str, str | None]:
    """(Hub dataset id or None, display name, license note or None) of the training data."""
    if config is None:
        return None, "unknown data", None
    data = config.data
    if data.format == "hub" and data.hub_id and not Path(data.hub_id).exists():
        return data.hub_id, data.hub_id, None
    if data.path:
        path = Path(data.path)
        name = path.name if path.is_dir() or not path.suffix else path.stem
    elif data.train_file:
        name = Path(data.train_file).resolve().parent.name
    else:
        name = Path(data.hub_id or "").name
    known = KNOWN_DATASETS.get(name.lower())
    if known is None:
        return None, name or "local data", None
    return known


def _base_model(meta: dict[str, Any], config: Any) -> str | None:
    """The backbone as a Hub id (a local directory has none)."""
    name = meta.get("base_model") or (config.model.name if config is not None else None)
    if not name:
        return None
    if name.lower() in KNOWN_BACKBONES:
        return KNOWN_BACKBONES[name.lower()]
    if Path(name).exists() or not _HUB_ID.match(name):
        return None
    return name


# ---- rendering ------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 4) -> str:
    """A metric as rendered in the card: ``digits`` decimals, ``n/a`` for missing/NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _count(n: int | None) -> str:
    if n is None:
        return "unknown"
    return f"{n / 1e6:.1f}M" if n >= 100_000 else f"{n:,}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _published_split(
    config: Any, dataset: tuple[str | None, str, str | None], metrics_file: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The model-index ``dataset`` of the scored split when it is a whole published split.

    None when it is not, or when metrics.json does not record it (older model directories):
    a subsample, a split emorec made, a split that lost rows to label mapping or leakage
    removal, or a local copy without all of the published rows.
    """
    hub_id, display, _ = dataset
    record = (metrics_file or {}).get("data")
    if hub_id is None or not record or record.get("split_by") != "source":
        return None
    split = metrics_file["split"]  # type: ignore[index]
    read, used = record["read"].get(split), record["used"].get(split)
    if read is None or used != read:
        return None
    entry: dict[str, Any] = {"name": display, "type": hub_id, "split": split}
    data = config.data if config is not None else None
    if data is not None and data.format == "hub" and data.hub_id == hub_id:
        # Read from the Hub: every row of the split, as published at that revision.
        entry.update(
            {k: v for k, v in (("config", data.hub_config), ("revision", data.hub_revision)) if v}
        )
        return entry
    published = PUBLISHED_SPLITS.get(hub_id)
    if published is None or published[1].get(split) != read:
        return None
    entry["config"] = published[0]
    return entry


def _model_index(
    name: str,
    metrics_file: dict[str, Any] | None,
    multi_label: bool,
    published: dict[str, Any] | None,
) -> list[dict[str, Any]] | None:
    """The Hub's ``model-index``: headline metrics of the default decision rule.

    Only for a score on a whole published split (``published``, from :func:`_published_split`):
    the Hub files a model-index result under that dataset and split, so a score on a subsample
    or on emorec's own split must not appear there.
    """
    if not metrics_file or published is None:
        return None
    rule, values = metrics_file["decision_rule"], metrics_file["metrics"]
    if multi_label:
        wanted = [
            ("micro_f1", "f1", "Micro F1", {"average": "micro"}),
            ("macro_f1", "f1", "Macro F1", {"average": "macro"}),
            ("roc_auc_macro", "roc_auc", "Macro ROC-AUC", {"average": "macro"}),
        ]
    else:
        wanted = [
            ("accuracy", "accuracy", "Accuracy", None),
            ("macro_f1", "f1", "Macro F1", {"average": "macro"}),
        ]
    entries = []
    for key, kind, label, args in wanted:
        value = values.get(f"{rule}/{key}")
        if value is None or not math.isfinite(value):
            continue  # the Hub wants numbers; an undefined metric is left out
        entry: dict[str, Any] = {"type": kind, "value": value, "name": f"{label} ({rule})"}
        if args:
            entry["args"] = args
        entries.append(entry)
    return [
        {
            "name": name,
            "results": [
                {
                    "task": {"type": "text-classification", "name": "Text Classification"},
                    "dataset": published,
                    "metrics": entries,
                }
            ],
        }
    ]


def _front_matter(
    *,
    name: str,
    license: str,
    multi_label: bool,
    base_model: str | None,
    dataset: tuple[str | None, str, str | None],
    metrics_file: dict[str, Any] | None,
    published: dict[str, Any] | None = None,
    custom_head: bool = False,
) -> dict[str, Any]:
    tags = ["text-classification", "emotion-recognition", "emorec"]
    if multi_label:
        tags.append("multi-label-classification")
    front: dict[str, Any] = {
        "license": license,
        "language": ["en"],
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "tags": tags,
    }
    if custom_head:
        del front["library_name"]  # emorec's own head: plain transformers cannot load it
    if dataset[0]:
        front["datasets"] = [dataset[0]]
    if base_model:
        front["base_model"] = base_model
    front["metrics"] = ["f1", "roc_auc"] if multi_label else ["accuracy", "f1"]
    model_index = _model_index(name, metrics_file, multi_label, published)
    if model_index:
        front["model-index"] = model_index
    return front


def _rules(values: dict[str, Any]) -> list[str]:
    """Decision rules present in a metrics dict, raw first (``argmax``/``fixed``)."""
    found = {key.split("/", 1)[0] for key in values}
    return [r for r in ("argmax", "fixed", "calibrated") if r in found]


def _scored_rows(
    metrics_file: dict[str, Any],
    published: dict[str, Any] | None,
    dataset: tuple[str | None, str, str | None],
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


def _evaluation_section(
    metrics_file: dict[str, Any] | None,
    names: list[str],
    multi_label: bool,
    published: dict[str, Any] | None = None,
    dataset: tuple[str | None, str, str | None] = (None, "local data", None),
) -> str:
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
    raw = "fixed" if multi_label else "argmax"
    explained = {
        "argmax": "`argmax`: the most probable emotion, no calibration",
        "fixed": "`fixed`: every label with sigmoid probability ≥ 0.5",
        "calibrated": (
            "`calibrated`: temperature scaling plus per-label thresholds tuned on validation"
            if multi_label
            else "`calibrated`: temperature scaling plus per-class decision offsets tuned on "
            "validation"
        ),
    }
    size = metrics_file.get("n_examples")
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
    summary = MULTI_LABEL_SUMMARY if multi_label else SINGLE_LABEL_SUMMARY
    rows = [
        [metric, *(_fmt(values.get(f"{r}/{metric}")) for r in rules)]
        for metric in summary
        if any(f"{r}/{metric}" in values for r in rules)
    ]
    parts.append(_table(["metric", *rules], rows))
    parts.append(
        f"Per {'label' if multi_label else 'class'} ({rule} precision and recall; F1 under "
        "each rule):"
    )
    per_class = []
    for label in names:
        per_class.append(
            [
                label,
                _fmt(values.get(f"{rule}/{label}/support"), 0),
                _fmt(values.get(f"{rule}/{label}/precision")),
                _fmt(values.get(f"{rule}/{label}/recall")),
                *(_fmt(values.get(f"{r}/{label}/f1")) for r in rules),
            ]
        )
    header = ["label", "support", "precision", "recall", *(f"F1 ({r})" for r in rules)]
    parts.append(_table(header, per_class))
    if raw not in rules:
        parts.append(f"(No `{raw}` scores in metrics.json.)")
    return "\n\n".join(parts)


def _calibration_section(calibration: dict[str, Any] | None, names: list[str]) -> str:
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
        f"- Temperature T = {_fmt(calibration.get('temperature'))} "
        "(probabilities are softmax/sigmoid of logits / T).",
        f"- Decision: `{calibration.get('decision')}`.",
    ]
    for key, text in (("ece", "ECE"), ("macro_f1", "macro-F1")):
        before, after = calibration.get(f"{key}_before"), calibration.get(f"{key}_after")
        if before is not None and after is not None:
            lines.append(f"- Validation {text}: {_fmt(before)} before, {_fmt(after)} after.")
    parts.append("\n".join(lines))
    per_label = calibration.get("thresholds") or calibration.get("biases")
    if per_label:
        kind = "threshold" if calibration.get("thresholds") else "log-probability offset"
        rows = [[n, _fmt(v)] for n, v in zip(names, per_label, strict=False)]
        parts.append(_table(["label", kind], rows))
    return "\n\n".join(parts)


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
    lines.append("\n" + _table(header, rows) + "\n")
    return lines


def _data_section(
    config: Any, train: dict[str, Any], dataset: tuple[str | None, str, str | None]
) -> str:
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


def _training_section(config: Any, train: dict[str, Any], curves: bool = False) -> str:
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
        parts.append(_table(["hyperparameter", "value"], rows))
    if train:
        lines = [
            f"- Training time: {_duration(train.get('train_seconds'))}"
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
                f"{_fmt(train['best_validation_macro_f1'])} (that checkpoint was kept)."
            )
        parts.append("\n".join(lines))
    if curves:
        parts.append(
            "Training loss, validation loss and validation macro-F1 per evaluation (the log "
            f"history in `train_metrics.json`):\n\n![Training curves]({TRAINING_CURVES_FILE})"
        )
    return "\n\n".join(parts)


def _usage_section(repo_id: str, multi_label: bool, custom_head: bool) -> str:
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
        function = ', function_to_apply="sigmoid"' if multi_label else ""
        plain = (
            "With plain transformers (no emorec text cleaning, no calibration: raw "
            f"{'sigmoid' if multi_label else 'softmax'} scores):\n\n"
            "```python\n"
            "from transformers import pipeline\n\n"
            f'classifier = pipeline("text-classification", model="{repo_id}", top_k=None'
            f"{function})\n"
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


def _environment_section(train: dict[str, Any]) -> str:
    return (
        "## Environmental impact\n\n"
        f"Fine-tuning took {_duration(train.get('train_seconds'))} on "
        f"{train.get('hardware', 'unrecorded hardware')}. Energy use and emissions were not "
        "measured; estimate them from this time and hardware with the ML CO2 Impact calculator "
        "(Lacoste et al. 2019, https://mlco2.github.io/impact). Inference on a CPU, or with the "
        "ONNX int8 export (`emorec export`), costs far less than training."
    )


def model_card(
    model_dir: str | Path, *, repo_id: str | None = None, license: str = DEFAULT_LICENSE
) -> str:
    """The model card (``README.md`` text) of a model directory, rendered from its files.

    ``repo_id`` fills the usage snippets (default: ``<user>/<run_name>``); ``license`` is the
    Hub license id of the weights.
    """
    model_dir = Path(model_dir)
    meta = _read_json(model_dir / "emorec.json")
    if meta is None or "label_space" not in meta:
        raise ModelDirError(
            f"{model_dir} has no valid emorec.json: point at a model directory written by "
            "`emorec train`."
        )
    config = _read_config(model_dir)
    metrics_file = _read_json(model_dir / METRICS_FILE)
    calibration = _read_json(model_dir / "calibration.json")
    train = _read_json(model_dir / "train_metrics.json") or {}
    transformers_config = _read_json(model_dir / "config.json") or {}

    names = list(meta["label_space"]["names"])
    multi_label = bool(meta["label_space"].get("multi_label", False))
    run_name = config.run_name if config is not None else model_dir.name
    dataset = _dataset(config)
    published = _published_split(config, dataset, metrics_file)
    base_model = _base_model(meta, config)
    backbone = base_model or meta.get("base_model") or "unknown"
    custom_head = (model_dir / "head.safetensors").is_file()
    repo = repo_id or f"<user>/{run_name}"
    params = _parameter_count(model_dir)

    front = _front_matter(
        name=repo_id or run_name,
        license=license,
        multi_label=multi_label,
        base_model=base_model,
        dataset=dataset,
        metrics_file=metrics_file,
        published=published,
        custom_head=custom_head,
    )
    kind = "multi-label" if multi_label else "single-label"
    head = config.model.head if config is not None else ("custom" if custom_head else "auto")
    details = _table(
        ["", ""],
        [
            ["backbone", f"`{backbone}` ({transformers_config.get('model_type', '?')})"],
            ["parameters", _count(params)],
            ["task", f"{kind} emotion classification ({len(names)} labels)"],
            ["labels", ", ".join(f"`{n}`" for n in names)],
            ["head", f"`{head}`"],
            ["max length", f"{meta.get('max_length', '?')} tokens"],
            ["emorec version", str(meta.get("emorec_version", "?"))],
        ],
    )
    one_line = (
        f"A {kind} emotion classifier for short English text: `{backbone}` fine-tuned with "
        f"emorec on {dataset[1]}. "
        + (
            "Each text gets zero or more of the labels."
            if multi_label
            else "Each text gets exactly one label."
        )
    )
    sections = [
        f"# {run_name}",
        one_line,
        "## Model details\n\n" + details,
        _data_section(config, train, dataset),
        _training_section(config, train, (model_dir / TRAINING_CURVES_FILE).is_file()),
        _evaluation_section(metrics_file, names, multi_label, published, dataset),
        _calibration_section(calibration, names),
        _usage_section(repo, multi_label, custom_head),
        LIMITATIONS,
        _environment_section(train),
        "---\n\n*Generated by emorec from `metrics.json`, `config.yaml`, `emorec.json`, "
        "`calibration.json` and `train_metrics.json`; do not edit the numbers by hand.*",
    ]
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n\n" + "\n\n".join(sections) + "\n"


def parse_front_matter(card: str) -> dict[str, Any]:
    """The YAML front matter of a model card as a dict (the Hub reads the same block)."""
    match = re.match(r"^---\n(.*?)\n---\n", card, flags=re.S)
    if match is None:
        raise ModelDirError("The model card has no YAML front matter between `---` lines.")
    return yaml.safe_load(match.group(1)) or {}


def write_model_card(model_dir: str | Path, **kwargs: Any) -> Path:
    """Write (or refresh) ``README.md`` in ``model_dir`` atomically; return its path."""
    path = Path(model_dir) / MODEL_CARD_FILE
    atomic_write_text(path, model_card(model_dir, **kwargs))
    return path


# ---- Hub upload -----------------------------------------------------------------------------
def resolve_token(token: str | None = None) -> str:
    """The token to use: ``token``, else ``HF_TOKEN``, else the ``hf auth login`` cache."""
    if token:
        return token
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"]
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise HubAuthError(f"No Hugging Face token found. {TOKEN_HELP}")
    return found


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


def commit_operations(model_dir: str | Path, card: str | None = None) -> list[Any]:
    """One ``CommitOperationAdd`` per file of ``model_dir`` (sorted), the card as README.md.

    Hidden files (atomic-write leftovers, ``.cache``) are skipped; ``card`` replaces any
    README.md on disk.
    """
    from huggingface_hub import CommitOperationAdd

    model_dir = Path(model_dir)
    operations = []
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if card is not None and relative.as_posix() == MODEL_CARD_FILE:
            continue
        operations.append(CommitOperationAdd(relative.as_posix(), path))
    if card is not None:
        operations.append(CommitOperationAdd(MODEL_CARD_FILE, card.encode("utf-8")))
    return operations


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    license: str = DEFAULT_LICENSE,
    api: Any = None,
) -> str:
    """Upload ``model_dir`` to the Hub model repo ``repo_id`` in one commit; return its URL.

    Creates the repo if missing (``private`` applies then) and the ``revision`` branch if
    given. The model card is regenerated with ``repo_id`` in its snippets and uploaded as
    README.md (the local README.md is left as it is). ``api`` defaults to
    ``huggingface_hub.HfApi()``; tests pass a fake. Needs network access.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, HTTPError
    from huggingface_hub.utils import validate_repo_id

    model_dir = Path(model_dir)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ConfigError(
            f"--repo-id must look like `user/name`; got {repo_id!r} ({error})."
        ) from None
    if not (model_dir / "emorec.json").is_file():
        raise ModelDirError(
            f"{model_dir} is not an emorec model directory (no emorec.json); push the "
            "directory written by `emorec train`."
        )
    secret = resolve_token(token)
    card = model_card(model_dir, repo_id=repo_id, license=license)
    operations = commit_operations(model_dir, card)
    api = api if api is not None else HfApi()
    logger.info(
        "Uploading %d files from %s to %s in one commit.", len(operations), model_dir, repo_id
    )
    try:
        api.create_repo(repo_id, token=secret, private=private, repo_type="model", exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, token=secret, exist_ok=True)
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message,
            token=secret,
            revision=revision,
            repo_type="model",
        )
    except HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status in (401, 403):
            raise HubAuthError(
                f"The Hugging Face Hub refused the token (HTTP {status}): it is invalid, "
                f"expired, or cannot write to {repo_id}. {TOKEN_HELP}"
            ) from None
        raise HubError(
            f"Uploading to {repo_id} failed (HTTP {status}): {_redact(str(error), secret)}"
        ) from None
    except (OSError, HTTPError) as error:
        raise HubError(
            f"Could not reach the Hugging Face Hub to upload {repo_id} "
            f"({type(error).__name__}: {_redact(str(error), secret)}). Uploading needs network "
            "access (and HF_HUB_OFFLINE unset)."
        ) from None
    url = getattr(info, "commit_url", None) or f"https://huggingface.co/{repo_id}"
    logger.info("Uploaded %s", url)
    return str(url)
