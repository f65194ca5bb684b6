"""Multi-label readers, label mapping from config, and multi-label stratified splitting."""

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from emorec.config import load_config
from emorec.data import prepare
from emorec.data.prepare import cache_key, read_labelled
from emorec.data.readers import read_file, read_goemotions
from emorec.data.split import split_single_source, stratified_subsample
from emorec.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]
GOEMOTIONS = REPO.parent / "shared" / "data" / "goemotions"

NAMES = ["admiration", "amusement", "anger", "annoyance", "joy", "neutral"]
GROUPS = {"anger": ["anger", "annoyance"], "joy": ["joy", "amusement", "admiration"]}
# (text, label ids): every label in every split, a few multi-label rows, quoted texts.
TRAIN = [
    ('He said ""wow"" and left', "0"),
    ("that is hilarious", "1"),
    ("I am so mad", "2"),
    ("this is irritating", "3"),
    ("best day ever", "4"),
    ("it is a table", "5"),
    ("mad and irritated at once", "2,3"),
    ("funny and great", "1,4"),
    ("ok then", "5"),
    ('"Quoted" start', "0,1"),
]
DEV = [("wow nice", "0"), ("lol", "1"), ("grr", "2,3"), ("yay", "4"), ("fine", "5")]
TEST = [("amazing work", "0"), ("haha", "1"), ("so angry", "2"), ("ugh", "3"), ("ok", "5,4")]


def write_goemotions(directory: Path, train=TRAIN, dev=DEV, test=TEST) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "emotions.txt").write_text("\n".join(NAMES))  # no final newline, like upstream
    for name, rows in (("train", train), ("dev", dev), ("test", test)):
        lines = [f"{text}\t{ids}\tid{i}\n" for i, (text, ids) in enumerate(rows)]
        (directory / f"{name}.tsv").write_text("".join(lines), encoding="utf-8")
    return directory


@pytest.fixture
def go_dir(tmp_path: Path) -> Path:
    return write_goemotions(tmp_path / "goemotions")


def labelled(go_dir: Path, *overrides: str):
    return read_labelled(load_config(None, [f"data.path={go_dir}", *overrides]))


def total(split_counts: dict[str, int]) -> int:
    return sum(split_counts.values())


# --------------------------------------------------------------------------- GoEmotions reader


def test_goemotions_reader_keeps_quotes_and_gives_lists(go_dir: Path) -> None:
    frame = read_goemotions(go_dir / "train.tsv", go_dir / "emotions.txt")
    assert frame["text"].iloc[0] == 'He said ""wow"" and left'  # not swallowed by a CSV reader
    assert frame["label"].iloc[0] == ["admiration"]  # a list even with one id
    assert frame["label"].iloc[6] == ["anger", "annoyance"]
    assert frame["line"].tolist() == list(range(1, 11))


def test_auto_detects_goemotions_directory_with_dev_as_validation(go_dir: Path) -> None:
    data = labelled(go_dir)
    assert {k: len(v) for k, v in data.frames.items()} == {"train": 10, "validation": 5, "test": 5}
    assert data.label_order == NAMES  # the names file's order, not alphabetical
    assert data.label_mapping is None
    assert data.frames["validation"]["source"].iloc[0].endswith("dev.tsv")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("no tabs here", r"train.tsv:11: expected `text<TAB>label_ids<TAB>id`.*got 1 fields"),
        ("a\tb\tc\td", r"train.tsv:11: expected .* got 4 fields"),
        ("text\t2,x\tid", r"train.tsv:11: label id 'x' is not an integer"),
        ("text\t6\tid", r"train.tsv:11: label id 6 is out of range; .*emotions.txt lists 6 names"),
        ("text\t\tid", r"train.tsv:11: empty label list.*allow_empty_labels"),
    ],
)
def test_goemotions_bad_lines_name_file_and_line(go_dir: Path, line: str, message: str) -> None:
    with (go_dir / "train.tsv").open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(DataError, match=message):
        labelled(go_dir)


def test_goemotions_out_of_range_says_valid_range(go_dir: Path) -> None:
    with (go_dir / "test.tsv").open("a") as handle:
        handle.write("text\t-1\tid\n")
    with pytest.raises(DataError, match=r"ids run from 0 to 5"):
        labelled(go_dir, "data.format=goemotions")


def test_goemotions_empty_labels_allowed_when_asked(go_dir: Path) -> None:
    with (go_dir / "train.tsv").open("a") as handle:
        handle.write("nothing to feel here\t\tid\n")
    data = labelled(go_dir, "data.allow_empty_labels=true")
    assert data.frames["train"]["label"].iloc[-1] == []


def test_goemotions_names_file_option_and_missing_file(go_dir: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("\n".join(n.upper() for n in NAMES) + "\n\n")
    data = labelled(go_dir, f"data.label_names_file={names}")
    assert data.label_order == [n.upper() for n in NAMES]
    with pytest.raises(DataError, match=r"Label names file not found: .*absent.txt"):
        labelled(go_dir, "data.format=goemotions", f"data.label_names_file={tmp_path}/absent.txt")


# --------------------------------------------------------------------------- table formats


def test_jsonl_list_labels_are_multi_label(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    rows = [{"text": "a", "label": ["joy", "love", "joy"]}, {"text": "b", "label": ["anger"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_file(path, "auto")["label"].tolist() == [["joy", "love"], ["anger"]]


def test_csv_label_delimiter_splits_into_lists(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    pd.DataFrame({"text": ["a", "b"], "label": ["joy|love", "anger|"]}).to_csv(path, index=False)
    read = read_file(path, "auto", label_delimiter="|")
    assert read["label"].tolist() == [["joy", "love"], ["anger"]]


def test_parquet_list_column_is_multi_label(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pd.DataFrame({"text": ["a", "b"], "label": [["joy", "love"], ["fear"]]}).to_parquet(path)
    assert read_file(path, "auto")["label"].tolist() == [["joy", "love"], ["fear"]]


def test_empty_label_list_is_an_error_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    pd.DataFrame({"text": ["a", "b"], "label": ["joy,love", ""]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"data.csv:3: empty label list.*allow_empty_labels"):
        read_file(path, "auto", label_delimiter=",")
    read = read_file(path, "auto", label_delimiter=",", allow_empty_labels=True)
    assert read["label"].tolist() == [["joy", "love"], []]
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text('{"text": "a", "label": ["joy"]}\n{"text": "b", "label": []}\n')
    with pytest.raises(DataError, match=r"data.jsonl:2: empty label list"):
        read_file(jsonl, "auto")


def test_single_label_empty_label_is_an_error_even_when_empty_lists_are_allowed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data.csv"
    pd.DataFrame({"text": ["a", "b"], "label": ["joy", ""]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"data.csv:3: empty label.*multi-label data only"):
        read_file(path, "auto", allow_empty_labels=True)


def test_blank_name_inside_a_label_list(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": ["joy", " "]}\n')
    with pytest.raises(DataError, match=r"data.jsonl:1: label list .* holds an empty name"):
        read_file(path, "auto")


# --------------------------------------------------------------------------- label mapping


def test_groups_merge_and_collapse_duplicates_neutral_kept(go_dir: Path, tmp_path: Path) -> None:
    groups_file = tmp_path / "groups.json"
    groups_file.write_text(json.dumps(GROUPS))
    data = labelled(go_dir, f"data.label_mapping.groups_file={groups_file}")
    assert data.label_order == ["anger", "joy", "neutral"]  # groups in file order, then unmapped
    train = data.frames["train"]["label"].tolist()
    assert train[6] == ["anger"]  # anger + annoyance -> anger once
    assert train[9] == ["joy"]
    report = data.label_mapping
    assert report["labels"] == ["anger", "joy", "neutral"]
    assert report["rows_dropped"] == {"train": 0, "validation": 0, "test": 0}
    assert report["rows_after"] == {"train": 10, "validation": 5, "test": 5}
    assert report["source_labels"] == NAMES


def test_unmapped_drop_drops_and_reports_rows(go_dir: Path) -> None:
    data = labelled(
        go_dir,
        f"data.label_mapping.groups={json.dumps(GROUPS)}",
        "data.label_mapping.unmapped=drop",
    )
    assert data.label_order == ["anger", "joy"]
    report = data.label_mapping
    # neutral-only rows: train 2, dev 1; test's "5,4" row keeps joy.
    assert report["rows_dropped"] == {"train": 2, "validation": 1, "test": 0}
    assert data.frames["test"]["label"].iloc[-1] == ["joy"]
    assert total(report["rows_after"]) + total(report["rows_dropped"]) == 20


def test_keep_subset_drops_rows_left_without_label(go_dir: Path) -> None:
    data = labelled(go_dir, "data.label_mapping.keep=[joy, anger]")
    assert data.label_order == ["joy", "anger"]  # keep's order
    report = data.label_mapping
    assert report["rows_dropped"] == {"train": 6, "validation": 3, "test": 3}
    assert report["rows_left_without_label"] == report["rows_dropped"]
    assert all(set(v) <= {"joy", "anger"} and v for f in data.frames.values() for v in f["label"])


def test_keep_with_allow_empty_labels_keeps_none_of_these_rows(go_dir: Path) -> None:
    data = labelled(go_dir, "data.label_mapping.keep=[joy, anger]", "data.allow_empty_labels=true")
    report = data.label_mapping
    assert report["rows_dropped"] == {"train": 0, "validation": 0, "test": 0}
    assert report["rows_left_without_label"] == {"train": 6, "validation": 3, "test": 3}
    assert data.frames["train"]["label"].iloc[0] == []


def test_rename_then_keep(go_dir: Path) -> None:
    data = labelled(
        go_dir,
        "data.label_mapping.rename={admiration: praise}",
        "data.label_mapping.keep=[praise, anger]",
    )
    assert data.label_order == ["praise", "anger"]
    train = data.frames["train"]["label"]  # dropped rows leave gaps: index by original row
    assert train.loc[0] == ["praise"]
    assert train.loc[9] == ["praise"]  # admiration + amusement: amusement is not kept
    assert 1 not in train.index  # amusement only


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            'data.label_mapping.groups={"anger": ["angr"]}',
            r"`groups` group 'anger' names 'angr'.*Did you mean 'anger'\?.*Valid labels: "
            r"\['admiration'",
        ),
        ("data.label_mapping.rename={joyy: happiness}", r"`rename` .* names 'joyy'"),
        ("data.label_mapping.keep=[joy, pride]", r"`keep` .* names 'pride'.*'neutral'\]"),
        ("data.label_mapping.rename={joy: anger}", r"several labels the name\(s\) \['anger'\]"),
        ('data.label_mapping.groups={"joy": ["amusement"]}', r"'joy' is a group name and also"),
    ],
)
def test_bad_mapping_names_the_culprit(go_dir: Path, override: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        labelled(go_dir, override)


def test_groups_file_errors(go_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Label groups file not found: .*nope.json"):
        labelled(go_dir, f"data.label_mapping.groups_file={tmp_path}/nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"joy": "joy"}')
    with pytest.raises(DataError, match=r"bad.json must hold a JSON object"):
        labelled(go_dir, f"data.label_mapping.groups_file={bad}")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.label_mapping.groups={a: [b]}", "data.label_mapping.groups_file=x.json"],
            "not both",
        ),
        (["data.label_mapping.unmapped=drop"], r"`unmapped: drop` needs `groups`"),
        (["data.label_mapping.keep=[joy, joy]"], r"repeated: \['joy'\]"),
        (["data.label_mapping.groups={a: []}"], r"groups \['a'\] list no source labels"),
        (["data.label_mapping.grops={a: [b]}"], r"Did you mean `groups`\?"),
    ],
)
def test_mapping_config_is_validated(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, ["data.path=x", *overrides])


def test_single_label_mapping_keeps_strings(tiny_data_dir: Path) -> None:
    config = load_config(
        None,
        [
            f"data.path={tiny_data_dir}",
            'data.label_mapping.groups={"negative": ["sadness", "anger", "fear"]}',
        ],
    )
    data = read_labelled(config)
    assert data.label_order == ["negative", "joy"]
    assert set(data.frames["train"]["label"]) == {"negative", "joy"}
    overlapping = 'data.label_mapping.groups={"neg": ["sadness"], "sad": ["sadness", "joy"]}'
    with pytest.raises(DataError, match=r"'sadness' is in groups \['neg', 'sad'\].*single-label"):
        read_labelled(load_config(None, [f"data.path={tiny_data_dir}", overlapping]))


def test_prepare_goemotions_with_groups(make_config, go_dir: Path) -> None:
    groups = f"data.label_mapping.groups={json.dumps(GROUPS)}"
    prepared = prepare(make_config(f"data.path={go_dir}", "model.labels=null", groups))
    space = prepared.label_space
    assert space.multi_label and space.names == ("anger", "joy", "neutral")
    labels = np.asarray(prepared.splits["train"]["labels"])
    assert labels.shape[1] == 3 and labels.dtype.kind == "f"
    assert prepared.report["label_mapping"]["rows_dropped"]["train"] == 0
    assert prepared.report["label_distribution"]["test"] == {"anger": 2, "joy": 3, "neutral": 1}
    # model.labels still fixes the order of the mapped labels.
    ordered = make_config(f"data.path={go_dir}", "model.labels=[neutral, joy, anger]", groups)
    assert prepare(ordered).label_space.names == ("neutral", "joy", "anger")


def test_goemotions_files_with_byte_order_marks(go_dir: Path, tmp_path: Path) -> None:
    # Saved by Notepad or Excel: a BOM before the first name, the first text and the JSON.
    for name in ("emotions.txt", "train.tsv"):
        path = go_dir / name
        path.write_text("\ufeff" + path.read_text(encoding="utf-8"), encoding="utf-8")
    groups = tmp_path / "groups.json"
    groups.write_text("\ufeff" + json.dumps(GROUPS), encoding="utf-8")
    data = labelled(go_dir)
    assert data.label_order == NAMES
    assert data.frames["train"]["text"].iloc[0] == TRAIN[0][0]
    mapped = labelled(go_dir, f"data.label_mapping.groups_file={groups}")
    assert mapped.label_order == ["anger", "joy", "neutral"]


def test_multi_label_prepare_reports_blank_lines_and_labels_a_split_lacks(
    make_config, tmp_path: Path
) -> None:
    test = [row for row in TEST if row[1] != "3"]  # no "annoyance" in test
    go_dir = write_goemotions(tmp_path / "go", test=test)
    train = go_dir / "train.tsv"
    lines = train.read_text(encoding="utf-8").splitlines(keepends=True)
    train.write_text("".join([*lines[:2], "\n", *lines[2:]]), encoding="utf-8")
    report = prepare(make_config(f"data.path={go_dir}", "model.labels=null")).report
    assert report["blank_lines_skipped"] == {str(train): [3]}
    assert report["labels_missing_from_splits"] == {"annoyance": ["test"]}
    (warning,) = [w for w in report["warnings"] if "'annoyance'" in w]
    assert warning.startswith("label 'annoyance' has 2 rows in train, 1 row in validation but ")
    assert "none in test" in warning and "calibration" not in warning


def test_cache_key_follows_groups_and_names_files(go_dir: Path, tmp_path: Path) -> None:
    groups_file = tmp_path / "groups.json"
    groups_file.write_text(json.dumps(GROUPS))
    config = load_config(
        None, [f"data.path={go_dir}", f"data.label_mapping.groups_file={groups_file}"]
    )
    tokenizer = SimpleNamespace(name_or_path="tok")
    before = cache_key(config, tokenizer)
    groups_file.write_text(json.dumps({**GROUPS, "anger": ["anger"]}))
    after_groups = cache_key(config, tokenizer)
    (go_dir / "emotions.txt").write_text("\n".join(reversed(NAMES)))
    assert len({before, after_groups, cache_key(config, tokenizer)}) == 3


# --------------------------------------------------------------------------- splitting


def multi_label_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Rows with 1-3 labels of skewed frequency (the rarest on about 3% of rows)."""
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c", "d", "e"]
    shares = np.array([0.5, 0.3, 0.15, 0.08, 0.03])
    labels = []
    for _ in range(n):
        row = [name for name, hit in zip(names, rng.random(5) < shares, strict=True) if hit]
        labels.append(row or [names[int(rng.integers(2))]])
    return pd.DataFrame({"text": [f"text {i}" for i in range(n)], "label": labels})


def label_counts(frame: pd.DataFrame) -> Counter:
    return Counter(name for row in frame["label"] for name in row)


def test_multi_label_split_is_deterministic_disjoint_and_proportional() -> None:
    frame = multi_label_frame(2000)
    first = split_single_source(frame, 0.1, 0.1, seed=3)
    second = split_single_source(frame, 0.1, 0.1, seed=3)
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name])
    indices = [set(part.index) for part in first.values()]
    assert sum(len(i) for i in indices) == len(frame) and len(set().union(*indices)) == len(frame)
    assert abs(len(first["test"]) - 200) <= 10
    whole = label_counts(frame)
    # Iterative stratification sends each label's rows to the parts in the parts' proportions
    # (a plain random split misses by 2-8 points on this data).
    for part, share in (("train", 0.8), ("validation", 0.1), ("test", 0.1)):
        counts = label_counts(first[part])
        for name, n in whole.items():
            assert counts[name] / n == pytest.approx(share, abs=0.02), (part, name)
    # And so each label's share of the test rows is close to its share of all rows.
    test = first["test"]
    for name, n in label_counts(test).items():
        assert n / len(test) == pytest.approx(whole[name] / len(frame), abs=0.03), name
    other = split_single_source(frame, 0.1, 0.1, seed=4)
    assert set(other["test"].index) != set(first["test"].index)


def test_multi_label_subsample_is_exact_and_proportional() -> None:
    frame = multi_label_frame(2000)
    sample = stratified_subsample(frame, 300, seed=1)
    assert len(sample) == 300
    pd.testing.assert_frame_equal(sample, stratified_subsample(frame, 300, seed=1))
    whole, part = label_counts(frame), label_counts(sample)
    for name, n in whole.items():
        assert part[name] / n == pytest.approx(300 / 2000, abs=0.02), name


def test_single_multi_label_file_is_split_in_prepare(make_config, tmp_path: Path) -> None:
    frame = multi_label_frame(200)
    path = tmp_path / "all.jsonl"
    frame.to_json(path, orient="records", lines=True)
    prepared = prepare(make_config(f"data.path={path}", "model.labels=null"))
    assert prepared.label_space.multi_label
    assert sum(prepared.report["sizes"].values()) == 200
    test_counts = prepared.report["label_distribution"]["test"]
    for name, n in label_counts(frame).items():  # 5% of each label's rows, to one row
        assert abs(test_counts.get(name, 0) - 0.05 * n) <= 1, name


# --------------------------------------------------------------------------- shipped configs


EXPECTED = {
    "goemotions.yaml": (GOEMOTIONS / "emotions.txt").read_text().split()
    if GOEMOTIONS.is_dir()
    else [],
    "goemotions-ekman.yaml": "anger disgust fear joy sadness surprise neutral".split(),
    "goemotions-sentiment.yaml": ["positive", "negative", "ambiguous", "neutral"],
    "goemotions-7.yaml": "admiration amusement gratitude love pride relief remorse".split(),
    "goemotions-10.yaml": (
        "praise amusement anger disapproval confusion interest sadness fear joy love".split()
    ),
}
SIZES = {"train": 43410, "validation": 5426, "test": 5427}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_goemotions_configs_on_real_data(name: str, monkeypatch) -> None:
    assert GOEMOTIONS.is_dir(), f"GoEmotions is expected beside the checkout at {GOEMOTIONS}"
    monkeypatch.chdir(REPO)  # the configs' paths start from the repository root
    data = read_labelled(load_config(REPO / "configs" / name))
    assert data.label_order == EXPECTED[name]
    for split, frame in data.frames.items():
        assert all(isinstance(v, list) and v for v in frame["label"])  # multi-label, non-empty
        assert set().union(*frame["label"]) <= set(EXPECTED[name])
        report = data.label_mapping
        dropped = report["rows_dropped"][split] if report else 0
        assert len(frame) + dropped == SIZES[split]
    if name in ("goemotions.yaml", "goemotions-ekman.yaml", "goemotions-sentiment.yaml"):
        assert data.label_mapping is None or total(data.label_mapping["rows_dropped"]) == 0
    else:
        assert total(data.label_mapping["rows_dropped"]) > 0
