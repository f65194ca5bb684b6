"""Training losses for single-label and multi-label emotion classification, behind one factory.

Shapes (every loss here): ``logits`` (B, C) float; ``targets`` (B,) long class indices for the
single-label losses, (B, C) float multi-hot (or soft) for the multi-label ones. Every loss
returns the scalar mean over the batch, so they are interchangeable in the training loop.

Single-label: :class:`CrossEntropyLoss` (optionally class-weighted), :class:`FocalLoss`.
Multi-label: :class:`BCEWithLogitsLoss`, :class:`FocalBCELoss`, :class:`AsymmetricLoss`.
:func:`build_loss` picks one from a :class:`LossConfig` and the training label counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emorec.config.sections import LossConfig
from emorec.errors import ConfigError, DataError
from emorec.task import MULTI_LABEL, SINGLE_LABEL, Task

__all__ = [
    "MULTI_LABEL_LOSSES",
    "SINGLE_LABEL_LOSSES",
    "AsymmetricLoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "FocalBCELoss",
    "FocalLoss",
    "LossConfig",
    "build_loss",
    "class_weights",
    "pos_weights",
]

SINGLE_LABEL_LOSSES = SINGLE_LABEL.losses
MULTI_LABEL_LOSSES = MULTI_LABEL.losses

# Floor for the base of a focal modulating factor: d/dx x**gamma is inf at x=0 for gamma<1,
# and inf * 0 turns into NaN gradients once a prediction saturates (p == 1 in float32).
_POW_FLOOR = 1e-12


# --------------------------------------------------------------------------- weights


def _counts_array(counts: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(counts, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(
            f"{name} must be a non-empty 1-D sequence of counts; got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise DataError(f"{name} must hold non-negative finite counts; got {arr.tolist()}.")
    return arr


def _label_name(index: int, names: Sequence[str] | None) -> str:
    return f"class {index} ({names[index]!r})" if names is not None else f"class {index}"


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(
            f"alpha must be in [0, 1] (0: no weighting, 0.5: square root, 1: inverse frequency); "
            f"got {alpha!r}."
        )


def _check_names(names: Sequence[str] | None, n: int) -> None:
    if names is not None and len(names) != n:
        raise ConfigError(f"names has {len(names)} entries but there are {n} counts.")


def class_weights(
    counts: Sequence[int] | np.ndarray,
    alpha: float = 0.5,
    names: Sequence[str] | None = None,
) -> torch.Tensor:
    """Per-class loss weights ``w_c ∝ (N / n_c) ** alpha``, normalised to mean 1.

    ``counts`` (C,) are the training examples per class and ``N = sum(counts)``. ``alpha=0``
    gives all ones, ``0.5`` square-root smoothing, ``1`` inverse frequency. Mean 1 keeps the
    loss scale (and so the learning rate) comparable with unweighted CE. A class with zero
    examples is a :class:`DataError` naming it (``names`` (C,) makes the message readable).
    Returns a float32 tensor of shape (C,).
    """
    _check_alpha(alpha)
    n_c = _counts_array(counts, "counts")
    _check_names(names, n_c.size)
    empty = np.flatnonzero(n_c == 0)
    if empty.size:
        raise DataError(
            f"{_label_name(int(empty[0]), names)} has no training examples, so it has no class "
            "weight; add examples of it or remove it from the label space."
        )
    w = (n_c.sum() / n_c) ** alpha
    return torch.tensor(w / w.mean(), dtype=torch.float32)


def pos_weights(
    positive_counts: Sequence[int] | np.ndarray,
    n_samples: int,
    alpha: float = 0.5,
    names: Sequence[str] | None = None,
) -> torch.Tensor:
    """Multi-label ``pos_weight`` for BCE: ``((N - n_c) / n_c) ** alpha``, not normalised.

    ``positive_counts`` (C,) are the training examples carrying label c, ``n_samples`` is N.
    ``alpha=1`` is the negatives/positives ratio suggested by torch's ``BCEWithLogitsLoss``
    docs (a label on 1 % of examples weighs its positives 99x); ``0.5`` is its square root;
    ``0`` is all ones. The weights are ratios between a label's positive and negative terms,
    which is why they are not normalised. A label with no positives, or one positive in every
    example (weight 0 would teach the model to never predict it), is a :class:`DataError`.
    Returns a float32 tensor of shape (C,).
    """
    _check_alpha(alpha)
    n_c = _counts_array(positive_counts, "positive_counts")
    _check_names(names, n_c.size)
    if n_samples <= 0:
        raise DataError(f"n_samples must be positive; got {n_samples!r}.")
    if np.any(n_c > n_samples):
        bad = int(np.flatnonzero(n_c > n_samples)[0])
        raise DataError(
            f"{_label_name(bad, names)} has {int(n_c[bad])} positives but n_samples is "
            f"{n_samples}; positive_counts must be counts over the same {n_samples} examples."
        )
    for bad, what in (
        (np.flatnonzero(n_c == 0), "is positive in no training example"),
        (np.flatnonzero(n_c == n_samples), "is positive in every training example"),
    ):
        if bad.size:
            raise DataError(
                f"{_label_name(int(bad[0]), names)} {what}, so its pos_weight is undefined; "
                "fix the training data or remove the label."
            )
    return torch.tensor(((n_samples - n_c) / n_c) ** alpha, dtype=torch.float32)


# --------------------------------------------------------------------------- helpers


def _check_shapes(logits: torch.Tensor, targets: torch.Tensor, task: Task) -> None:
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (B, C); got {tuple(logits.shape)}.")
    task.check_batch_shapes(logits.shape, targets.shape)


def _init_focal(
    loss: nn.Module,
    gamma: float,
    label_smoothing: float,
    weight_name: str,
    weight: torch.Tensor | Sequence[float] | None,
) -> None:
    """What both focal losses keep: the checked focusing ``gamma`` and smoothing, and their
    (class or positive) weights as a buffer, so that ``.to(device)`` moves them along."""
    _check_non_negative(gamma, "gamma")
    _check_unit(label_smoothing, "label_smoothing")
    loss.gamma = gamma
    loss.label_smoothing = label_smoothing
    loss.register_buffer(weight_name, _as_buffer(weight))


def _modulate(base: torch.Tensor, gamma: float) -> torch.Tensor:
    """``base ** gamma`` with a gradient-safe floor. Callers skip it for gamma == 0 so that
    the gamma=0 losses are bit-for-bit the plain ones."""
    return base.clamp(min=_POW_FLOOR).pow(gamma)


def _smooth_multi_hot(targets: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    # Binary smoothing: each label's target moves eps/2 towards 0.5 (1 -> 1-eps/2, 0 -> eps/2).
    if label_smoothing == 0:
        return targets
    return targets * (1.0 - label_smoothing) + label_smoothing / 2.0


def _check_unit(value: float, name: str) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} must be in [0, 1); got {value!r}.")


def _check_non_negative(value: float, name: str) -> None:
    if not value >= 0.0:
        raise ConfigError(f"{name} must be >= 0; got {value!r}.")


def _as_buffer(value: torch.Tensor | Sequence[float] | None) -> torch.Tensor | None:
    return None if value is None else torch.as_tensor(value, dtype=torch.float32)


# --------------------------------------------------------------------------- single-label


class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy, optionally class-weighted and label-smoothed.

    logits (B, C) float, targets (B,) long -> scalar. ``weight`` (C,) follows torch: the
    weighted mean is ``sum_i w_{y_i} l_i / sum_i w_{y_i}``.
    """

    weight: torch.Tensor | None

    def __init__(
        self, weight: torch.Tensor | Sequence[float] | None = None, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        _check_unit(label_smoothing, "label_smoothing")
        self.register_buffer("weight", _as_buffer(weight))
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, targets, SINGLE_LABEL)
        return F.cross_entropy(
            logits, targets, weight=self.weight, label_smoothing=self.label_smoothing
        )


class FocalLoss(nn.Module):
    """Softmax focal loss (Lin et al. 2017) with class weights and label smoothing.

    logits (B, C) float, targets (B,) long -> scalar. With ``p = softmax(logits)``, smoothed
    targets ``q = (1 - eps) * onehot(y) + eps / C`` and class weights ``w`` (C,)::

        loss = sum_i sum_c w_c q_ic (1 - p_ic)^gamma (-log p_ic) / sum_i w_{y_i}

    Each term is weighted by the class it is about and the mean is normalised by the weight
    of the true classes. That is exactly torch's definition of weighted, label-smoothed CE,
    so ``gamma=0`` equals ``F.cross_entropy(logits, y, weight=w, label_smoothing=eps)`` for
    every combination of weights and smoothing. Without smoothing it is the textbook
    ``-w_y (1 - p_y)^gamma log p_y``, with the class weights playing the role of alpha.
    Computed in float32 whatever the logits' dtype.
    """

    weight: torch.Tensor | None

    def __init__(
        self,
        gamma: float = 2.0,
        weight: torch.Tensor | Sequence[float] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        _init_focal(self, gamma, label_smoothing, "weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, targets, SINGLE_LABEL)
        n_classes = logits.shape[1]
        log_p = F.log_softmax(logits.float(), dim=1)  # (B, C)
        # -expm1(log p) is 1 - p without cancellation when p is close to 1.
        nll = -log_p  # (B, C)
        if self.gamma > 0:
            nll = nll * _modulate(-torch.expm1(log_p), self.gamma)
        q = torch.full_like(nll, self.label_smoothing / n_classes)
        q.scatter_add_(1, targets.unsqueeze(1), torch.full_like(q[:, :1], 1 - self.label_smoothing))
        if self.weight is None:
            return (q * nll).sum(dim=1).mean()
        w = self.weight.to(nll.dtype)
        return (q * nll * w).sum() / w[targets].sum()


# --------------------------------------------------------------------------- multi-label


class BCEWithLogitsLoss(nn.Module):
    """Sigmoid binary cross-entropy per label, with ``pos_weight`` and label smoothing.

    logits (B, C) float, targets (B, C) float multi-hot -> scalar mean over B * C. Smoothing
    replaces targets by ``y * (1 - eps) + eps / 2``. ``pos_weight`` (C,) scales each label's
    positive term (see :func:`pos_weights`).
    """

    pos_weight: torch.Tensor | None

    def __init__(
        self, pos_weight: torch.Tensor | Sequence[float] | None = None, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        _check_unit(label_smoothing, "label_smoothing")
        self.register_buffer("pos_weight", _as_buffer(pos_weight))
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, targets, MULTI_LABEL)
        t = _smooth_multi_hot(targets.float(), self.label_smoothing)
        return F.binary_cross_entropy_with_logits(logits.float(), t, pos_weight=self.pos_weight)


class FocalBCELoss(nn.Module):
    """Sigmoid focal loss per label, with ``pos_weight`` and label smoothing.

    logits (B, C) float, targets (B, C) float multi-hot -> scalar mean over B * C. With
    ``p = sigmoid(logits)`` and smoothed targets ``t``::

        loss = -[pos_weight * t * (1 - p)^gamma * log p + (1 - t) * p^gamma * log(1 - p)]

    ``gamma=0`` equals :class:`BCEWithLogitsLoss` with the same ``pos_weight`` and smoothing.
    Computed in float32 whatever the logits' dtype.
    """

    pos_weight: torch.Tensor | None

    def __init__(
        self,
        gamma: float = 2.0,
        pos_weight: torch.Tensor | Sequence[float] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        _init_focal(self, gamma, label_smoothing, "pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, targets, MULTI_LABEL)
        x = logits.float()
        t = _smooth_multi_hot(targets.float(), self.label_smoothing)
        pos = t * F.logsigmoid(x)  # (B, C)
        neg = (1 - t) * F.logsigmoid(-x)
        if self.gamma > 0:
            # sigmoid(-x) is 1 - p without cancellation.
            pos = pos * _modulate(torch.sigmoid(-x), self.gamma)
            neg = neg * _modulate(torch.sigmoid(x), self.gamma)
        if self.pos_weight is not None:
            pos = pos * self.pos_weight
        return -(pos + neg).mean()


class AsymmetricLoss(nn.Module):
    """Asymmetric loss for multi-label classification (Ridnik et al., ICCV 2021).

    logits (B, C) float, targets (B, C) float multi-hot -> scalar mean over B * C. With
    ``p = sigmoid(logits)`` and the shifted negative probability ``p_m = max(p - clip, 0)``::

        loss = -[t * (1 - p)^gamma_pos * log p + (1 - t) * p_m^gamma_neg * log(1 - p_m)]

    ``gamma_neg > gamma_pos`` down-weights the many easy negatives; ``clip`` discards
    negatives the model already scores below ``clip``. Unlike the paper's reference code
    (a sum) this is a mean, so ``gamma_pos = gamma_neg = clip = 0`` equals
    :class:`BCEWithLogitsLoss`. ``label_smoothing`` works as in the BCE losses.
    """

    def __init__(
        self,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        _check_non_negative(gamma_pos, "gamma_pos")
        _check_non_negative(gamma_neg, "gamma_neg")
        _check_unit(clip, "clip")
        _check_unit(label_smoothing, "label_smoothing")
        self.gamma_pos = gamma_pos
        self.gamma_neg = gamma_neg
        self.clip = clip
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, targets, MULTI_LABEL)
        x = logits.float()
        t = _smooth_multi_hot(targets.float(), self.label_smoothing)
        pos = t * F.logsigmoid(x)  # (B, C)
        if self.gamma_pos > 0:
            pos = pos * _modulate(torch.sigmoid(-x), self.gamma_pos)
        if self.clip > 0:
            p_m = (torch.sigmoid(x) - self.clip).clamp(min=0)
            # 1 - p_m = min(1 - p + clip, 1) >= clip, so the log is finite.
            log_1m_pm = torch.log((torch.sigmoid(-x) + self.clip).clamp(max=1))
        else:
            p_m, log_1m_pm = torch.sigmoid(x), F.logsigmoid(-x)
        neg = (1 - t) * log_1m_pm
        if self.gamma_neg > 0:
            neg = neg * _modulate(p_m, self.gamma_neg)
        return -(pos + neg).mean()


# --------------------------------------------------------------------------- config + factory


def build_loss(
    config: LossConfig,
    *,
    task: Task,
    label_counts: Sequence[int] | np.ndarray,
    n_samples: int,
    names: Sequence[str] | None = None,
) -> nn.Module:
    """Build the loss module ``config`` describes for a problem with the given label counts.

    ``label_counts`` (C,) are training examples per class (single-label) or positives per
    label (multi-label); ``n_samples`` is the number of training examples (used for
    multi-label ``pos_weight='auto'``); ``names`` (C,) only make error messages readable.
    A loss that does not fit the problem type is a :class:`ConfigError`.
    """
    lt = config.loss_type
    counts = _counts_array(label_counts, "label_counts")
    task.check_loss(lt)
    if config.pos_weight is not None and lt not in ("bce", "focal_bce"):
        raise ConfigError(
            f"pos_weight only applies to loss_type 'bce' or 'focal_bce'; got loss_type={lt!r}. "
            "Remove pos_weight or change loss_type."
        )
    eps = config.label_smoothing

    if lt == "cross_entropy":
        return CrossEntropyLoss(label_smoothing=eps)
    if lt == "weighted_cross_entropy":
        return CrossEntropyLoss(class_weights(counts, config.smoothing_alpha, names), eps)
    if lt == "focal":
        weight = (
            class_weights(counts, config.smoothing_alpha, names)
            if config.focal_use_class_weights
            else None
        )
        return FocalLoss(config.focal_gamma, weight, eps)
    if lt == "asymmetric":
        return AsymmetricLoss(config.asl_gamma_pos, config.asl_gamma_neg, config.asl_clip, eps)

    pos_weight: torch.Tensor | None = None
    if config.pos_weight == "auto":
        pos_weight = pos_weights(counts, n_samples, config.smoothing_alpha, names)
    elif config.pos_weight is not None:
        if len(config.pos_weight) != counts.size:
            raise ConfigError(
                f"pos_weight has {len(config.pos_weight)} values but the problem has "
                f"{counts.size} labels; give one weight per label, in label order."
            )
        pos_weight = torch.tensor(config.pos_weight, dtype=torch.float32)
    if lt == "bce":
        return BCEWithLogitsLoss(pos_weight, eps)
    return FocalBCELoss(config.focal_gamma, pos_weight, eps)
