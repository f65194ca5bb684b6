"""Finding and checking what a model directory holds before a classifier is built from it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emorec.artifacts import HF_CONFIG_FILE, TOKENIZER_FILE, VOCABULARY_FILES, read_json
from emorec.errors import ConfigError, ModelDirError


def is_local(path: str | Path) -> bool:
    return Path(path).exists()


def download(repo_id: str, revision: str | None) -> Path:
    """Fetch a model repo from the Hugging Face Hub (needs network access)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        raise ModelDirError(
            f"{repo_id!r} is not a local model directory and could not be downloaded from the "
            f"Hugging Face Hub ({type(error).__name__}: {error}). Check the path, or the repo id "
            "and your network connection."
        ) from None


def check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        choices = ", ".join(map(repr, allowed))
        raise ConfigError(f"{name} must be one of {choices}; got {value!r}.")


def check_tokenizer(directory: Path, tokenizer: Any) -> None:
    """Refuse a tokenizer that does not fit the model's vocabulary (``config.json``).

    Ids at or above ``vocab_size`` have no embedding row; a tokenizer much smaller than the
    embeddings is another model's, or one transformers made up from the special tokens.
    Embedding matrices are often padded (to a multiple of 64 or 128, a few reserved ids), so
    only a gap of more than half the vocabulary counts as a mismatch.
    """
    vocab_size = read_json(directory / HF_CONFIG_FILE).get("vocab_size")
    if not isinstance(vocab_size, int) or vocab_size < 1:
        return  # architectures without a word-embedding vocabulary: nothing to compare
    size = len(tokenizer)
    source = next(name for name in VOCABULARY_FILES if (directory / name).is_file())
    fix = (
        f"Restore the tokenizer files ({TOKENIZER_FILE}, tokenizer_config.json) written with "
        "this model by `emorec train`, or train again."
    )
    where = f"{directory}: the tokenizer ({directory / source})"
    if size > vocab_size or size * 2 < vocab_size:
        raise ModelDirError(
            f"{where} has {size} tokens but the model's vocabulary has {vocab_size} "
            f"(vocab_size in {directory / 'config.json'}): they do not belong together. {fix}"
        )
    special = dict(zip(tokenizer.all_special_tokens, tokenizer.all_special_ids, strict=True))
    outside = {
        t: i for t, i in special.items() if not isinstance(i, int) or not 0 <= i < vocab_size
    }
    if outside:
        raise ModelDirError(
            f"{where} gives the special tokens {outside} ids outside the model's vocabulary "
            f"[0, {vocab_size}) (vocab_size in {directory / 'config.json'}). {fix}"
        )
