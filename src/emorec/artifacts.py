"""The model directory: every file name and schema in one place, validated once.

A model directory is self-contained: transformers weights and ``config.json``, the tokenizer,
``emorec.json`` (labels, cleaning settings, max length), ``calibration.json`` (temperature,
decision offsets or thresholds), the resolved ``config.yaml``, ``train_metrics.json`` (the
training's history), ``metrics.json`` (the last evaluation), ``README.md`` (the model card)
and, after ``emorec export``, ONNX models described in ``export.json``.

:class:`ModelDir` reads and writes them; inference, export, the model card, the CLI and the
workflows open a directory through it instead of naming files themselves.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import emorec
from emorec._io import atomic_write_json
from emorec.calibration import CALIBRATION_FILENAME, Calibration
from emorec.config.sections import CleaningConfig
from emorec.errors import ModelDirError
from emorec.labels import LabelSpace

if TYPE_CHECKING:
    from emorec.config import Config

logger = logging.getLogger(__name__)

EMOREC_FILE = "emorec.json"
CALIBRATION_FILE = CALIBRATION_FILENAME
CONFIG_FILE = "config.yaml"
HF_CONFIG_FILE = "config.json"
TRAIN_METRICS_FILE = "train_metrics.json"
METRICS_FILE = "metrics.json"
MODEL_CARD_FILE = "README.md"
EXPORT_FILE = "export.json"
TRAINING_CURVES_FILE = "training_curves.png"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# ONNX models written by `emorec export`, by precision; `precision="auto"` tries them in order.
ONNX_FILES = {"int8": "model.int8.onnx", "fp32": "model.onnx"}
# The files a tokenizer's vocabulary can live in (fast tokenizers: tokenizer.json; slow ones:
# WordPiece, BPE or SentencePiece files). Without any, transformers builds a tokenizer of the
# special tokens alone from config.json, which turns every word into [UNK].
TOKENIZER_FILE = "tokenizer.json"
VOCABULARY_FILES = (
    TOKENIZER_FILE,
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "spm.model",
)
POINT_AT_TRAINED = "Point at the directory written by `emorec train` (output.model_dir)."


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; unreadable, invalid or not an object is a ModelDirError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelDirError(
            f"{path} is not readable JSON ({error}); the model directory may be corrupted."
        ) from None
    if not isinstance(data, dict):
        raise ModelDirError(f"{path} must hold a JSON object.")
    return data


@dataclass(frozen=True)
class ModelMeta:
    """What ``emorec.json`` says: the labels, the cleaning, the length, the base model."""

    label_space: LabelSpace
    cleaning: CleaningConfig
    max_length: int
    base_model: str | None = None
    emorec_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "emorec_version": self.emorec_version or emorec.__version__,
            "label_space": self.label_space.to_dict(),
            "cleaning": self.cleaning.model_dump(),
            "max_length": self.max_length,
            "base_model": self.base_model,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path) -> ModelMeta:
        try:
            return cls(
                LabelSpace.from_dict(data["label_space"]),
                CleaningConfig.model_validate(data["cleaning"]),
                int(data["max_length"]),
                data.get("base_model"),
                data.get("emorec_version"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelDirError(f"{source} is incomplete or invalid: {error}.") from None


class ModelDir:
    """One model directory on disk. ``ModelDir.open(path)`` checks that it is one.

    >>> model_dir = ModelDir.open("models/dair-emotion")
    >>> model_dir.meta.label_space.names
    ('anger', 'fear', 'joy', 'love', 'sadness', 'surprise')
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ModelDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # ---- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> ModelDir:
        """The model directory at ``path``; a ModelDirError says what is missing or wrong."""
        directory = cls(path)
        if not directory.path.exists():
            raise ModelDirError(f"Model directory not found: {directory.path}. {POINT_AT_TRAINED}")
        if not directory.path.is_dir():
            raise ModelDirError(f"{directory.path} is a file; expected a model directory.")
        if not directory.has(EMOREC_FILE):
            raise ModelDirError(
                f"{directory.path} is not an emorec model directory: missing {EMOREC_FILE}. "
                f"{POINT_AT_TRAINED}"
            )
        directory.meta  # noqa: B018 -- read and validated now, so errors surface at open()
        return directory

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def missing_for_inference(self, onnx: bool) -> list[str]:
        """The files loading needs and the directory lacks (weights only for PyTorch)."""
        missing = [name for name in (EMOREC_FILE, HF_CONFIG_FILE) if not self.has(name)]
        if not onnx and not any(self.has(name) for name in WEIGHT_FILES):
            missing.append(" or ".join(WEIGHT_FILES))
        return missing

    # ---- reading --------------------------------------------------------------------------
    @property
    def meta(self) -> ModelMeta:
        source = self.path / EMOREC_FILE
        return ModelMeta.from_dict(read_json(source), source)

    def calibration(self) -> Calibration | None:
        """The fitted decision rule, or None for a model not calibrated yet."""
        path = self.path / CALIBRATION_FILE
        return Calibration.load(path) if path.is_file() else None

    def config(self) -> Config | None:
        """The resolved training config (``config.yaml``), or None when there is none."""
        from emorec.config import load_config

        path = self.path / CONFIG_FILE
        return load_config(path) if path.is_file() else None

    def read(self, name: str) -> dict[str, Any] | None:
        """A JSON file of the directory, or None when absent; invalid JSON is an error."""
        path = self.path / name
        return read_json(path) if path.is_file() else None

    def train_metrics(self) -> dict[str, Any]:
        """``train_metrics.json``, or {} when absent or unreadable (logged): the curves and
        figures it feeds are an extra, never a reason to lose an evaluation."""
        try:
            return self.read(TRAIN_METRICS_FILE) or {}
        except ModelDirError as error:
            logger.warning("Training history skipped: %s", error)
            return {}

    def metrics(self) -> dict[str, Any] | None:
        """The last evaluation (``metrics.json``; schema of :meth:`write_metrics`)."""
        return self.read(METRICS_FILE)

    # ---- writing --------------------------------------------------------------------------
    def write_metrics(self, results: dict[str, Any]) -> Path:
        """Keep a copy of an evaluation's ``metrics.json`` (atomically), so the directory
        stays self-contained: one schema, written by :mod:`emorec.evaluation`, whose
        ``split``, ``n_samples``, ``decision_rule``, ``metrics`` and ``data`` (what the
        scored split is: the card claims a published split only when these facts show one)
        the model card reads."""
        path = self.path / METRICS_FILE
        atomic_write_json(path, results)
        return path


def swap_directory(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` so that readers see either the old or the new dir."""
    if not target.exists():
        staging.rename(target)
        return
    backup = target.with_name(f".{target.name}.old")
    shutil.rmtree(backup, ignore_errors=True)
    target.rename(backup)
    staging.rename(target)
    shutil.rmtree(backup, ignore_errors=True)
