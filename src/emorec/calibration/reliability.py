"""Calibration quality: expected calibration error and the reliability curve."""

from __future__ import annotations

from typing import Any

import numpy as np

from emorec.calibration._common import (
    _check_n_bins,
    _labels_1d,
    _multi_hot,
    _probs_2d,
)


def _confidence_and_hits(probs: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _probs_2d(probs)
    if np.asarray(y).ndim == 2:
        # Multi-label: every (example, label) is a binary forecast of "label is on".
        return p.ravel(), _multi_hot(y, p.shape).ravel().astype(np.float64)
    labels = _labels_1d(y, p.shape[0], p.shape[1])
    return p.max(axis=1), (p.argmax(axis=1) == labels).astype(np.float64)


def _binned(conf: np.ndarray, hits: np.ndarray, n_bins: int) -> tuple[np.ndarray, ...]:
    # Equal-width bins [k/n, (k+1)/n); confidence 1.0 goes into the last bin.
    idx = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    hit_sum = np.bincount(idx, weights=hits, minlength=n_bins)
    return counts, conf_sum, hit_sum


def expected_calibration_error(probs: Any, y: Any, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width confidence bins.

    Single-label: ``probs`` (N, C), ``y`` (N,) -- top-label ECE (confidence = max prob,
    hit = argmax is right). Multi-label: ``y`` (N, C) multi-hot -- each of the N * C
    label probabilities is a forecast of that label being on. Returns
    ``sum_b n_b / N * |accuracy_b - confidence_b|``.
    """
    _check_n_bins(n_bins)
    conf, hits = _confidence_and_hits(probs, y)
    _, conf_sum, hit_sum = _binned(conf, hits, n_bins)
    return float(np.abs(hit_sum - conf_sum).sum() / conf.size)


def reliability_curve(probs: Any, y: Any, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Per-bin data for a reliability diagram (same binning as :func:`expected_calibration_error`).

    Returns arrays of shape (n_bins,): ``bin_centers``, ``accuracy`` (hit rate),
    ``confidence`` (mean confidence) and ``counts``; empty bins have NaN accuracy/confidence.
    """
    _check_n_bins(n_bins)
    conf, hits = _confidence_and_hits(probs, y)
    counts, conf_sum, hit_sum = _binned(conf, hits, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(counts > 0, hit_sum / counts, np.nan)
        confidence = np.where(counts > 0, conf_sum / counts, np.nan)
    return {
        "bin_centers": (np.arange(n_bins) + 0.5) / n_bins,
        "accuracy": accuracy,
        "confidence": confidence,
        "counts": counts,
    }
