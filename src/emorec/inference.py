"""``EmotionClassifier``: load a model directory and classify texts.

A model directory is self-contained: transformers weights and config, the tokenizer,
``emorec.json`` (labels, cleaning settings, max length), ``calibration.json`` (temperature,
decision offsets or thresholds), the resolved ``config.yaml`` and the metrics. This module never
imports training code.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import torch

import emorec
from emorec._io import atomic_write_json, atomic_write_text
from emorec.calibrate import CALIBRATION_FILENAME as CALIBRATION_FILE
from emorec.calibrate import Calibration
from emorec.errors import DataError, ModelDirError
from emorec.labels import LabelSpace
from emorec.text import CleaningConfig, TextCleaner

EMOREC_FILE = "emorec.json"

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
Decision = Literal["calibrated", "argmax"]


@dataclass
class Prediction:
    """The emotions of one text.

    ``labels`` are the decided emotions (exactly one for single-label models; zero or more for
    multi-label), ``label`` the most probable of them, ``scores`` label → probability, highest
    first (only the ``top_k`` best when asked).
    """

    text: str
    label: str | None
    labels: list[str]
    scores: dict[str, float] = field(default_factory=dict)


def _is_local(path: str | Path) -> bool:
    return Path(path).exists()


def _download(repo_id: str, revision: str | None) -> Path:
    """Fetch a model repo from the Hugging Face Hub (needs network access)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        raise ModelDirError(
            f"{repo_id!r} is not a local model directory and could not be downloaded from the "
            f"Hugging Face Hub ({type(error).__name__}: {error}). Check the path, or the repo id "
            "and your network connection."
        ) from None


class EmotionClassifier:
    """A fine-tuned emotion classifier with its cleaning and calibrated decision rule.

    >>> clf = EmotionClassifier.from_pretrained("models/dair-emotion")
    >>> clf.predict("i feel so happy today").label
    'joy'
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        label_space: LabelSpace,
        cleaning: CleaningConfig | None = None,
        calibration: Calibration | None = None,
        max_length: int = 128,
        config: Any = None,
        batch_size: int = 64,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.label_space = label_space
        self.cleaning = cleaning or CleaningConfig()
        self.cleaner = TextCleaner(self.cleaning)
        self.calibration = calibration or Calibration(multi_label=label_space.multi_label)
        self.max_length = max_length
        self.config = config
        self.batch_size = batch_size

    @property
    def labels(self) -> list[str]:
        return list(self.label_space.names)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ---- loading and saving -------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, path: str | Path, revision: str | None = None, device: str | None = None
    ) -> EmotionClassifier:
        """Load a model directory, or a Hugging Face Hub repo id (downloaded when online)."""
        from safetensors import SafetensorError
        from transformers import AutoTokenizer

        from emorec.modeling import load_classifier

        directory = Path(path) if _is_local(path) else _download(str(path), revision)
        if not directory.is_dir():
            raise ModelDirError(f"{directory} is a file; expected a model directory.")
        missing = [
            name for name in (EMOREC_FILE, "config.json") if not (directory / name).is_file()
        ]
        if not any((directory / w).is_file() for w in WEIGHT_FILES):
            missing.append(" or ".join(WEIGHT_FILES))
        if missing:
            raise ModelDirError(
                f"{directory} is not an emorec model directory: missing {', '.join(missing)}. "
                "Point at the directory written by `emorec train` (output.model_dir)."
            )
        meta = _read_json(directory / EMOREC_FILE)
        try:
            label_space = LabelSpace.from_dict(meta["label_space"])
            cleaning = CleaningConfig.model_validate(meta["cleaning"])
            max_length = int(meta["max_length"])
        except (KeyError, TypeError, ValueError) as error:
            raise ModelDirError(
                f"{directory / EMOREC_FILE} is incomplete or invalid: {error}."
            ) from None
        calibration_path = directory / CALIBRATION_FILE
        calibration = Calibration.load(calibration_path) if calibration_path.is_file() else None
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(directory))
            model = load_classifier(directory)
        except (OSError, ValueError, RuntimeError, SafetensorError) as error:
            raise ModelDirError(
                f"Could not load the model or tokenizer in {directory}: {error}. The directory "
                "may be corrupted; train again or restore it."
            ) from None
        if model.config.num_labels != label_space.num_labels:
            raise ModelDirError(
                f"{directory}: the model has {model.config.num_labels} outputs but "
                f"{EMOREC_FILE} lists {label_space.num_labels} labels."
            )
        if device is not None:
            model.to(device)
        config = None
        if (directory / "config.yaml").is_file():
            from emorec.config import load_config

            config = load_config(directory / "config.yaml")
        return cls(model, tokenizer, label_space, cleaning, calibration, max_length, config)

    def save_pretrained(
        self, directory: str | Path, train_metrics: dict[str, Any] | None = None
    ) -> Path:
        """Write a self-contained model directory atomically (a temp dir, then a rename)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
        try:
            self.model.save_pretrained(staging)
            self.tokenizer.save_pretrained(staging)
            atomic_write_json(
                staging / EMOREC_FILE,
                {
                    "emorec_version": emorec.__version__,
                    "label_space": self.label_space.to_dict(),
                    "cleaning": self.cleaning.model_dump(),
                    "max_length": self.max_length,
                    "base_model": self.config.model.name if self.config is not None else None,
                },
            )
            if self.calibration is not None:
                self.calibration.save(staging / CALIBRATION_FILE)
            if self.config is not None:
                atomic_write_text(staging / "config.yaml", self.config.to_yaml())
            if train_metrics is not None:
                atomic_write_json(staging / "train_metrics.json", train_metrics)
            _swap_directory(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return directory

    # ---- prediction ----------------------------------------------------------------------
    def clean(self, texts: Sequence[str]) -> list[str]:
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"Text {i} must be a string, got {type(text).__name__}.")
        return self.cleaner.clean_batch(texts)

    def _batches(
        self, clean_texts: list[str]
    ) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        """Length-sorted batches padded per batch: ``(indices, model inputs)``."""
        encoded = self.tokenizer(clean_texts, truncation=True, max_length=self.max_length)
        ids = encoded["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            features = [{key: encoded[key][i] for key in encoded} for i in index]
            batch = self.tokenizer.pad(features, return_tensors="pt")
            yield index, {k: v.to(self.device) for k, v in batch.items()}

    @torch.inference_mode()
    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw model outputs ``(N, C)`` for ``texts`` (cleaned here), in input order."""
        clean_texts = self.clean(texts)
        result = np.zeros((len(clean_texts), self.label_space.num_labels), dtype=np.float32)
        for index, batch in self._batches(clean_texts):
            result[index] = self.model(**batch).logits.float().cpu().numpy()
        return result

    def _rule(self, decision: Decision) -> Calibration:
        if decision == "calibrated":
            return self.calibration
        if decision == "argmax":
            return Calibration(multi_label=self.label_space.multi_label)
        raise ValueError(f"decision must be 'calibrated' or 'argmax', got {decision!r}.")

    @overload
    def predict_proba(self, texts: str, decision: Decision = ...) -> np.ndarray: ...
    @overload
    def predict_proba(self, texts: Sequence[str], decision: Decision = ...) -> np.ndarray: ...
    def predict_proba(
        self, texts: str | Sequence[str], decision: Decision = "calibrated"
    ) -> np.ndarray:
        """Probabilities ``(N, C)`` (or ``(C,)`` for one string), temperature-scaled."""
        single = isinstance(texts, str)
        probs = self._rule(decision).probabilities(self.logits([texts] if single else texts))
        return probs[0] if single else probs

    @overload
    def predict(
        self, texts: str, top_k: int | None = ..., decision: Decision = ...
    ) -> Prediction: ...
    @overload
    def predict(
        self, texts: Sequence[str], top_k: int | None = ..., decision: Decision = ...
    ) -> list[Prediction]: ...
    def predict(
        self,
        texts: str | Sequence[str],
        top_k: int | None = None,
        decision: Decision = "calibrated",
    ) -> Prediction | list[Prediction]:
        """Classify one text (→ one Prediction) or a list (→ a list, same order)."""
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        if top_k is not None and not 1 <= top_k <= self.label_space.num_labels:
            raise ValueError(f"top_k must be in [1, {self.label_space.num_labels}], got {top_k}.")
        rule = self._rule(decision)
        logits = self.logits(batch)
        probs = rule.probabilities(logits)
        decided = rule.decide(logits)
        predictions = [
            self._prediction(text, p, d, top_k)
            for text, p, d in zip(batch, probs, decided, strict=True)
        ]
        return predictions[0] if single else predictions

    def _prediction(
        self, text: str, probs: np.ndarray, decided: Any, top_k: int | None
    ) -> Prediction:
        names = self.label_space.names
        ranked = np.argsort(-probs, kind="stable")
        scores = {names[i]: float(probs[i]) for i in ranked[:top_k]}
        if self.label_space.multi_label:
            chosen = [names[i] for i in ranked if decided[i]]
        else:
            chosen = [names[int(decided)]]
        return Prediction(text, chosen[0] if chosen else None, chosen, scores)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelDirError(
            f"{path} is not readable JSON ({error}); the model directory may be corrupted."
        ) from None
    if not isinstance(data, dict):
        raise ModelDirError(f"{path} must hold a JSON object.")
    return data


def _swap_directory(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` so that readers see either the old or the new dir."""
    if not target.exists():
        staging.rename(target)
        return
    backup = target.with_name(f".{target.name}.old")
    shutil.rmtree(backup, ignore_errors=True)
    target.rename(backup)
    staging.rename(target)
    shutil.rmtree(backup, ignore_errors=True)
