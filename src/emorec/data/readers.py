"""Readers that turn a data source into a DataFrame with ``text`` and ``label`` columns.

``label`` holds a string (single-label) or a list of strings (multi-label). Every reader
checks its input and raises :class:`~emorec.errors.DataError` naming the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from emorec.errors import DataError

TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "dair",
}
SPLIT_NAMES = ("train", "validation", "test")
# Alternative file stems for each split found in public corpora (GoEmotions uses dev.tsv).
SPLIT_ALIASES = {
    "train": ("train",),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test",),
}


def infer_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise DataError(
            f"Cannot tell the format of {path} from its extension {suffix!r}; set `data.format` "
            f"to one of dair, csv, tsv, jsonl, parquet."
        )
    return TABLE_FORMATS[suffix]


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise DataError(
            f"Data file not found: {path} (resolved to {path.resolve()}). Relative paths start "
            "from the current directory."
        )


def read_dair(path: Path) -> pd.DataFrame:
    """Read ``text;label`` lines (dair-ai/emotion); the label follows the last ``;``."""
    _check_exists(path)
    texts: list[str] = []
    labels: list[str] = []
    with path.open(encoding="utf-8", errors="strict") as handle:
        try:
            for line_no, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue  # blank separator lines carry no example
                text, sep, label = line.rpartition(";")
                if not sep or not label.strip():
                    raise DataError(
                        f"{path}:{line_no}: expected `text;label` (label after the last `;`), "
                        f"got {line[:80]!r}."
                    )
                texts.append(text)
                labels.append(label.strip())
        except UnicodeDecodeError as error:
            raise DataError(
                f"{path} is not valid UTF-8 ({error.reason} at byte {error.start})."
            ) from None
    return pd.DataFrame({"text": texts, "label": labels, "line": range(1, len(texts) + 1)})


def _read_table(path: Path, fmt: str) -> pd.DataFrame:
    try:
        if fmt == "csv":
            return pd.read_csv(path, dtype=object, keep_default_na=False)
        if fmt == "tsv":
            return pd.read_csv(path, sep="\t", dtype=object, keep_default_na=False)
        if fmt == "jsonl":
            rows = []
            with path.open(encoding="utf-8") as handle:
                for line_no, line in enumerate(handle, start=1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as error:
                            raise DataError(
                                f"{path}:{line_no}: not valid JSON ({error.msg})."
                            ) from None
            return pd.DataFrame(rows)
        if fmt == "parquet":
            return pd.read_parquet(path)
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"Cannot read {path} as {fmt}: {error}") from None
    raise DataError(f"Unsupported table format {fmt!r} for {path}.")


def _normalise_label(value: Any, where: str) -> str | list[str]:
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value]
    if hasattr(value, "tolist"):  # numpy arrays from parquet list columns
        return [str(v).strip() for v in value.tolist()]
    if value is None or (isinstance(value, float) and pd.isna(value)) or not str(value).strip():
        raise DataError(f"{where}: empty label.")
    return str(value).strip()


def read_table(path: Path, fmt: str, text_column: str, label_column: str) -> pd.DataFrame:
    """Read CSV/TSV/JSONL/Parquet with configurable text and label columns."""
    _check_exists(path)
    frame = _read_table(path, fmt)
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {missing} not found; columns present: {list(frame.columns)}. "
            "Set `data.text_column` / `data.label_column`."
        )
    # Header line counts as line 1 in CSV/TSV, so data row i is on line i + 2 there.
    first_line = 2 if fmt in ("csv", "tsv") else 1
    lines = range(first_line, first_line + len(frame))
    labels = [
        _normalise_label(value, f"{path}:{line}")
        for value, line in zip(frame[label_column], lines, strict=True)
    ]
    texts = frame[text_column].tolist()
    for text, line in zip(texts, lines, strict=True):
        if not isinstance(text, str):
            raise DataError(f"{path}:{line}: text must be a string, got {text!r}.")
    return pd.DataFrame({"text": texts, "label": labels, "line": lines})


def read_file(
    path: Path, fmt: str, text_column: str = "text", label_column: str = "label"
) -> pd.DataFrame:
    """Read one local file in any supported format; adds ``source`` (the path) for errors."""
    fmt = infer_format(path, fmt)
    if fmt == "dair":
        frame = read_dair(path)
    else:
        frame = read_table(path, fmt, text_column, label_column)
    frame["source"] = str(path)
    return frame


def find_split_files(directory: Path, fmt: str) -> dict[str, Path]:
    """Locate train/validation/test files in a directory by their usual names."""
    if not directory.is_dir():
        raise DataError(
            f"Data directory not found: {directory} (resolved to {directory.resolve()})."
        )
    suffixes = [s for s, f in TABLE_FORMATS.items() if fmt in ("auto", f)]
    found: dict[str, Path] = {}
    for split, stems in SPLIT_ALIASES.items():
        for stem in stems:
            matches = [directory / f"{stem}{suffix}" for suffix in suffixes]
            existing = [m for m in matches if m.is_file()]
            if existing:
                found[split] = existing[0]
                break
    missing = [s for s in SPLIT_NAMES if s not in found]
    if missing:
        raise DataError(
            f"{directory} has no file for split(s) {missing}; expected files named like "
            f"train{suffixes[0]}, validation{suffixes[0]} (or dev), test{suffixes[0]}."
        )
    return found


def read_hub(
    dataset_id: str,
    config_name: str | None,
    revision: str | None,
    text_column: str,
    label_column: str,
) -> tuple[dict[str, pd.DataFrame], list[str] | None]:
    """Read a Hugging Face dataset (Hub id, local dataset directory or ``save_to_disk`` folder).

    Returns the splits and, when the label column is a ClassLabel, its published label order.
    Integer labels are turned into their names, so the label space reads as for local files.
    """
    import datasets

    local = Path(dataset_id)
    try:
        if (local / "dataset_dict.json").is_file():
            loaded = datasets.load_from_disk(str(local))
        else:
            loaded = datasets.load_dataset(dataset_id, config_name, revision=revision)
    except (FileNotFoundError, ConnectionError, ValueError, OSError) as error:
        raise DataError(
            f"Could not load dataset {dataset_id!r} (config {config_name!r}): {error}. Loading "
            "from the Hub needs network access; set HF_HUB_OFFLINE=0 and check the id, or point "
            "`data.hub_id` at a local dataset directory."
        ) from None
    if not isinstance(loaded, datasets.DatasetDict):
        raise DataError(f"Dataset {dataset_id!r} has no named splits.")
    aliases = {alias: split for split, names in SPLIT_ALIASES.items() for alias in names}
    frames: dict[str, pd.DataFrame] = {}
    label_order: list[str] | None = None
    for name, split in loaded.items():
        if name not in aliases:
            continue
        missing = [c for c in (text_column, label_column) if c not in split.column_names]
        if missing:
            raise DataError(
                f"Dataset {dataset_id!r} split {name!r} lacks column(s) {missing}; columns: "
                f"{split.column_names}. Set `data.text_column` / `data.label_column`."
            )
        feature = split.features[label_column]
        labels = split[label_column]
        names = getattr(feature, "names", None) or getattr(
            getattr(feature, "feature", None), "names", None
        )
        if names:
            labels = [[names[i] for i in v] if isinstance(v, list) else names[v] for v in labels]
        where = f"{dataset_id}[{name}]"
        frames[aliases[name]] = pd.DataFrame(
            {
                "text": split[text_column],
                "label": [_normalise_label(v, f"{where} row {i}") for i, v in enumerate(labels)],
                "line": range(1, len(split) + 1),
                "source": where,
            }
        )
        label_order = label_order or (list(names) if names else None)
    return frames, label_order
