"""Typed run configuration, loaded from YAML with ``--set key.path=value`` overrides.

Every section is a strict pydantic model: an unknown key or a value of the wrong type is a
:class:`~emorec.errors.ConfigError` that names the key, what was given and the valid choices.

A pure schema package: ``sections`` (the settings of cleaning, loss and calibration), ``schema``
(the run config), ``loading`` (YAML, overrides, errors). It imports no stage, so importing it
does not import torch, scipy or transformers (a test checks it).
"""

from __future__ import annotations

from emorec.config.loading import (
    config_reference,
    config_reference_markdown,
    describe_error,
    load_config,
    merge,
    parse_yaml,
    validate_config,
)
from emorec.config.schema import (
    AugmentationConfig,
    Config,
    DataConfig,
    DataFormat,
    EvaluationConfig,
    LabelMappingConfig,
    ModelConfig,
    OutputConfig,
    SplitConfig,
    TrainingConfig,
)
from emorec.config.sections import CalibrationConfig, CleaningConfig, Decision, LossConfig

__all__ = [
    "AugmentationConfig",
    "CalibrationConfig",
    "CleaningConfig",
    "Config",
    "DataConfig",
    "DataFormat",
    "Decision",
    "EvaluationConfig",
    "LabelMappingConfig",
    "LossConfig",
    "ModelConfig",
    "OutputConfig",
    "SplitConfig",
    "TrainingConfig",
    "config_reference",
    "config_reference_markdown",
    "describe_error",
    "load_config",
    "merge",
    "parse_yaml",
    "validate_config",
]
