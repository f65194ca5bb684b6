"""Loading a run configuration: YAML, override files and ``--set key=value``, readable errors."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from emorec.config.schema import Config
from emorec.errors import ConfigError


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-5`` as a string; read it as the float everybody means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str = "<string>") -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source} is not valid YAML: {error}") from None


def _read_yaml_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path} (resolved to {path.resolve()}).")
    data = parse_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, got {type(data).__name__}.")
    return data


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update``: nested mappings merge, other values replace."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_override(data: dict[str, Any], assignment: str) -> tuple[str, ...]:
    """Apply one ``section.key=value`` override in place; return the key path it set."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment}: must look like `section.key=value`.")
    node = data
    parts = tuple(key.strip().split("."))
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment}: `{part}` is a value, not a section.")
        node = child
    node[parts[-1]] = parse_yaml(raw, f"--set {assignment}") if raw.strip() else None
    return parts


def _leaf_paths(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, value in data.items():
        path = (*prefix, str(key))
        paths.extend(_leaf_paths(value, path) if isinstance(value, dict) and value else [path])
    return paths


def _origin(loc: tuple[str, ...], origins: dict[tuple[str, ...], str]) -> str | None:
    """The override (``--set ...`` or a file) that set the value an error at ``loc`` is about."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in origins:
            return origins[loc[:end]]
    # A section's own check (e.g. `data`: path or files) failed: name the overrides inside it.
    inside = dict.fromkeys(o for k, o in origins.items() if loc and k[: len(loc)] == loc)
    return ", ".join(inside) or None


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at ``loc`` (for listing valid keys)."""
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def describe_error(error: dict[str, Any], root: type[BaseModel]) -> str:
    """One line for one pydantic error of a ``root`` model: the dotted key, what was wrong, the
    valid keys (with a close match) for an unknown one."""
    loc = tuple(error["loc"])
    dotted = ".".join(str(part) for part in loc) or "<root>"
    if error["type"] == "extra_forbidden":
        owner = _model_at(root, loc[:-1])
        valid = sorted(owner.model_fields) if owner else []
        hint = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        guess = f" Did you mean `{hint[0]}`?" if hint else ""
        return f"unknown key `{dotted}`.{guess} Valid keys here: {', '.join(valid)}."
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"`{dotted}` is required."
    given = error.get("input")
    shown = "" if isinstance(given, dict) else f" (got {given!r})"
    return f"`{dotted}`: {message}{shown}."


def validate_config(
    data: dict[str, Any],
    source: str = "config",
    origins: dict[tuple[str, ...], str] | None = None,
) -> Config:
    """Validate a config mapping, turning pydantic errors into one readable ConfigError.

    ``origins`` maps key paths to the override that set them (``--set key=value`` or an override
    file), so that an error a value given there caused names it rather than ``source``.
    """
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        found = [
            (_origin(tuple(str(p) for p in e["loc"]), origins or {}), describe_error(e, Config))
            for e in error.errors()
        ]
        if all(origin is None for origin, _ in found):
            lines = [line for _, line in found]
            raise ConfigError(f"Invalid {source}:\n  - " + "\n  - ".join(lines)) from None
        lines = [f"{origin or source}: {line}" for origin, line in found]
        raise ConfigError("Invalid config:\n  - " + "\n  - ".join(lines)) from None


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    override_files: list[str | Path] | None = None,
) -> Config:
    """Load a YAML config, merge override files (e.g. tuned ``best.yaml``), apply ``key=value``.

    Relative data and output paths are resolved from the current directory, not the config file.
    """
    data: dict[str, Any] = _read_yaml_file(Path(path)) if path is not None else {}
    origins: dict[tuple[str, ...], str] = {}
    for extra in override_files or []:
        update = _read_yaml_file(Path(extra))
        origins.update(dict.fromkeys(_leaf_paths(update), str(extra)))
        data = merge(data, update)
    for assignment in overrides or []:
        key = _apply_override(data, assignment)
        # This value replaces whatever an override file had put at or under the same key.
        origins = {k: o for k, o in origins.items() if k[: len(key)] != key}
        origins[key] = f"--set {assignment}"
    return validate_config(data, str(path) if path is not None else "config", origins)


def config_reference(
    model: type[BaseModel] = Config, prefix: str = ""
) -> list[tuple[str, str, str]]:
    """(key, default, description) rows for every leaf field: the README's config reference."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(config_reference(annotation, f"{key}."))
        else:
            default = (
                "required"
                if field.is_required()
                else repr(field.get_default(call_default_factory=True))
            )
            rows.append((key, default, field.description or ""))
    return rows


def config_reference_markdown() -> str:
    """The config reference as a Markdown table (kept in README.md; a test checks it is current)."""
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    for key, default, description in config_reference():
        escaped = description.replace("|", "\\|")
        lines.append(f"| `{key}` | `{default}` | {escaped} |")
    return "\n".join(lines)
