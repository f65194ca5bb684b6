"""EmotionClassifier on the tiny random BERT: batching, long texts, save/reload, streaming files."""

from __future__ import annotations

import copy
import csv
import json
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import softmax

from emorec.calibration import Calibration
from emorec.errors import ConfigError, DataError, ModelDirError
from emorec.inference import EmotionClassifier, Prediction, TorchBackend
from emorec.labels import LabelSpace
from emorec.predict_io import iter_rows, predict_file

from .conftest import LABELS

TEXTS = [
    "i feel so happy today",
    "x",
    "I'm sooo angryyyy @bob http://x.co #mad",
    "😢 so sad and lonely, nobody came to my party and i waited all evening for them",
    "@bob http://x.co",  # nothing left after cleaning: still classified, like in training
    "scared",
]
# Texts no interface classifies: empty, only whitespace, a lone surrogate (not Unicode).
UNCLASSIFIABLE = {
    "": "is empty",
    " \t\n ": "holds only whitespace",
    "i am happy \ud800": r"contains a lone surrogate \(U\+D800 at character 11\)",
}
LONG = " ".join(["i was scared at first but then the party was wonderful and i felt glad"] * 6)


@pytest.fixture(scope="module")
def base_classifier(tiny_model_dir: Path) -> EmotionClassifier:
    """The tiny BERT with a random 4-label head and a non-trivial calibration (T, biases)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=4)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    calibration = Calibration(temperature=0.05, biases=[0.1, -0.2, 0.0, 0.3], decision="bias")
    return EmotionClassifier(
        model, tokenizer, LabelSpace(tuple(LABELS)), calibration=calibration, max_length=16
    )


@pytest.fixture
def classifier(base_classifier: EmotionClassifier) -> EmotionClassifier:
    """A shallow copy, so that a test may change batch_size or long_text freely."""
    return copy.copy(base_classifier)


def test_length_sorted_batches_keep_input_order(classifier: EmotionClassifier) -> None:
    classifier.batch_size = 1
    one_by_one = classifier.predict_proba(TEXTS)
    for batch_size in (2, 4, 64):
        classifier.batch_size = batch_size
        np.testing.assert_allclose(classifier.predict_proba(TEXTS), one_by_one, atol=1e-5)
    encoded, owner = classifier._encode(classifier.clean(TEXTS))
    assert owner.tolist() == list(range(len(TEXTS)))
    classifier.batch_size = 2
    widths, seen = [], []
    for index, batch in classifier._batches(encoded):
        lengths = [len(encoded["input_ids"][i]) for i in index]
        # Padded per batch to its longest row, batches in ascending length.
        assert batch["input_ids"].shape == (len(index), max(lengths))
        assert batch["attention_mask"].sum(axis=1).tolist() == lengths
        widths.append(max(lengths))
        seen.extend(index.tolist())
    assert widths == sorted(widths) and sorted(seen) == list(range(len(TEXTS)))


def test_predict_shapes_and_empty_input(classifier: EmotionClassifier) -> None:
    one = classifier.predict("so happy", top_k=2)
    assert isinstance(one, Prediction) and one.label in LABELS and len(one.scores) == 2
    assert classifier.predict([]) == []
    assert classifier.predict_proba([]).shape == (0, len(LABELS))
    assert classifier.predict_proba("so happy").shape == (len(LABELS),)
    assert classifier.backend.name == "torch" and classifier.device.type == "cpu"


def test_long_texts_truncate_by_default(classifier: EmotionClassifier) -> None:
    encoded, owner = classifier._encode([LONG])
    assert len(owner) == 1 and len(encoded["input_ids"][0]) == classifier.max_length
    # Anything past max_length is ignored: a different tail gives the same probabilities.
    np.testing.assert_allclose(
        classifier.predict_proba(LONG), classifier.predict_proba(LONG + " furious angry mad")
    )


@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_long_texts_windows_aggregate(classifier: EmotionClassifier, aggregate: str) -> None:
    classifier.long_text = "window"
    classifier.window_aggregate = aggregate  # type: ignore[assignment]
    classifier.window_overlap = 4
    encoded, owner = classifier._encode([LONG, "short one"])
    windows = int((owner == 0).sum())
    assert windows > 2 and (owner == 1).sum() == 1
    assert all(len(ids) <= classifier.max_length for ids in encoded["input_ids"])
    # Consecutive windows share window_overlap tokens (between [CLS] and [SEP]).
    first, second = encoded["input_ids"][0], encoded["input_ids"][1]
    assert first[-5:-1] == second[1:5]

    # Reference: each window through the model on its own, merged by hand.
    backend = classifier.backend
    window_logits = np.concatenate(
        [
            backend({k: np.asarray([encoded[k][i]]) for k in encoded})
            for i in np.flatnonzero(owner == 0)
        ]
    )
    for decision, temperature in (("argmax", 1.0), ("calibrated", 0.05)):
        probs = softmax(window_logits / temperature, axis=1)
        if aggregate == "mean":
            expected = probs.mean(axis=0)
        else:
            expected = probs.max(axis=0) / probs.max(axis=0).sum()
        got = classifier.predict_proba([LONG, "short one"], decision=decision)  # type: ignore[arg-type]
        np.testing.assert_allclose(got[0], expected, rtol=1e-4, atol=1e-6)

    # Texts that fit in one window are classified exactly as when truncating.
    _, owner = classifier._encode(classifier.clean(TEXTS))
    fits = np.bincount(owner) == 1
    assert 0 < fits.sum() < len(TEXTS)
    truncating = copy.copy(classifier)
    truncating.long_text = "truncate"
    np.testing.assert_allclose(
        classifier.predict_proba(TEXTS)[fits], truncating.predict_proba(TEXTS)[fits], atol=1e-6
    )
    # The calibrated decision is made on the merged probabilities (with the biases).
    merged = classifier.predict_proba(LONG)
    expected_label = LABELS[int(np.argmax(np.log(merged) + np.array([0.1, -0.2, 0.0, 0.3])))]
    assert classifier.predict(LONG).label == expected_label


def test_invalid_settings_name_the_parameter(classifier: EmotionClassifier) -> None:
    classifier.long_text = "split"  # type: ignore[assignment]
    with pytest.raises(ConfigError, match="long_text must be one of 'truncate', 'window'"):
        classifier.predict("x")
    classifier.long_text = "window"
    classifier.window_overlap = 14
    with pytest.raises(ConfigError, match=r"window_overlap must be an integer in \[0, 14\)"):
        classifier.predict("x")
    classifier.window_overlap = None
    classifier.window_aggregate = "median"  # type: ignore[assignment]
    with pytest.raises(ConfigError, match="window_aggregate must be one of 'mean', 'max'"):
        classifier.predict("x")
    classifier.window_aggregate = "mean"
    classifier.batch_size = 0
    with pytest.raises(ConfigError, match="batch_size must be a positive integer; got 0"):
        classifier.predict("x")


def test_saved_and_reloaded_classifier_is_identical(
    base_classifier: EmotionClassifier, tmp_path: Path
) -> None:
    saved = base_classifier.save_pretrained(tmp_path / "model")
    reloaded = EmotionClassifier.from_pretrained(saved, backend="torch")
    assert reloaded.calibration == base_classifier.calibration
    for decision in ("calibrated", "argmax"):
        np.testing.assert_array_equal(
            reloaded.predict_proba(TEXTS, decision=decision),  # type: ignore[arg-type]
            base_classifier.predict_proba(TEXTS, decision=decision),  # type: ignore[arg-type]
        )
    assert [p.labels for p in reloaded.predict(TEXTS)] == [
        p.labels for p in base_classifier.predict(TEXTS)
    ]
    # No export yet: auto runs PyTorch; asking for ONNX says how to get it.
    assert EmotionClassifier.from_pretrained(saved).backend.name == "torch"
    with pytest.raises(ModelDirError, match=r"no model\.int8\.onnx.*emorec export"):
        EmotionClassifier.from_pretrained(saved, backend="onnx", precision="int8")
    with pytest.raises(ConfigError, match="backend must be one of 'auto', 'torch', 'onnx'"):
        EmotionClassifier.from_pretrained(saved, backend="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="num_threads must be a positive integer"):
        EmotionClassifier.from_pretrained(saved, num_threads=0)

    # Loading options reach the classifier; num_threads sets torch's (process-wide) threads.
    threads = torch.get_num_threads()
    try:
        windowed = EmotionClassifier.from_pretrained(
            saved, num_threads=1, batch_size=8, long_text="window", window_aggregate="max"
        )
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert (windowed.batch_size, windowed.long_text, windowed.window_aggregate) == (
        8,
        "window",
        "max",
    )


def test_classifier_needs_a_model_or_backend(classifier: EmotionClassifier) -> None:
    with pytest.raises(ConfigError, match="needs a model or a backend"):
        EmotionClassifier(None, classifier.tokenizer, classifier.label_space)
    # Any callable backend plugs into the same cleaning → batching → calibration path.
    calls: list[tuple[int, int]] = []

    def backend(batch: dict[str, np.ndarray]) -> np.ndarray:
        calls.append(batch["input_ids"].shape)
        return TorchBackend(classifier.model)(batch)

    backend.name = "custom"  # type: ignore[attr-defined]
    custom = EmotionClassifier(
        None,
        classifier.tokenizer,
        classifier.label_space,
        calibration=classifier.calibration,
        max_length=16,
        batch_size=4,
        backend=backend,  # type: ignore[arg-type]
    )
    np.testing.assert_allclose(custom.predict_proba(TEXTS), classifier.predict_proba(TEXTS))
    assert [rows for rows, _ in calls] == [4, 2]
    with pytest.raises(ModelDirError, match="needs the PyTorch weights"):
        custom.save_pretrained(Path("unused"))


def test_texts_that_cannot_be_classified_are_refused_by_position(
    classifier: EmotionClassifier,
) -> None:
    for text, reason in UNCLASSIFIABLE.items():
        for call in (classifier.predict, classifier.predict_proba, classifier, classifier.explain):
            with pytest.raises(DataError, match=f"^The text {reason}"):
                call(text)
        for call in (classifier.predict, classifier.predict_proba, classifier, classifier.logits):
            with pytest.raises(DataError, match=rf"^texts\[1\] {reason}"):
                call(["i feel so happy today", text, "scared"])
    # Wrong types name the expected ones, for the whole argument and for one item.
    for value in (None, 42, b"so happy", {"text": "so happy"}):
        with pytest.raises(DataError, match=r"texts must be a str or a list of str; got \w+"):
            classifier.predict(value)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"texts\[1\] is missing \(null\): expected a string"):
        classifier.predict(["so happy", None])  # type: ignore[list-item]
    with pytest.raises(DataError, match=r"texts\[0\] must be a string; got int"):
        classifier.predict_proba([3])  # type: ignore[list-item]
    # Tuples, generators and emoji (a pair of UTF-16 units, one code point) are fine; a text
    # that cleaning empties is classified, but has no word to explain.
    assert len(classifier.predict(t for t in ("so happy", "😍"))) == 2
    assert classifier.predict("@bob http://x.co").label in LABELS
    with pytest.raises(DataError, match="Nothing to explain"):
        classifier.explain("@bob http://x.co")


def _tokenizer_of(directory: Path) -> list[str]:
    vocabulary = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
    return [name for name in vocabulary if (directory / name).is_file()]


def test_missing_or_mismatched_tokenizer_is_a_model_dir_error(
    tiny_classifier_dir: Path, tmp_path: Path
) -> None:
    import shutil

    from transformers import AutoTokenizer

    missing = tmp_path / "missing"
    shutil.copytree(tiny_classifier_dir, missing)
    for name in _tokenizer_of(missing):
        (missing / name).unlink()
    # transformers alone would build a 5-token vocabulary from config.json and answer anyway.
    with pytest.raises(ModelDirError, match=rf"{missing} has no tokenizer: .*tokenizer\.json"):
        EmotionClassifier.from_pretrained(missing)

    # A vocabulary file of another (tiny) tokenizer: ids fit, but the words would all be [UNK].
    small = tmp_path / "small"
    shutil.copytree(tiny_classifier_dir, small)
    for name in _tokenizer_of(small):
        (small / name).unlink()
    (small / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhappy\n")
    with pytest.raises(
        ModelDirError, match=r"vocab\.txt\) has 6 tokens but the model's vocabulary has 30522"
    ):
        EmotionClassifier.from_pretrained(small)

    # More tokens than embedding rows: the added ones would index past the embeddings.
    large = tmp_path / "large"
    shutil.copytree(tiny_classifier_dir, large)
    tokenizer = AutoTokenizer.from_pretrained(large)
    tokenizer.add_special_tokens({"additional_special_tokens": ["[NEW1]", "[NEW2]"]})
    tokenizer.save_pretrained(large)
    with pytest.raises(ModelDirError, match=r"tokenizer\.json\) has 30524 tokens .*config\.json"):
        EmotionClassifier.from_pretrained(large)
    assert EmotionClassifier.from_pretrained(tiny_classifier_dir).predict("so happy").label


def test_calling_the_classifier_is_like_a_transformers_pipeline(
    classifier: EmotionClassifier,
) -> None:
    from transformers import pipeline

    texts = ["i feel so happy today", "scared and alone"]
    assert classifier.clean(texts) == texts  # what the pipeline sees too
    pipe = pipeline("text-classification", model=classifier.model, tokenizer=classifier.tokenizer)
    names = {f"LABEL_{i}": name for i, name in enumerate(LABELS)}

    def renamed(scores: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{**s, "label": names[str(s["label"])]} for s in scores]

    # The uncalibrated rule is the pipeline's softmax: same shape, order and scores.
    one = classifier(texts[0], decision="argmax")
    expected = renamed(pipe(texts[0], top_k=None))
    assert [s["label"] for s in one] == [s["label"] for s in expected]
    np.testing.assert_allclose([s["score"] for s in one], [s["score"] for s in expected], rtol=1e-5)
    many = classifier(texts, decision="argmax")
    expected_many = [renamed(scores) for scores in pipe(texts, top_k=None)]
    assert [[s["label"] for s in r] for r in many] == [
        [s["label"] for s in r] for r in expected_many
    ]
    # Calibrated by default: the scores of predict(), highest first; top_k keeps the best.
    scores = [s["score"] for s in classifier(texts[1])]
    assert scores == sorted(scores, reverse=True)
    assert scores == list(classifier.predict(texts[1]).scores.values())
    assert len(classifier(texts[1], top_k=2)) == 2 and classifier([]) == []

    prediction = classifier.predict(texts[0])
    as_dict = prediction.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict == {
        "text": texts[0],
        "label": prediction.label,
        "labels": prediction.labels,
        "scores": [{"label": k, "score": v} for k, v in prediction.scores.items()],
    }
    assert as_dict["scores"] == classifier(texts[0])  # one format: the pipeline's
    assert Prediction.from_dict(as_dict) == prediction


# ---- streaming files -----------------------------------------------------------------------
def _write_lines(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(f"text number {i} is a rather ordinary line of about sixty chars\n")
    return path


def test_iter_rows_streams_in_chunks(tmp_path: Path) -> None:
    source = _write_lines(tmp_path / "big.txt", 50_000)  # ~3 MB
    rows = iter_rows(source, "text", chunk_size=100)
    assert iter(rows) is rows  # a generator: nothing read before the first chunk is asked for
    tracemalloc.start()
    try:
        count, largest = 0, 0
        for chunk in rows:
            largest = max(largest, len(chunk))
            count += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 50_000 and largest == 100
    # Reading it whole would hold 50,000 row dicts (several MB); a chunk is ~100 rows.
    assert peak < source.stat().st_size / 4, peak

    table = tmp_path / "big.csv"
    with table.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([i, f"line, {i}"] for i in range(1000))
    chunks = list(iter_rows(table, "text", chunk_size=300))
    assert [len(c) for c in chunks] == [300, 300, 300, 100]
    assert chunks[-1][-1] == {"id": "999", "text": "line, 999"}
    with pytest.raises(ConfigError, match="chunk_size must be a positive integer"):
        next(iter_rows(table, "text", chunk_size=0))


class _RecordingClassifier:
    """Stands in for EmotionClassifier: labels each text by its number, records call sizes."""

    labels = LABELS

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, texts: list[str], decision: str = "calibrated") -> list[Prediction]:
        self.calls.append(len(texts))
        out = []
        for text in texts:
            label = LABELS[int(text.split()[2]) % len(LABELS)]
            scores = {name: float(name == label) for name in LABELS}
            out.append(Prediction(text, label, [label], scores))
        return out


def test_predict_file_streams_and_keeps_order(tmp_path: Path) -> None:
    source = _write_lines(tmp_path / "in.txt", 2_500)
    fake = _RecordingClassifier()
    out = tmp_path / "out.jsonl"
    written = predict_file(fake, source, out, chunk_size=512, progress=False)  # type: ignore[arg-type]
    assert written == 2_500
    assert max(fake.calls) == 512 and sum(fake.calls) == 2_500
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [int(r["text"].split()[2]) for r in rows] == list(range(2_500))
    assert all(r["pred_label"] == LABELS[i % len(LABELS)] for i, r in enumerate(rows))


def test_predict_file_gives_unclassifiable_rows_an_error_and_keeps_the_others(
    classifier: EmotionClassifier, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    texts = ["i feel so happy today", *UNCLASSIFIABLE, "scared"]
    source = tmp_path / "in.jsonl"
    # json.dumps writes the lone surrogate as the escape \ud800, as a client would send it.
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    expected = classifier.predict([texts[0], texts[-1]])
    with caplog.at_level("WARNING", logger="emorec.inference.files"):
        written = predict_file(classifier, source, tmp_path / "out.jsonl", progress=False)
    assert written == len(texts)
    assert f"3 of {len(texts)} rows were not classified" in caplog.text
    assert "row 2: the text is empty" in caplog.text
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == texts  # the surrogate row too, exactly as it came
    assert [r["pred_label"] for r in rows] == [
        expected[0].label,
        None,
        None,
        None,
        expected[1].label,
    ]
    assert rows[0]["pred_error"] is None and {s["label"] for s in rows[0]["scores"]} == set(LABELS)
    for row, reason in zip(rows[1:-1], UNCLASSIFIABLE.values(), strict=True):
        assert re.match(f"the text {reason}", row["pred_error"]), row
        assert row["pred_labels"] == [] and row["scores"] is None

    predict_file(classifier, source, tmp_path / "out.csv", progress=False)
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["pred_label"] for r in table] == [expected[0].label, "", "", "", expected[1].label]
    assert table[3]["text"] == "i am happy \\ud800"  # UTF-8 cannot hold it: the visible escape
    assert table[3]["prob_joy"] == "" and "lone surrogate" in table[3]["pred_error"]
    assert table[0]["pred_error"] == "" and float(table[0]["prob_joy"]) == pytest.approx(
        expected[0].scores["joy"], abs=1e-6
    )


# ---- input file edge cases: missing, byte-order mark, empty ---------------------------------
def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp" in p.name)


def test_predict_file_missing_input_names_it_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    with pytest.raises(DataError, match=r"^Input file not found: .*absent\.csv \(resolved to"):
        predict_file(_RecordingClassifier(), tmp_path / "absent.csv", out, progress=False)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"^Input file is a directory, not a file: .*sub\.txt"):
        (tmp_path / "sub.txt").mkdir()
        predict_file(_RecordingClassifier(), tmp_path / "sub.txt", out, progress=False)  # type: ignore[arg-type]
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".txt"])
def test_predict_file_reads_inputs_with_a_byte_order_mark(tmp_path: Path, suffix: str) -> None:
    texts = ["text number 0 is glad", "text number 1 is sad"]
    body = {
        ".csv": "text,id\n" + "".join(f"{t},{i}\n" for i, t in enumerate(texts)),
        ".jsonl": "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts)),
        ".txt": "".join(f"{t}\n" for t in texts),
    }[suffix]
    source = tmp_path / f"in{suffix}"
    source.write_text("\ufeff" + body, encoding="utf-8")
    assert [r["text"] for r in next(iter_rows(source, "text", 10))] == texts
    out = tmp_path / "out.jsonl"
    assert predict_file(_RecordingClassifier(), source, out, progress=False) == 2  # type: ignore[arg-type]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == texts
    assert [r["pred_label"] for r in rows] == LABELS[:2]


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("in.txt", "", r"in\.txt is empty: there is nothing to classify"),
        ("in.csv", "", r"in\.csv is empty: there is nothing to classify"),
        ("in.csv", "id,text\n", r"in\.csv has no rows to classify; .*out\.\w+ not written"),
        ("in.jsonl", "\n\n", r"in\.jsonl has no rows to classify; .*out\.\w+ not written"),
    ],
)
def test_predict_file_without_rows_is_an_error_and_writes_nothing(
    tmp_path: Path, name: str, body: str, message: str
) -> None:
    source = tmp_path / name
    source.write_text(body, encoding="utf-8")
    for out in (tmp_path / "out.csv", tmp_path / "out.jsonl"):
        with pytest.raises(DataError, match=message):
            predict_file(_RecordingClassifier(), source, out, progress=False)  # type: ignore[arg-type]
        assert not out.exists()
    assert _leftovers(tmp_path) == []
