"""ONNX export with an accuracy gate: ``emorec export MODEL_DIR --format onnx [--quantize int8]``.

Steps, all in a temporary directory inside the model directory:

1. ``torch.onnx.export`` of the PyTorch classifier, ``(input_ids, attention_mask[,
   token_type_ids]) → logits`` with dynamic batch and sequence axes;
2. ONNX Runtime's transformer optimiser (fused attention, GELU, LayerNorm, embeddings), before
   quantization because the fusions do not match a quantized graph;
3. with ``quantize="int8"``, dynamic int8 quantization of the weights, per output channel, in
   7 bits so that CPUs without VNNI compute it exactly too, the classification head in fp32;
4. the accuracy gate: PyTorch and the exported model classify the same labelled texts (the
   validation split rebuilt from the model's ``config.yaml``, or a file) with the calibrated
   decision rule (on the validation split, which the rule was fitted on, cross-fitted: see
   :func:`accuracy_gate`); when accuracy or macro-F1 drops by more than ``max_drop`` points, or
   fp32 probabilities differ from PyTorch's, the export is refused and the model directory is
   left exactly as it was.

A passing export is moved into place (``model.onnx`` or ``model.int8.onnx``) and described in
``export.json`` (one entry per precision: file size and hash, opset, fused operators,
quantization settings, the gate's data, scores and deltas, library versions).
``EmotionClassifier.from_pretrained(dir)`` then runs it with ONNX Runtime.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import transformers

import emorec
from emorec._io import atomic_path, atomic_write_json, file_sha256
from emorec.calibrate import CalibrationConfig, fit_calibration, validation_folds
from emorec.errors import (
    ConfigError,
    DataError,
    EmorecError,
    MissingDependencyError,
    ModelDirError,
)
from emorec.inference import (
    EXPORT_FILE,
    ONNX_FILES,
    ONNX_INSTALL_HINT,
    EmotionClassifier,
    OnnxBackend,
    _read_json,
    import_onnxruntime,
)
from emorec.metrics import macro_f1

Quantize = Literal["int8"] | None
DEFAULT_OPSET = 17
DEFAULT_MAX_DROP = 0.5  # points of accuracy or macro-F1
# fp32 ONNX must reproduce PyTorch: fused kernels differ by ~1e-6, a wrong graph by far more.
FP32_PROB_TOLERANCE = 1e-3
# Folds of the cross-fitted gate (at least; calibration.cv_folds when that is more).
GATE_FOLDS = 5
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class ExportRefusedError(EmorecError):
    """The exported model failed the accuracy gate; nothing was written."""

    def __init__(self, message: str, gate: dict[str, Any]) -> None:
        super().__init__(message)
        self.gate = gate


@dataclass
class ExportResult:
    """A passed export: the file written and its ``export.json`` entry."""

    path: Path
    precision: str
    metadata: dict[str, Any]

    @property
    def gate(self) -> dict[str, Any]:
        return self.metadata["gate"]


# ---- graph export --------------------------------------------------------------------------
def _additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """``(B, S)`` 0/1 padding mask → ``(B, 1, S, S)`` additive float mask.

    transformers 5 builds the padding mask with index arithmetic that ONNX Runtime's attention
    fusion does not recognise; this spelling (expand, ``1 - mask``, fill with the float
    minimum, as transformers 4 did) is a pattern the fusion matches, and models take a
    prepared 4D mask as it is.
    """
    batch, length = mask.shape
    expanded = mask[:, None, None, :].expand(batch, 1, length, length).to(torch.float32)
    inverted = 1.0 - expanded
    return inverted.masked_fill(inverted.to(torch.bool), torch.finfo(torch.float32).min)


class _LogitsGraph(torch.nn.Module):
    """Positional token inputs → logits: the function ``torch.onnx.export`` traces."""

    def __init__(
        self, model: torch.nn.Module, input_names: Sequence[str], additive_mask: bool
    ) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        self.additive_mask = additive_mask

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        kwargs = dict(zip(self.input_names, inputs, strict=True))
        if self.additive_mask:
            kwargs["attention_mask"] = _additive_mask(kwargs["attention_mask"])
        return self.model(**kwargs).logits


def _use_eager_attention(model: torch.nn.Module) -> None:
    """Switch transformers models to plain matmul-softmax attention, the form ORT fuses."""
    for module in model.modules():
        setter = getattr(module, "set_attn_implementation", None)
        if setter is not None:
            with contextlib.suppress(Exception):  # older transformers, or a fixed implementation
                setter("eager")
            return


def export_graph(model: torch.nn.Module, tokenizer: Any, path: Path, opset: int) -> list[str]:
    """Write ``model`` as ONNX with dynamic batch and sequence axes; returns the input names."""
    model = model.eval()
    _use_eager_attention(model)
    probe = tokenizer(
        ["a short text", "a somewhat longer text, so that the batch needs padding"],
        padding=True,
        return_tensors="pt",
    )
    input_names = [name for name in MODEL_INPUTS if name in probe]
    args = tuple(probe[name] for name in input_names)
    with torch.inference_mode():
        reference = model(**{name: probe[name] for name in input_names}).logits
        # Some models (DeBERTa) read a 4D mask differently: keep theirs when the outputs differ.
        try:
            additive = _LogitsGraph(model, input_names, additive_mask=True)(*args)
            use_additive = bool(torch.allclose(additive, reference, atol=1e-5))
        except (RuntimeError, ValueError, TypeError):
            use_additive = False
    # eval(): the exporter restores the wrapper's mode afterwards, recursively, into the model.
    graph = _LogitsGraph(model, input_names, additive_mask=use_additive).eval()
    dynamic_axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    dynamic_axes["logits"] = {0: "batch"}
    options: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        # The TorchScript exporter: quick, one self-contained file, and the graph ORT fuses.
        options["dynamo"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings about the exporter
        torch.onnx.export(
            graph,
            args,
            str(path),
            input_names=input_names,
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            **options,
        )
    return input_names


@contextlib.contextmanager
def _quiet_logging(level: int) -> Iterator[None]:
    """Silence ORT's tooling, which logs every fusion step and advice through the root logger."""
    logging.disable(level)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def optimize_graph(source: Path, target: Path, model_config: Any) -> dict[str, int]:
    """ORT transformer fusions (attention, GELU, LayerNorm…); returns the fused operator counts.

    ``opt_level=0`` runs only the Python fusions: ONNX Runtime applies its own graph
    optimisations again when it loads the model.
    """
    from onnxruntime.transformers import optimizer

    num_heads = int(getattr(model_config, "num_attention_heads", 0) or 0)
    hidden_size = int(getattr(model_config, "hidden_size", 0) or 0)
    with _quiet_logging(logging.INFO), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimized = optimizer.optimize_model(
            str(source),
            model_type="bert",  # ORT's encoder fusions: BERT, RoBERTa, DistilBERT, MiniLM…
            num_heads=num_heads,
            hidden_size=hidden_size,
            opt_level=0,
        )
        fused = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
        optimized.save_model_to_file(str(target))
    return fused


HEAD_OP_TYPES = ("MatMul", "Gemm")
QUANTIZED_OP_TYPES = ("MatMulInteger", "DynamicQuantizeMatMul", "QGemm", "DynamicQuantizeLinear")


def head_nodes(graph: Any, op_types: Sequence[str] = HEAD_OP_TYPES) -> list[str]:
    """Names of the ``op_types`` nodes between the encoder's last LayerNorm and the logits.

    That is the classification head (BERT's pooler + classifier, emorec's pre-classifier +
    classifier): a few thousand weights whose int8 rounding moves every logit directly, for
    a negligible share of the compute, so it stays in fp32.
    """
    producers = {out: node for node in graph.node for out in node.output}
    stop = {"LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization"}
    found: list[str] = []
    frontier = [output.name for output in graph.output]
    seen: set[str] = set()
    while frontier:
        node = producers.get(frontier.pop())
        if node is None or node.name in seen or node.op_type in stop:
            continue
        seen.add(node.name)
        if node.op_type in op_types:
            found.append(node.name)
        frontier.extend(node.input)
    return sorted(found)


def quantize_graph(
    source: Path, target: Path, weight_type: Literal["int8", "uint8"] = "int8"
) -> dict[str, Any]:
    """Dynamic int8 quantization of the weights, per output channel; returns its settings.

    Weights use 7 bits (``reduce_range``). On x86 CPUs without VNNI (AVX2, AVX-512 before
    Cascade Lake) ONNX Runtime multiplies uint8 activations by int8 weights with
    ``vpmaddubsw``, which adds each pair of products into a saturating int16: with full-range
    weights, 2 × 255 × 127 overflows it and the logits are wrong on those machines only, while
    a VNNI CPU (where the model is usually exported) computes them exactly. With |w| ≤ 64 a
    pair stays below 2¹⁵ on every CPU, so the file gives the same answers wherever it runs.
    The classification head (:func:`head_nodes`) stays in fp32.

    ``weight_type="uint8"`` keeps 8-bit weights instead, as unsigned: ONNX Runtime multiplies
    uint8 × uint8 without the saturating instruction (a little slower on VNNI CPUs).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.onnx_model import ONNXModel

    # The quantizer turns Gemm into MatMul + Add under new names before it reads the exclusion
    # list; doing it first lets the list name the nodes that will actually be quantized.
    model = onnx.load(str(source))
    ONNXModel(model).replace_gemm_with_matmul()
    excluded = head_nodes(model.graph)
    if not excluded:
        raise EmorecError(
            "int8 export found no classification head to keep in fp32: no MatMul/Gemm between "
            "the encoder's last LayerNorm and the logits in the exported graph. Export fp32 "
            "only (`emorec export MODEL_DIR --format onnx`)."
        )
    reduce_range = weight_type == "int8"
    settings = {
        "method": "dynamic",
        "weight_type": weight_type,
        "per_channel": True,
        "reduce_range": reduce_range,
        "fp32_nodes": excluded,
    }
    plain = target.with_name(f"{target.stem}.matmul.onnx")
    onnx.save(model, str(plain))
    try:
        with _quiet_logging(logging.WARNING):
            quantize_dynamic(
                str(plain),
                str(target),
                per_channel=True,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8 if weight_type == "int8" else QuantType.QUInt8,
                nodes_to_exclude=excluded,
                # ORT's fused ops (Attention, SkipLayerNorm) have no ONNX shape inference.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    finally:
        plain.unlink(missing_ok=True)
    quantized_head = head_nodes(onnx.load(str(target)).graph, QUANTIZED_OP_TYPES)
    if quantized_head:
        raise EmorecError(
            "ONNX Runtime's quantizer did not keep the classification head in fp32 "
            f"(quantized: {quantized_head}); this onnxruntime version is not supported for int8 "
            "export: install the version in requirements/lock.txt."
        )
    return settings


def cpu_int8_instructions() -> str:
    """The int8 dot-product instructions of this CPU, as ONNX Runtime will use them.

    Recorded with every int8 export: accuracy figures measured on a VNNI CPU do not carry over
    to one without it unless the weights are saturation-safe (see :func:`quantize_graph`).
    """
    try:
        flags = next(
            line.split(":", 1)[1].split()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith(("flags", "Features"))
        )
    except (OSError, StopIteration):
        return "unknown"
    for flag, name in (
        ("amx_int8", "amx"),
        ("avx512_vnni", "avx512-vnni"),
        ("avx_vnni", "avx-vnni"),
        ("avx2", "avx2"),
        ("asimddp", "arm-dotprod"),
    ):
        if flag in flags:
            return name
    return "other"


# ---- the accuracy gate ---------------------------------------------------------------------
def gate_data(
    classifier: EmotionClassifier, model_dir: Path, data: str | Path | None
) -> tuple[list[str], np.ndarray, str]:
    """Labelled texts for the gate: ``(texts, targets, description)``.

    ``data``: a labelled file (dair ``text;label``, CSV, TSV, JSONL, Parquet). Otherwise the
    validation split, rebuilt (cached, deterministic) from the model's ``config.yaml``.
    """
    if data is not None:
        from emorec.data import read_file

        frame = read_file(Path(data), "auto")
        targets = classifier.label_space.encode(frame["label"].tolist())
        return frame["text"].tolist(), np.asarray(targets), str(data)
    if classifier.config is None:
        raise ConfigError(
            f"{model_dir} has no config.yaml, so its validation split cannot be rebuilt for the "
            "accuracy gate; pass a labelled file with --data FILE."
        )
    from emorec.data import prepare

    try:
        prepared = prepare(classifier.config, classifier.tokenizer)
    except (DataError, ConfigError, OSError) as error:
        raise DataError(
            f"The accuracy gate could not rebuild the validation split from "
            f"{model_dir / 'config.yaml'}: {error} Pass a labelled file with --data FILE."
        ) from None
    validation = prepared.splits["validation"]
    return list(validation["text"]), np.asarray(validation["labels"]), "validation split"


def gate_scores(decided: np.ndarray, targets: np.ndarray, n_labels: int) -> dict[str, float]:
    """Accuracy (exact match for multi-label) and macro-F1 (over ``n_labels``) of decisions."""
    if targets.ndim == 2:
        targets = targets.astype(np.int64)
        hits = (decided == targets).all(axis=1)
    else:
        hits = decided == targets
    return {"accuracy": float(hits.mean()), "macro_f1": macro_f1(targets, decided, n_labels)}


def _cross_fitted_decisions(
    reference_logits: np.ndarray,
    candidate_logits: np.ndarray,
    targets: np.ndarray,
    refit: CalibrationConfig,
    multi_label: bool,
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Both models' decisions on each fold, by a rule re-fitted on the other folds.

    The stored offsets or thresholds were tuned on these very rows with the reference's logits,
    so in sample they sit just on the right side of the rows nearest a boundary: any change of
    the logits, however small and unbiased, then flips more rows to wrong than to right, and
    the reference wins by construction (seen on dair-emotion: 11 int8 flips to wrong, 1 to
    right on validation, net +1 on test). Held-out decisions remove that head start: each row
    is decided by the calibration procedure run on the other folds' reference logits, the rule
    the candidate would inherit. ``None`` when a class has too few rows for the folds.
    """
    n_folds = max(refit.cv_folds, GATE_FOLDS)
    if multi_label:
        if len(targets) < 2 * n_folds:
            return None
    elif np.bincount(targets).min(initial=len(targets)) < n_folds or len(set(targets)) < 2:
        return None
    reference = np.empty(targets.shape, dtype=np.int64)
    candidate = np.empty(targets.shape, dtype=np.int64)
    for fit_idx, held_idx in validation_folds(targets, n_folds):
        rule = fit_calibration(
            reference_logits[fit_idx], targets[fit_idx], refit, multi_label=multi_label
        )
        reference[held_idx] = rule.decide(reference_logits[held_idx])
        candidate[held_idx] = rule.decide(candidate_logits[held_idx])
    return reference, candidate, n_folds


def accuracy_gate(
    reference: EmotionClassifier,
    candidate: EmotionClassifier,
    texts: Sequence[str],
    targets: np.ndarray,
    max_drop: float,
    check_parity: bool,
    refit: CalibrationConfig | None = None,
) -> dict[str, Any]:
    """Score both classifiers with the calibrated rule; ``passed`` unless one drops too much.

    Deltas are in points (candidate − reference, × 100). ``check_parity`` also requires the
    probabilities to match within :data:`FP32_PROB_TOLERANCE`. ``refit``: the calibration
    settings, given when ``texts`` are the rows the stored rule was fitted on (the validation
    split); tuned offsets or thresholds are then judged cross-fitted (see
    :func:`_cross_fitted_decisions`), and the in-sample deltas are reported beside them.
    """
    if len(texts) == 0:
        raise DataError("The accuracy gate needs at least one labelled text; the data is empty.")
    rule = reference.calibration
    ref_logits, cand_logits = reference.logits(texts), candidate.logits(texts)
    n_labels = ref_logits.shape[1]
    ref_decided, cand_decided = rule.decide(ref_logits), rule.decide(cand_logits)
    ref_scores = gate_scores(ref_decided, targets, n_labels)
    cand_scores = gate_scores(cand_decided, targets, n_labels)
    delta = {k: 100.0 * (cand_scores[k] - ref_scores[k]) for k in ref_scores}
    judged = {"decision_rule": "the stored calibration", "delta_points": delta}
    tuned = rule.biases is not None if not rule.multi_label else rule.thresholds is not None
    if refit is not None and tuned and rule.adopted is not False:
        folds = _cross_fitted_decisions(ref_logits, cand_logits, targets, refit, rule.multi_label)
        if folds is None:
            judged["decision_rule"] = (
                "the stored calibration, in sample (too few rows per class to cross-fit it)"
            )
        else:
            ref_held, cand_held, n_folds = folds
            ref_scores = gate_scores(ref_held, targets, n_labels)
            cand_scores = gate_scores(cand_held, targets, n_labels)
            judged = {
                "decision_rule": f"the calibration re-fitted on {n_folds - 1} of {n_folds} folds "
                "of these rows, applied to the held-out fold",
                "delta_points": {k: 100.0 * (cand_scores[k] - ref_scores[k]) for k in ref_scores},
                "in_sample_delta_points": delta,
            }
    delta = judged["delta_points"]
    prob_diff = float(
        np.abs(rule.probabilities(cand_logits) - rule.probabilities(ref_logits)).max()
    )
    same = ref_decided == cand_decided  # the shipped rule's decisions, row for row
    failures = [
        f"{name} {100 * ref_scores[name]:.2f} → {100 * cand_scores[name]:.2f} "
        f"({delta[name]:+.2f} points)"
        for name in ("accuracy", "macro_f1")
        if -delta[name] > max_drop
    ]
    if check_parity and prob_diff > FP32_PROB_TOLERANCE:
        failures.append(
            f"probabilities differ from PyTorch by up to {prob_diff:.2g} "
            f"(tolerance {FP32_PROB_TOLERANCE:g})"
        )
    return {
        "n": len(texts),
        "max_drop_points": max_drop,
        "torch": ref_scores,
        "onnx": cand_scores,
        **judged,
        "agreement": float(same.all(axis=1).mean() if same.ndim == 2 else same.mean()),
        "max_abs_prob_diff": prob_diff,
        "passed": not failures,
        "failures": failures,
    }


# ---- the export ----------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {
        "emorec": emorec.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }


def read_export_metadata(model_dir: str | Path) -> dict[str, Any]:
    """``export.json`` of a model directory (``{}`` before the first export)."""
    path = Path(model_dir) / EXPORT_FILE
    return _read_json(path) if path.is_file() else {}


def export_onnx(
    model_dir: str | Path,
    quantize: Quantize = None,
    *,
    data: str | Path | None = None,
    max_drop: float = DEFAULT_MAX_DROP,
    optimize: bool = True,
    opset: int = DEFAULT_OPSET,
    batch_size: int = 64,
    num_threads: int | None = None,
) -> ExportResult:
    """Export ``model_dir`` to ONNX (fp32, or int8 with ``quantize="int8"``) behind the gate.

    Raises :class:`ExportRefusedError` (model directory untouched) when accuracy or macro-F1
    on the gate data falls more than ``max_drop`` points below PyTorch's.
    """
    if quantize not in (None, "int8"):
        raise ConfigError(f"quantize must be None or 'int8'; got {quantize!r}.")
    if not isinstance(max_drop, int | float) or not np.isfinite(max_drop):
        raise ConfigError(f"max_drop must be a finite number of points; got {max_drop!r}.")
    import_onnxruntime()
    try:
        import onnx  # noqa: F401  (needed by the exporter and the quantizer)
    except ImportError:
        raise MissingDependencyError(
            f"ONNX export needs the onnx package: {ONNX_INSTALL_HINT}."
        ) from None

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirError(f"Model directory not found: {model_dir}.")
    precision = quantize or "fp32"
    classifier = EmotionClassifier.from_pretrained(
        model_dir, backend="torch", num_threads=num_threads, batch_size=batch_size
    )
    texts, targets, source = gate_data(classifier, model_dir, data)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".export-") as tmp:
        work = Path(tmp)
        current = work / "exported.onnx"
        input_names = export_graph(classifier.model, classifier.tokenizer, current, opset)
        fused: dict[str, int] | None = None
        if optimize:
            fused = optimize_graph(current, work / "optimized.onnx", classifier.model.config)
            current = work / "optimized.onnx"
        quantization = None
        if quantize == "int8":
            quantization = quantize_graph(current, work / "quantized.onnx")
            current = work / "quantized.onnx"
        candidate = EmotionClassifier(
            None,
            classifier.tokenizer,
            classifier.label_space,
            classifier.cleaning,
            classifier.calibration,
            classifier.max_length,
            classifier.config,
            batch_size,
            backend=OnnxBackend(current, num_threads, name=f"onnx-{precision}"),
        )
        # The stored rule was fitted on the validation split: judge it there cross-fitted.
        refit = classifier.config.calibration if data is None else None
        gate = accuracy_gate(
            classifier,
            candidate,
            texts,
            targets,
            max_drop,
            check_parity=quantize is None,
            refit=refit,
        )
        gate["data"] = source
        if not gate["passed"]:
            raise ExportRefusedError(
                f"ONNX {precision} export of {model_dir} refused by the accuracy gate on "
                f"{gate['n']} texts of the {source} (decided by {gate['decision_rule']}): "
                f"{'; '.join(gate['failures'])}; the "
                f"allowed drop is {max_drop:g} points (--max-drop). Nothing was written; "
                f"{model_dir} is unchanged.",
                gate,
            )
        del candidate  # release the session before moving its file
        final = model_dir / ONNX_FILES[precision]
        with atomic_path(final) as staged:  # fsync, then one rename over any older export
            os.replace(current, staged)
    metadata = {
        "file": final.name,
        "precision": precision,
        "size_bytes": final.stat().st_size,
        "sha256": file_sha256(final),
        "opset": opset,
        "inputs": input_names,
        "optimization": {"fused_operators": fused} if fused is not None else None,
        "quantization": quantization,
        "cpu_int8_instructions": cpu_int8_instructions() if quantize else None,
        "gate": {k: v for k, v in gate.items() if k != "failures"},
        "export_seconds": round(time.perf_counter() - started, 2),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    record = read_export_metadata(model_dir)
    record.setdefault("exports", {})[precision] = metadata
    atomic_write_json(model_dir / EXPORT_FILE, record)
    return ExportResult(final, precision, metadata)
