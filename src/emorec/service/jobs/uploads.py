"""Uploaded input files: their format, storing them, checking them before a job is queued, and
reading their rows back by range for the workers."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from emorec._io import atomic_path
from emorec.errors import DataError
from emorec.inference.files import iter_rows

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".txt": "txt"}
_COPY_BLOCK = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"


class JobInputError(DataError):
    """An upload the service cannot take: ``status_code`` 413 (too big), 422 (malformed) or
    503 (the queue is unreachable)."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


def input_format(filename: str) -> str:
    """``csv``, ``jsonl`` or ``txt`` from the file name; JobInputError for anything else."""
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise JobInputError(
            f"Unsupported file type {suffix or '(none)'!r} for {filename!r}: upload a .csv (with "
            "a header row), .jsonl (one JSON object per line) or .txt (one text per line) file."
        )
    return FORMATS[suffix]


def store_upload(source: BinaryIO, target: Path, max_bytes: int) -> int:
    """Copy ``source`` to ``target`` atomically in blocks, at most ``max_bytes``; returns bytes.

    A leading UTF-8 byte-order mark (spreadsheet exports) is dropped, so it cannot glue itself
    to the first column name.
    """
    size = 0
    with atomic_path(target) as temp, temp.open("wb") as out:
        first = True
        for block in iter(lambda: source.read(_COPY_BLOCK), b""):
            size += len(block)
            if size > max_bytes:
                raise JobInputError(
                    f"The file is larger than the upload limit of {max_bytes:,} bytes; split it "
                    "into smaller files.",
                    status_code=413,
                )
            if first and block.startswith(_UTF8_BOM):
                block = block[len(_UTF8_BOM) :]
            first = False
            out.write(block)
    return size


def _check_utf8(path: Path, name: str) -> None:
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise JobInputError(
                    f"{name}: line {line_no} is not valid UTF-8 (byte 0x{line[error.start]:02x} "
                    f"at column {error.start + 1}); save the file as UTF-8 and upload it again."
                ) from None


def _check_text(text: Any, name: str, line_no: int, column: str, max_chars: int) -> None:
    if not isinstance(text, str):
        raise JobInputError(f"{name}: line {line_no} has no text in column {column!r}.")
    if len(text) > max_chars:
        raise JobInputError(
            f"{name}: line {line_no} has a text of {len(text):,} characters; the limit is "
            f"{max_chars:,} per text."
        )


def count_rows(path: Path, fmt: str, text_column: str, max_chars: int, name: str) -> int:
    """Validate an input file the way a worker will read it; returns its number of rows.

    Problems raise :class:`JobInputError` naming the file (``name``), line and column.
    """
    if path.stat().st_size == 0:
        raise JobInputError(f"{name} is empty: there is nothing to classify.")
    _check_utf8(path, name)
    rows = 0
    with path.open(encoding="utf-8", newline="" if fmt == "csv" else None) as handle:
        if fmt == "csv":
            reader = csv.DictReader(handle)
            try:
                header = reader.fieldnames
                if not header or text_column not in header:
                    raise JobInputError(
                        f"{name} has no column {text_column!r}; its header is "
                        f"{', '.join(repr(c) for c in header or [])}. Name the text column with "
                        "the form field text_column."
                    )
                for row in reader:
                    rows += 1
                    if None in row:
                        raise JobInputError(
                            f"{name}: line {reader.line_num} has more fields than the header."
                        )
                    _check_text(row[text_column], name, reader.line_num, text_column, max_chars)
            except csv.Error as error:
                raise JobInputError(
                    f"{name}: line {reader.line_num} is not valid CSV ({error})."
                ) from None
        elif fmt == "jsonl":
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue  # blank lines are skipped by the worker too
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise JobInputError(
                        f"{name}: line {line_no} is not valid JSON ({error.msg})."
                    ) from None
                if not isinstance(row, dict):
                    raise JobInputError(
                        f"{name}: line {line_no} is not a JSON object with a {text_column!r} field."
                    )
                _check_text(row.get(text_column), name, line_no, text_column, max_chars)
                rows += 1
        else:
            for line_no, line in enumerate(handle, start=1):
                _check_text(line.rstrip("\r\n"), name, line_no, text_column, max_chars)
                rows += 1
    if rows == 0:
        raise JobInputError(f"{name} has no rows to classify.")
    return rows


def row_chunks(
    path: Path, column: str, begin: int, stop: int, size: int
) -> Iterator[list[dict[str, Any]]]:
    """Rows ``begin <= i < stop`` of an input file, in lists of at most ``size`` rows."""
    pending: list[dict[str, Any]] = []
    index = 0
    for block in iter_rows(path, column, max(size, 2048)):
        end = index + len(block)
        if end > begin:
            pending.extend(block[max(begin - index, 0) : stop - index])
            while len(pending) >= size:
                yield pending[:size]
                pending = pending[size:]
        index = end
        if index >= stop:
            break
    if pending:
        yield pending
