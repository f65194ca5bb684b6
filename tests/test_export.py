"""ONNX export on a tiny trained model: parity, the accuracy gate, backend selection, the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emorec import export
from emorec.calibration import CalibrationConfig, fit_calibration, validation_folds
from emorec.cli import app
from emorec.errors import (
    ConfigError,
    DataError,
    EmorecError,
    MissingDependencyError,
    ModelDirError,
)
from emorec.export import ExportRefusedError, accuracy_gate, export_onnx, gate_scores
from emorec.inference import EmotionClassifier

from .conftest import LABELS, WORDS, make_rows, write_dair

runner = CliRunner()
TEXTS = [
    "i feel so happy today",
    "x",
    "I'm sooo angryyyy @bob http://x.co #mad",
    "😢 so sad and lonely, nobody came to my party and i waited all evening for them to arrive",
    "i am terrified of what comes next " * 8,  # longer than max_length: truncated
]


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """One `emorec run` of the tiny BERT (train, calibrate, evaluate), shared by this module."""
    from emorec.config import load_config
    from emorec.pipeline import run

    root = tmp_path_factory.mktemp("export")
    data = root / "data"
    write_dair(data / "train.txt", make_rows(6))
    write_dair(data / "validation.txt", make_rows(3, offset=100))
    write_dair(data / "test.txt", make_rows(3, offset=200))
    config = load_config(
        None,
        [
            "run_name=tiny",
            f"model.name={tiny_model_dir}",
            f"model.labels=[{', '.join(LABELS)}]",
            "model.max_length=32",
            f"data.path={data}",
            f"data.cache_dir={root / 'cache'}",
            "training.num_epochs=1",
            "training.max_steps=2",
            "training.per_device_train_batch_size=8",
            "training.learning_rate=1e-3",
            f"output.model_dir={root / 'models' / '{run_name}'}",
            f"output.results_dir={root / 'results' / '{run_name}'}",
            f"output.work_dir={root / 'runs' / '{run_name}'}",
        ],
    )
    return run(config, progress=False).model_dir


@pytest.fixture(scope="module")
def exported(trained_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained model with fp32 and int8 ONNX exports."""
    directory = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(trained_dir, directory)
    export_onnx(directory)
    # The tiny random model's margins are tiny, so int8 may flip one of the 12 validation
    # texts (8 points); the gate itself is pinned by the refusal tests below.
    export_onnx(directory, "int8", max_drop=100.0)
    return directory


def _snapshot(directory: Path) -> dict[str, str]:
    """Every file (hidden ones included) → its sha256."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_fp32_probabilities_match_pytorch(exported: Path) -> None:
    torch_clf = EmotionClassifier.from_pretrained(exported, backend="torch")
    onnx_clf = EmotionClassifier.from_pretrained(exported, backend="onnx", precision="fp32")
    assert onnx_clf.backend.name == "onnx-fp32" and onnx_clf.model is None
    for decision in ("calibrated", "argmax"):
        np.testing.assert_allclose(
            onnx_clf.predict_proba(TEXTS, decision=decision),  # type: ignore[arg-type]
            torch_clf.predict_proba(TEXTS, decision=decision),  # type: ignore[arg-type]
            atol=1e-5,
        )
    # Dynamic axes: one text, and batches of other sizes and lengths.
    onnx_clf.batch_size = 4
    np.testing.assert_allclose(onnx_clf.logits(TEXTS), torch_clf.logits(TEXTS), atol=1e-4)
    np.testing.assert_allclose(
        onnx_clf.predict_proba("so scared"), torch_clf.predict_proba("so scared"), atol=1e-5
    )
    assert [p.labels for p in onnx_clf.predict(TEXTS)] == [
        p.labels for p in torch_clf.predict(TEXTS)
    ]
    # Same windows over long texts whichever backend.
    for clf in (torch_clf, onnx_clf):
        clf.long_text = "window"
    np.testing.assert_allclose(
        onnx_clf.predict_proba(TEXTS), torch_clf.predict_proba(TEXTS), atol=1e-5
    )


def test_int8_labels_agree_within_the_gate(exported: Path) -> None:
    torch_clf = EmotionClassifier.from_pretrained(exported, backend="torch")
    int8 = EmotionClassifier.from_pretrained(exported, backend="onnx", precision="int8")
    assert int8.backend.name == "onnx-int8"
    texts = [text for text, _ in make_rows(6, offset=300)] + TEXTS
    pairs = zip(int8.predict(texts), torch_clf.predict(texts), strict=True)
    same = np.mean([a.label == b.label for a, b in pairs])
    assert same >= 0.75, same
    np.testing.assert_allclose(int8.predict_proba(texts), torch_clf.predict_proba(texts), atol=0.05)
    gate = json.loads((exported / "export.json").read_text())["exports"]["int8"]["gate"]
    assert gate["passed"] and -min(gate["delta_points"].values()) <= gate["max_drop_points"]


def test_int8_weights_cannot_saturate_on_cpus_without_vnni(exported: Path) -> None:
    """Every int8 weight fits 7 bits, and the classification head is left in fp32.

    Without VNNI, ONNX Runtime sums pairs of uint8 × int8 products in a saturating int16
    (``vpmaddubsw``): 2 × 255 × 127 overflows it, 2 × 255 × 64 does not.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(exported / "model.int8.onnx")).graph
    weights = [
        numpy_helper.to_array(init)
        for init in graph.initializer
        if init.data_type == onnx.TensorProto.INT8
    ]
    assert weights, "no int8 weights: nothing was quantized"
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64
    assert 2 * 255 * 64 < 2**15
    # The head (pooler + classifier) multiplies float weights; the encoder's products are int8.
    head = export.head_nodes(graph)
    assert head == ["/model/bert/pooler/dense/Gemm_MatMul", "/model/classifier/Gemm_MatMul"]
    floats = {init.name for init in graph.initializer if init.data_type == onnx.TensorProto.FLOAT}
    assert all(node.input[1] in floats for node in graph.node if node.name in head)
    assert export.head_nodes(graph, export.QUANTIZED_OP_TYPES) == []
    assert [n for n in graph.node if n.op_type in export.QUANTIZED_OP_TYPES]


def test_uint8_weights_alternative_keeps_8_bits_unsigned(exported: Path, tmp_path: Path) -> None:
    import onnx

    target = tmp_path / "uint8.onnx"
    settings = export.quantize_graph(exported / "model.onnx", target, weight_type="uint8")
    assert settings["weight_type"] == "uint8" and settings["reduce_range"] is False
    graph = onnx.load(str(target)).graph
    types = {init.data_type for init in graph.initializer if init.name.endswith("_quantized")}
    assert types == {onnx.TensorProto.UINT8}
    assert export.head_nodes(graph, export.QUANTIZED_OP_TYPES) == []


def test_int8_without_a_head_to_keep_is_refused_before_quantizing(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    # logits straight out of a LayerNorm: nothing between it and the output to keep in fp32.
    graph = helper.make_graph(
        [helper.make_node("LayerNormalization", ["x", "scale"], ["logits"], name="ln")],
        "no-head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor("scale", TensorProto.FLOAT, [4], [1.0] * 4)],
    )
    source = tmp_path / "no-head.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(source))
    with pytest.raises(EmorecError, match="found no classification head"):
        export.quantize_graph(source, tmp_path / "int8.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no-head.onnx"]


QEMU = shutil.which("qemu-x86_64")


def test_int8_gives_the_same_logits_on_a_cpu_without_vnni(exported: Path, tmp_path: Path) -> None:
    """The int8 file, run as a Haswell (AVX2, no VNNI) would, gives this machine's logits.

    This was the fresh-install failure: full-range int8 weights agreed with PyTorch on a VNNI
    CPU and on 0 % of the texts on one without (saturating int16 sums).
    """
    import onnxruntime as ort

    if QEMU is None or platform.machine() != "x86_64":
        message = "needs qemu-user on x86-64 (scripts/install-system-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the int8 emulation test.")
        pytest.skip(message)
    tokenizer = EmotionClassifier.from_pretrained(exported, backend="torch").tokenizer
    texts = [text for text, _ in make_rows(6, offset=300)]
    encoded = tokenizer(texts, padding=True, return_tensors="np")
    inputs = {
        k: encoded[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")
    }
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = (
        "import sys, numpy as np, onnxruntime as ort\n"
        "inputs = dict(np.load(sys.argv[2]))\n"
        "options = ort.SessionOptions(); options.intra_op_num_threads = 1\n"
        "session = ort.InferenceSession(sys.argv[1], options, providers=['CPUExecutionProvider'])\n"
        "np.save(sys.argv[3], session.run(None, inputs)[0])\n"
    )
    model = str(exported / "model.int8.onnx")
    emulated = tmp_path / "haswell.npy"
    subprocess.run(
        [
            QEMU,
            "-cpu",
            "Haswell",
            sys.executable,
            "-c",
            script,
            model,
            str(tmp_path / "inputs.npz"),
            str(emulated),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    native = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]).run(
        None, inputs
    )[0]
    np.testing.assert_allclose(np.load(emulated), native, atol=1e-5)


def test_export_metadata_and_files(exported: Path) -> None:
    record = json.loads((exported / "export.json").read_text())
    assert set(record["exports"]) == {"fp32", "int8"}
    fp32, int8 = record["exports"]["fp32"], record["exports"]["int8"]
    assert fp32["file"] == "model.onnx" and int8["file"] == "model.int8.onnx"
    for entry in (fp32, int8):
        path = exported / entry["file"]
        assert path.stat().st_size == entry["size_bytes"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert entry["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
        assert entry["gate"]["data"] == "validation split" and entry["gate"]["n"] == 12
        assert {"torch", "onnx", "delta_points", "agreement"} <= set(entry["gate"])
        assert {"emorec", "torch", "onnxruntime", "onnx"} <= set(entry["versions"])
        # Transformer fusions happened before quantization.
        assert entry["optimization"]["fused_operators"].get("Attention") == 2
    assert fp32["quantization"] is None
    assert int8["quantization"] == {
        "method": "dynamic",
        "weight_type": "int8",
        "per_channel": True,
        "reduce_range": True,
        "fp32_nodes": ["/model/bert/pooler/dense/Gemm_MatMul", "/model/classifier/Gemm_MatMul"],
    }
    assert int8["cpu_int8_instructions"] and fp32["cpu_int8_instructions"] is None
    assert {"transformers", "numpy"} <= set(int8["versions"])
    assert fp32["gate"]["max_abs_prob_diff"] < 1e-4 and fp32["gate"]["delta_points"] == {
        "accuracy": 0.0,
        "macro_f1": 0.0,
    }
    assert not [p for p in exported.iterdir() if p.name.startswith(".export-")]


def test_backend_selection(exported: Path, trained_dir: Path, monkeypatch) -> None:
    assert EmotionClassifier.from_pretrained(exported).backend.name == "onnx-int8"
    assert EmotionClassifier.from_pretrained(exported, precision="fp32").backend.name == "onnx-fp32"
    assert EmotionClassifier.from_pretrained(exported, backend="torch").backend.name == "torch"
    assert EmotionClassifier.from_pretrained(trained_dir).backend.name == "torch"
    with pytest.raises(ModelDirError, match=r"has no model\.onnx; create it with `emorec export"):
        EmotionClassifier.from_pretrained(trained_dir, backend="onnx", precision="fp32")
    with pytest.raises(ConfigError, match="precision must be one of 'auto', 'fp32', 'int8'"):
        EmotionClassifier.from_pretrained(exported, precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="backend='onnx' runs on the CPU"):
        EmotionClassifier.from_pretrained(exported, backend="onnx", device="cuda")
    # ONNX Runtime missing: auto falls back to PyTorch, an explicit onnx says how to install it.
    from emorec import inference

    monkeypatch.setattr(inference.backends, "_onnxruntime_installed", lambda: False)
    assert EmotionClassifier.from_pretrained(exported).backend.name == "torch"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"pip install \"emorec\[onnx\]\""):
        EmotionClassifier.from_pretrained(exported, backend="onnx")


def test_onnx_backend_without_pytorch_weights(exported: Path, tmp_path: Path) -> None:
    """An ONNX-only directory (weights removed) still classifies with the same cleaning."""
    slim = tmp_path / "slim"
    shutil.copytree(exported, slim)
    (slim / "model.safetensors").unlink()
    onnx_clf = EmotionClassifier.from_pretrained(slim)
    reference = EmotionClassifier.from_pretrained(exported)
    np.testing.assert_array_equal(onnx_clf.predict_proba(TEXTS), reference.predict_proba(TEXTS))
    with pytest.raises(ModelDirError, match=r"missing model\.safetensors"):
        EmotionClassifier.from_pretrained(slim, backend="torch")
    with pytest.raises(ModelDirError, match="needs the PyTorch weights"):
        onnx_clf.save_pretrained(tmp_path / "copy")
    (slim / "model.int8.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelDirError, match=r"ONNX Runtime could not load .*model\.int8\.onnx"):
        EmotionClassifier.from_pretrained(slim)


def test_refused_export_leaves_the_model_dir_unchanged(exported: Path, tmp_path: Path) -> None:
    directory = tmp_path / "model"
    shutil.copytree(exported, directory)
    before = _snapshot(directory)
    # A negative margin demands a gain no export can show: the gate must refuse.
    with pytest.raises(
        ExportRefusedError, match=r"refused by the accuracy gate.*unchanged"
    ) as info:
        export_onnx(directory, "int8", max_drop=-1.0)
    assert info.value.gate["passed"] is False and info.value.gate["n"] == 12
    assert _snapshot(directory) == before

    result = runner.invoke(app, ["export", str(directory), "--format", "onnx", "--max-drop", "-1"])
    assert result.exit_code == 1, result.output
    assert "refused" in result.output and "Nothing was written" in result.output
    assert "Traceback" not in result.output
    assert _snapshot(directory) == before


def test_broken_onnx_is_refused(trained_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """An fp32 graph that does not reproduce PyTorch fails the gate even at a huge margin."""
    import onnx

    real_optimize = export.optimize_graph

    def corrupting_optimize(source: Path, target: Path, config: object) -> dict[str, int]:
        fused = real_optimize(source, target, config)
        model = onnx.load(str(target))
        for tensor in model.graph.initializer:
            if tensor.name.endswith("classifier.bias"):
                values = onnx.numpy_helper.to_array(tensor).copy()
                values[0] += 5.0  # favour the first label
                tensor.CopyFrom(onnx.numpy_helper.from_array(values, tensor.name))
        onnx.save(model, str(target))
        return fused

    monkeypatch.setattr(export, "optimize_graph", corrupting_optimize)
    directory = tmp_path / "model"
    shutil.copytree(trained_dir, directory)
    before = _snapshot(directory)
    with pytest.raises(ExportRefusedError, match="probabilities differ from PyTorch"):
        export_onnx(directory, max_drop=100.0)
    assert _snapshot(directory) == before


def test_cli_export_and_predict_with_onnx(trained_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "model"
    shutil.copytree(trained_dir, directory)
    data = write_dair(tmp_path / "gate.txt", make_rows(2, offset=500))
    result = runner.invoke(
        app, ["export", str(directory), "--data", str(data), "--no-optimize", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "Accuracy gate (8 texts" in result.output and "model.onnx" in result.output
    assert "Decisions by the " in result.output
    entry = json.loads((directory / "export.json").read_text())["exports"]["fp32"]
    assert entry["gate"]["data"] == str(data) and entry["optimization"] is None

    result = runner.invoke(
        app, ["predict", str(directory), "i am so happy", "--backend", "onnx", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    source = tmp_path / "in.txt"
    source.write_text("first line\nsecond line\n" + LONG_LINE + "\n")
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app,
        [
            *("predict", str(directory), "--input", str(source), "--output", str(out)),
            *("--long-text", "window", "--window-aggregate", "max", "--chunk-size", "2"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().count("\n") == 4

    result = runner.invoke(app, ["export", str(directory), "--format", "tflite"])
    assert result.exit_code == 2 and "'--format'" in result.output and "'onnx'" in result.output
    bad = write_dair(tmp_path / "bad.txt", [("so happy", "joy"), ("what", "boredom")])
    result = runner.invoke(app, ["export", str(directory), "--data", str(bad)])
    assert result.exit_code == 2 and "boredom" in result.output


LONG_LINE = "i was so worried about the exam but in the end it went fine " * 10


def test_gate_data_needs_labels_from_somewhere(trained_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "model"
    shutil.copytree(trained_dir, directory)
    (directory / "config.yaml").unlink()
    with pytest.raises(ConfigError, match="pass a labelled file with --data FILE"):
        export_onnx(directory)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises((DataError, ValueError)):
        export_onnx(directory, data=empty)


def test_gate_scores_single_and_multi_label() -> None:
    single = gate_scores(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert single["accuracy"] == 0.75
    assert single["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    targets = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    decided = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 1]])
    multi = gate_scores(decided, targets, 3)
    assert multi["accuracy"] == pytest.approx(2 / 3)  # exact match
    assert multi["macro_f1"] == pytest.approx((1 + 1 + 0.8) / 3)


class _FixedLogits:
    """Just what ``accuracy_gate`` asks of a classifier: a rule and the logits of the texts."""

    def __init__(self, logits: np.ndarray, calibration) -> None:
        self._logits, self.calibration = logits, calibration

    def logits(self, texts) -> np.ndarray:
        assert len(texts) == len(self._logits)
        return self._logits


def _biased_validation(n: int = 1200, seed: int = 0):
    """Validation logits of an imbalanced 4-class problem where per-class offsets get adopted."""
    rng = np.random.default_rng(seed)
    targets = rng.choice(4, size=n, p=[0.5, 0.3, 0.15, 0.05])
    logits = rng.normal(size=(n, 4)) + 2.0 * np.eye(4)[targets] + np.array([0.8, 0.3, 0, -0.6])
    settings = CalibrationConfig(decision="bias")
    calibration = fit_calibration(logits, targets, settings)
    assert calibration.decision == "bias" and calibration.adopted
    return logits, targets, settings, calibration


def test_gate_judges_a_rule_fitted_on_its_own_rows_cross_fitted() -> None:
    # Offsets tuned on the gate's rows favour the logits they were tuned with: tiny unbiased
    # noise (what int8 adds) loses ~0.7 macro-F1 points in sample on average, a refusal at the
    # 0.5 default, and nothing held out.
    logits, targets, settings, calibration = _biased_validation()
    reference = _FixedLogits(logits, calibration)
    texts = ["t"] * len(targets)
    in_sample, held_out = [], []
    for draw in range(8):
        noise = np.random.default_rng(100 + draw).normal(scale=0.05, size=logits.shape)
        gate = accuracy_gate(
            reference,
            _FixedLogits(logits + noise, calibration),
            texts,
            targets,
            max_drop=0.5,
            check_parity=False,
            refit=settings,
        )
        assert gate["decision_rule"].startswith("the calibration re-fitted on 4 of 5 folds")
        in_sample.append(gate["in_sample_delta_points"]["macro_f1"])
        held_out.append(gate["delta_points"]["macro_f1"])
    assert np.mean(in_sample) < -0.4
    assert np.mean(held_out) > np.mean(in_sample) + 0.5
    assert abs(np.mean(held_out)) < abs(np.mean(in_sample))


def test_cross_fitted_gate_decides_each_fold_by_a_rule_fitted_on_the_others() -> None:
    logits, targets, settings, calibration = _biased_validation(n=400, seed=1)
    shifted = logits + np.array([0.0, 0.2, 0.0, 0.0])
    gate = accuracy_gate(
        _FixedLogits(logits, calibration),
        _FixedLogits(shifted, calibration),
        ["t"] * len(targets),
        targets,
        max_drop=100.0,
        check_parity=False,
        refit=settings,
    )
    reference = np.empty_like(targets)
    candidate = np.empty_like(targets)
    for fit_idx, held_idx in validation_folds(targets, export.GATE_FOLDS):
        rule = fit_calibration(logits[fit_idx], targets[fit_idx], settings)
        reference[held_idx] = rule.decide(logits[held_idx])
        candidate[held_idx] = rule.decide(shifted[held_idx])
    assert gate["torch"] == gate_scores(reference, targets, 4)
    assert gate["onnx"] == gate_scores(candidate, targets, 4)
    # Agreement is still that of the rule that ships, on every row.
    same = calibration.decide(logits) == calibration.decide(shifted)
    assert gate["agreement"] == pytest.approx(same.mean())


def test_cross_fitted_gate_still_refuses_a_worse_model() -> None:
    logits, targets, settings, calibration = _biased_validation()
    noise = np.random.default_rng(7).normal(scale=1.0, size=logits.shape)
    gate = accuracy_gate(
        _FixedLogits(logits, calibration),
        _FixedLogits(logits + noise, calibration),
        ["t"] * len(targets),
        targets,
        max_drop=0.5,
        check_parity=False,
        refit=settings,
    )
    assert not gate["passed"]
    assert gate["delta_points"]["accuracy"] < -2 and gate["delta_points"]["macro_f1"] < -2


def test_gate_keeps_the_stored_rule_on_other_data_or_too_few_rows() -> None:
    logits, targets, settings, calibration = _biased_validation()
    noise = np.random.default_rng(3).normal(scale=0.05, size=logits.shape)
    args = (_FixedLogits(logits, calibration), _FixedLogits(logits + noise, calibration))
    elsewhere = accuracy_gate(*args, ["t"] * len(targets), targets, 0.5, check_parity=False)
    assert elsewhere["decision_rule"] == "the stored calibration"
    assert "in_sample_delta_points" not in elsewhere
    # 12 rows: a class with fewer rows than folds cannot be cross-fitted, and the gate says so.
    few = slice(0, 12)
    small = accuracy_gate(
        _FixedLogits(logits[few], calibration),
        _FixedLogits(logits[few] + noise[few], calibration),
        ["t"] * 12,
        targets[few],
        0.5,
        check_parity=False,
        refit=settings,
    )
    assert small["decision_rule"].endswith("(too few rows per class to cross-fit it)")
    assert small["delta_points"] == _deltas(small)


def _deltas(gate: dict) -> dict:
    return {k: 100.0 * (gate["onnx"][k] - gate["torch"][k]) for k in gate["torch"]}


def test_export_options_are_validated(trained_dir: Path) -> None:
    with pytest.raises(ConfigError, match="quantize must be None or 'int8'"):
        export_onnx(trained_dir, "int4")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_drop must be a finite number"):
        export_onnx(trained_dir, max_drop=float("nan"))
    with pytest.raises(ModelDirError, match="Model directory not found"):
        export_onnx(trained_dir / "nowhere")


def test_multilabel_export_gate_and_parity(make_config, tmp_path: Path) -> None:
    """Multi-label: the gate scores exact-match accuracy and macro-F1 of the thresholds."""
    from emorec.pipeline import run

    data = tmp_path / "ml-data"
    data.mkdir()
    for split, n, offset in (("train", 24, 0), ("validation", 16, 100), ("test", 8, 200)):
        rows = []
        for i in range(n):
            names = [LABELS[i % 4]] + ([LABELS[(i + 1) % 4]] if i % 3 == 0 else [])
            text = f"i feel {' and '.join(WORDS[n_][i % 6] for n_ in names)} at {i + offset}"
            rows.append(json.dumps({"text": text, "label": names}) + "\n")
        (data / f"{split}.jsonl").write_text("".join(rows))
    config = make_config(f"data.path={data}", "training.loss_type=bce", "run_name=tiny-ml")
    model_dir = run(config, progress=False).model_dir
    result = export_onnx(model_dir)
    gate = result.gate
    assert gate["n"] == 16 and gate["passed"] and gate["agreement"] == 1.0
    torch_clf = EmotionClassifier.from_pretrained(model_dir, backend="torch")
    onnx_clf = EmotionClassifier.from_pretrained(model_dir)
    assert onnx_clf.backend.name == "onnx-fp32" and onnx_clf.label_space.multi_label
    for clf in (torch_clf, onnx_clf):
        clf.long_text = "window"
    texts = [*TEXTS, "i feel happy and angry"]
    np.testing.assert_allclose(
        onnx_clf.predict_proba(texts), torch_clf.predict_proba(texts), atol=1e-5
    )
    assert [p.labels for p in onnx_clf.predict(texts)] == [
        p.labels for p in torch_clf.predict(texts)
    ]
