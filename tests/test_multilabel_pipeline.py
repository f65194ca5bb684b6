"""Multi-label end to end on the tiny model: list-valued labels → BCE → thresholds → report."""

import json
from pathlib import Path

import numpy as np
import pytest

from emorec.inference import EmotionClassifier
from emorec.pipeline import run

from .conftest import LABELS, WORDS


def write_multilabel_jsonl(path: Path, n: int, offset: int) -> None:
    """Texts with one or two emotion words; the labels are the emotions named."""
    rows = []
    for i in range(n):
        first = LABELS[i % len(LABELS)]
        labels = [first]
        words = [WORDS[first][(i + offset) % 6]]
        if i % 3 == 0:  # a second emotion on every third row
            second = LABELS[(i + 1) % len(LABELS)]
            labels.append(second)
            words.append(WORDS[second][(i + offset) % 6])
        rows.append({"text": f"i feel {' and '.join(words)} at {i + offset}", "label": labels})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture
def multilabel_config(make_config, tmp_path: Path):
    directory = tmp_path / "ml-data"
    write_multilabel_jsonl(directory / "train.jsonl", 24, 0)
    write_multilabel_jsonl(directory / "validation.jsonl", 16, 100)
    write_multilabel_jsonl(directory / "test.jsonl", 16, 200)
    return make_config(
        f"data.path={directory}",
        "training.loss_type=bce",
        "training.pos_weight=auto",
        "run_name=tiny-ml",
    )


def test_multilabel_run_end_to_end(multilabel_config) -> None:
    result = run(multilabel_config, progress=False)
    for name in (
        "metrics.json",
        "report.md",
        "per_label.csv",
        "threshold_curves.png",
        "per_label_precision_recall.png",
        "label_cooccurrence.png",
        "error_analysis.csv",
    ):
        assert (result.results_dir / name).stat().st_size > 0, name
    metrics = json.loads((result.results_dir / "metrics.json").read_text())
    assert metrics["multi_label"] is True
    assert {"fixed/macro_f1", "calibrated/macro_f1", "calibrated/roc_auc_macro"} <= set(
        metrics["metrics"]
    )
    calibration = json.loads((result.model_dir / "calibration.json").read_text())
    assert calibration["decision"] == "threshold"
    assert len(calibration["thresholds"]) == len(LABELS)

    classifier = EmotionClassifier.from_pretrained(result.model_dir)
    assert classifier.label_space.multi_label
    probs = classifier.predict_proba(["i feel happy and angry"])
    assert probs.shape == (1, len(LABELS))
    assert not np.allclose(probs.sum(axis=1), 1.0)  # independent sigmoids, not a softmax
    prediction = classifier.predict("i feel happy and angry")
    thresholds = dict(zip(LABELS, calibration["thresholds"], strict=True))
    # Every label whose calibrated probability passes its threshold is returned, best first.
    expected = [n for n, p in prediction.scores.items() if p >= thresholds[n]]
    assert prediction.labels == expected
    assert prediction.label == (expected[0] if expected else None)
