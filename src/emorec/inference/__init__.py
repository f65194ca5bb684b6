"""Using a trained model: the classifier, its backends, long-text windows and file streaming.

>>> from emorec.inference import EmotionClassifier
>>> clf = EmotionClassifier.from_pretrained("models/dair-emotion")
>>> clf("i feel so happy today")[0]
{'label': 'joy', 'score': 0.98...}

``classifier`` holds :class:`EmotionClassifier`, ``backends`` PyTorch and ONNX Runtime,
``prediction`` the :class:`Prediction` of one text, ``files`` streaming prediction over CSV /
JSONL / TXT files. What a model directory holds is :mod:`emorec.artifacts`'s. This package
imports no training code, and :mod:`emorec.explain` and :mod:`emorec.hub` do not import it.
"""

from emorec.artifacts import (
    CALIBRATION_FILE,
    EMOREC_FILE,
    EXPORT_FILE,
    ONNX_FILES,
    TOKENIZER_FILE,
    VOCABULARY_FILES,
    WEIGHT_FILES,
)
from emorec.inference.backends import (
    BACKENDS,
    ONNX_INSTALL_HINT,
    PRECISIONS,
    Backend,
    BackendName,
    OnnxBackend,
    Precision,
    TorchBackend,
    import_onnxruntime,
)
from emorec.inference.classifier import (
    AGGREGATES,
    LONG_TEXT,
    EmotionClassifier,
    LongText,
    WindowAggregate,
)
from emorec.inference.prediction import Decision, Prediction

__all__ = [
    "AGGREGATES",
    "BACKENDS",
    "CALIBRATION_FILE",
    "EMOREC_FILE",
    "EXPORT_FILE",
    "LONG_TEXT",
    "ONNX_FILES",
    "ONNX_INSTALL_HINT",
    "PRECISIONS",
    "TOKENIZER_FILE",
    "VOCABULARY_FILES",
    "WEIGHT_FILES",
    "Backend",
    "BackendName",
    "Decision",
    "EmotionClassifier",
    "LongText",
    "OnnxBackend",
    "Precision",
    "Prediction",
    "TorchBackend",
    "WindowAggregate",
    "import_onnxruntime",
]
