"""Readers that turn a data source into a DataFrame with ``text`` and ``label`` columns.

``label`` holds a string (single-label) or a list of strings (multi-label). Every reader
checks its input and raises :class:`~emorec.errors.DataError` naming the file and line; the
``line`` and ``source`` columns keep that position for errors raised by later stages. Which
reader a file needs, and where a directory keeps its splits, is decided in
:mod:`emorec.data.formats` (its names are importable from here too).

Text files are opened with :func:`~emorec._io.open_text` (a byte-order mark is dropped). Blank
lines carry no example and are skipped; the ones before a file's last row are listed in the
frame's ``attrs["blank_lines"]``, so the prepare report can name them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from emorec._io import open_text
from emorec.data.formats import GOEMOTIONS_NAMES_FILE, SPLIT_ALIASES, infer_format
from emorec.data.formats import SPLIT_NAMES as SPLIT_NAMES
from emorec.data.formats import TABLE_FORMATS as TABLE_FORMATS
from emorec.data.formats import find_split_files as find_split_files
from emorec.data.formats import infer_directory_format as infer_directory_format
from emorec.errors import DataError
from emorec.text.validation import lone_surrogate

# DataFrame.attrs key: line numbers of the blank lines skipped inside a file (see module doc).
BLANK_LINES = "blank_lines"


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise DataError(
            f"Data file not found: {path} (resolved to {path.resolve()}). Relative paths start "
            "from the current directory."
        )


def _not_utf8(path: Path, error: UnicodeDecodeError) -> DataError:
    return DataError(f"{path} is not valid UTF-8 ({error.reason} at byte {error.start}).")


def _data_lines(path: Path, blank_lines: list[int]) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for the non-blank lines of a UTF-8 text file.

    Appends the numbers of skipped blank lines to ``blank_lines``, except those after the last
    data line: trailing empty lines end a file, they do not hide a row.
    """
    _check_exists(path)
    pending: list[int] = []
    with open_text(path) as handle:
        try:
            for line_no, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    pending.append(line_no)
                    continue
                blank_lines.extend(pending)
                pending.clear()
                yield line_no, line
        except UnicodeDecodeError as error:
            raise _not_utf8(path, error) from None


def read_dair(path: Path) -> pd.DataFrame:
    """Read ``text;label`` lines (dair-ai/emotion); the label follows the last ``;``."""
    texts: list[str] = []
    labels: list[str] = []
    line_numbers: list[int] = []
    blank_lines: list[int] = []
    for line_no, line in _data_lines(path, blank_lines):
        text, sep, label = line.rpartition(";")
        if not sep or not label.strip():
            raise DataError(
                f"{path}:{line_no}: expected `text;label` (label after the last `;`), "
                f"got {line[:80]!r}."
            )
        texts.append(text)
        labels.append(label.strip())
        line_numbers.append(line_no)
    frame = pd.DataFrame({"text": texts, "label": labels, "line": line_numbers})
    frame.attrs[BLANK_LINES] = blank_lines
    return frame


def read_label_names(path: Path) -> list[str]:
    """Label names, one a line (GoEmotions' ``emotions.txt``); line i names label id i."""
    if not path.is_file():
        raise DataError(
            f"Label names file not found: {path} (resolved to {path.resolve()}). GoEmotions "
            f"label ids index into a names file, one name a line; put {GOEMOTIONS_NAMES_FILE} "
            "beside the data or set `data.label_names_file`."
        )
    try:
        with open_text(path) as handle:
            lines = handle.read().splitlines()
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from None
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
    blank_lines: list[int] = []
    for line_no, line in _data_lines(path, blank_lines):
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
    frame = pd.DataFrame({"text": texts, "label": labels, "line": line_numbers})
    frame.attrs[BLANK_LINES] = blank_lines
    return frame


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


def _read_delimited(
    path: Path, delimiter: str, blank_lines: list[int]
) -> tuple[pd.DataFrame, list[int]]:
    """A CSV/TSV file as string cells, and the line each row starts on.

    Read with the ``csv`` module rather than pandas, so that the line numbers in errors stay
    right after blank lines and quoted multi-line fields, and a blank line is told apart from a
    row of empty fields.
    """
    name = "tab" if delimiter == "\t" else repr(delimiter)
    header: list[str] | None = None
    records: list[list[str]] = []
    lines: list[int] = []
    pending: list[int] = []
    with open_text(path, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        end = 0
        try:
            for record in reader:
                start, end = end + 1, reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    pending.append(start)
                    continue
                blank_lines.extend(pending)
                pending.clear()
                if header is None:
                    header = record
                    continue
                if len(record) != len(header):
                    raise DataError(
                        f"{path}:{start}: {len(record)} fields where the header has "
                        f"{len(header)}; quote a field that contains the separator ({name})."
                    )
                records.append(record)
                lines.append(start)
        except csv.Error as error:
            raise DataError(f"{path}:{end + 1}: not valid CSV ({error}).") from None
        except UnicodeDecodeError as error:
            raise _not_utf8(path, error) from None
    if header is None:
        raise DataError(f"{path} is empty; expected a header line naming the columns.")
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise DataError(f"{path}: the header names column(s) {repeated} more than once.")
    return pd.DataFrame(records, columns=header, dtype=object), lines


def _read_jsonl(path: Path, blank_lines: list[int]) -> tuple[pd.DataFrame, list[int]]:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for line_no, line in _data_lines(path, blank_lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{line_no}: not valid JSON ({error.msg}).") from None
        if not isinstance(row, dict):
            raise DataError(
                f"{path}:{line_no}: expected a JSON object (one row a line), got "
                f"{type(row).__name__}."
            )
        for key, value in row.items():
            # A JSON escape (\ud800) is the one way a UTF-8 file can carry a lone surrogate.
            at = lone_surrogate(value) if isinstance(value, str) else None
            if at is not None:
                raise DataError(
                    f"{path}:{line_no}: field {key!r} contains a lone surrogate "
                    f"(U+{ord(value[at]):04X} at character {at}), half of a UTF-16 pair that is "
                    "not a Unicode character; fix the text's encoding or drop the row."
                )
        rows.append(row)
        lines.append(line_no)
    return pd.DataFrame(rows), lines


def _read_table(path: Path, fmt: str, blank_lines: list[int]) -> tuple[pd.DataFrame, list[int]]:
    """The file's rows and, for each, the line it starts on (row number for Parquet)."""
    if fmt == "csv":
        return _read_delimited(path, ",", blank_lines)
    if fmt == "tsv":
        return _read_delimited(path, "\t", blank_lines)
    if fmt == "jsonl":
        return _read_jsonl(path, blank_lines)
    if fmt == "parquet":
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise DataError(f"Cannot read {path} as parquet: {error}") from None
        return frame, list(range(1, len(frame) + 1))
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
    blank_lines: list[int] = []
    frame, lines = _read_table(path, fmt, blank_lines)
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {missing} not found; columns present: {list(frame.columns)}. "
            "Set `data.text_column` / `data.label_column`."
        )
    labels = [
        _normalise_label(value, f"{path}:{line}", label_delimiter, allow_empty_labels)
        for value, line in zip(frame[label_column], lines, strict=True)
    ]
    texts = frame[text_column].tolist()
    for text, line in zip(texts, lines, strict=True):
        if not isinstance(text, str):
            raise DataError(f"{path}:{line}: text must be a string, got {text!r}.")
    table = pd.DataFrame({"text": texts, "label": labels, "line": lines})
    table.attrs[BLANK_LINES] = blank_lines
    return table


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
