"""``EmotionClassifier``: load a model directory and classify texts.

One code path serves every backend: clean → tokenize → length-sorted batches padded per batch →
backend → (window merge) → calibration. A backend only maps a padded batch of token ids to
logits (:class:`~emorec.inference.backends.Backend`). This package never imports training code.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import torch

from emorec._io import atomic_write_json, atomic_write_text
from emorec.artifacts import (
    CALIBRATION_FILE,
    CONFIG_FILE,
    EMOREC_FILE,
    ONNX_FILES,
    TOKENIZER_FILE,
    TRAIN_METRICS_FILE,
    VOCABULARY_FILES,
    ModelDir,
    ModelMeta,
    swap_directory,
)
from emorec.calibration import Calibration
from emorec.errors import ConfigError, ModelDirError
from emorec.inference.backends import (
    BACKENDS,
    PRECISIONS,
    Backend,
    BackendName,
    OnnxBackend,
    Precision,
    TorchBackend,
    choose_backend,
)
from emorec.inference.loading import check_choice, check_tokenizer, download, is_local
from emorec.inference.prediction import Decision, Prediction
from emorec.inference.windows import encode, merge_windows, padded_batches
from emorec.labels import LabelSpace
from emorec.text import CleaningConfig, TextCleaner, as_text_batch

if TYPE_CHECKING:
    from emorec.config import Config
    from emorec.explain import Explanation

LongText = Literal["truncate", "window"]
WindowAggregate = Literal["mean", "max"]
LONG_TEXT = ("truncate", "window")
AGGREGATES = ("mean", "max")


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
        base_model: str | None = None,
        batch_size: int = 64,
        *,
        backend: Backend | None = None,
        long_text: LongText = "truncate",
        window_overlap: int | None = None,
        window_aggregate: WindowAggregate = "mean",
    ) -> None:
        if model is None and backend is None:
            raise ConfigError("EmotionClassifier needs a model or a backend; got neither.")
        if base_model is not None and not isinstance(base_model, str):
            raise ConfigError(
                "EmotionClassifier takes base_model, the name of the pretrained encoder, not "
                f"the training config (got {type(base_model).__name__}); the config goes to "
                "save_pretrained(directory, config=config) and is read back with "
                "ModelDir.open(directory).config()."
            )
        self.model = model.eval() if model is not None else None
        self.backend: Backend = backend if backend is not None else TorchBackend(self.model)
        self.tokenizer = tokenizer
        self.label_space = label_space
        self.cleaning = cleaning or CleaningConfig()
        self.cleaner = TextCleaner(self.cleaning)
        self.calibration = calibration or Calibration.untuned(label_space.task)
        self.max_length = max_length
        self.base_model = base_model
        self.batch_size = batch_size
        self.long_text = long_text
        self.window_overlap = window_overlap
        self.window_aggregate = window_aggregate
        # The directory this classifier was loaded from (set by from_pretrained), for push_to_hub.
        self.model_dir: Path | None = None
        self._check_params()

    @property
    def config(self) -> Config | None:
        """The training config of the directory this classifier was loaded from (read from
        its ``config.yaml`` on each access; the classifier itself does not depend on it)."""
        return ModelDir(self.model_dir).config() if self.model_dir is not None else None

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

        check_choice("backend", backend, BACKENDS)
        check_choice("precision", precision, PRECISIONS)
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ConfigError(f"num_threads must be a positive integer or None; got {num_threads}.")
        directory = Path(path) if is_local(path) else download(str(path), revision)
        if not directory.is_dir():
            raise ModelDirError(f"{directory} is a file; expected a model directory.")
        onnx_path = choose_backend(directory, backend, precision, device)
        model_dir = ModelDir(directory)
        missing = model_dir.missing_for_inference(onnx=onnx_path is not None)
        if missing:
            raise ModelDirError(
                f"{directory} is not an emorec model directory: missing {', '.join(missing)}. "
                "Point at the directory written by `emorec train` (output.model_dir)."
            )
        meta = model_dir.meta
        label_space = meta.label_space
        calibration = model_dir.calibration()
        if not any(model_dir.has(name) for name in VOCABULARY_FILES):
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
        check_tokenizer(directory, tokenizer)
        classifier = cls(
            model,
            tokenizer,
            label_space,
            meta.cleaning,
            calibration,
            meta.max_length,
            meta.base_model,
            batch_size,
            backend=engine,
            long_text=long_text,
            window_overlap=window_overlap,
            window_aggregate=window_aggregate,
        )
        classifier.model_dir = directory
        return classifier

    def save_pretrained(
        self,
        directory: str | Path,
        train_metrics: dict[str, Any] | None = None,
        *,
        config: Config | None = None,
    ) -> Path:
        """Write a self-contained model directory atomically (a temp dir, then a rename).

        ``config``, the resolved training config, is written as ``config.yaml`` (a classifier
        loaded from a directory carries that directory's over when none is given) and
        ``train_metrics`` as ``train_metrics.json``.

        Needs the PyTorch model; ONNX exports of an earlier model are not carried over (they
        would no longer match the weights), so export again after saving.
        """
        if self.model is None:
            raise ModelDirError(
                f"save_pretrained needs the PyTorch weights, but this classifier runs "
                f"{self.backend.name}; load it with backend='torch' to save it."
            )
        config = config if config is not None else self.config
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
        try:
            self.model.save_pretrained(staging)
            self.tokenizer.save_pretrained(staging)
            base_model = self.base_model or (config.model.name if config is not None else None)
            meta = ModelMeta(self.label_space, self.cleaning, self.max_length, base_model)
            atomic_write_json(staging / EMOREC_FILE, meta.to_dict())
            if self.calibration is not None:
                self.calibration.save(staging / CALIBRATION_FILE)
            if config is not None:
                atomic_write_text(staging / CONFIG_FILE, config.to_yaml())
            if train_metrics is not None:
                atomic_write_json(staging / TRAIN_METRICS_FILE, train_metrics)
            swap_directory(staging, directory)
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
        check_choice("long_text", self.long_text, LONG_TEXT)
        check_choice("window_aggregate", self.window_aggregate, AGGREGATES)
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
        """Token ids of each model input, and the text each row belongs to (see
        :func:`~emorec.inference.windows.encode`)."""
        return encode(
            self.tokenizer, clean_texts, self.max_length, self.long_text, self.window_overlap
        )

    def _batches(
        self, encoded: dict[str, list[list[int]]]
    ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        return padded_batches(self.tokenizer, encoded, self.batch_size)

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
        return merge_windows(logits, owner, len(clean_texts), rule, self.window_aggregate)

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
            return Calibration.untuned(self.label_space.task)
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
        chosen = [names[i] for i in self.label_space.task.decided_indices(decided, probs)]
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
