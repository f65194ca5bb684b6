"""Shared bits of the benchmark scripts: provenance metadata and the result file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, Any]:
    import torch

    from emorec.train import cpu_name

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


# The libraries whose versions change a benchmark's figures (kernels, tokenizers, defaults).
VERSIONED = (
    "emorec", "torch", "transformers", "tokenizers", "accelerate", "datasets", "numpy",
    "scikit-learn", "onnx", "onnxruntime", "optuna", "captum", "fastapi", "uvicorn",
)  # fmt: skip


def library_versions() -> dict[str, str | None]:
    """Installed version of each library in :data:`VERSIONED` (``None`` when absent)."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write benchmarks/results/<name>.json with the command, date, commit, machine, versions."""
    record = {
        **payload,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "machine": machine(),
        "versions": library_versions(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def tfidf_splits(prepared: Any) -> tuple[Any, ...]:
    """TF-IDF (word 1-2 grams) of the cleaned train/validation/test texts, and their targets.

    Returns ``(x_train, x_val, x_test, y_train, y_val, y_test)``; the vocabulary is fitted on
    the training split only.
    """
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    splits = prepared.splits
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vectorizer.fit_transform(splits["train"]["clean_text"])
    x_val, x_test = (vectorizer.transform(splits[s]["clean_text"]) for s in ("validation", "test"))
    targets = (np.asarray(splits[s]["labels"]) for s in ("train", "validation", "test"))
    return (x_train, x_val, x_test, *targets)
