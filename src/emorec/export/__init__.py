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

import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import transformers

import emorec
from emorec._io import atomic_path, atomic_write_json, file_sha256
from emorec.artifacts import EXPORT_FILE, ONNX_FILES, ModelDir, read_json
from emorec.errors import (
    ConfigError,
    EmorecError,
    MissingDependencyError,
    ModelDirError,
)
from emorec.export.gate import (
    DEFAULT_MAX_DROP,
    FP32_PROB_TOLERANCE,
    GATE_FOLDS,
    accuracy_gate,
    gate_data,
    gate_scores,
)
from emorec.export.graph import DEFAULT_OPSET, MODEL_INPUTS, export_graph, optimize_graph
from emorec.export.quantize import (
    HEAD_OP_TYPES,
    QUANTIZED_OP_TYPES,
    cpu_int8_instructions,
    head_nodes,
    quantize_graph,
)
from emorec.inference import (
    ONNX_INSTALL_HINT,
    EmotionClassifier,
    OnnxBackend,
    import_onnxruntime,
)

__all__ = [
    "DEFAULT_MAX_DROP",
    "DEFAULT_OPSET",
    "FP32_PROB_TOLERANCE",
    "GATE_FOLDS",
    "HEAD_OP_TYPES",
    "MODEL_INPUTS",
    "QUANTIZED_OP_TYPES",
    "ExportRefusedError",
    "ExportResult",
    "Quantize",
    "accuracy_gate",
    "cpu_int8_instructions",
    "export_graph",
    "export_onnx",
    "gate_data",
    "gate_scores",
    "head_nodes",
    "optimize_graph",
    "quantize_graph",
    "read_export_metadata",
]

Quantize = Literal["int8"] | None


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
    return read_json(path) if path.is_file() else {}


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
    training_config = None if data is not None else ModelDir(model_dir).config()
    texts, targets, source = gate_data(classifier, model_dir, data, training_config)
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
            classifier.base_model,
            batch_size,
            backend=OnnxBackend(current, num_threads, name=f"onnx-{precision}"),
        )
        # The stored rule was fitted on the validation split: judge it there cross-fitted.
        refit = training_config.calibration if training_config is not None else None
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
