"""Backends map a padded batch of token ids to logits: PyTorch, or an exported ONNX model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from emorec.artifacts import ONNX_FILES
from emorec.errors import ConfigError, MissingDependencyError, ModelDirError

logger = logging.getLogger(__name__)

BackendName = Literal["auto", "torch", "onnx"]
Precision = Literal["auto", "fp32", "int8"]
BACKENDS = ("auto", "torch", "onnx")
PRECISIONS = ("auto", "fp32", "int8")
ONNX_INSTALL_HINT = 'pip install "emorec[onnx]" (or: pip install onnxruntime onnx)'


class Backend(Protocol):
    """Maps a padded batch ``{input name: (B, S) int64}`` to logits ``(B, C)`` float32."""

    name: str

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


class TorchBackend:
    """A PyTorch sequence classifier (anything returning ``.logits``) on its own device."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, num_threads: int | None = None) -> None:
        self.model = model.eval()
        if num_threads is not None:
            # Process-wide in torch: the last classifier loaded sets it for all of them.
            torch.set_num_threads(num_threads)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        device = self.device
        inputs = {name: torch.from_numpy(ids).to(device) for name, ids in batch.items()}
        return self.model(**inputs).logits.float().cpu().numpy()


def import_onnxruntime() -> Any:
    """``onnxruntime``, imported on first use (an optional dependency)."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(
            f"ONNX inference and export need ONNX Runtime, which is not installed: "
            f"{ONNX_INSTALL_HINT}."
        ) from None
    return onnxruntime


class OnnxBackend:
    """An ONNX Runtime CPU session over an exported model (see :mod:`emorec.export`)."""

    def __init__(
        self, path: str | Path, num_threads: int | None = None, name: str | None = None
    ) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        self.name = name or "onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
        # One operator at a time: the batches are sequential, parallelism lives inside ops.
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ORT raises its own exception types (Fail, InvalidGraph...)
            raise ModelDirError(
                f"ONNX Runtime could not load {self.path}: {error}. Export it again with "
                "`emorec export MODEL_DIR --format onnx`."
            ) from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.num_outputs = self.session.get_outputs()[0].shape[-1]

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        missing = [name for name in self.input_names if name not in batch]
        if missing:
            raise ModelDirError(
                f"{self.path} expects inputs {self.input_names} but the tokenizer gives "
                f"{sorted(batch)}; was it exported from another model?"
            )
        (logits,) = self.session.run(["logits"], {name: batch[name] for name in self.input_names})
        return logits


def _onnx_file(directory: Path, precision: Precision) -> Path | None:
    """The exported model for ``precision`` (``auto``: int8, else fp32), or None."""
    wanted = ONNX_FILES if precision == "auto" else {precision: ONNX_FILES[precision]}
    for filename in wanted.values():
        if (directory / filename).is_file():
            return directory / filename
    return None


def _onnxruntime_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def choose_backend(
    directory: Path, backend: BackendName, precision: Precision, device: str | None
) -> Path | None:
    """The ONNX file to run, or None for PyTorch."""
    onnx_path = _onnx_file(directory, precision)
    export_hint = (
        f"`emorec export {directory} --format onnx"
        f"{' --quantize int8' if precision == 'int8' else ''}`"
    )
    if backend == "torch":
        return None
    if backend == "onnx":
        if device not in (None, "cpu"):
            raise ConfigError(f"backend='onnx' runs on the CPU; got device={device!r}.")
        if onnx_path is None:
            wanted = (
                " or ".join(ONNX_FILES.values()) if precision == "auto" else ONNX_FILES[precision]
            )
            raise ModelDirError(f"{directory} has no {wanted}; create it with {export_hint}.")
        return onnx_path
    # auto: ONNX when an export is present and usable here, else PyTorch.
    if onnx_path is None:
        if precision != "auto":
            raise ModelDirError(
                f"{directory} has no {ONNX_FILES[precision]} (precision={precision!r}); create "
                f"it with {export_hint}, or use precision='auto'."
            )
        return None
    if device not in (None, "cpu"):
        return None
    if not _onnxruntime_installed():
        logger.warning(
            "%s has an ONNX model but onnxruntime is not installed; using PyTorch (%s).",
            directory,
            ONNX_INSTALL_HINT,
        )
        return None
    return onnx_path
