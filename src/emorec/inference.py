"""``EmotionClassifier``: load a model directory and classify texts.

A model directory is self-contained: transformers weights and config, the tokenizer,
``emorec.json`` (labels, cleaning settings, max length), ``calibration.json`` (temperature,
decision offsets or thresholds), the resolved ``config.yaml``, the metrics and, after
``emorec export``, ONNX models (``model.onnx``, ``model.int8.onnx``) described in
``export.json``. This module never imports training code.

One code path serves every backend: clean → tokenize → length-sorted batches padded per batch →
backend → (window merge) → calibration. A backend only maps a padded batch of token ids to
logits (:class:`Backend`): :class:`TorchBackend` runs the PyTorch module, :class:`OnnxBackend`
an ONNX Runtime session.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import numpy as np
import torch

import emorec
from emorec._io import atomic_write_json, atomic_write_text
from emorec.calibration import CALIBRATION_FILENAME as CALIBRATION_FILE
from emorec.calibration import Calibration
from emorec.errors import ConfigError, MissingDependencyError, ModelDirError
from emorec.labels import LabelSpace
from emorec.text import CleaningConfig, TextCleaner, as_text_batch

if TYPE_CHECKING:
    from emorec.explain import Explanation

logger = logging.getLogger(__name__)

EMOREC_FILE = "emorec.json"
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
EXPORT_FILE = "export.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# ONNX models written by `emorec export`, by precision; `precision="auto"` tries them in order.
ONNX_FILES = {"int8": "model.int8.onnx", "fp32": "model.onnx"}

Decision = Literal["calibrated", "argmax"]
BackendName = Literal["auto", "torch", "onnx"]
Precision = Literal["auto", "fp32", "int8"]
LongText = Literal["truncate", "window"]
WindowAggregate = Literal["mean", "max"]
BACKENDS = ("auto", "torch", "onnx")
PRECISIONS = ("auto", "fp32", "int8")
LONG_TEXT = ("truncate", "window")
AGGREGATES = ("mean", "max")
ONNX_INSTALL_HINT = 'pip install "emorec[onnx]" (or: pip install onnxruntime onnx)'
# Merged window probabilities are mapped back to logits; clipping keeps log(p) finite.
_PROB_EPS = 1e-7


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

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON types: ``{"text", "label", "labels", "scores"}``."""
        return {
            "text": self.text,
            "label": self.label,
            "labels": list(self.labels),
            "scores": {label: float(score) for label, score in self.scores.items()},
        }

    def to_pipeline(self) -> list[dict[str, Any]]:
        """``[{"label", "score"}, ...]`` highest first, as a transformers pipeline gives."""
        return [{"label": label, "score": float(score)} for label, score in self.scores.items()]


# ---- backends ----------------------------------------------------------------------------
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


def _check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        choices = ", ".join(map(repr, allowed))
        raise ConfigError(f"{name} must be one of {choices}; got {value!r}.")


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


def _choose_backend(
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


class EmotionClassifier:
    """A fine-tuned emotion classifier with its cleaning and calibrated decision rule.

    >>> clf = EmotionClassifier.from_pretrained("models/dair-emotion")
    >>> clf.predict("i feel so happy today").label
    'joy'

    ``backend`` maps token ids to logits (PyTorch by default, or ONNX Runtime); ``model`` may
    then be None. Texts longer than ``max_length`` tokens are cut (``long_text="truncate"``) or
    split into windows of ``max_length`` tokens overlapping by ``window_overlap`` tokens
    (``"window"``), whose probabilities are merged per text by ``window_aggregate``:
    ``"mean"`` (the average) or ``"max"`` (per label, the highest; renormalised for
    single-label models). ``batch_size``, ``long_text``, ``window_overlap`` and
    ``window_aggregate`` may be changed on the instance.
    """

    def __init__(
        self,
        model: torch.nn.Module | None,
        tokenizer: Any,
        label_space: LabelSpace,
        cleaning: CleaningConfig | None = None,
        calibration: Calibration | None = None,
        max_length: int = 128,
        config: Any = None,
        batch_size: int = 64,
        *,
        backend: Backend | None = None,
        long_text: LongText = "truncate",
        window_overlap: int | None = None,
        window_aggregate: WindowAggregate = "mean",
    ) -> None:
        if model is None and backend is None:
            raise ConfigError("EmotionClassifier needs a model or a backend; got neither.")
        self.model = model.eval() if model is not None else None
        self.backend: Backend = backend if backend is not None else TorchBackend(self.model)
        self.tokenizer = tokenizer
        self.label_space = label_space
        self.cleaning = cleaning or CleaningConfig()
        self.cleaner = TextCleaner(self.cleaning)
        self.calibration = calibration or Calibration(multi_label=label_space.multi_label)
        self.max_length = max_length
        self.config = config
        self.batch_size = batch_size
        self.long_text = long_text
        self.window_overlap = window_overlap
        self.window_aggregate = window_aggregate
        # The directory this classifier was loaded from (set by from_pretrained), for push_to_hub.
        self.model_dir: Path | None = None
        self._check_params()

    @property
    def labels(self) -> list[str]:
        return list(self.label_space.names)

    @property
    def device(self) -> torch.device:
        if self.model is None:
            return torch.device("cpu")  # ONNX Runtime runs on the CPU here
        return next(self.model.parameters()).device

    # ---- loading and saving -------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        revision: str | None = None,
        device: str | None = None,
        *,
        backend: BackendName = "auto",
        precision: Precision = "auto",
        num_threads: int | None = None,
        batch_size: int = 64,
        long_text: LongText = "truncate",
        window_overlap: int | None = None,
        window_aggregate: WindowAggregate = "mean",
    ) -> EmotionClassifier:
        """Load a model directory, or a Hugging Face Hub repo id (downloaded when online).

        ``backend``: ``"torch"``, ``"onnx"`` (a model written by ``emorec export``), or
        ``"auto"``: ONNX when an exported model is present, onnxruntime is installed and the
        device is the CPU, else PyTorch. ``precision`` picks the ONNX model: ``"int8"``,
        ``"fp32"`` or ``"auto"`` (int8 when exported, else fp32). ``num_threads`` sets the
        intra-op threads of ONNX Runtime or PyTorch (process-wide for PyTorch). The other
        keywords are the constructor's.
        """
        from safetensors import SafetensorError
        from transformers import AutoTokenizer

        from emorec.modeling import load_classifier

        _check_choice("backend", backend, BACKENDS)
        _check_choice("precision", precision, PRECISIONS)
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ConfigError(f"num_threads must be a positive integer or None; got {num_threads}.")
        directory = Path(path) if _is_local(path) else _download(str(path), revision)
        if not directory.is_dir():
            raise ModelDirError(f"{directory} is a file; expected a model directory.")
        onnx_path = _choose_backend(directory, backend, precision, device)
        missing = [
            name for name in (EMOREC_FILE, "config.json") if not (directory / name).is_file()
        ]
        if onnx_path is None and not any((directory / w).is_file() for w in WEIGHT_FILES):
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
        if not any((directory / name).is_file() for name in VOCABULARY_FILES):
            raise ModelDirError(
                f"{directory} has no tokenizer: {directory / TOKENIZER_FILE} is missing (nor is "
                f"any of {', '.join(VOCABULARY_FILES[1:])} there). Restore it from the training "
                "run (it is written by `emorec train`), or train again."
            )
        model = None
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(directory))
            if onnx_path is None:
                model = load_classifier(directory)
        except (OSError, ValueError, RuntimeError, SafetensorError) as error:
            raise ModelDirError(
                f"Could not load the model or tokenizer in {directory}: {error}. The directory "
                "may be corrupted; train again or restore it."
            ) from None
        if model is not None:
            outputs = model.config.num_labels
            if device is not None:
                model.to(device)
            engine: Backend = TorchBackend(model, num_threads)
        else:
            precision_name = next(k for k, v in ONNX_FILES.items() if v == onnx_path.name)
            engine = OnnxBackend(onnx_path, num_threads, name=f"onnx-{precision_name}")
            outputs = engine.num_outputs
        if outputs != label_space.num_labels:
            raise ModelDirError(
                f"{directory}: the model has {outputs} outputs but "
                f"{EMOREC_FILE} lists {label_space.num_labels} labels."
            )
        _check_tokenizer(directory, tokenizer)
        config = None
        if (directory / "config.yaml").is_file():
            from emorec.config import load_config

            config = load_config(directory / "config.yaml")
        classifier = cls(
            model,
            tokenizer,
            label_space,
            cleaning,
            calibration,
            max_length,
            config,
            batch_size,
            backend=engine,
            long_text=long_text,
            window_overlap=window_overlap,
            window_aggregate=window_aggregate,
        )
        classifier.model_dir = directory
        return classifier

    def save_pretrained(
        self, directory: str | Path, train_metrics: dict[str, Any] | None = None
    ) -> Path:
        """Write a self-contained model directory atomically (a temp dir, then a rename).

        Needs the PyTorch model; ONNX exports of an earlier model are not carried over (they
        would no longer match the weights), so export again after saving.
        """
        if self.model is None:
            raise ModelDirError(
                f"save_pretrained needs the PyTorch weights, but this classifier runs "
                f"{self.backend.name}; load it with backend='torch' to save it."
            )
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

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = False,
        revision: str | None = None,
        token: str | None = None,
        commit_message: str | None = None,
        api: Any = None,
    ) -> str:
        """Upload the model to the Hugging Face Hub in one commit; return the commit URL.

        A classifier loaded from a model directory uploads that directory as it is on disk
        (metrics and a regenerated model card included); one built in memory is saved to a
        temporary directory first. Token: ``token``, ``HF_TOKEN`` or the ``hf auth login``
        cache. Needs network access; see :func:`emorec.hub.push_to_hub`.
        """
        from emorec.hub import push_to_hub

        options: dict[str, Any] = {
            "private": private,
            "revision": revision,
            "token": token,
            "api": api,
        }
        if commit_message is not None:
            options["commit_message"] = commit_message
        if self.model_dir is not None and (self.model_dir / EMOREC_FILE).is_file():
            return push_to_hub(self.model_dir, repo_id, **options)
        with tempfile.TemporaryDirectory(prefix="emorec-push-") as tmp:
            return push_to_hub(self.save_pretrained(Path(tmp) / "model"), repo_id, **options)

    # ---- prediction ----------------------------------------------------------------------
    def _check_params(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer; got {self.batch_size!r}.")
        _check_choice("long_text", self.long_text, LONG_TEXT)
        _check_choice("window_aggregate", self.window_aggregate, AGGREGATES)
        if self.long_text == "window":
            room = self.max_length - self.tokenizer.num_special_tokens_to_add()
            overlap = self.window_overlap
            if overlap is not None and (not isinstance(overlap, int) or not 0 <= overlap < room):
                raise ConfigError(
                    f"window_overlap must be an integer in [0, {room}) (max_length "
                    f"{self.max_length} minus special tokens); got {overlap!r}."
                )

    def clean(self, texts: Sequence[str]) -> list[str]:
        """``texts`` as the model sees them; DataError for one that cannot be classified."""
        batch, _single = as_text_batch(texts)
        return self.cleaner.clean_batch(batch)

    def _encode(self, clean_texts: list[str]) -> tuple[dict[str, list[list[int]]], np.ndarray]:
        """Token ids of each model input, and the text each row belongs to.

        Truncating, row i is text i. With windows a long text gives several rows, consecutive
        windows sharing ``window_overlap`` tokens (HF tokenizers call it ``stride``).
        """
        if self.long_text == "truncate":
            encoded = self.tokenizer(clean_texts, truncation=True, max_length=self.max_length)
            return dict(encoded), np.arange(len(clean_texts))
        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError("long_text='window' needs a fast (Rust) tokenizer.")
        room = self.max_length - self.tokenizer.num_special_tokens_to_add()
        overlap = room // 2 if self.window_overlap is None else self.window_overlap
        encoded = dict(
            self.tokenizer(
                clean_texts,
                truncation=True,
                max_length=self.max_length,
                stride=overlap,
                return_overflowing_tokens=True,
            )
        )
        owner = np.asarray(encoded.pop("overflow_to_sample_mapping"), dtype=np.int64)
        return encoded, owner

    def _batches(
        self, encoded: dict[str, list[list[int]]]
    ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Length-sorted batches padded to their longest row: ``(row indices, inputs)``."""
        lengths = np.fromiter(map(len, encoded["input_ids"]), np.int64, len(encoded["input_ids"]))
        order = np.argsort(lengths, kind="stable")
        pad_values = {
            "input_ids": self.tokenizer.pad_token_id or 0,
            "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0),
        }
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            width = int(lengths[index[-1]])  # sorted ascending: the last row is the longest
            batch = {}
            for name, rows in encoded.items():
                array = np.full((len(index), width), pad_values.get(name, 0), dtype=np.int64)
                for r, i in enumerate(index):
                    row = rows[i]
                    if left:
                        array[r, width - len(row) :] = row
                    else:
                        array[r, : len(row)] = row
                batch[name] = array
            yield index, batch

    def _forward(self, clean_texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Logits of every row ``(R, C)`` in row order, and the text of each row ``(R,)``."""
        encoded, owner = self._encode(clean_texts)
        result = np.zeros((len(owner), self.label_space.num_labels), dtype=np.float32)
        for index, batch in self._batches(encoded):
            result[index] = self.backend(batch)
        return result, owner

    def _logits(self, texts: list[str], rule: Calibration) -> np.ndarray:
        """Per-text logits; the windows of a long text are merged in ``rule``'s probabilities."""
        self._check_params()  # the settings are public attributes and may have changed
        clean_texts = self.cleaner.clean_batch(texts)  # checked by the public caller
        logits, owner = self._forward(clean_texts)
        if len(owner) == len(clean_texts):  # one row per text: nothing to merge
            return logits
        return self._merge_windows(logits, owner, len(clean_texts), rule)

    def _merge_windows(
        self, logits: np.ndarray, owner: np.ndarray, n_texts: int, rule: Calibration
    ) -> np.ndarray:
        """Merge window probabilities per text, then map them back to logits for ``rule``.

        The returned z satisfies ``rule.probabilities(z) == merged`` (up to renormalising
        single-label "max"), so calibration and decisions work unchanged on merged windows.
        """
        probs = rule.probabilities(logits)  # (R, C)
        if self.window_aggregate == "mean":
            merged = np.zeros((n_texts, probs.shape[1]))
            np.add.at(merged, owner, probs)
            merged /= np.bincount(owner, minlength=n_texts)[:, None]
        else:
            merged = np.zeros((n_texts, probs.shape[1]))
            np.maximum.at(merged, owner, probs)
        merged = np.clip(merged, _PROB_EPS, 1 - _PROB_EPS)
        inverse = np.log(merged) - np.log1p(-merged) if rule.multi_label else np.log(merged)
        return (inverse * rule.temperature).astype(np.float32)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw model outputs ``(N, C)`` for ``texts`` (cleaned here), in input order.

        With ``long_text="window"`` they are the merged uncalibrated window probabilities
        mapped back to logits (log-probabilities, or log-odds for multi-label models).
        """
        batch, _single = as_text_batch(texts)
        if not batch:
            return np.zeros((0, self.label_space.num_labels), dtype=np.float32)
        return self._logits(batch, self._rule("argmax"))

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
        """Probabilities ``(N, C)`` (or ``(C,)`` for one string), temperature-scaled.

        Every text must hold a non-whitespace character and no lone surrogate; a DataError
        names the first that does not (``texts[i]``).
        """
        batch, single = as_text_batch(texts)
        rule = self._rule(decision)
        if not batch:
            return np.zeros((0, self.label_space.num_labels))
        probs = rule.probabilities(self._logits(batch, rule))
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
        """Classify one text (→ one Prediction) or a list (→ a list, same order).

        Every text must hold a non-whitespace character and no lone surrogate; a DataError
        names the first that does not (``texts[i]``), before any text is classified.
        """
        batch, single = as_text_batch(texts)
        if top_k is not None and not 1 <= top_k <= self.label_space.num_labels:
            raise ValueError(f"top_k must be in [1, {self.label_space.num_labels}], got {top_k}.")
        rule = self._rule(decision)
        if not batch:
            return []
        logits = self._logits(batch, rule)
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

    @overload
    def __call__(
        self, texts: str, top_k: int | None = ..., decision: Decision = ...
    ) -> list[dict[str, Any]]: ...
    @overload
    def __call__(
        self, texts: Sequence[str], top_k: int | None = ..., decision: Decision = ...
    ) -> list[list[dict[str, Any]]]: ...
    def __call__(
        self,
        texts: str | Sequence[str],
        top_k: int | None = None,
        decision: Decision = "calibrated",
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        """Scores as a transformers pipeline gives them: ``clf(text)`` is like
        ``pipeline("text-classification", model=...)(text, top_k=None)``.

        A string gives ``[{"label": ..., "score": ...}, ...]``, highest first (every label, or
        the ``top_k`` best); a list of strings gives one such list per text, in order.
        """
        predictions = self.predict(texts, top_k=top_k, decision=decision)
        if isinstance(predictions, Prediction):
            return predictions.to_pipeline()
        return [p.to_pipeline() for p in predictions]

    # ---- explanations --------------------------------------------------------------------
    def explain(
        self,
        text: str,
        method: str = "lrp",
        target: str | Sequence[str] | None = None,
        **options: Any,
    ) -> list[Explanation]:
        """Which words of ``text`` drive each explained emotion: one Explanation per target.

        ``method``: ``lrp`` (default), ``grad_x_input``, ``integrated_gradients``,
        ``attention``, ``attention_raw`` or ``random``; ``target``: label name(s), default the
        predicted label(s). ``options`` (``n_steps``, ``baseline``, ``seed``, ``attentions``)
        and details: :func:`emorec.explain.explain`. Needs the PyTorch backend.
        """
        from emorec.explain import explain

        return explain(self, text, method, target, **options)


def _check_tokenizer(directory: Path, tokenizer: Any) -> None:
    """Refuse a tokenizer that does not fit the model's vocabulary (``config.json``).

    Ids at or above ``vocab_size`` have no embedding row; a tokenizer much smaller than the
    embeddings is another model's, or one transformers made up from the special tokens.
    Embedding matrices are often padded (to a multiple of 64 or 128, a few reserved ids), so
    only a gap of more than half the vocabulary counts as a mismatch.
    """
    vocab_size = _read_json(directory / "config.json").get("vocab_size")
    if not isinstance(vocab_size, int) or vocab_size < 1:
        return  # architectures without a word-embedding vocabulary: nothing to compare
    size = len(tokenizer)
    source = next(name for name in VOCABULARY_FILES if (directory / name).is_file())
    fix = (
        f"Restore the tokenizer files ({TOKENIZER_FILE}, tokenizer_config.json) written with "
        "this model by `emorec train`, or train again."
    )
    where = f"{directory}: the tokenizer ({directory / source})"
    if size > vocab_size or size * 2 < vocab_size:
        raise ModelDirError(
            f"{where} has {size} tokens but the model's vocabulary has {vocab_size} "
            f"(vocab_size in {directory / 'config.json'}): they do not belong together. {fix}"
        )
    special = dict(zip(tokenizer.all_special_tokens, tokenizer.all_special_ids, strict=True))
    outside = {
        t: i for t, i in special.items() if not isinstance(i, int) or not 0 <= i < vocab_size
    }
    if outside:
        raise ModelDirError(
            f"{where} gives the special tokens {outside} ids outside the model's vocabulary "
            f"[0, {vocab_size}) (vocab_size in {directory / 'config.json'}). {fix}"
        )


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
