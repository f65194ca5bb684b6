"""The prepare stage: read → map labels → clean → split → label space → de-leak → augment →
tokenize.

The result is cached on disk, keyed by the data bytes and every setting that changes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import emorec
from emorec._io import atomic_write_json, file_sha256
from emorec.config import Config
from emorec.data.mapping import apply_label_mapping
from emorec.data.readers import (
    BLANK_LINES,
    GOEMOTIONS_NAMES_FILE,
    find_split_files,
    infer_directory_format,
    read_file,
    read_hub,
    read_label_names,
)
from emorec.data.split import (
    drop_duplicates_within,
    label_distribution,
    remove_leakage,
    split_single_source,
    stratified_subsample,
)
from emorec.errors import DataError
from emorec.labels import LabelSpace
from emorec.text import TextCleaner

SPLITS = ("train", "validation", "test")
logger = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """Cleaned, split and tokenized data plus the label space built from it.

    ``splits`` is a ``datasets.DatasetDict`` with columns ``text``, ``clean_text``, ``labels``
    (int or multi-hot), ``augmented`` (True for rows added by ``data.augmentation``),
    ``input_ids``, ``attention_mask`` and ``length``.
    """

    splits: Any
    label_space: LabelSpace
    report: dict[str, Any]
    cache_path: Path


@dataclass
class LabelledData:
    """Raw splits after reading and label mapping, before cleaning and splitting.

    ``frames`` holds ``train``/``validation``/``test``, or ``all`` for a single-file source
    (``single_source``). ``label_order`` is the order the label space takes when
    ``model.labels`` is not set: the mapping's order, else the source's published one.
    """

    frames: dict[str, pd.DataFrame]
    label_order: list[str] | None
    single_source: bool
    label_mapping: dict[str, Any] | None
    # Blank lines skipped inside each file, by file: {path: [line numbers]}.
    blank_lines: dict[str, list[int]] = field(default_factory=dict)


def _data_format(config: Config) -> str:
    """``data.format``, with ``auto`` on a GoEmotions-style directory read as goemotions."""
    data = config.data
    if data.path is not None and Path(data.path).is_dir():
        return infer_directory_format(Path(data.path), data.format)
    return data.format


def _label_names_file(config: Config) -> Path | None:
    """GoEmotions' names file: `data.label_names_file`, else emotions.txt beside the data."""
    data = config.data
    if _data_format(config) != "goemotions":
        return None
    if data.label_names_file is not None:
        return Path(data.label_names_file)
    if data.path is not None:
        path = Path(data.path)
        return (path if path.is_dir() else path.parent) / GOEMOTIONS_NAMES_FILE
    return Path(data.train_file).parent / GOEMOTIONS_NAMES_FILE  # type: ignore[arg-type]


def _source_files(config: Config) -> dict[str, Path] | Path | None:
    data = config.data
    if data.format == "hub":
        return None
    if data.path is None:
        return {
            "train": Path(data.train_file),
            "validation": Path(data.validation_file),  # type: ignore[arg-type]
            "test": Path(data.test_file),
        }  # type: ignore[arg-type]
    path = Path(data.path)
    if path.is_dir():
        return find_split_files(path, _data_format(config))
    if not path.exists():
        raise DataError(
            f"Data path not found: {path} (resolved to {path.resolve()}). Relative "
            "paths start from the current directory."
        )
    return path


def cache_key(config: Config, tokenizer: Any) -> str:
    """Hash of the data files' bytes and every setting that changes the prepared data."""
    sources = _source_files(config)
    files = list(sources.values()) if isinstance(sources, dict) else [sources] if sources else []
    # Files that change labels without being data: the goemotions names and a groups file.
    names_file = _label_names_file(config)
    groups_file = config.data.label_mapping.groups_file
    files += [Path(f) for f in (names_file, groups_file) if f is not None and Path(f).is_file()]
    hub_dir = Path(config.data.hub_id or "")
    if config.data.format == "hub" and hub_dir.is_dir():  # a local dataset: its bytes matter
        files = sorted(p for p in hub_dir.rglob("*") if p.is_file())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    payload = {
        "emorec": emorec.__version__,
        # Bumped when the prepare report gains facts (2: `rows`; 3: `warnings`, blank lines and
        # labels missing from a split), so older caches are rebuilt.
        "report_layout": 3,
        "files": {str(f): file_sha256(f) for f in files},
        "data": config.data.model_dump(mode="json", exclude={"cache_dir"}),
        "labels": config.model.labels,
        "max_length": config.model.max_length,
        "tokenizer": backend.to_str() if backend is not None else tokenizer.name_or_path,
    }
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def _read_splits(config: Config) -> tuple[dict[str, pd.DataFrame], list[str] | None, bool]:
    """Raw splits, the source's label order if it publishes one, and whether we split it.

    A published order is a Hub ClassLabel's names or a goemotions names file.
    """
    data = config.data
    if data.format == "hub":
        frames, order = read_hub(
            data.hub_id,  # type: ignore[arg-type]
            data.hub_config,
            data.hub_revision,
            data.text_column,
            data.label_column,
            label_delimiter=data.label_delimiter,
            allow_empty_labels=data.allow_empty_labels,
        )
        if "train" not in frames:
            raise DataError(f"Dataset {data.hub_id!r} has no train split; found {list(frames)}.")
        if set(frames) == {"train"}:
            return {"all": frames["train"]}, order, True
        missing = [s for s in SPLITS if s not in frames]
        if missing:
            raise DataError(f"Dataset {data.hub_id!r} lacks split(s) {missing}.")
        return frames, order, False
    fmt = _data_format(config)
    names_file = _label_names_file(config)
    order = read_label_names(names_file) if names_file is not None else None

    def read(path: Path) -> pd.DataFrame:
        return read_file(
            path,
            fmt,
            data.text_column,
            data.label_column,
            label_delimiter=data.label_delimiter,
            allow_empty_labels=data.allow_empty_labels,
            label_names_file=names_file,
        )

    sources = _source_files(config)
    if isinstance(sources, Path):
        return {"all": read(sources)}, order, True
    return {split: read(path) for split, path in (sources or {}).items()}, order, False


def read_labelled(config: Config) -> LabelledData:
    """Read the source of ``config`` and apply ``data.label_mapping`` to every split.

    Cheap (no cleaning, no tokenizer): the part of :func:`prepare` that decides which rows
    and labels there are.
    """
    frames, source_order, single_source = _read_splits(config)
    # Collected before the mapping, which builds new frames without the readers' attrs. A
    # file's blank lines are only listed when a row follows them, so such a frame has a row.
    blank_lines = {
        str(frame["source"].iloc[0]): list(frame.attrs[BLANK_LINES])
        for frame in frames.values()
        if frame.attrs.get(BLANK_LINES)
    }
    frames, order, mapping_report = apply_label_mapping(
        frames, config.data.label_mapping, source_order, config.data.allow_empty_labels
    )
    return LabelledData(frames, order, single_source, mapping_report, blank_lines)


def _check_texts(frame: pd.DataFrame) -> None:
    blank = frame["text"].map(lambda t: not isinstance(t, str) or not t.strip())
    if blank.any():
        row = frame[blank].iloc[0]
        raise DataError(
            f"{row['source']}:{row['line']}: empty or whitespace-only text ({int(blank.sum())} "
            "such rows in this file). Remove them or fill in the text; emorec does not drop rows "
            "silently."
        )


def _check_labels(frame: pd.DataFrame, space: LabelSpace) -> None:
    valid = set(space.names)
    for label, source, line in zip(frame["label"], frame["source"], frame["line"], strict=True):
        names = [label] if isinstance(label, str) else label
        unknown = [n for n in names if n not in valid]
        if unknown:
            raise DataError(
                f"{source}:{line}: unknown label {unknown[0]!r}; the label space (from the "
                f"training data and `model.labels`) is {list(space.names)}. Add it to "
                "`model.labels` (`null` infers the labels from the training data, so such a "
                "label also needs training rows), or fix the row."
            )


def prepare(config: Config, tokenizer: Any = None, use_cache: bool = True) -> PreparedData:
    """Prepare the data of ``config``; a second call with the same inputs loads the cache."""
    import datasets

    from emorec.modeling import load_tokenizer

    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config.model.name)
    cache_path = Path(config.data.cache_dir) / cache_key(config, tokenizer)
    if use_cache and (cache_path / "prepare_report.json").is_file():
        report = json.loads((cache_path / "prepare_report.json").read_text())
        _log_warnings(report)  # a cached run has the same problems as the run that made it
        return PreparedData(
            datasets.load_from_disk(str(cache_path / "splits")),
            LabelSpace.from_dict(report["label_space"]),
            report | {"cached": True},
            cache_path,
        )

    labelled = read_labelled(config)
    frames, single_source = labelled.frames, labelled.single_source
    # Rows as the source holds them, before label mapping drops any: the model card's "of N",
    # and how it tells a whole published split from a part of one.
    mapped = labelled.label_mapping
    rows_read = dict(mapped["rows_before"]) if mapped else {s: len(f) for s, f in frames.items()}
    for frame in frames.values():
        _check_texts(frame)
    cleaner = TextCleaner(config.data.cleaning)
    for frame in frames.values():
        frame["clean_text"] = cleaner.clean_batch(frame["text"].tolist())

    report: dict[str, Any] = {
        "single_source": single_source,
        "label_mapping": labelled.label_mapping,
    }
    if single_source:
        whole, n_duplicates = drop_duplicates_within(frames["all"])
        report["duplicates_removed_before_split"] = n_duplicates
        split = config.data.split
        frames = split_single_source(whole, split.validation_size, split.test_size, split.seed)

    space = LabelSpace.from_labels(
        frames["train"]["label"], config.model.labels or labelled.label_order
    )
    for split_name in ("validation", "test"):
        _check_labels(frames[split_name], space)
    report["leakage"] = remove_leakage(frames, config.data.leakage)

    rows_available = {s: len(frames[s]) for s in SPLITS}
    seed = config.data.split.seed
    if config.data.max_train_samples:
        frames["train"] = stratified_subsample(frames["train"], config.data.max_train_samples, seed)
    if config.data.max_eval_samples:
        for split_name in ("validation", "test"):
            frames[split_name] = stratified_subsample(
                frames[split_name], config.data.max_eval_samples, seed
            )

    rows_used = {s: len(frames[s]) for s in SPLITS}

    if config.data.augmentation.enabled:
        from emorec.data.augment import augment_frame

        # Training rows only, after de-leaking and subsampling: copies of evaluation texts
        # (or of training texts that happen to equal one) never reach training.
        evaluation_texts = set(frames["validation"]["clean_text"]) | set(
            frames["test"]["clean_text"]
        )
        frames["train"], report["augmentation"] = augment_frame(
            frames["train"], config.data.augmentation, banned=evaluation_texts
        )

    max_length = config.model.max_length

    def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
        encoded = tokenizer(batch["clean_text"], truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    splits = datasets.DatasetDict()
    for split_name in SPLITS:
        frame = frames[split_name]
        targets = space.encode(frame["label"].tolist())
        table = datasets.Dataset.from_dict(
            {
                "text": frame["text"].tolist(),
                "clean_text": frame["clean_text"].tolist(),
                "labels": targets.tolist(),
                # True for rows made by data.augmentation (training split only).
                "augmented": (
                    frame["augmented"].tolist() if "augmented" in frame else [False] * len(frame)
                ),
            }
        )
        splits[split_name] = table.map(tokenize, batched=True, desc=f"Tokenizing {split_name}")

    report["rows"] = rows_record(
        config, report.get("duplicates_removed_before_split"), rows_read, rows_available, rows_used
    )
    if "augmented" in frames["train"]:
        report["rows"]["augmented_train"] = int(frames["train"]["augmented"].sum())
    report.update(
        {
            "label_space": space.to_dict(),
            "sizes": {s: len(frames[s]) for s in SPLITS},
            "label_distribution": {s: label_distribution(frames[s]) for s in SPLITS},
            "cleaning": config.data.cleaning.model_dump(),
            "cache_key": cache_path.name,
        }
    )
    report["blank_lines_skipped"] = labelled.blank_lines
    report["labels_missing_from_splits"] = labels_missing_from_splits(
        space.names, report["label_distribution"]
    )
    report["warnings"] = _data_warnings(config, report)
    _log_warnings(report)
    _write_cache(splits, report, cache_path)
    return PreparedData(splits, space, report | {"cached": False}, cache_path)


def labels_missing_from_splits(
    names: Any, distribution: dict[str, dict[str, int]]
) -> dict[str, list[str]]:
    """``{label: [splits without a row of it]}`` for each label some split lacks."""
    missing = {name: [s for s in SPLITS if not distribution[s].get(name)] for name in names}
    return {name: splits for name, splits in missing.items() if splits}


def _data_warnings(config: Config, report: dict[str, Any]) -> list[str]:
    """Plain sentences on what in the data deserves a look, for the report and the CLI."""
    warnings: list[str] = []
    for source, lines in report["blank_lines_skipped"].items():
        shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
        warnings.append(
            f"{source}: skipped {len(lines)} blank line(s) (line {shown}); a blank line holds "
            "no example. Delete them to silence this warning."
        )
    data = config.data
    counts = report["label_distribution"]
    sizes = {"validation": data.split.validation_size, "test": data.split.test_size}
    for name, splits in report["labels_missing_from_splits"].items():
        held = ", ".join(
            f"{counts[s][name]} row{'s' * (counts[s][name] != 1)} in {s}"
            for s in SPLITS
            if counts[s].get(name)
        )
        text = f"label {name!r} has {held or 'no rows'} but none in {' or '.join(splits)}: "
        if "train" in splits:
            text += "the model gets no example to learn it from. Add training rows of it."
        else:
            text += "no metric there measures it (macro-F1 counts its F1 as 0)"
            text += " and calibration has no example of it. " if "validation" in splits else ". "
            if data.max_eval_samples:
                text += (
                    f"data.max_eval_samples={data.max_eval_samples} subsamples validation and "
                    "test; unset it, or add examples."
                )
            elif report["single_source"]:
                needed = max(math.ceil(1 / sizes[s]) for s in splits)
                text += (
                    f"The split is stratified, so a label needs about {needed} rows for one to "
                    "land in each split; add examples, or raise data.split.validation_size / "
                    "data.split.test_size."
                )
            else:
                text += f"Add rows of it to the {' and '.join(splits)} file(s)."
        warnings.append(text)
    return warnings


def _log_warnings(report: dict[str, Any]) -> None:
    for warning in report.get("warnings", []):
        logger.warning("warning: %s", warning)


def rows_record(
    config: Config,
    duplicates_removed: int | None,
    read: dict[str, int],
    available: dict[str, int],
    used: dict[str, int],
) -> dict[str, Any]:
    """What data a run actually used, per split: the facts a model card states.

    ``read``: rows in the source (``{"all": n}`` for one file that emorec split), before label
    mapping; ``available``: rows per split after mapping, splitting and leakage removal;
    ``used``: after ``data.max_*_samples`` subsampling (augmented copies not counted);
    ``subsample``: the size asked for per split (None: no subsampling asked). ``split_by`` is
    ``source`` (the source's own splits) or ``emorec`` (one file, its exact duplicates removed
    (``duplicates_removed``, None for a split source), then split as ``self_split`` says).
    """
    data = config.data
    single_source = duplicates_removed is not None
    record: dict[str, Any] = {
        "split_by": "emorec" if single_source else "source",
        "read": read,
        "available": available,
        "used": used,
        "subsample": {
            "train": data.max_train_samples,
            "validation": data.max_eval_samples,
            "test": data.max_eval_samples,
        },
    }
    if single_source:
        record["self_split"] = {
            "validation_size": data.split.validation_size,
            "test_size": data.split.test_size,
            "seed": data.split.seed,
            "duplicates_removed": duplicates_removed,
        }
    return record


def _write_cache(splits: Any, report: dict[str, Any], cache_path: Path) -> None:
    """Write into a temp dir and rename, so an interrupted run never leaves a half cache."""
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_path.parent, prefix=f".{cache_path.name}-"))
    try:
        splits.save_to_disk(str(staging / "splits"))
        atomic_write_json(staging / "prepare_report.json", report)
        if cache_path.exists():
            shutil.rmtree(cache_path)
        staging.rename(cache_path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
