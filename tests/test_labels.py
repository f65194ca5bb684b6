import numpy as np
import pytest

from emorec.errors import DataError
from emorec.labels import LabelSpace


def test_single_label_from_data_sorted() -> None:
    space = LabelSpace.from_labels(["joy", "anger", "joy"])
    assert space.names == ("anger", "joy")
    assert not space.multi_label
    assert space.problem_type == "single_label_classification"
    np.testing.assert_array_equal(space.encode(["joy", "anger"]), [1, 0])


def test_order_is_respected_and_checked() -> None:
    space = LabelSpace.from_labels(["joy", "sadness"], order=["sadness", "joy", "love"])
    assert space.names == ("sadness", "joy", "love")
    with pytest.raises(DataError, match=r"\['fear'\].*not in the configured label list"):
        LabelSpace.from_labels(["fear"], order=["sadness", "joy"])


def test_list_labels_mean_multi_label() -> None:
    space = LabelSpace.from_labels([["joy", "love"], ["anger"]])
    assert space.multi_label
    encoded = space.encode([["joy", "love"], ["anger"], []])
    np.testing.assert_array_equal(encoded, [[0, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(space.counts(encoded), [1, 1, 1])


def test_errors() -> None:
    with pytest.raises(DataError, match="at least 2 labels"):
        LabelSpace(("joy",))
    with pytest.raises(DataError, match="unique"):
        LabelSpace(("joy", "joy"))
    with pytest.raises(DataError, match=r"Unknown label 'fear'"):
        LabelSpace(("joy", "anger")).encode(["fear"])


def test_round_trip() -> None:
    space = LabelSpace(("a", "b", "c"), multi_label=True)
    assert LabelSpace.from_dict(space.to_dict()) == space
