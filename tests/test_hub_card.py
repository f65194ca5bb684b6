"""The card's metadata is huggingface_hub's: it parses back into ModelCardData and EvalResults.

No network: ``ModelCard(text)`` and ``ModelCard.load(path)`` parse locally, and the card is
never validated against the Hub (``card.validate()`` would post it there).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import EvalResult, ModelCard, ModelCardData, metadata_load

import emorec.hub
from emorec._io import atomic_write_json
from emorec.hub import card_data, eval_results, model_card, parse_front_matter, write_model_card
from emorec.hub.card import card_task

from .test_hub import make_model_dir

HUB_PACKAGE = Path(emorec.hub.__file__).parent


@pytest.mark.parametrize("multi_label", [False, True], ids=["single-label", "multi-label"])
def test_card_metadata_round_trips_through_huggingface_hub(
    tmp_path: Path, multi_label: bool
) -> None:
    model_dir = make_model_dir(tmp_path, multi_label=multi_label)
    saved = json.loads((model_dir / "metrics.json").read_text())
    values, rule = saved["metrics"], saved["decision_rule"]
    card = model_card(model_dir, repo_id="someone/emotions")

    parsed = ModelCard(card)
    assert str(parsed) == card  # huggingface_hub writes the block back unchanged
    assert parsed.text.startswith("\n# card-test\n")
    data = parsed.data
    assert isinstance(data, ModelCardData)
    assert data.license == "apache-2.0" and data.language == ["en"]
    assert data.pipeline_tag == "text-classification" and data.library_name == "transformers"
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert ("multi-label-classification" in data.tags) is multi_label
    assert data.model_name == "someone/emotions"

    hub_id = "google-research-datasets/go_emotions" if multi_label else "dair-ai/emotion"
    assert data.datasets == [hub_id]
    assert all(isinstance(r, EvalResult) for r in data.eval_results)
    assert {(r.task_type, r.dataset_type, r.dataset_split) for r in data.eval_results} == {
        ("text-classification", hub_id, "test")
    }
    found = {
        (r.metric_type, (r.metric_args or {}).get("average")): r.metric_value
        for r in data.eval_results
    }
    if multi_label:
        expected = {
            ("f1", "micro"): values[f"{rule}/micro_f1"],
            ("f1", "macro"): values[f"{rule}/macro_f1"],
            ("roc_auc", "macro"): values[f"{rule}/roc_auc_macro"],
        }
    else:
        expected = {
            ("accuracy", None): values[f"{rule}/accuracy"],
            ("f1", "macro"): values[f"{rule}/macro_f1"],
        }
    assert found == expected  # the floats of metrics.json, unrounded

    # From the file on disk, as the Hub and `ModelCard.load` read it.
    path = write_model_card(model_dir, repo_id="someone/emotions")
    loaded = ModelCard.load(path)
    assert loaded.data.eval_results == data.eval_results
    assert metadata_load(path) == parse_front_matter(card) == data.to_dict()


def test_no_model_index_without_a_defined_headline_metric(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path)
    saved = json.loads((model_dir / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1"):
        saved["metrics"][f"calibrated/{key}"] = None  # NaN is written as null
    atomic_write_json(model_dir / "metrics.json", saved)
    front = parse_front_matter(model_card(model_dir))
    # No empty model-index entry, and no stray model_name that only names one.
    assert "model-index" not in front and "model_name" not in front
    assert ModelCard(model_card(model_dir)).data.eval_results is None


def test_card_of_an_older_metrics_json_counts_its_texts(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path)
    saved = json.loads((model_dir / "metrics.json").read_text())
    saved["n_examples"] = saved.pop("n_samples")  # the key older emorec versions wrote
    atomic_write_json(model_dir / "metrics.json", saved)
    assert f"Scores on the **test** split ({saved['n_examples']} texts)" in model_card(model_dir)


def test_card_data_builds_eval_results_for_the_published_split() -> None:
    published = {"name": "someone/tweets", "type": "someone/tweets", "split": "test"}
    published |= {"config": "clean", "revision": "v2"}
    metrics_file = {
        "decision_rule": "argmax",
        "metrics": {"argmax/accuracy": 0.75, "argmax/macro_f1": float("nan")},
    }
    single_label = card_task(multi_label=False)
    (result,) = eval_results(metrics_file, single_label, published)
    assert (result.metric_type, result.metric_value, result.metric_name) == (
        "accuracy",
        0.75,
        "Accuracy (argmax)",
    )
    assert (result.dataset_config, result.dataset_revision) == ("clean", "v2")
    assert eval_results(metrics_file, single_label, None) == []  # not a whole published split

    data = card_data(
        name="someone/m",
        license="mit",
        task=single_label,
        base_model=None,
        dataset=("someone/tweets", "someone/tweets", None),
        metrics_file=metrics_file,
        published=published,
        custom_head=True,
    )
    block = data.to_dict()
    assert "library_name" not in block and "base_model" not in block
    assert block["model-index"][0]["results"][0]["dataset"]["revision"] == "v2"


def test_importing_hub_loads_no_inference() -> None:
    """So that emorec.inference can import emorec.hub without an import cycle (the import
    graph itself: tests/test_architecture.py)."""
    code = "import sys, emorec.hub; print('emorec.inference' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"  # not even through the modules it imports
