"""Which reader a data source needs, and where a directory keeps its splits.

The format of a file follows from its extension (:func:`infer_format`) and that of a directory
from the files it holds (:func:`infer_directory_format`); :func:`find_split_files` finds the
train/validation/test files of a directory by the names public corpora give them.
"""

from __future__ import annotations

from pathlib import Path

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
