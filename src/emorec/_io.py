"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every writer goes through :func:`atomic_path`: write a temporary file in the target's directory
(same filesystem, so ``os.replace`` is an atomic rename), fsync it, then replace the target.
On any exception the temporary file is removed and the previous target is left untouched.

Every reader of a user's text file (training data, prediction input) opens it with
:func:`open_text`, so all of them decode it the same way.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any, TextIO

import numpy as np

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "open_text",
    "to_builtin",
]


@functools.cache
def _umask() -> int:
    # The umask can only be read by setting it; do that once per process, not on every write.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    The temporary name keeps ``path``'s suffix, so tools that infer the format from the
    extension (``Figure.savefig``, ``DataFrame.to_csv(compression="infer")``) still work::

        with atomic_path(out / "plot.png") as tmp:
            fig.savefig(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", delete=False
    ) as handle:
        tmp = Path(handle.name)
    try:
        yield tmp
        # fsync before the rename, or a crash can leave the new name pointing at empty data.
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # NamedTemporaryFile creates 0600 files; give the result the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def open_text(path: str | os.PathLike[str], newline: str | None = None) -> TextIO:
    """Open a user's UTF-8 text file for reading, without its byte-order mark if it has one.

    Excel and Notepad write a BOM (``\\ufeff``) at the start of "UTF-8" files; read as plain
    UTF-8 it would end up in the first header name or the first text. ``newline=""`` is for
    the ``csv`` module, which handles line endings itself.
    """
    return Path(path).open(encoding="utf-8-sig", errors="strict", newline=newline)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating parent directories."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically as UTF-8 (newlines written as given)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def to_builtin(obj: Any, *, nan_to_none: bool = False) -> Any:
    """Recursively turn numpy scalars/arrays, tuples and paths into plain Python values.

    With ``nan_to_none`` every non-finite float (NaN, ±inf) becomes ``None``, because strict
    JSON has no spelling for them.
    """
    if isinstance(obj, dict):
        return {to_builtin(k): to_builtin(v, nan_to_none=nan_to_none) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_builtin(v, nan_to_none=nan_to_none) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_builtin(obj.tolist(), nan_to_none=nan_to_none)
    if isinstance(obj, np.generic):
        return to_builtin(obj.item(), nan_to_none=nan_to_none)
    if isinstance(obj, PurePath):
        return str(obj)
    if nan_to_none and isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as strict, indented UTF-8 JSON atomically (numpy converted, NaN → null)."""
    text = json.dumps(
        to_builtin(obj, nan_to_none=True),
        indent=2,
        sort_keys=False,
        allow_nan=False,
        ensure_ascii=False,
    )
    atomic_write_text(path, text + "\n")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (constant memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
