"""Readers that turn a data source into a DataFrame with ``text`` and ``label`` columns.

``label`` holds a string (single-label) or a list of strings (multi-label). Every reader
checks its input and raises :class:`~emorec.errors.DataError` naming the file and line; the
``line`` and ``source`` columns keep that position for errors raised by later stages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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


# GoEmotions directories: `text<TAB>ids<TAB>id` files plus the names the ids index into.
GOEMOTIONS_NAMES_FILE = "emotions.txt"


def infer_format(path: Path, declared: str = "auto") -> str:
    """The reader for one file: the declared format, or the one its extension implies."""
    if declared != "auto":
        return declared
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise DataError(
            f"Cannot tell the format of {path} from its extension {suffix!r}; set `data.format` "
            f"to one of dair, goemotions, csv, tsv, jsonl, parquet."
        )
    return TABLE_FORMATS[suffix]


def infer_directory_format(directory: Path, declared: str = "auto") -> str:
    """``goemotions`` for an ``auto`` directory holding ``emotions.txt`` and ``train.tsv``.

    Without this, ``auto`` would read GoEmotions' header-less ``.tsv`` files as a table whose
    first row is a header.
    """
    if declared == "auto" and all(
        (directory / name).is_file() for name in (GOEMOTIONS_NAMES_FILE, "train.tsv")
    ):
        return "goemotions"
    return declared


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise DataError(
            f"Data file not found: {path} (resolved to {path.resolve()}). Relative paths start "
            "from the current directory."
        )


def _data_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for the non-blank lines of a UTF-8 text file."""
    _check_exists(path)
    with path.open(encoding="utf-8", errors="strict") as handle:
        try:
            for line_no, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if line.strip():  # blank separator lines carry no example
                    yield line_no, line
        except UnicodeDecodeError as error:
            raise DataError(
                f"{path} is not valid UTF-8 ({error.reason} at byte {error.start})."
            ) from None


def read_dair(path: Path) -> pd.DataFrame:
    """Read ``text;label`` lines (dair-ai/emotion); the label follows the last ``;``."""
    texts: list[str] = []
    labels: list[str] = []
    line_numbers: list[int] = []
    for line_no, line in _data_lines(path):
        text, sep, label = line.rpartition(";")
        if not sep or not label.strip():
            raise DataError(
                f"{path}:{line_no}: expected `text;label` (label after the last `;`), "
                f"got {line[:80]!r}."
            )
        texts.append(text)
        labels.append(label.strip())
        line_numbers.append(line_no)
    return pd.DataFrame({"text": texts, "label": labels, "line": line_numbers})


def read_label_names(path: Path) -> list[str]:
    """Label names, one a line (GoEmotions' ``emotions.txt``); line i names label id i."""
    if not path.is_file():
        raise DataError(
            f"Label names file not found: {path} (resolved to {path.resolve()}). GoEmotions "
            f"label ids index into a names file, one name a line; put {GOEMOTIONS_NAMES_FILE} "
            "beside the data or set `data.label_names_file`."
        )
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not valid UTF-8 ({error.reason}).") from None
    # Trailing blank lines are common; a blank line in the middle would shift every id after it.
    while lines and not lines[-1].strip():
        lines.pop()
    names = [line.strip() for line in lines]
    blank = [i + 1 for i, name in enumerate(names) if not name]
    if blank:
        raise DataError(f"{path}:{blank[0]}: blank label name; line i must name label id i - 1.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{path}: label names must be unique; repeated: {repeated}.")
    if len(names) < 2:
        raise DataError(f"{path}: needs at least 2 label names, got {names}.")
    return names


def read_goemotions(path: Path, names_file: Path, allow_empty_labels: bool = False) -> pd.DataFrame:
    """Read GoEmotions ``text<TAB>label_ids<TAB>comment_id`` lines into multi-label rows.

    ``label_ids`` are comma-separated 0-based indices into ``names_file``. Lines are split on
    tabs, not parsed as CSV: texts keep CSV-style doubled quotes that a quote-aware reader
    would swallow. Every row gets a list of names, even with one id, so the data is
    multi-label like the corpus.
    """
    _check_exists(path)
    names = read_label_names(names_file)
    texts: list[str] = []
    labels: list[list[str]] = []
    line_numbers: list[int] = []
    for line_no, line in _data_lines(path):
        fields = line.split("\t")
        if len(fields) not in (2, 3):
            raise DataError(
                f"{path}:{line_no}: expected `text<TAB>label_ids<TAB>id` (2 or 3 "
                f"tab-separated fields), got {len(fields)} fields: {line[:80]!r}."
            )
        texts.append(fields[0])
        labels.append(_goemotions_ids(fields[1], names, f"{path}:{line_no}", names_file))
        line_numbers.append(line_no)
        if not labels[-1] and not allow_empty_labels:
            raise DataError(
                f"{path}:{line_no}: empty label list; every row needs at least one "
                "label id. Set `data.allow_empty_labels: true` if a row without labels "
                "is a valid 'none of these' example."
            )
    return pd.DataFrame({"text": texts, "label": labels, "line": line_numbers})


def _goemotions_ids(field: str, names: list[str], where: str, names_file: Path) -> list[str]:
    """``"3,27"`` -> ``["annoyance", "neutral"]``; repeated ids count once."""
    row: list[str] = []
    for raw in field.split(","):
        raw = raw.strip()
        if not raw:
            continue  # an empty field (no labels) or a trailing comma
        try:
            index = int(raw)
        except ValueError:
            raise DataError(
                f"{where}: label id {raw!r} is not an integer; expected comma-separated ids "
                f"such as `3,27` in the second tab field."
            ) from None
        if not 0 <= index < len(names):
            raise DataError(
                f"{where}: label id {index} is out of range; {names_file} lists "
                f"{len(names)} names, so ids run from 0 to {len(names) - 1}."
            )
        if names[index] not in row:
            row.append(names[index])
    return row


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


def _normalise_label(
    value: Any,
    where: str,
    delimiter: str | None = None,
    allow_empty: bool = False,
) -> str | list[str]:
    """One label cell as a name (single-label) or a list of distinct names (multi-label).

    Lists (JSON arrays, Parquet list columns) are multi-label; so are strings when
    ``delimiter`` is set. An empty list is an error unless ``allow_empty``.
    """
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()  # numpy arrays from parquet list columns
    missing = value is None or (isinstance(value, float) and pd.isna(value))
    if delimiter is not None and not isinstance(value, list | tuple):
        # Blank pieces ("joy|" or an empty cell) carry no label; the emptiness check below
        # decides whether a row with none is allowed.
        value = [] if missing else [p for p in str(value).split(delimiter) if p.strip()]
    if isinstance(value, list | tuple):
        names = [str(v).strip() for v in value]
        if any(not name for name in names):
            raise DataError(f"{where}: label list {list(value)!r} holds an empty name.")
        if not names and not allow_empty:
            raise DataError(
                f"{where}: empty label list; every row needs at least one label. Set "
                "`data.allow_empty_labels: true` if a row without labels is a valid 'none of "
                "these' example (multi-label)."
            )
        return list(dict.fromkeys(names))  # a label repeated in one row counts once
    if missing or not str(value).strip():
        hint = (
            " `data.allow_empty_labels` applies to multi-label data only (list-valued labels, "
            "or `data.label_delimiter` set)."
            if allow_empty
            else " Every row needs a label."
        )
        raise DataError(f"{where}: empty label.{hint}")
    return str(value).strip()


def read_table(
    path: Path,
    fmt: str,
    text_column: str,
    label_column: str,
    label_delimiter: str | None = None,
    allow_empty_labels: bool = False,
) -> pd.DataFrame:
    """Read CSV/TSV/JSONL/Parquet with configurable text and label columns.

    List-valued label cells, or string cells split on ``label_delimiter``, make the data
    multi-label.
    """
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
        _normalise_label(value, f"{path}:{line}", label_delimiter, allow_empty_labels)
        for value, line in zip(frame[label_column], lines, strict=True)
    ]
    texts = frame[text_column].tolist()
    for text, line in zip(texts, lines, strict=True):
        if not isinstance(text, str):
            raise DataError(f"{path}:{line}: text must be a string, got {text!r}.")
    return pd.DataFrame({"text": texts, "label": labels, "line": lines})


def read_file(
    path: Path,
    fmt: str,
    text_column: str = "text",
    label_column: str = "label",
    *,
    label_delimiter: str | None = None,
    allow_empty_labels: bool = False,
    label_names_file: Path | None = None,
) -> pd.DataFrame:
    """Read one local file in any supported format; adds ``source`` (the path) for errors.

    ``label_names_file`` (goemotions only) defaults to ``emotions.txt`` beside ``path``.
    """
    fmt = infer_format(path, fmt)
    if fmt == "dair":
        frame = read_dair(path)
    elif fmt == "goemotions":
        names_file = label_names_file or path.parent / GOEMOTIONS_NAMES_FILE
        frame = read_goemotions(path, names_file, allow_empty_labels)
    else:
        frame = read_table(
            path, fmt, text_column, label_column, label_delimiter, allow_empty_labels
        )
    frame["source"] = str(path)
    return frame


def find_split_files(directory: Path, fmt: str) -> dict[str, Path]:
    """Locate train/validation/test files in a directory by their usual names."""
    if not directory.is_dir():
        raise DataError(
            f"Data directory not found: {directory} (resolved to {directory.resolve()})."
        )
    if fmt == "goemotions":
        suffixes = [".tsv"]
    else:
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
    label_delimiter: str | None = None,
    allow_empty_labels: bool = False,
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
                "label": [
                    _normalise_label(v, f"{where} row {i}", label_delimiter, allow_empty_labels)
                    for i, v in enumerate(labels)
                ],
                "line": range(1, len(split) + 1),
                "source": where,
            }
        )
        label_order = label_order or (list(names) if names else None)
    return frames, label_order
