"""Model cards and Hugging Face Hub upload for emorec model directories.

:func:`model_card` (``emorec.hub.card``) renders a model directory's ``README.md``: metadata
written by huggingface_hub from a ``ModelCardData`` (license, language, tags, task, data,
backbone and a model-index of ``EvalResult`` objects), then Markdown, every number from the
files the pipeline wrote. :func:`push_to_hub` (``emorec.hub.upload``) uploads a model
directory in one commit.

This package reads model directories' files itself and imports no ``emorec.inference``, so
that inference can import it.
"""

from __future__ import annotations

from emorec.hub.card import (
    DEFAULT_LICENSE,
    KNOWN_BACKBONES,
    KNOWN_DATASETS,
    LEAKAGE,
    LIMITATIONS,
    METRICS_FILE,
    MODEL_CARD_FILE,
    MULTI_LABEL_SUMMARY,
    PUBLISHED_SPLITS,
    SINGLE_LABEL_SUMMARY,
    SPLIT_NAMES,
    card_data,
    eval_results,
    model_card,
    parse_front_matter,
    published_split,
    training_dataset,
    write_model_card,
)
from emorec.hub.upload import (
    DEFAULT_COMMIT_MESSAGE,
    TOKEN_HELP,
    HubAuthError,
    HubError,
    commit_operations,
    push_to_hub,
    resolve_token,
)

__all__ = [
    "DEFAULT_COMMIT_MESSAGE",
    "DEFAULT_LICENSE",
    "KNOWN_BACKBONES",
    "KNOWN_DATASETS",
    "LEAKAGE",
    "LIMITATIONS",
    "METRICS_FILE",
    "MODEL_CARD_FILE",
    "MULTI_LABEL_SUMMARY",
    "PUBLISHED_SPLITS",
    "SINGLE_LABEL_SUMMARY",
    "SPLIT_NAMES",
    "TOKEN_HELP",
    "HubAuthError",
    "HubError",
    "card_data",
    "commit_operations",
    "eval_results",
    "model_card",
    "parse_front_matter",
    "published_split",
    "push_to_hub",
    "resolve_token",
    "training_dataset",
    "write_model_card",
]
