"""The card's metadata (its YAML block) as huggingface_hub's ``ModelCardData``.

huggingface_hub writes the YAML, including the ``model-index`` built from ``EvalResult``
objects, so the block is the one the Hub parses: ``ModelCard(card).data.eval_results`` gives
back the results written here.
"""

from __future__ import annotations

import math
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from emorec.hub.card.sources import Dataset
from emorec.hub.card.tasks import CardTask

TASK_TYPE, TASK_NAME = "text-classification", "Text Classification"


def eval_results(
    metrics_file: dict[str, Any] | None, task: CardTask, published: dict[str, Any] | None
) -> list[EvalResult]:
    """Headline metrics of the default decision rule, one ``EvalResult`` each.

    Only for a score on a whole published split (``published``, from
    :func:`~emorec.hub.card.sources.published_split`): the Hub files a model-index result
    under that dataset and split, so a score on a subsample or on emorec's own split must not
    appear there. An undefined metric (NaN, written as null) is left out: the Hub wants numbers.
    """
    if not metrics_file or published is None:
        return []
    rule, values = metrics_file["decision_rule"], metrics_file["metrics"]
    results = []
    for key, kind, label, args in task.headline:
        value = values.get(f"{rule}/{key}")
        if value is None or not math.isfinite(value):
            continue
        results.append(
            EvalResult(
                task_type=TASK_TYPE,
                task_name=TASK_NAME,
                dataset_type=published["type"],
                dataset_name=published["name"],
                dataset_config=published.get("config"),
                dataset_split=published["split"],
                dataset_revision=published.get("revision"),
                metric_type=kind,
                metric_value=float(value),
                metric_name=f"{label} ({rule})",
                metric_args=args,
            )
        )
    return results


def card_data(
    *,
    name: str,
    license: str,
    task: CardTask,
    base_model: str | None,
    dataset: Dataset,
    metrics_file: dict[str, Any] | None,
    published: dict[str, Any] | None = None,
    custom_head: bool = False,
) -> ModelCardData:
    """The card's metadata: license, language, tags, task, data, backbone, model-index.

    ``name`` names the model-index entry (the repo id when known); ``custom_head`` leaves
    ``library_name`` out, since plain transformers cannot load emorec's own head.
    """
    results = eval_results(metrics_file, task, published)
    return ModelCardData(
        license=license,
        language=["en"],
        library_name=None if custom_head else "transformers",
        pipeline_tag=TASK_TYPE,
        tags=["text-classification", "emotion-recognition", "emorec", *task.tags],
        datasets=[dataset[0]] if dataset[0] else None,
        base_model=base_model,
        metrics=list(task.hub_metrics),
        # model_name only names the model-index; without results it would be a stray key.
        model_name=name if results else None,
        eval_results=results or None,
    )
