"""README.md stays true: its contents links land on real headings, and the "Train on your own
data" walk-through runs as written (its config and commands, from the data's own folder)."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from emorec.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
runner = CliRunner()


def _outside_code(text: str) -> list[str]:
    """The README's lines that are not inside fenced code blocks (a ``# comment`` there is no
    heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _headings(lines: list[str]) -> list[tuple[int, str, str]]:
    """(level, title, anchor) of every heading, numbered like GitHub when titles repeat."""
    found, seen = [], {}
    for line in lines:
        match = re.match(r"^(#{1,6}) (.+?)\s*$", line)
        if match is None:
            continue
        base = _slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.append(
            (len(match.group(1)), match.group(2), base if not count else f"{base}-{count}")
        )
    return found


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.M | re.S)


def test_contents_links_land_on_real_headings() -> None:
    text = README.read_text(encoding="utf-8")
    lines = _outside_code(text)
    headings = _headings(lines)
    anchors = {anchor for _, _, anchor in headings}
    contents = _section(text, "Contents")
    listed = re.findall(r"\]\(#([^)]+)\)", contents)
    assert listed, "README has no table of contents under '## Contents'"
    assert not [a for a in listed if a not in anchors], "contents links without a heading"
    # Every section is listed, in the order of the page (a section added later must be too).
    sections = [anchor for level, _, anchor in headings if level == 2 and anchor != "contents"]
    assert [a for a in listed if a in sections] == sections, (
        "README's contents must list every '## ' section in page order"
    )
    # Links elsewhere on the page, like [Tuning](#tuning), land on a heading too.
    broken = sorted({a for line in lines for a in re.findall(r"\]\(#([^)]+)\)", line)} - anchors)
    assert not broken, f"README links to missing headings: {broken}"


def test_anchor_slugs_follow_github() -> None:
    assert _slug("Use a trained model from Python") == "use-a-trained-model-from-python"
    assert _slug("Reading the deletion curve and AOPC") == "reading-the-deletion-curve-and-aopc"
    assert _slug("Publish to the Hub (`emorec push`)") == "publish-to-the-hub-emorec-push"
    assert [a for *_, a in _headings(["## Usage", "## Usage"])] == ["usage", "usage-1"]


def test_train_on_your_own_data_runs_as_written(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = _section(README.read_text(encoding="utf-8"), "Train on your own data")
    (config_text,) = _fenced(section, "yaml")
    assert len(config_text.strip().splitlines()) == 5  # the README promises five lines
    config = yaml.safe_load(config_text)
    data = config["data"]
    (sample,) = _fenced(section, "csv")
    header, *sample_rows = list(csv.reader(io.StringIO(sample)))
    assert header == [data["text_column"], data["label_column"]]
    labels = sorted({label for _, label in sample_rows})

    # The data's own folder, somewhere outside the repository: the config, and a CSV with the
    # sample's columns and labels, big enough for a stratified 90/5/5 split.
    folder = tmp_path / "my-project"
    folder.mkdir()
    (folder / "reviews.yaml").write_text(config_text, encoding="utf-8")
    with (folder / data["path"]).open("w", newline="", encoding="utf-8") as handle:
        rows = [(f"{text} (take {i})", label) for i in range(20) for text, label in sample_rows]
        csv.writer(handle).writerows([header, *rows])

    # The tiny random model instead of MiniLM, and two steps: the rest is the README's config.
    fast = [
        f"model.name={tiny_model_dir}",
        "model.max_length=32",
        "training.max_steps=2",
        "training.per_device_train_batch_size=8",
    ]
    (bash,) = _fenced(section, "bash")
    commands = [
        shlex.split(line, comments=True)[1:]
        for line in bash.splitlines()
        if line.startswith("emorec ")
    ]
    assert [c[0] for c in commands] == ["run", "predict"]
    monkeypatch.chdir(folder)
    for command in commands:
        extra = [arg for o in fast for arg in ("--set", o)] if command[0] == "run" else []
        result = runner.invoke(app, [*command, *extra])
        assert result.exit_code == 0, result.output

    # Everything landed in the folder it ran from, as the README says.
    model_dir = folder / "models" / config["run_name"]
    meta = json.loads((model_dir / "emorec.json").read_text())
    assert meta["label_space"]["names"] == labels  # the CSV's labels, sorted
    assert (model_dir / "README.md").is_file()
    assert (folder / "results" / config["run_name"] / "metrics.json").is_file()
    assert (folder / ".emorec_cache").is_dir()
    card = (model_dir / "README.md").read_text(encoding="utf-8")
    assert "**made by emorec**" in card  # one file: emorec's own split, said so

    # From another folder the relative data path no longer resolves: one clear line, exit 2.
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "my-project/reviews.yaml", "--set", fast[0]])
    assert result.exit_code == 2, result.output
    assert f"Data path not found: {data['path']} (resolved to" in result.output
    assert "Traceback" not in result.output
