"""What the card says about a model directory, read from its files (no model is loaded).

The training data and the backbone as Hub ids where they are ones, the parameter count from
the safetensors headers, and whether the scored split is a whole published split (the only
case in which the card files a model-index result).
"""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path
from typing import Any

from emorec.artifacts import METRICS_FILE  # noqa: F401  (re-exported by emorec.hub)

# (Hub dataset id or None, display name, license note or None) of the training data.
Dataset = tuple[str | None, str, str | None]

# Local data directories that are copies of Hub datasets: (Hub id, display name, license note).
KNOWN_DATASETS: dict[str, Dataset] = {
    "dair-emotion": (
        "dair-ai/emotion",
        "dair-ai/emotion",
        "The dataset card limits use to educational and research purposes.",
    ),
    "goemotions": (
        "google-research-datasets/go_emotions",
        "GoEmotions",
        "CC BY 4.0 (Demszky et al. 2020); cite the paper.",
    ),
}
# The published splits of KNOWN_DATASETS: (Hub config, rows per split). A local copy is
# that published split only when it holds all of its rows.
PUBLISHED_SPLITS = {
    "dair-ai/emotion": ("split", {"train": 16000, "validation": 2000, "test": 2000}),
    "google-research-datasets/go_emotions": (
        "simplified",
        {"train": 43410, "validation": 5426, "test": 5427},
    ),
}
# Backbone aliases that emorec resolves to a local copy of a Hub model.
KNOWN_BACKBONES = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def parameter_count(model_dir: Path) -> int | None:
    """Parameters of every ``*.safetensors`` file, read from their headers (no weights loaded)."""
    total, found = 0, False
    for path in sorted(model_dir.glob("*.safetensors")):
        with path.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
        found = True
    return total if found else None


def training_dataset(config: Any) -> Dataset:
    """(Hub dataset id or None, display name, license note or None) of the training data."""
    if config is None:
        return None, "unknown data", None
    data = config.data
    if data.format == "hub" and data.hub_id and not Path(data.hub_id).exists():
        return data.hub_id, data.hub_id, None
    if data.path:
        path = Path(data.path)
        name = path.name if path.is_dir() or not path.suffix else path.stem
    elif data.train_file:
        name = Path(data.train_file).resolve().parent.name
    else:
        name = Path(data.hub_id or "").name
    known = KNOWN_DATASETS.get(name.lower())
    if known is None:
        return None, name or "local data", None
    return known


def base_model_id(meta: dict[str, Any], config: Any) -> str | None:
    """The backbone as a Hub id (a local directory has none)."""
    name = meta.get("base_model") or (config.model.name if config is not None else None)
    if not name:
        return None
    if name.lower() in KNOWN_BACKBONES:
        return KNOWN_BACKBONES[name.lower()]
    if Path(name).exists() or not _HUB_ID.match(name):
        return None
    return name


def published_split(
    config: Any, dataset: Dataset, metrics_file: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The scored split as a model-index ``dataset`` when it is a whole published split.

    Keys ``name``, ``type``, ``split`` and, where known, ``config`` and ``revision``. None when
    it is not, or when metrics.json does not record it (older model directories): a
    subsample, a split emorec made, a split that lost rows to label mapping or leakage
    removal, or a local copy without all of the published rows.
    """
    hub_id, display, _ = dataset
    record = (metrics_file or {}).get("data")
    if hub_id is None or not record or record.get("split_by") != "source":
        return None
    split = metrics_file["split"]  # type: ignore[index]
    read, used = record["read"].get(split), record["used"].get(split)
    if read is None or used != read:
        return None
    entry: dict[str, Any] = {"name": display, "type": hub_id, "split": split}
    data = config.data if config is not None else None
    if data is not None and data.format == "hub" and data.hub_id == hub_id:
        # Read from the Hub: every row of the split, as published at that revision.
        entry.update(
            {k: v for k, v in (("config", data.hub_config), ("revision", data.hub_revision)) if v}
        )
        return entry
    published = PUBLISHED_SPLITS.get(hub_id)
    if published is None or published[1].get(split) != read:
        return None
    entry["config"] = published[0]
    return entry
