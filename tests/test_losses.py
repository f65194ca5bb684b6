"""Losses are tied to their definitions: focal(γ=0) = CE, ASL(0, 0, 0) = BCE, and so on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from emorec.errors import ConfigError, DataError
from emorec.losses import (
    AsymmetricLoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    FocalBCELoss,
    FocalLoss,
    LossConfig,
    build_loss,
    class_weights,
    pos_weights,
)
from emorec.task import MULTI_LABEL, SINGLE_LABEL, task_for

B, C = 12, 5


@pytest.fixture
def single() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, C, generator=g) * 3
    targets = torch.randint(0, C, (B,), generator=g)
    weight = torch.rand(C, generator=g) + 0.2
    return logits, targets, weight


@pytest.fixture
def multi() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(B, C, generator=g) * 3
    targets = (torch.rand(B, C, generator=g) < 0.3).float()
    pos_weight = torch.rand(C, generator=g) * 4 + 0.5
    return logits, targets, pos_weight


# --------------------------------------------------------------------------- weights


def test_class_weights_alpha_zero_is_ones() -> None:
    torch.testing.assert_close(class_weights([100, 25, 7], alpha=0.0), torch.ones(3))


def test_class_weights_square_root_ratio_and_mean() -> None:
    w = class_weights([100, 25], alpha=0.5)
    assert w[1] / w[0] == pytest.approx(2.0)
    assert w.mean().item() == pytest.approx(1.0)
    assert w.dtype == torch.float32


def test_class_weights_inverse_frequency() -> None:
    counts = np.array([50, 30, 20])
    w = class_weights(counts, alpha=1.0).numpy()
    expected = (counts.sum() / counts) / (counts.sum() / counts).mean()
    np.testing.assert_allclose(w, expected, rtol=1e-6)


def test_class_weights_zero_count_names_the_class() -> None:
    with pytest.raises(DataError, match=r"class 1 \('fear'\) has no training examples"):
        class_weights([10, 0, 3], names=["joy", "fear", "anger"])
    with pytest.raises(DataError, match="class 2 has no training examples"):
        class_weights([10, 4, 0])


def test_class_weights_rejects_bad_alpha() -> None:
    with pytest.raises(ConfigError, match=r"alpha must be in \[0, 1\].*got 2"):
        class_weights([1, 2], alpha=2)


def test_pos_weights_formula() -> None:
    torch.testing.assert_close(pos_weights([10, 50], 100, alpha=1.0), torch.tensor([9.0, 1.0]))
    torch.testing.assert_close(pos_weights([10, 50], 100, alpha=0.5), torch.tensor([3.0, 1.0]))
    torch.testing.assert_close(pos_weights([10, 50], 100, alpha=0.0), torch.ones(2))


def test_pos_weights_degenerate_labels() -> None:
    with pytest.raises(DataError, match=r"class 0 \('joy'\) is positive in no training example"):
        pos_weights([0, 5], 10, names=["joy", "fear"])
    with pytest.raises(DataError, match="class 1 is positive in every training example"):
        pos_weights([3, 10], 10)
    with pytest.raises(DataError, match="has 11 positives but n_samples is 10"):
        pos_weights([11, 3], 10)


# --------------------------------------------------------------------------- single-label


@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_focal_gamma_zero_equals_cross_entropy(single, use_weight: bool, smoothing: float) -> None:
    logits, y, w = single
    weight = w if use_weight else None
    got = FocalLoss(gamma=0.0, weight=weight, label_smoothing=smoothing)(logits, y)
    expected = F.cross_entropy(logits, y, weight=weight, label_smoothing=smoothing)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("use_weight", [False, True])
def test_cross_entropy_smoothing_zero_equals_plain(single, use_weight: bool) -> None:
    logits, y, w = single
    weight = w if use_weight else None
    got = CrossEntropyLoss(weight=weight, label_smoothing=0.0)(logits, y)
    torch.testing.assert_close(got, F.cross_entropy(logits, y, weight=weight))


def test_focal_matches_textbook_definition(single) -> None:
    logits, y, w = single
    p_t = logits.softmax(1)[torch.arange(B), y]
    per_sample = -w[y] * (1 - p_t) ** 2 * p_t.log()
    expected = per_sample.sum() / w[y].sum()
    torch.testing.assert_close(FocalLoss(gamma=2.0, weight=w)(logits, y), expected)


def test_focal_down_weights_easy_examples(single) -> None:
    logits, y, _ = single
    assert FocalLoss(gamma=2.0)(logits, y) < F.cross_entropy(logits, y)


# --------------------------------------------------------------------------- multi-label


def test_bce_pos_weight_one_equals_torch_bce(multi) -> None:
    logits, t, _ = multi
    got = BCEWithLogitsLoss(pos_weight=torch.ones(C))(logits, t)
    torch.testing.assert_close(got, F.binary_cross_entropy_with_logits(logits, t))
    torch.testing.assert_close(BCEWithLogitsLoss()(logits, t), got)


def test_bce_pos_weight_and_smoothing(multi) -> None:
    logits, t, pw = multi
    got = BCEWithLogitsLoss(pos_weight=pw, label_smoothing=0.2)(logits, t)
    smoothed = t * 0.8 + 0.1
    expected = F.binary_cross_entropy_with_logits(logits, smoothed, pos_weight=pw)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("use_pos_weight", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_focal_bce_gamma_zero_equals_bce(multi, use_pos_weight: bool, smoothing: float) -> None:
    logits, t, pw = multi
    pos_weight = pw if use_pos_weight else None
    got = FocalBCELoss(gamma=0.0, pos_weight=pos_weight, label_smoothing=smoothing)(logits, t)
    expected = BCEWithLogitsLoss(pos_weight=pos_weight, label_smoothing=smoothing)(logits, t)
    torch.testing.assert_close(got, expected)


def test_focal_bce_matches_definition(multi) -> None:
    logits, t, pw = multi
    p = logits.sigmoid()
    expected = -(pw * t * (1 - p) ** 2 * p.log() + (1 - t) * p**2 * (1 - p).log()).mean()
    got = FocalBCELoss(gamma=2.0, pos_weight=pw)(logits, t)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_asymmetric_reduces_to_bce(multi) -> None:
    logits, t, _ = multi
    got = AsymmetricLoss(gamma_pos=0.0, gamma_neg=0.0, clip=0.0)(logits, t)
    torch.testing.assert_close(got, F.binary_cross_entropy_with_logits(logits, t))


def test_asymmetric_matches_definition(multi) -> None:
    logits, t, _ = multi
    p = logits.sigmoid()
    p_m = (p - 0.05).clamp(min=0)
    per = t * (1 - p) ** 1 * p.log() + (1 - t) * p_m**4 * (1 - p_m).log()
    got = AsymmetricLoss(gamma_pos=1.0, gamma_neg=4.0, clip=0.05)(logits, t)
    torch.testing.assert_close(got, -per.mean(), rtol=1e-5, atol=1e-7)


def test_asymmetric_clip_ignores_easy_negatives() -> None:
    logits = torch.tensor([[-5.0, -6.0]])  # p < 0.01 < clip for both
    assert AsymmetricLoss(clip=0.05)(logits, torch.zeros(1, 2)).item() == 0.0


# --------------------------------------------------------------------------- gradients, shapes


ALL_LOSSES = [
    (CrossEntropyLoss(weight=[1.0, 2, 1, 1, 0.5], label_smoothing=0.1), False),
    (FocalLoss(gamma=2.0, weight=[1.0, 2, 1, 1, 0.5], label_smoothing=0.1), False),
    (FocalLoss(gamma=0.5), False),
    (BCEWithLogitsLoss(pos_weight=[2.0] * C, label_smoothing=0.1), True),
    (FocalBCELoss(gamma=2.0, pos_weight=[2.0] * C), True),
    (FocalBCELoss(gamma=0.5), True),
    (AsymmetricLoss(), True),
    (AsymmetricLoss(gamma_pos=0.5, gamma_neg=0.5, clip=0.0), True),
]


@pytest.mark.parametrize(("loss", "multi_label"), ALL_LOSSES)
def test_losses_backprop_finite_even_when_saturated(loss: torch.nn.Module, multi_label) -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(B, C, generator=g) * 3
    logits[:3] *= 40  # saturated softmax/sigmoid: p == 1 or 0 in float32
    logits.requires_grad_(True)
    targets = (
        (torch.rand(B, C, generator=g) < 0.3).float()
        if multi_label
        else logits.detach().argmax(1)  # confident and right: the (1 - p)^gamma -> 0 corner
    )
    value = loss(logits, targets)
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value)
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_wrong_target_shape_is_explained(single, multi) -> None:
    with pytest.raises(ValueError, match=r"targets must be \(B,\) class indices"):
        FocalLoss()(single[0], multi[1])
    with pytest.raises(ValueError, match=r"targets must be \(B, C\) multi-hot"):
        FocalBCELoss()(multi[0], single[1])


def test_weights_follow_the_module_to_device_and_state_dict() -> None:
    loss = FocalLoss(weight=[1.0, 2.0])
    assert "weight" in loss.state_dict()
    assert loss.to(torch.float64).weight.dtype == torch.float64


# --------------------------------------------------------------------------- config + factory

COUNTS = np.array([100, 25, 10, 5, 60])


@pytest.mark.parametrize(
    ("loss_type", "multi_label", "cls"),
    [
        ("cross_entropy", False, CrossEntropyLoss),
        ("weighted_cross_entropy", False, CrossEntropyLoss),
        ("focal", False, FocalLoss),
        ("bce", True, BCEWithLogitsLoss),
        ("focal_bce", True, FocalBCELoss),
        ("asymmetric", True, AsymmetricLoss),
    ],
)
def test_build_loss_types(loss_type: str, multi_label: bool, cls: type) -> None:
    config = LossConfig(loss_type=loss_type)
    loss = build_loss(config, task=task_for(multi_label), label_counts=COUNTS, n_samples=200)
    assert isinstance(loss, cls)


def test_build_loss_weights() -> None:
    kw = {"label_counts": COUNTS, "n_samples": 200}
    plain = build_loss(LossConfig(), task=SINGLE_LABEL, **kw)
    assert plain.weight is None
    weighted = build_loss(
        LossConfig(loss_type="weighted_cross_entropy", smoothing_alpha=1.0), task=SINGLE_LABEL, **kw
    )
    torch.testing.assert_close(weighted.weight, class_weights(COUNTS, 1.0))
    focal = build_loss(LossConfig(loss_type="focal"), task=SINGLE_LABEL, **kw)
    torch.testing.assert_close(focal.weight, class_weights(COUNTS, 0.5))
    unweighted = build_loss(
        LossConfig(loss_type="focal", focal_use_class_weights=False), task=SINGLE_LABEL, **kw
    )
    assert unweighted.weight is None
    auto = build_loss(LossConfig(loss_type="bce", pos_weight="auto"), task=MULTI_LABEL, **kw)
    torch.testing.assert_close(auto.pos_weight, pos_weights(COUNTS, 200, 0.5))
    explicit = build_loss(
        LossConfig(loss_type="focal_bce", pos_weight=[1, 2, 3, 4, 5]), task=MULTI_LABEL, **kw
    )
    torch.testing.assert_close(explicit.pos_weight, torch.arange(1.0, 6.0))
    assert build_loss(LossConfig(loss_type="bce"), task=MULTI_LABEL, **kw).pos_weight is None


def test_build_loss_rejects_loss_of_the_other_problem_type() -> None:
    kw = {"label_counts": COUNTS, "n_samples": 200}
    with pytest.raises(ConfigError, match="'bce' is a multi-label loss but this is a single-label"):
        build_loss(LossConfig(loss_type="bce"), task=SINGLE_LABEL, **kw)
    with pytest.raises(ConfigError, match=r"multi-label problems take one of 'bce', 'focal_bce'"):
        build_loss(LossConfig(loss_type="focal"), task=MULTI_LABEL, **kw)


def test_build_loss_rejects_misplaced_pos_weight() -> None:
    kw = {"label_counts": COUNTS, "n_samples": 200}
    with pytest.raises(ConfigError, match="pos_weight only applies to loss_type 'bce'"):
        build_loss(LossConfig(pos_weight=[1.0] * 5), task=SINGLE_LABEL, **kw)
    with pytest.raises(ConfigError, match="pos_weight has 2 values but the problem has 5 labels"):
        build_loss(LossConfig(loss_type="bce", pos_weight=[1.0, 2.0]), task=MULTI_LABEL, **kw)


def test_loss_config_validation() -> None:
    with pytest.raises(ValidationError, match="label_smoothing"):
        LossConfig(label_smoothing=1.0)
    with pytest.raises(ValidationError, match="smoothing_alpha"):
        LossConfig(smoothing_alpha=1.5)
    with pytest.raises(ValidationError, match="loss_type"):
        LossConfig(loss_type="hinge")
    with pytest.raises(ValidationError, match="focal_gama"):
        LossConfig(focal_gama=2.0)
    with pytest.raises(ValidationError, match="pos_weight"):
        LossConfig(pos_weight=[1.0, -2.0])
    assert all(f.description for f in LossConfig.model_fields.values())
