"""Model cards and Hub upload: the card's numbers are metrics.json's, push prepares one commit.

The Hub cannot be reached from the tests: uploads go to a fake ``api`` object that records the
calls (dependency injection), so everything up to the network call is checked.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from emorec._io import atomic_write_json
from emorec.cli import app
from emorec.errors import ConfigError, ModelDirError
from emorec.hub import (
    PUBLISHED_SPLITS,
    HubAuthError,
    HubError,
    commit_operations,
    model_card,
    parse_front_matter,
    push_to_hub,
    write_model_card,
)

from .conftest import LABELS, make_rows, write_dair

SECRET = "hf_SuperSecretTestToken1234567890"
runner = CliRunner()


class FakeApi:
    """Records ``HfApi`` calls instead of sending them; ``fail`` is raised by create_commit."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.fail = fail

    def create_repo(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append(("create_repo", args, kwargs))
        return f"https://huggingface.co/{args[0]}"

    def create_branch(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("create_branch", args, kwargs))

    def create_commit(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("create_commit", args, kwargs))
        if self.fail is not None:
            raise self.fail

        class Info:
            commit_url = f"https://huggingface.co/{args[0]}/commit/abc123"

        return Info()


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No token anywhere: environment cleared, login cache pointed at a missing file."""
    from huggingface_hub import constants

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


def _metrics_file(model_dir: Path) -> dict[str, Any]:
    return json.loads((model_dir / "metrics.json").read_text())


def _table_after(card: str, header_start: str) -> list[list[str]]:
    """Cells of the Markdown table whose header line starts with ``header_start``."""
    lines = card.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def make_model_dir(root: Path, multi_label: bool = False, metrics: bool = True) -> Path:
    """A model directory with every file the card reads, metrics from the real scorers.

    Its data record says the whole published test split was scored (so the card has a
    model-index), with as many test rows as the published split has.
    """
    from safetensors.numpy import save_file

    from emorec.calibration import Calibration
    from emorec.config import load_config
    from emorec.evaluation.multi_label import compute_multilabel_metrics
    from emorec.evaluation.single_label import compute_metrics

    model_dir = root / ("multi" if multi_label else "single")
    model_dir.mkdir(parents=True)
    names = LABELS
    rng = np.random.default_rng(0)
    data = "../shared/data/goemotions" if multi_label else "../shared/data/dair-emotion"
    hub_id = "google-research-datasets/go_emotions" if multi_label else "dair-ai/emotion"
    published = PUBLISHED_SPLITS[hub_id][1]
    record = {
        "split_by": "source",
        "read": published,
        "available": published,
        "used": published,
        "subsample": {"train": None, "validation": None, "test": None},
    }
    config = load_config(
        None,
        [
            "run_name=card-test",
            f"data.path={data}",
            "data.augmentation.enabled=true",
            "data.augmentation.target_per_class=100",
            "data.augmentation.methods=[swap, delete]",
        ],
    )
    (model_dir / "config.yaml").write_text(config.to_yaml())
    atomic_write_json(
        model_dir / "emorec.json",
        {
            "emorec_version": "0.1.0",
            "label_space": {"names": names, "multi_label": multi_label},
            "cleaning": config.data.cleaning.model_dump(),
            "max_length": 128,
            "base_model": "minilm",
        },
    )
    atomic_write_json(model_dir / "config.json", {"model_type": "bert"})
    save_file(
        {"w": np.zeros((3, 4), np.float32), "b": np.zeros(4, np.float32)},
        model_dir / "model.safetensors",
    )
    atomic_write_json(
        model_dir / "train_metrics.json",
        {
            "train_seconds": 3725.0,
            "epochs": 3.0,
            "global_steps": 1500,
            "best_validation_macro_f1": 0.8,
            "train_samples": 400,
            "validation_samples": 50,
            "augmented_train_samples": 37,
            "hardware": "CPU Test CPU (2 threads)",
            "data": record,
        },
    )
    n = published["test"]
    if multi_label:
        y = (rng.random((n, len(names))) < 0.3).astype(int)
        y[:, 3] = 0  # a label with no positives: ROC-AUC undefined for it
        probs = rng.random((n, len(names)))
        thresholds = [0.4, 0.5, 0.3, 0.6]
        calibration = Calibration(temperature=1.3, thresholds=thresholds, multi_label=True)
        rules = {
            "fixed": (probs, (probs >= 0.5).astype(int)),
            "calibrated": (probs, (probs >= np.asarray(thresholds)).astype(int)),
        }
        values = compute_multilabel_metrics(
            y, names, rules, {"fixed": 0.5, "calibrated": np.asarray(thresholds)}
        )
    else:
        y = rng.integers(0, len(names), n)
        probs = rng.dirichlet(np.ones(len(names)), n)
        calibration = Calibration(
            temperature=1.2, biases=[0.1, -0.2, 0.0, 0.3], decision="bias", multi_label=False
        )
        rules = {"argmax": (probs, probs.argmax(1)), "calibrated": (probs, probs.argmin(1))}
        values = compute_metrics(y, names, rules)
    calibration.save(model_dir / "calibration.json")
    if metrics:
        atomic_write_json(
            model_dir / "metrics.json",
            {
                "split": "test",
                "decision_rule": "calibrated",
                "n_samples": n,
                "data": record,
                "metrics": values,
            },
        )
    return model_dir


@pytest.fixture
def tiny_dair_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny corpus as a local copy of dair-ai/emotion: a directory named like the known
    dataset, whose split sizes the test makes the published ones (24 / 12 / 12 rows)."""
    directory = tmp_path / "dair-emotion"
    write_dair(directory / "train.txt", make_rows(6))
    write_dair(directory / "validation.txt", make_rows(3, offset=100))
    write_dair(directory / "test.txt", make_rows(3, offset=200))
    sizes = {"train": 24, "validation": 12, "test": 12}
    monkeypatch.setitem(PUBLISHED_SPLITS, "dair-ai/emotion", ("split", sizes))
    return directory


def _card_and_front(model_dir: Path) -> tuple[str, dict[str, Any]]:
    card = (model_dir / "README.md").read_text(encoding="utf-8")
    return card, parse_front_matter(card)


# ---- the card -------------------------------------------------------------------------------
def test_pipeline_writes_card_whose_numbers_are_metrics_json(
    make_config, tiny_dair_copy: Path
) -> None:
    from emorec.pipeline import run

    result = run(make_config(f"data.path={tiny_dair_copy}"), progress=False)
    model_dir = result.model_dir
    card = (model_dir / "README.md").read_text(encoding="utf-8")
    assert card == model_card(model_dir)  # generated, not hand-edited
    saved = _metrics_file(model_dir)
    values, rule = saved["metrics"], saved["decision_rule"]
    assert rule == "calibrated" and saved["n_samples"] == 12

    front = parse_front_matter(card)
    assert front["pipeline_tag"] == "text-classification"
    assert front["language"] == ["en"] and front["license"] == "apache-2.0"
    assert "base_model" not in front  # a local directory is no Hub id
    (result_entry,) = front["model-index"][0]["results"]
    # The whole published test split was scored: the model-index files the score under it.
    assert result_entry["dataset"] == {
        "name": "dair-ai/emotion",
        "type": "dair-ai/emotion",
        "split": "test",
        "config": "split",
    }
    assert "It is the whole published test split of dair-ai/emotion." in card
    by_type = {(m["type"], m.get("args", {}).get("average")): m for m in result_entry["metrics"]}
    # Exactly the floats of metrics.json, not rounded copies.
    assert by_type[("accuracy", None)]["value"] == values[f"{rule}/accuracy"]
    assert by_type[("f1", "macro")]["value"] == values[f"{rule}/macro_f1"]

    rows = _table_after(card, "| label | support |")
    assert [r[0] for r in rows] == LABELS
    for label, support, precision, recall, f1_argmax, f1_calibrated in rows:
        assert support == f"{values[f'{rule}/{label}/support']:.0f}"
        assert precision == f"{values[f'{rule}/{label}/precision']:.4f}"
        assert recall == f"{values[f'{rule}/{label}/recall']:.4f}"
        assert f1_argmax == f"{values[f'argmax/{label}/f1']:.4f}"
        assert f1_calibrated == f"{values[f'calibrated/{label}/f1']:.4f}"
    summary = {r[0]: r[1:] for r in _table_after(card, "| metric | argmax | calibrated |")}
    assert summary["macro_f1"] == [
        f"{values['argmax/macro_f1']:.4f}",
        f"{values['calibrated/macro_f1']:.4f}",
    ]
    for section in ("## Limitations and biases", "Sarcasm", "Slang drift", "Domain shift"):
        assert section in card
    assert "English only" in card and "## Environmental impact" in card


def test_card_of_a_subsampled_run_states_the_rows_it_used(
    make_config, tiny_dair_copy: Path
) -> None:
    """quickstart's settings on less data than they ask for: real counts, no published split."""
    from emorec.pipeline import run

    config = make_config(
        f"data.path={tiny_dair_copy}", "data.max_train_samples=6000", "data.max_eval_samples=6"
    )
    model_dir = run(config, progress=False).model_dir
    card, front = _card_and_front(model_dir)
    record = json.loads((model_dir / "train_metrics.json").read_text())["data"]
    assert record == _metrics_file(model_dir)["data"]  # recorded at training and evaluation
    assert record["used"] == {"train": 24, "validation": 6, "test": 6}
    assert record["read"] == record["available"] == {"train": 24, "validation": 12, "test": 12}

    assert "model-index" not in front  # a subsample of the test split is not the test split
    assert front["datasets"] == ["dair-ai/emotion"]  # trained on part of it all the same
    rows = {r[0]: r[1:] for r in _table_after(card, "| split | rows in the source |")}
    assert rows == {
        "training": [
            "24",
            "24",
            "24",
            "all (`data.max_train_samples: 6000` is more than there are)",
        ],
        "validation": ["12", "12", "6", "stratified subsample (`data.max_eval_samples: 6`)"],
        "test": ["12", "12", "6", "stratified subsample (`data.max_eval_samples: 6`)"],
    }
    assert "Scores on the **test** split (6 texts)" in card
    assert "a 6-row stratified subsample of its 12 rows" in card
    assert "not a whole published split of dair-ai/emotion" in card
    assert "published ones" not in card and "6000 rows" not in card


def test_card_of_a_self_split_csv(make_config, tmp_path: Path) -> None:
    import csv

    from emorec.pipeline import run

    # Named like the known dataset, yet one file that emorec splits: no published split.
    path = tmp_path / "dair-emotion.csv"
    rows = make_rows(15)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows, rows[0]])  # one duplicate
    config = make_config(
        f"data.path={path}",
        "data.split.validation_size=0.2",
        "data.split.test_size=0.2",
        "data.split.seed=7",
    )
    model_dir = run(config, progress=False).model_dir
    card, front = _card_and_front(model_dir)
    record = _metrics_file(model_dir)["data"]
    assert record["split_by"] == "emorec" and record["read"] == {"all": 61}
    assert record["self_split"] == {
        "validation_size": 0.2,
        "test_size": 0.2,
        "seed": 7,
        "duplicates_removed": 1,
    }
    assert "model-index" not in front
    assert (
        "- Splits: **made by emorec**, not published ones: one source of 61 rows (1 exact "
        "duplicates removed first), split 60% / 20% / 20% into train / validation / test "
        "(stratified where the classes allow, seed 7)."
    ) in card
    assert "It is the test part of emorec's own split of one file (seed 7)" in card
    rows_table = {r[0]: r[1:] for r in _table_after(card, "| split | rows in the source |")}
    assert rows_table["test"] == ["—", "12", "12", "all"]
    assert "published ones" not in card.replace("not published ones", "")


def test_rows_dropped_by_label_mapping_are_counted_and_void_the_claim(
    make_config, tiny_dair_copy: Path
) -> None:
    from emorec.data import prepare
    from emorec.hub import published_split, training_dataset

    config = make_config(
        f"data.path={tiny_dair_copy}",
        "model.labels=null",
        "data.label_mapping.keep=[sadness, joy]",
    )
    record = prepare(config).report["rows"]
    assert record["read"] == {"train": 24, "validation": 12, "test": 12}  # before the mapping
    assert record["available"] == record["used"] == {"train": 12, "validation": 6, "test": 6}
    metrics_file = {"split": "test", "data": record}
    assert published_split(config, training_dataset(config), metrics_file) is None


def test_card_claims_a_published_split_only_when_it_is_recorded_whole(tmp_path: Path) -> None:
    from emorec.config import load_config
    from emorec.hub import published_split

    model_dir = make_model_dir(tmp_path)
    saved = _metrics_file(model_dir)
    # A local copy that lacks a published row is not the published split.
    short = json.loads(json.dumps(saved))
    short["data"]["read"]["test"] = short["data"]["used"]["test"] = 1999
    atomic_write_json(model_dir / "metrics.json", short)
    assert "model-index" not in parse_front_matter(model_card(model_dir))
    # An older model directory records nothing: no claim, and the card says why.
    for name in ("metrics.json", "train_metrics.json"):
        older = json.loads((model_dir / name).read_text())
        older.pop("data")
        atomic_write_json(model_dir / name, older)
    card = model_card(model_dir)
    assert "model-index" not in parse_front_matter(card)
    assert "was not recorded" in card and "Rows used: 400 training, 50 validation" in card

    # Read from the Hub: the whole split as published, with its config and revision.
    config = load_config(
        None,
        [
            "data.format=hub",
            "data.hub_id=someone/tweets",
            "data.hub_config=clean",
            "data.hub_revision=v2",
        ],
    )
    full = {"split_by": "source", "read": {"test": 9}, "used": {"test": 9}}
    dataset = ("someone/tweets", "someone/tweets", None)
    assert published_split(config, dataset, {"split": "test", "data": full}) == {
        "name": "someone/tweets",
        "type": "someone/tweets",
        "split": "test",
        "config": "clean",
        "revision": "v2",
    }
    part = full | {"used": {"test": 5}}
    assert published_split(config, dataset, {"split": "test", "data": part}) is None


def test_single_label_card_sections(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path)
    card = model_card(model_dir, repo_id="someone/emotions")
    front = parse_front_matter(card)
    assert front["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert front["datasets"] == ["dair-ai/emotion"]
    assert front["model-index"][0]["name"] == "someone/emotions"
    assert front["model-index"][0]["results"][0]["dataset"]["type"] == "dair-ai/emotion"
    assert 'EmotionClassifier.from_pretrained("someone/emotions")' in card
    assert 'pipeline("text-classification", model="someone/emotions", top_k=None)' in card
    assert "1 h 02 min" in card and "CPU Test CPU (2 threads)" in card
    assert "| parameters | 16 |" in card  # read from the safetensors header
    assert "37 rows added" in card
    calibration = json.loads((model_dir / "calibration.json").read_text())
    offsets = _table_after(card, "| label | log-probability offset |")
    assert [float(v) for _, v in offsets] == [round(b, 4) for b in calibration["biases"]]
    assert f"Temperature T = {calibration['temperature']:.4f}" in card


def test_multilabel_card_model_index(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path, multi_label=True)
    card = model_card(model_dir)
    front = parse_front_matter(card)
    values = _metrics_file(model_dir)["metrics"]
    assert "multi-label-classification" in front["tags"]
    assert front["datasets"] == ["google-research-datasets/go_emotions"]
    metrics = front["model-index"][0]["results"][0]["metrics"]
    found = {(m["type"], m["args"]["average"]): m["value"] for m in metrics}
    assert found == {
        ("f1", "micro"): values["calibrated/micro_f1"],
        ("f1", "macro"): values["calibrated/macro_f1"],
        ("roc_auc", "macro"): values["calibrated/roc_auc_macro"],
    }
    rows = {r[0]: r for r in _table_after(card, "| label | support |")}
    assert rows[LABELS[3]][1] == "0"
    thresholds = _table_after(card, "| label | threshold |")
    assert [v for _, v in thresholds] == ["0.4000", "0.5000", "0.3000", "0.6000"]
    assert 'function_to_apply="sigmoid"' in card


def test_undefined_metrics_are_left_out_of_model_index(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path, multi_label=True)
    saved = _metrics_file(model_dir)
    saved["metrics"]["calibrated/roc_auc_macro"] = None  # NaN is written as null
    atomic_write_json(model_dir / "metrics.json", saved)
    front = parse_front_matter(model_card(model_dir))
    types = [m["type"] for m in front["model-index"][0]["results"][0]["metrics"]]
    assert types == ["f1", "f1"]
    assert all(
        isinstance(m["value"], float) and math.isfinite(m["value"])
        for m in front["model-index"][0]["results"][0]["metrics"]
    )


def test_card_before_evaluation_and_bad_dirs(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path, metrics=False)
    card = model_card(model_dir)
    assert "Not evaluated yet" in card
    assert "model-index" not in parse_front_matter(card)
    path = write_model_card(model_dir)
    assert path.read_text(encoding="utf-8") == card
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".")]  # atomic, no leftovers
    with pytest.raises(ModelDirError, match=r"Model directory not found: .*empty"):
        model_card(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelDirError, match=r"not an emorec model directory: missing emorec\.json"):
        model_card(tmp_path / "empty")
    with pytest.raises(ModelDirError, match="front matter"):
        parse_front_matter("# no front matter")


def test_front_matter_is_valid_yaml_block(tmp_path: Path) -> None:
    card = model_card(make_model_dir(tmp_path))
    assert card.startswith("---\n")
    block = card.split("---\n")[1]
    assert yaml.safe_load(block) == parse_front_matter(card)


# ---- push -----------------------------------------------------------------------------------
def test_push_prepares_one_commit_with_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model_dir = make_model_dir(tmp_path)
    (model_dir / "README.md").write_text("stale card")
    (model_dir / ".metrics.json.abc.tmp.json").write_text("{}")  # an atomic-write leftover
    monkeypatch.setenv("HF_TOKEN", SECRET)
    api = FakeApi()
    with caplog.at_level(logging.DEBUG):
        url = push_to_hub(model_dir, "someone/emotions", private=True, revision="v1", api=api)
    assert url == "https://huggingface.co/someone/emotions/commit/abc123"
    assert [name for name, _, _ in api.calls] == ["create_repo", "create_branch", "create_commit"]
    _, args, kwargs = api.calls[0]
    assert args == ("someone/emotions",)
    assert kwargs["exist_ok"] is True and kwargs["private"] is True
    assert kwargs["token"] == SECRET
    assert api.calls[1][2]["branch"] == "v1"
    _, (repo, operations), commit = api.calls[2]
    assert repo == "someone/emotions" and commit["revision"] == "v1"
    assert commit["token"] == SECRET
    on_disk = [p.name for p in model_dir.iterdir() if p.name[0] != "." and p.name != "README.md"]
    expected = [*sorted(on_disk), "README.md"]
    assert [op.path_in_repo for op in operations] == expected
    card = operations[-1].path_or_fileobj
    assert isinstance(card, bytes)
    assert b'from_pretrained("someone/emotions")' in card
    assert card.decode() == model_card(model_dir, repo_id="someone/emotions")
    assert (model_dir / "README.md").read_text() == "stale card"  # push writes nothing locally
    assert SECRET not in caplog.text
    assert "someone/emotions" in caplog.text


def test_commit_operations_paths(tmp_path: Path) -> None:
    model_dir = make_model_dir(tmp_path)
    (model_dir / "onnx").mkdir()
    (model_dir / "onnx" / "model.onnx").write_bytes(b"x")
    paths = [op.path_in_repo for op in commit_operations(model_dir)]
    assert "onnx/model.onnx" in paths and paths == sorted(paths)


def test_push_refuses_without_token(
    tmp_path: Path, no_token: None, caplog: pytest.LogCaptureFixture
) -> None:
    model_dir = make_model_dir(tmp_path)
    api = FakeApi()
    with pytest.raises(HubAuthError, match=r"No Hugging Face token.*hf auth login.*HF_TOKEN"):
        push_to_hub(model_dir, "someone/emotions", api=api)
    assert api.calls == []


def test_rejected_token_is_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, no_token: None
) -> None:
    import httpx2  # the HTTP client huggingface_hub uses; installed with it
    from huggingface_hub.errors import HfHubHTTPError

    model_dir = make_model_dir(tmp_path)
    request = httpx2.Request("POST", "https://huggingface.co/api/someone/emotions/commit/main")
    response = httpx2.Response(401, request=request)
    rejected = HfHubHTTPError(f"401 Unauthorized for token {SECRET}", response=response)
    with caplog.at_level(logging.DEBUG), pytest.raises(HubAuthError) as info:
        push_to_hub(model_dir, "someone/emotions", token=SECRET, api=FakeApi(rejected))
    message = str(info.value)
    assert "HTTP 401" in message and "invalid" in message and "hf auth login" in message
    assert SECRET not in message and SECRET not in caplog.text
    assert info.value.__cause__ is None and info.value.__suppress_context__

    offline = ConnectionError(f"cannot connect (token {SECRET})")
    with pytest.raises(HubError, match="needs network access") as info:
        push_to_hub(model_dir, "someone/emotions", token=SECRET, api=FakeApi(offline))
    assert SECRET not in str(info.value)

    with pytest.raises(ConfigError, match="repo-id"):
        push_to_hub(model_dir, "not a repo id!", token=SECRET, api=FakeApi())
    with pytest.raises(ModelDirError, match="not an emorec model directory"):
        push_to_hub(tmp_path, "someone/emotions", token=SECRET, api=FakeApi())


def test_cli_push_offline_and_without_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_token: None
) -> None:
    model_dir = make_model_dir(tmp_path)
    result = runner.invoke(app, ["push", str(model_dir), "--repo-id", "someone/emotions"])
    assert result.exit_code == 2
    assert "No Hugging Face token" in result.output and "Traceback" not in result.output

    # The tests run with HF_HUB_OFFLINE=1, so the real HfApi stops before the network.
    monkeypatch.setenv("HF_TOKEN", SECRET)
    result = runner.invoke(app, ["push", str(model_dir), "--repo-id", "someone/emotions"])
    assert result.exit_code == 2
    assert "needs network access" in result.output
    assert SECRET not in result.output


def test_classifier_push_to_hub_uploads_its_directory(make_config, tmp_path: Path) -> None:
    from emorec.inference import EmotionClassifier
    from emorec.train import train

    config = make_config("training.max_steps=1")
    trained = train(config, progress=False)
    api = FakeApi()
    # In memory (never loaded from disk): saved to a temporary directory, then uploaded.
    trained.classifier.push_to_hub("someone/fresh", token=SECRET, api=api)
    paths = [op.path_in_repo for op in api.calls[-1][1][1]]
    assert {"model.safetensors", "emorec.json", "config.yaml", "README.md"} <= set(paths)

    loaded = EmotionClassifier.from_pretrained(trained.model_dir)
    assert loaded.model_dir == trained.model_dir
    api = FakeApi()
    loaded.push_to_hub("someone/loaded", token=SECRET, api=api, commit_message="v1")
    _, (_, operations), commit = api.calls[-1]
    assert commit["commit_message"] == "v1"
    on_disk = sorted(p.name for p in trained.model_dir.iterdir() if p.name != "README.md")
    assert [op.path_in_repo for op in operations] == [*on_disk, "README.md"]


def test_card_of_a_custom_head(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    model_dir = make_model_dir(tmp_path)
    save_file({"head.weight": np.zeros((4, 2), np.float32)}, model_dir / "head.safetensors")
    card = model_card(model_dir)
    assert "library_name" not in parse_front_matter(card)
    assert "plain transformers cannot load this model" in card
    assert "| parameters | 24 |" in card  # encoder and head files both counted
