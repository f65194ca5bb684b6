"""Modules renamed by the restructuring still import under their former names."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    ("former", "current"),
    [
        ("emorec.calibrate", "emorec.calibration"),
        ("emorec.evaluate", "emorec.evaluation.single_label"),
        ("emorec.evaluate_multilabel", "emorec.evaluation.multi_label"),
    ],
)
def test_former_module_names_give_the_same_objects(former: str, current: str) -> None:
    old, new = importlib.import_module(former), importlib.import_module(current)
    assert old.__all__ == new.__all__ and old.__all__
    for name in new.__all__:
        assert getattr(old, name) is getattr(new, name), name
