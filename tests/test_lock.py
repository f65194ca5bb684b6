"""requirements/lock.txt: what scripts/setup.sh and CI install, and what this suite runs on."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)(\s*;.*)?", line.strip())
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_setup_installs_from_the_lock() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "-c requirements/lock.txt" in setup
    assert 'pip install --quiet "torch==2.13.0"' in setup


def test_the_lock_pins_every_dependency_within_pyproject_ranges() -> None:
    pins = locked()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [
        *project["dependencies"],
        *(r for extra in project["optional-dependencies"].values() for r in extra),
    ]
    for text in requirements:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name in ("emorec", "torch"):  # torch: the CPU build, installed before the lock
            continue
        assert name in pins, (
            f"{requirement.name} is not in requirements/lock.txt: run scripts/lock.sh"
        )
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"lock.txt has {name}=={pins[name]}, outside pyproject's {requirement}"
        )
    assert "torch" not in pins


def test_this_environment_matches_the_lock() -> None:
    """A suite run on other versions than the lock's proves nothing about a fresh install."""
    mismatched = {}
    for name, version in locked().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # platform-specific pins (markers) need not be installed here
        if installed != version:
            mismatched[name] = f"installed {installed}, locked {version}"
    assert not mismatched, f"re-run scripts/setup.sh: {mismatched}"
