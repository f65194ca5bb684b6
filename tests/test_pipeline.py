"""End to end on the tiny model: `emorec run`, reload, predict, and bad model directories."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emorec.cli import app
from emorec.errors import ModelDirError
from emorec.inference import EmotionClassifier, Prediction

from .conftest import LABELS

runner = CliRunner()


@pytest.fixture
def trained(make_config, tmp_path: Path):
    """One full `emorec run` on the tiny model (shared by the assertions of a test)."""
    from emorec.pipeline import run

    config = make_config()
    return config, run(config, progress=False)


def test_run_writes_every_artifact(trained) -> None:
    config, result = trained
    model_dir, results_dir = result.model_dir, result.results_dir
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "emorec.json",
        "calibration.json",
        "config.yaml",
        "train_metrics.json",
        "metrics.json",
        "training_curves.png",
    ):
        assert (model_dir / name).is_file(), name
    for name in (
        "confusion_matrix.png",
        "reliability_diagram.png",
        "error_analysis.csv",
        "metrics.json",
        "report.md",
        "config.yaml",
        "training_curves.png",
    ):
        path = results_dir / name
        assert path.is_file() and path.stat().st_size > 0, name
    metrics = json.loads((results_dir / "metrics.json").read_text())
    assert metrics["decision_rule"] == "calibrated"
    assert {"argmax/macro_f1", "calibrated/macro_f1", "calibrated/ece"} <= set(metrics["metrics"])
    meta = json.loads((model_dir / "emorec.json").read_text())
    assert meta["label_space"]["names"] == LABELS
    assert meta["cleaning"]["normalize_slang"] is True
    assert not (config.output_path("work_dir") / "checkpoints").exists()


def test_reloaded_classifier_matches_in_memory(trained) -> None:
    _, result = trained
    texts = ["i feel so happy today", "I'm sooo angryyyy @bob http://x.co", "😢 so sad"]
    loaded = EmotionClassifier.from_pretrained(result.model_dir)
    again = EmotionClassifier.from_pretrained(result.model_dir)
    np.testing.assert_array_equal(loaded.predict_proba(texts), again.predict_proba(texts))

    # The in-memory model from training gives the same logits as the saved one.
    from emorec.train import train

    config, _ = trained
    fresh = train(config, progress=False)
    in_memory = fresh.classifier.logits(texts)
    reloaded = EmotionClassifier.from_pretrained(fresh.model_dir).logits(texts)
    np.testing.assert_allclose(in_memory, reloaded, atol=1e-5)


def test_predict_api_shapes_and_decisions(trained) -> None:
    _, result = trained
    classifier = EmotionClassifier.from_pretrained(result.model_dir)
    one = classifier.predict("i am so scared", top_k=2)
    assert one.label in LABELS and one.labels == [one.label]
    assert len(one.scores) == 2
    assert list(one.scores.values()) == sorted(one.scores.values(), reverse=True)
    many = classifier.predict(["a", "b", "c"])
    assert [p.text for p in many] == ["a", "b", "c"]
    probs = classifier.predict_proba(["x", "a much longer text to force another batch order"])
    assert probs.shape == (2, len(LABELS))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert classifier.predict_proba("x").shape == (len(LABELS),)
    # Sorting by length for batching must not change the order of results.
    texts = ["short", "a considerably longer text than the others here", "mid length text"]
    classifier.batch_size = 1
    one_by_one = classifier.predict_proba(texts)
    classifier.batch_size = 64
    np.testing.assert_allclose(one_by_one, classifier.predict_proba(texts), atol=1e-5)
    with pytest.raises(ValueError, match="top_k"):
        classifier.predict("x", top_k=99)
    with pytest.raises(ValueError, match="decision"):
        classifier.predict("x", decision="vote")  # type: ignore[arg-type]


def test_cli_run_predict_and_files(make_config, tmp_path: Path) -> None:
    config = make_config()
    config_path = tmp_path / "run.yaml"
    config_path.write_text(config.to_yaml())
    result = runner.invoke(app, ["run", str(config_path), "--set", "training.max_steps=1"])
    assert result.exit_code == 0, result.output
    model_dir = config.output_path("model_dir")
    assert "Results:" in result.output

    result = runner.invoke(app, ["predict", str(model_dir), "i am so happy", "--top-k", "2"])
    assert result.exit_code == 0, result.output
    assert "i am so happy" in result.output

    source = tmp_path / "in.csv"
    source.write_text('id,text\n1,"i am glad, really"\n2,so angry\n3,\n')
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["predict", str(model_dir), "--input", str(source), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    import pandas as pd

    annotated = pd.read_csv(out, keep_default_na=False)
    assert annotated["id"].tolist() == [1, 2, 3]
    assert set(annotated["pred_label"][:2]) <= set(LABELS)
    # Row 3 has no text: it keeps its line, with the reason instead of emotions.
    assert annotated["pred_error"].tolist()[0] == ""
    assert annotated["pred_error"].tolist()[2].startswith("the text is empty")
    assert [f"prob_{n}" for n in LABELS] == [c for c in annotated.columns if c.startswith("prob_")]

    lines = tmp_path / "in.txt"
    lines.write_text("first line\nsecond line\n")
    out_jsonl = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["predict", str(model_dir), "--input", str(lines), "--output", str(out_jsonl)]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in out_jsonl.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["first line", "second line"]
    assert {s["label"] for s in rows[0]["scores"]} == set(LABELS)
    ranked = [s["score"] for s in rows[0]["scores"]]
    assert ranked == sorted(ranked, reverse=True)

    result = runner.invoke(
        app, ["predict", str(model_dir), "--interactive"], input="so happy [laughs]\n:q\n"
    )
    assert result.exit_code == 0, result.output
    # The text is printed as typed: brackets are not read as terminal markup.
    assert "so happy [laughs]" in result.output

    result = runner.invoke(
        app,
        [
            "evaluate",
            str(model_dir),
            "--split",
            "validation",
            "--output",
            str(tmp_path / "val-results"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "val-results" / "report.md").is_file()


def test_cli_reports_errors_without_traceback(tmp_path: Path, make_config) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  path: x\ntraining:\n  lr: 1\n")
    result = runner.invoke(app, ["train", str(bad)])
    assert result.exit_code == 2
    assert "unknown key `training.lr`" in result.output
    assert "Traceback" not in result.output

    result = runner.invoke(app, ["predict", str(tmp_path / "nowhere"), "hi"])
    assert result.exit_code == 2
    assert "not a local model directory" in result.output


def test_corrupted_model_dir(trained, tmp_path: Path) -> None:
    _, result = trained
    broken = tmp_path / "broken"
    shutil.copytree(result.model_dir, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(ModelDirError, match=r"missing model.safetensors or pytorch_model.bin"):
        EmotionClassifier.from_pretrained(broken)

    garbled = tmp_path / "garbled"
    shutil.copytree(result.model_dir, garbled)
    (garbled / "emorec.json").write_text("{not json")
    with pytest.raises(ModelDirError, match=r"emorec.json is not readable JSON"):
        EmotionClassifier.from_pretrained(garbled)

    truncated = tmp_path / "truncated"
    shutil.copytree(result.model_dir, truncated)
    (truncated / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ModelDirError, match="may be corrupted"):
        EmotionClassifier.from_pretrained(truncated)

    mislabeled = tmp_path / "mislabeled"
    shutil.copytree(result.model_dir, mislabeled)
    meta = json.loads((mislabeled / "emorec.json").read_text())
    meta["label_space"]["names"] = ["a", "b"]
    (mislabeled / "emorec.json").write_text(json.dumps(meta))
    with pytest.raises(ModelDirError, match=r"4 outputs but emorec\.json lists 2 labels"):
        EmotionClassifier.from_pretrained(mislabeled)


def test_cli_predict_refuses_texts_it_cannot_classify(
    tiny_classifier_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = str(tiny_classifier_dir)
    cases = [
        (["so happy", "  "], "TEXT argument 2 holds only whitespace"),
        ([""], "TEXT argument 1 is empty"),
        # What Python makes of an argument that is not UTF-8 (the byte 0xff): U+DCFF.
        (["so happy", "happy \udcff"], "TEXT argument 2 contains a lone surrogate (U+DCFF"),
    ]
    for texts, message in cases:
        result = runner.invoke(app, ["predict", model, *texts])
        assert result.exit_code == 2, (texts, result.output)
        assert message in " ".join(result.output.split())
        assert "Traceback" not in result.output

    # Interactive: a line that is not UTF-8 is an error, and the prompt goes on.
    result = runner.invoke(
        app, ["predict", model, "--interactive"], input=b"so happy\nhappy \xff\nscared\n:q\n"
    )
    assert result.exit_code == 0, result.output
    assert "lone surrogate" in result.output and "scared" in result.output

    # A file: the empty line gets its error in pred_error, the other lines their emotions.
    source = tmp_path / "in.txt"
    source.write_text("so happy\n\nscared\n")
    out = tmp_path / "out.csv"
    with caplog.at_level("WARNING", logger="emorec.inference.files"):
        result = runner.invoke(
            app, ["predict", model, "--input", str(source), "--output", str(out)]
        )
    assert result.exit_code == 0, result.output
    assert "1 of 3 rows were not classified" in caplog.text
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["text"] for r in rows] == ["so happy", "", "scared"]
    assert rows[0]["pred_label"] in LABELS and rows[2]["pred_label"] in LABELS
    assert rows[1]["pred_label"] == "" and rows[1]["pred_error"].startswith("the text is empty")


def test_training_history_is_kept_drawn_and_linked(trained) -> None:
    from emorec.evaluation.single_label import training_curves

    _, result = trained
    history = json.loads((result.model_dir / "train_metrics.json").read_text())["log_history"]
    assert history == result.train_metrics["log_history"]
    losses = [e for e in history if "loss" in e]
    evaluations = [e for e in history if "eval_macro_f1" in e]
    assert [e["step"] for e in losses] == [1, 2]  # logging_steps=1, max_steps=2
    assert len(evaluations) == 1 and {"eval_loss", "eval_accuracy", "step"} <= set(evaluations[0])
    curves = training_curves(history)
    assert curves["eval_macro_f1"] == ([2], [evaluations[0]["eval_macro_f1"]])
    assert curves["loss"][0] == [1, 2]
    for directory in (result.model_dir, result.results_dir):
        assert (directory / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    link = "![Training curves](training_curves.png)"
    assert link in (result.results_dir / "report.md").read_text()
    assert link in (result.model_dir / "README.md").read_text()
    # No image, no link: a card never points at a file its directory lacks.
    from emorec.hub import model_card

    (result.model_dir / "training_curves.png").unlink()
    assert "training_curves" not in model_card(result.model_dir)


def test_cli_training_output_off_a_terminal(make_config, tmp_path: Path, monkeypatch) -> None:
    # Captured stdout is not a terminal: no bars, no colours, one plain line per evaluation.
    for variable in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(variable, raising=False)
    config = make_config(
        "training.max_steps=4", "training.eval_steps=2", "training.early_stopping_patience=null"
    )
    config_path = tmp_path / "run.yaml"
    config_path.write_text(config.to_yaml())
    result = runner.invoke(app, ["run", str(config_path)])
    assert result.exit_code == 0, result.output
    output = result.output
    assert "\r" not in output and "\x1b[" not in output
    assert "{'" not in output  # the Trainer's log dicts
    model_dir = config.output_path("model_dir")
    history = json.loads((model_dir / "train_metrics.json").read_text())["log_history"]
    evaluations = [e for e in history if "eval_macro_f1" in e]
    lines = [line for line in output.splitlines() if "val macro-F1" in line]
    assert len(lines) == len(evaluations) == 2
    for line, evaluation in zip(lines, evaluations, strict=True):
        assert line.startswith(f"step {evaluation['step']}/4  epoch ")
        assert f"val macro-F1 {evaluation['eval_macro_f1']:.4f}" in line
        assert f"val loss {evaluation['eval_loss']:.4f}" in line

    # 3 validation rows per class: too few for per-class offsets, and the CLI says so.
    calibration = json.loads((model_dir / "calibration.json").read_text())
    assert calibration["decision"] == "argmax" and calibration["adopted"] is False
    assert "calibration.min_examples_per_class=20" in calibration["reason"]
    flat = " ".join(output.split())
    assert "Decision: argmax (per-class offsets not adopted: " in flat
    assert " ".join(calibration["reason"].split()) in flat


# ---- `predict --input` file edge cases and signals ------------------------------------------
def test_cli_predict_input_errors_are_one_line_and_write_nothing(
    tiny_classifier_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    absent = tmp_path / "absent.csv"
    result = runner.invoke(
        app, ["predict", str(tiny_classifier_dir), "--input", str(absent), "--output", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())
    assert message.startswith("error: Input file not found: ") and "absent.csv" in message
    assert len(result.output.strip().splitlines()) == 1  # the message alone, before any loading
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = runner.invoke(
        app, ["predict", str(tiny_classifier_dir), "--input", str(empty), "--output", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "is empty: there is nothing to classify" in " ".join(result.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt"]  # no output, no temp


def test_cli_predict_reads_a_csv_with_a_byte_order_mark(
    tiny_classifier_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "excel.csv"
    source.write_text("\ufefftext,id\ni am so happy,1\nso scared,2\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["predict", str(tiny_classifier_dir), "--input", str(source), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["text"], r["id"]) for r in rows] == [("i am so happy", "1"), ("so scared", "2")]
    assert {r["pred_label"] for r in rows} <= set(LABELS)


def test_sigterm_during_predict_input_leaves_no_temporary_file(
    tiny_classifier_dir: Path, tmp_path: Path
) -> None:
    # Without a handler SIGTERM ends Python on the spot: no `finally`, and the 3 MB temporary
    # output of the atomic write stayed behind. (Ctrl-C already unwinds as KeyboardInterrupt.)
    source = tmp_path / "big.txt"
    with source.open("w", encoding="utf-8") as handle:
        handle.writelines(f"i feel rather glad about line number {i}\n" for i in range(300_000))
    out = tmp_path / "out.csv"
    command = [sys.executable, "-m", "emorec.cli", "predict", str(tiny_classifier_dir)]
    command += ["--input", str(source), "--output", str(out), "--chunk-size", "64"]
    log = tmp_path / "log.txt"
    with log.open("w") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            # Signal once rows are being written: the temporary output exists and has data.
            while not [p for p in tmp_path.glob(".out.csv.*.tmp.csv") if p.stat().st_size]:
                assert child.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "no output after 180 s"
                time.sleep(0.05)
            child.send_signal(signal.SIGTERM)
            returncode = child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    text = log.read_text()
    assert returncode == 128 + signal.SIGTERM, text  # 143, as a shell reports a SIGTERM
    assert "Traceback" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "log.txt"]


def test_cli_turns_sigterm_into_an_exit_that_unwinds_and_restores_the_handler(
    tmp_path: Path,
) -> None:
    from emorec._io import atomic_path
    from emorec.cli import _friendly_errors

    target = tmp_path / "out.csv"

    @_friendly_errors
    def command() -> None:
        with atomic_path(target) as temp:
            temp.write_text("half of it")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this returns

    def unhandled(signum: int, frame: object) -> None:
        # Stands in for the default action (ending pytest) should the CLI set no handler.
        raise RuntimeError("SIGTERM reached the handler that was there before the command")

    before = signal.signal(signal.SIGTERM, unhandled)
    try:
        with pytest.raises(SystemExit) as exit_info:
            command()
        assert exit_info.value.code == 143
        assert list(tmp_path.iterdir()) == []  # neither the temporary file nor the target
        assert signal.getsignal(signal.SIGTERM) is unhandled  # restored after the command
    finally:
        signal.signal(signal.SIGTERM, before)


def test_interrupt_inside_predict_file_removes_the_temporary_output(tmp_path: Path) -> None:
    from emorec.predict_io import predict_file

    class Interrupted:
        labels = LABELS
        calls = 0

        def predict(self, texts: list[str], decision: str = "calibrated") -> list[object]:
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt  # what Ctrl-C raises between two chunks
            scores = {name: 1.0 / len(LABELS) for name in LABELS}
            return [Prediction(text, LABELS[0], [LABELS[0]], scores) for text in texts]

    source = tmp_path / "in.txt"
    source.write_text("".join(f"line {i}\n" for i in range(10)))
    out = tmp_path / "out.jsonl"
    out.write_text("the previous result\n")
    with pytest.raises(KeyboardInterrupt):
        predict_file(Interrupted(), source, out, chunk_size=4, progress=False)  # type: ignore[arg-type]
    assert out.read_text() == "the previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


def test_cli_warns_about_a_label_missing_from_evaluation_splits(
    make_config, tiny_data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (tiny_data_dir / "train.txt").open("a") as handle:
        handle.writelines(f"i am so shocked by it number {i};shocked\n" for i in range(3))
    config = make_config(f"model.labels=[{', '.join(LABELS)}, shocked]")
    config_path = tmp_path / "run.yaml"
    config_path.write_text(config.to_yaml())
    warning = "label 'shocked' has 3 rows in train but none in validation or test"
    with caplog.at_level("WARNING", logger="emorec"):
        result = runner.invoke(app, ["prepare", str(config_path)])
    assert result.exit_code == 0, result.output
    assert warning in caplog.text
    # `run` repeats it after the training output, where it would be out of sight.
    result = runner.invoke(app, ["run", str(config_path), "--set", "training.max_steps=1"])
    assert result.exit_code == 0, result.output
    assert f"data warning: {warning}" in " ".join(result.output.split())
