import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emorec.data import prepare
from emorec.data.readers import read_dair, read_file
from emorec.data.split import remove_leakage, split_single_source
from emorec.errors import DataError

from .conftest import LABELS, make_rows, write_dair


def test_read_dair_splits_on_last_semicolon(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("a;b text;joy\n\nplain text;sadness\n")
    frame = read_dair(path)
    assert frame["text"].tolist() == ["a;b text", "plain text"]
    assert frame["label"].tolist() == ["joy", "sadness"]


def test_read_dair_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("fine;joy\nno separator here\n")
    with pytest.raises(DataError, match=r"bad.txt:2: expected `text;label`"):
        read_dair(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Data file not found"):
        read_file(tmp_path / "absent.txt", "auto")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("caf\xe9;joy\n".encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8"):
        read_dair(path)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_table_formats_with_custom_columns(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"body": ["i am glad", "so angry"], "emotion": ["joy", "anger"]})
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    read = read_file(path, "auto", text_column="body", label_column="emotion")
    assert read["text"].tolist() == ["i am glad", "so angry"]
    assert read["label"].tolist() == ["joy", "anger"]


def test_missing_column_lists_columns(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    pd.DataFrame({"body": ["x"], "emotion": ["joy"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column\(s\) \['text'\] not found.*'body'"):
        read_file(path, "auto", text_column="text", label_column="emotion")


def test_invalid_jsonl_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": "joy"}\n{broken\n')
    with pytest.raises(DataError, match=r"data.jsonl:2: not valid JSON"):
        read_file(path, "auto")


def test_split_is_deterministic_stratified_and_disjoint() -> None:
    rows = make_rows(40)
    frame = pd.DataFrame({"text": [t for t, _ in rows], "label": [lab for _, lab in rows]})
    first = split_single_source(frame, 0.1, 0.1, seed=3)
    second = split_single_source(frame, 0.1, 0.1, seed=3)
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name])
    indices = [set(part.index) for part in first.values()]
    assert sum(len(i) for i in indices) == len(frame)
    assert not (indices[0] & indices[1] or indices[0] & indices[2] or indices[1] & indices[2])
    assert Counter(first["test"]["label"]) == {label: 4 for label in LABELS}
    other = split_single_source(frame, 0.1, 0.1, seed=4)
    assert set(other["test"].index) != set(first["test"].index)


def test_leakage_removed_from_train_by_default() -> None:
    splits = {
        "train": pd.DataFrame({"clean_text": ["a", "b", "c"]}),
        "validation": pd.DataFrame({"clean_text": ["b", "d"]}),
        "test": pd.DataFrame({"clean_text": ["c", "d", "e"]}),
    }
    report = remove_leakage(splits, "drop_from_train")
    assert splits["train"]["clean_text"].tolist() == ["a"]
    assert report["train_test_overlap"] == 1 and report["validation_test_overlap"] == 1
    assert report["removed"] == {"train": 2, "validation": 0, "test": 0}


def test_prepare_end_to_end_and_cache(make_config, tiny_data_dir: Path) -> None:
    # One test text also appears in train: it must leave train, test stays intact.
    test_rows = (tiny_data_dir / "test.txt").read_text().splitlines()
    with (tiny_data_dir / "train.txt").open("a") as handle:
        handle.write(test_rows[0] + "\n")
    config = make_config()
    prepared = prepare(config)
    assert prepared.report["cached"] is False
    assert prepared.report["leakage"]["removed"]["train"] == 1
    assert prepared.report["sizes"] == {"train": 24, "validation": 12, "test": 12}
    train = prepared.splits["train"]
    assert {"text", "clean_text", "labels", "input_ids", "attention_mask", "length"} <= set(
        train.column_names
    )
    assert set(train["clean_text"]).isdisjoint(prepared.splits["test"]["clean_text"])
    assert prepared.label_space.names == tuple(LABELS)
    assert max(train["length"]) <= config.model.max_length

    again = prepare(config)
    assert again.report["cached"] is True
    assert again.cache_path == prepared.cache_path
    assert again.splits["train"]["input_ids"] == train["input_ids"]

    # Changing cleaning changes the key.
    other = prepare(make_config("data.cleaning.normalize_slang=false"))
    assert other.cache_path != prepared.cache_path


def test_single_file_is_split_and_deduplicated(make_config, tmp_path: Path) -> None:
    rows = make_rows(20)
    path = write_dair(tmp_path / "all.txt", [*rows, rows[0], rows[1]])
    prepared = prepare(make_config(f"data.path={path}"))
    assert prepared.report["duplicates_removed_before_split"] == 2
    sizes = prepared.report["sizes"]
    assert sum(sizes.values()) == 80
    assert sizes["test"] == 4 and sizes["validation"] == 4


def test_unknown_label_in_test_names_file_and_line(make_config, tiny_data_dir: Path) -> None:
    with (tiny_data_dir / "test.txt").open("a") as handle:
        handle.write("i feel something odd;boredom\n")
    with pytest.raises(DataError, match=r"test.txt:13: unknown label 'boredom'.*`null` infers"):
        prepare(make_config())


def test_empty_text_is_an_error(make_config, tiny_data_dir: Path) -> None:
    with (tiny_data_dir / "validation.txt").open("a") as handle:
        handle.write("   ;joy\n")
    with pytest.raises(DataError, match=r"validation.txt:13: empty or whitespace-only text"):
        prepare(make_config())


def test_subsampling_is_stratified(make_config) -> None:
    prepared = prepare(make_config("data.max_train_samples=12"))
    labels = np.asarray(prepared.splits["train"]["labels"])
    assert len(labels) == 12
    assert np.bincount(labels).tolist() == [3, 3, 3, 3]


def test_hub_reader_with_saved_dataset(make_config, tmp_path: Path) -> None:
    import datasets

    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=LABELS),
        }
    )

    def split(rows):
        return datasets.Dataset.from_dict(
            {"text": [t for t, _ in rows], "label": [LABELS.index(lab) for _, lab in rows]},
            features=features,
        )

    saved = tmp_path / "hub-copy"
    datasets.DatasetDict(
        {
            "train": split(make_rows(6)),
            "validation": split(make_rows(3, 100)),
            "test": split(make_rows(3, 200)),
        }
    ).save_to_disk(str(saved))
    prepared = prepare(
        make_config(
            "data.format=hub", f"data.hub_id={saved}", "data.path=null", "model.labels=null"
        )
    )
    assert prepared.label_space.names == tuple(LABELS)  # ClassLabel order, not alphabetical
    assert prepared.report["sizes"]["train"] == 24


def test_hub_reader_with_local_dataset_files(make_config, tmp_path: Path) -> None:
    # A dataset repository layout (what load_dataset reads from the Hub), here from disk.
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, rows in (
        ("train", make_rows(6)),
        ("validation", make_rows(3, 100)),
        ("test", make_rows(3, 200)),
    ):
        with (repo / f"{name}.jsonl").open("w") as handle:
            for text, label in rows:
                handle.write(json.dumps({"text": text, "label": label}) + "\n")
    prepared = prepare(make_config("data.format=hub", f"data.hub_id={repo}", "data.path=null"))
    assert prepared.report["sizes"] == {"train": 24, "validation": 12, "test": 12}


# ---- file edge cases: byte-order marks, blank lines, labels a split lacks -------------------
BOM = "\ufeff"


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".tsv", ".jsonl"])
def test_byte_order_mark_is_dropped_in_every_text_format(tmp_path: Path, suffix: str) -> None:
    # Excel and Notepad save "UTF-8" with a BOM; it must not reach a header name or a text.
    body = {
        ".txt": "i am glad;joy\nso angry;anger\n",
        ".csv": "text,label\ni am glad,joy\nso angry,anger\n",
        ".tsv": "text\tlabel\ni am glad\tjoy\nso angry\tanger\n",
        ".jsonl": '{"text": "i am glad", "label": "joy"}\n{"text": "so angry", "label": "anger"}\n',
    }[suffix]
    path = tmp_path / f"data{suffix}"
    path.write_text(BOM + body, encoding="utf-8")
    frame = read_file(path, "auto")
    assert frame["text"].tolist() == ["i am glad", "so angry"]
    assert frame["label"].tolist() == ["joy", "anger"]


def test_blank_lines_are_skipped_and_named(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("a;joy\n\nb;sadness\n   \nc;fear\n\n\n")  # blank lines 2 and 4; 6-7 trail
    frame = read_dair(path)
    assert frame["line"].tolist() == [1, 3, 5]
    assert frame.attrs["blank_lines"] == [2, 4]


def test_csv_line_numbers_survive_blank_lines_and_multiline_fields(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text('text,label\n"two\nlines",joy\n\nfine,sadness\nno label,\n')
    with pytest.raises(DataError, match=r"x.csv:6: empty label"):
        read_file(path, "auto")
    path.write_text('text,label\n"two\nlines",joy\n\nfine,sadness\n')
    frame = read_file(path, "auto")
    assert frame["text"].tolist() == ["two\nlines", "fine"]
    assert frame["line"].tolist() == [2, 5]
    assert frame.attrs["blank_lines"] == [4]
    path.write_text("text,label\ni am, glad,joy\n")
    with pytest.raises(DataError, match=r"x.csv:2: 3 fields where the header has 2; quote"):
        read_file(path, "auto")


def test_jsonl_line_numbers_survive_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "a", "label": "joy"}\n\n{"text": "b", "label": ""}\n')
    with pytest.raises(DataError, match=r"x.jsonl:3: empty label"):
        read_file(path, "auto")
    path.write_text('{"text": "a", "label": "joy"}\n["b", "joy"]\n')
    with pytest.raises(DataError, match=r"x.jsonl:2: expected a JSON object"):
        read_file(path, "auto")


def test_prepare_drops_bom_and_reports_blank_lines(
    make_config, tiny_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train = tiny_data_dir / "train.txt"
    lines = train.read_text(encoding="utf-8").splitlines()
    # A BOM before the first text, and a blank line after the third row.
    train.write_text(BOM + "\n".join([*lines[:3], "", *lines[3:]]) + "\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="emorec"):
        prepared = prepare(make_config())
    assert lines[0].rpartition(";")[0] in prepared.splits["train"]["text"]
    assert not any(t.startswith(BOM) for t in prepared.splits["train"]["text"])
    report = prepared.report
    assert report["blank_lines_skipped"] == {str(train): [4]}
    assert any(f"{train}: skipped 1 blank line(s) (line 4)" in w for w in report["warnings"])
    assert f"{train}: skipped 1 blank line(s) (line 4)" in caplog.text
    # Read back from the cache, the warning is given again.
    caplog.clear()
    with caplog.at_level("WARNING", logger="emorec"):
        assert prepare(make_config()).report["cached"] is True
    assert "skipped 1 blank line(s)" in caplog.text


def test_label_missing_from_evaluation_splits_is_reported(
    make_config, tiny_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (tiny_data_dir / "train.txt").open("a") as handle:
        handle.writelines(f"i am so shocked by it number {i};shocked\n" for i in range(3))
    config = make_config(f"model.labels=[{', '.join(LABELS)}, shocked]")
    with caplog.at_level("WARNING", logger="emorec"):
        report = prepare(config).report
    assert report["labels_missing_from_splits"] == {"shocked": ["validation", "test"]}
    message = "label 'shocked' has 3 rows in train but none in validation or test"
    (warning,) = report["warnings"]
    assert warning.startswith(message)
    assert "calibration has no example of it" in warning
    assert "Add rows of it to the validation and test file(s)" in warning
    assert message in caplog.text


def test_self_split_rare_label_warning_names_the_split_sizes(make_config, tmp_path: Path) -> None:
    # The case: one file of ~300 rows in which "shocked" has 3; nothing reaches test.
    rows = make_rows(75) + [(f"i am so shocked number {i}", "shocked") for i in range(3)]
    path = write_dair(tmp_path / "all.txt", rows)
    report = prepare(make_config(f"data.path={path}", "model.labels=null")).report
    missing = report["labels_missing_from_splits"]
    assert set(missing) == {"shocked"} and "train" not in missing["shocked"]
    for split in ("validation", "test"):
        assert (split in missing["shocked"]) == (
            "shocked" not in report["label_distribution"][split]
        )
    (warning,) = [w for w in report["warnings"] if "'shocked'" in w]
    assert "about 20 rows" in warning and "data.split.validation_size" in warning


def test_lone_surrogate_in_a_jsonl_training_file_names_the_line(tmp_path: Path) -> None:
    """A JSON escape can smuggle half a UTF-16 pair into a UTF-8 file; pandas then crashes."""
    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"text": "so sad", "label": "sadness"}\n{"text": "i am happy \\ud800", "label": "joy"}\n',
        encoding="utf-8",
    )
    with pytest.raises(
        DataError, match=r"train\.jsonl:2: field 'text' contains a lone surrogate \(U\+D800"
    ):
        read_file(path, "auto")
