"""The settings of each stage (cleaning, loss, calibration): pydantic schemas, no stage code.

They live here, not beside the code that reads them, so that the config package imports no
stage (and so neither torch nor scipy); each stage module imports its own section from here.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from emorec._strict import StrictModel
from emorec.task import Decision, Task


class CleaningConfig(StrictModel):
    """Switches for each cleaning stage; the defaults suit English tweets and chat text."""

    lowercase: bool = Field(
        True,
        description="Lowercase the text. Runs after emoticons, so ':D' and 'XD' are still read.",
    )
    strip_urls: bool = Field(
        True, description="Remove links starting with http://, https:// or www."
    )
    strip_html: bool = Field(
        True,
        description="Remove HTML tags such as <br/> and unescape entities (&amp; -> &).",
    )
    strip_mentions: bool = Field(True, description="Remove @user mentions.")
    strip_hashtag_symbol: bool = Field(
        True, description="Drop the '#' of hashtags and keep the word (#happy -> happy)."
    )
    emoji_to_words: bool = Field(
        True,
        description="Replace emoji by their English names (😂 -> 'face with tears of joy').",
    )
    emoticons_to_words: bool = Field(
        True,
        description="Replace ASCII emoticons standing alone as a token by a word "
        "(':)' -> 'smile', ':'(' -> 'crying', '<3' -> 'love').",
    )
    normalize_slang: bool = Field(
        True,
        description="Expand chat slang, abbreviations and contractions on whole tokens "
        "(idk -> 'i do not know', \"don't\" and 'don t' -> 'do not').",
    )
    contract_repeated_chars: bool = Field(
        True,
        description="Shorten character runs longer than max_repeated_chars, using a word list "
        "to pick the intended spelling (loooove -> love, soooo -> so, !!!!! -> !!).",
    )
    max_repeated_chars: int = Field(
        2, ge=1, description="Longest run of one character kept by contract_repeated_chars."
    )


class LossConfig(StrictModel):
    """Which training loss to use and its hyper-parameters."""

    loss_type: Literal[
        "cross_entropy", "weighted_cross_entropy", "focal", "bce", "focal_bce", "asymmetric"
    ] = Field(
        "cross_entropy",
        description=(
            "Training loss. Single-label: 'cross_entropy', 'weighted_cross_entropy' (class "
            "weights from label counts), 'focal'. Multi-label: 'bce', 'focal_bce', "
            "'asymmetric' (ASL, Ridnik et al. 2021)."
        ),
    )
    smoothing_alpha: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description=(
            "Exponent for frequency-based weights: class weights (N / n_c)^alpha and, with "
            "pos_weight='auto', pos weights ((N - n_c) / n_c)^alpha. 0: none, 0.5: square "
            "root, 1: inverse frequency."
        ),
    )
    label_smoothing: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description=(
            "Label smoothing eps. Single-label: targets (1 - eps) * onehot + eps / C; "
            "multi-label: y * (1 - eps) + eps / 2."
        ),
    )
    focal_gamma: float = Field(
        2.0, ge=0.0, description="Focusing parameter gamma of 'focal' and 'focal_bce' (0 = CE/BCE)."
    )
    focal_use_class_weights: bool = Field(
        True,
        description="Weight the 'focal' loss with class weights (N / n_c)^smoothing_alpha.",
    )
    pos_weight: list[Annotated[float, Field(gt=0)]] | Literal["auto"] | None = Field(
        None,
        description=(
            "Multi-label 'bce' / 'focal_bce' only: one positive weight per label, 'auto' for "
            "((N - n_c) / n_c)^smoothing_alpha from the training counts, or null for none."
        ),
    )
    asl_gamma_pos: float = Field(0.0, ge=0.0, description="'asymmetric': gamma for positives.")
    asl_gamma_neg: float = Field(4.0, ge=0.0, description="'asymmetric': gamma for negatives.")
    asl_clip: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="'asymmetric': probability margin m; negatives with p < m add no loss.",
    )


class CalibrationConfig(StrictModel):
    """How to calibrate a trained classifier on its validation set."""

    temperature: bool = Field(
        True, description="Fit a temperature T so that softmax/sigmoid(logits / T) is calibrated."
    )
    decision: Literal["auto", "argmax", "bias", "threshold"] = Field(
        "auto",
        description=(
            "Decision rule. Single-label: 'argmax' or 'bias' (per-class offsets maximising "
            "validation macro-F1). Multi-label: 'threshold' (per-label thresholds). 'auto' "
            "picks 'bias' for single-label and 'threshold' for multi-label."
        ),
    )
    bias_grid_min: float = Field(-3.0, description="'bias': smallest candidate offset (log-prob).")
    bias_grid_max: float = Field(3.0, description="'bias': largest candidate offset (log-prob).")
    bias_grid_steps: int = Field(
        61, ge=2, description="'bias': number of evenly spaced candidate offsets."
    )
    bias_min_improvement: float = Field(
        0.0,
        ge=0.0,
        description=(
            "'bias': keep zero offsets unless they raise validation macro-F1 by more than this."
        ),
    )
    threshold_strategy: Literal["per_label", "global"] = Field(
        "per_label",
        description="'threshold': one threshold per label, or one shared by all labels.",
    )
    min_threshold: float = Field(
        0.05, ge=0.0, lt=1.0, description="'threshold': no tuned threshold goes below this."
    )
    max_threshold: float = Field(
        0.99,
        gt=0.0,
        lt=1.0,
        description="'threshold': the largest candidate threshold (grid step 0.01). Losses "
        "such as ASL push probabilities up, so best thresholds can sit above 0.9.",
    )
    min_examples_per_class: int = Field(
        20,
        ge=1,
        description=(
            "'bias': per-class offsets are adopted only when every class has at least this many "
            "validation examples; otherwise the decision stays argmax and calibration.json says "
            "why (offsets tuned on a handful of rows fit noise and can lower test accuracy)."
        ),
    )
    min_positives: int = Field(
        5,
        ge=0,
        description=(
            "'threshold': a label with fewer validation positives keeps the default threshold "
            "0.5 instead of a tuned one."
        ),
    )
    cv_folds: int = Field(
        0,
        ge=0,
        description=(
            "Also cross-validate the tuned decision on the validation split: fit it on k-1 "
            "folds, score macro-F1 on the held-out fold against the raw rule, and adopt it only "
            "if the mean gain is > 0. 0 turns the check off; otherwise at least 2. Off by "
            "default: with a rare class of a few dozen examples, one fold holds too few of them "
            "for the gain to be more than noise."
        ),
    )
    ensure_one_label: bool = Field(
        False, description="Multi-label: predict the top label when no label passes its threshold."
    )
    ece_bins: int = Field(15, ge=1, description="Equal-width bins for the reported ECE.")

    @model_validator(mode="after")
    def _grid_is_ordered(self) -> Self:
        if self.min_threshold >= self.max_threshold:
            raise ValueError(
                f"min_threshold must be < max_threshold; got min_threshold={self.min_threshold}, "
                f"max_threshold={self.max_threshold}."
            )
        if self.bias_grid_min >= self.bias_grid_max:
            raise ValueError(
                f"bias_grid_min must be < bias_grid_max; got bias_grid_min={self.bias_grid_min}, "
                f"bias_grid_max={self.bias_grid_max}."
            )
        if self.cv_folds == 1:
            raise ValueError("cv_folds must be 0 (no cross-validation) or at least 2; got 1.")
        return self

    def resolved_decision(self, task: Task) -> Decision:
        """The decision rule for this task; a rule that does not fit is a ConfigError."""
        return task.resolve_decision(self.decision)
