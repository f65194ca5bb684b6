"""The model card: huggingface_hub metadata (model-index included) and emorec's Markdown.

:func:`model_card` renders a model directory's ``README.md`` from the files the pipeline wrote;
``sources`` reads those files, ``metadata`` builds the ``ModelCardData`` (with ``EvalResult``
objects for the model-index), ``sections``, ``evaluation`` and ``markdown`` write the body.
"""

from __future__ import annotations

from emorec.hub.card.build import (
    DEFAULT_LICENSE,
    MODEL_CARD_FILE,
    model_card,
    parse_front_matter,
    write_model_card,
)
from emorec.hub.card.metadata import card_data, eval_results
from emorec.hub.card.sections import LEAKAGE, LIMITATIONS, SPLIT_NAMES
from emorec.hub.card.sources import (
    KNOWN_BACKBONES,
    KNOWN_DATASETS,
    METRICS_FILE,
    PUBLISHED_SPLITS,
    published_split,
    training_dataset,
)
from emorec.hub.card.tasks import (
    CARD_TASKS,
    MULTI_LABEL_SUMMARY,
    SINGLE_LABEL_SUMMARY,
    CardTask,
    card_task,
)

__all__ = [
    "CARD_TASKS",
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
    "CardTask",
    "card_data",
    "card_task",
    "eval_results",
    "model_card",
    "parse_front_matter",
    "published_split",
    "training_dataset",
    "write_model_card",
]
