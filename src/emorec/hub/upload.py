"""Upload a model directory to a Hugging Face Hub model repo in one commit.

The token is an argument, ``HF_TOKEN`` or the ``hf auth login`` cache; it never appears in
logs or errors. The model card is regenerated for the target repo id and uploaded as
README.md; the files on disk are left as they are.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, HTTPError
from huggingface_hub.utils import validate_repo_id

from emorec.artifacts import ModelDir
from emorec.errors import ConfigError, EmorecError
from emorec.hub.card import DEFAULT_LICENSE, MODEL_CARD_FILE, model_card

logger = logging.getLogger(__name__)

DEFAULT_COMMIT_MESSAGE = "Upload emorec emotion classifier"
TOKEN_HELP = (
    "Log in with `hf auth login` (huggingface_hub's CLI), or set the HF_TOKEN environment "
    "variable to a token with write access (https://huggingface.co/settings/tokens)."
)


class HubError(EmorecError):
    """An upload to the Hugging Face Hub failed (network, permissions, bad repo id)."""


class HubAuthError(HubError):
    """No Hugging Face token was found, or the Hub refused it."""


def resolve_token(token: str | None = None) -> str:
    """The token to use: ``token``, else ``HF_TOKEN``, else the ``hf auth login`` cache."""
    if token:
        return token
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"]
    found = get_token()
    if not found:
        raise HubAuthError(f"No Hugging Face token found. {TOKEN_HELP}")
    return found


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


def commit_operations(model_dir: str | Path, card: str | None = None) -> list[CommitOperationAdd]:
    """One ``CommitOperationAdd`` per file of ``model_dir`` (sorted), the card as README.md.

    Hidden files (atomic-write leftovers, ``.cache``) are skipped; ``card`` replaces any
    README.md on disk.
    """
    model_dir = Path(model_dir)
    operations = []
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if card is not None and relative.as_posix() == MODEL_CARD_FILE:
            continue
        operations.append(CommitOperationAdd(relative.as_posix(), path))
    if card is not None:
        operations.append(CommitOperationAdd(MODEL_CARD_FILE, card.encode("utf-8")))
    return operations


def _check(model_dir: Path, repo_id: str) -> None:
    """Refuse a malformed repo id or a directory that is no emorec model, before any upload."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ConfigError(
            f"--repo-id must look like `user/name`; got {repo_id!r} ({error})."
        ) from None
    ModelDir.open(model_dir)  # a clear error for what is no emorec model directory


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    license: str = DEFAULT_LICENSE,
    api: Any = None,
) -> str:
    """Upload ``model_dir`` to the Hub model repo ``repo_id`` in one commit; return its URL.

    Creates the repo if missing (``private`` applies then) and the ``revision`` branch if
    given. The model card is regenerated with ``repo_id`` in its snippets and uploaded as
    README.md (the local README.md is left as it is). ``api`` defaults to
    ``huggingface_hub.HfApi()``; tests pass a fake. Needs network access.
    """
    model_dir = Path(model_dir)
    _check(model_dir, repo_id)
    secret = resolve_token(token)
    card = model_card(model_dir, repo_id=repo_id, license=license)
    operations = commit_operations(model_dir, card)
    api = api if api is not None else HfApi()
    logger.info(
        "Uploading %d files from %s to %s in one commit.", len(operations), model_dir, repo_id
    )
    try:
        api.create_repo(repo_id, token=secret, private=private, repo_type="model", exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, token=secret, exist_ok=True)
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message,
            token=secret,
            revision=revision,
            repo_type="model",
        )
    except HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status in (401, 403):
            raise HubAuthError(
                f"The Hugging Face Hub refused the token (HTTP {status}): it is invalid, "
                f"expired, or cannot write to {repo_id}. {TOKEN_HELP}"
            ) from None
        raise HubError(
            f"Uploading to {repo_id} failed (HTTP {status}): {_redact(str(error), secret)}"
        ) from None
    except (OSError, HTTPError) as error:
        raise HubError(
            f"Could not reach the Hugging Face Hub to upload {repo_id} "
            f"({type(error).__name__}: {_redact(str(error), secret)}). Uploading needs network "
            "access (and HF_HUB_OFFLINE unset)."
        ) from None
    url = getattr(info, "commit_url", None) or f"https://huggingface.co/{repo_id}"
    logger.info("Uploaded %s", url)
    return str(url)
