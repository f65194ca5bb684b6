"""Conservative propagation for transformers (Ali et al. 2022, "XAI for Transformers").

Plain gradient × input on a transformer is not conservative: the softmax of attention and the
normaliser of LayerNorm route relevance through paths that mix tokens in ways LRP does not
account for. Ali et al.'s AH-rule and LN-rule treat the attention weights ``softmax(QKᵀ)`` and
the LayerNorm standard deviation ``sqrt(var + eps)`` as constants in the backward pass; gradient
× input on the input embeddings then gives the improved LRP relevance.

:func:`conservative_backward` applies both rules to an existing Hugging Face model for the
duration of a ``with`` block, without rewriting it:

* every :class:`torch.nn.LayerNorm` gets an instance-level ``forward`` that detaches the
  normaliser (same values, different gradient);
* the model's attention is switched to ``emorec_conservative``, a function registered in
  transformers' ``AttentionInterface`` that runs the model family's own eager attention and
  multiplies the values by the *detached* weights.

Forward values are unchanged (``detach`` only cuts the gradient), so a prediction running on the
same model meanwhile still gets the right outputs. Supported: encoders whose attention goes
through transformers' attention interface with an ``eager_attention_forward`` in their modeling
module and whose norms are ``nn.LayerNorm`` (BERT, MiniLM, RoBERTa, XLM-R, DistilBERT, ELECTRA,
ALBERT). Others (DeBERTa, MPNet, …) raise :class:`~emorec.errors.ConfigError` with a hint to use
``grad_x_input``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import MethodType
from typing import Any

import torch
from torch import nn

from emorec.errors import ConfigError

__all__ = [
    "CONSERVATIVE_ATTENTION",
    "check_conservative_calls",
    "conservative_attention",
    "conservative_backward",
    "conservative_layer_norm",
    "eager_attention",
]

CONSERVATIVE_ATTENTION = "emorec_conservative"
_UNSUPPORTED_HINT = (
    "method='lrp' supports BERT-style encoders whose attention runs through transformers' "
    "attention interface (BERT, MiniLM, RoBERTa, XLM-R, DistilBERT, ELECTRA, ALBERT) and whose "
    "norms are nn.LayerNorm; use method='grad_x_input' or 'integrated_gradients' for this model"
)


def conservative_layer_norm(self: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm whose normaliser is a constant in the backward pass (LN-rule).

    Same value as ``nn.LayerNorm.forward``; the gradient flows through the centring only, so
    gradient × input sums to the output minus the bias (relevance is conserved).
    """
    dims = tuple(range(-len(self.normalized_shape), 0))
    centred = x - x.mean(dims, keepdim=True)
    std = torch.sqrt(x.var(dims, unbiased=False, keepdim=True) + self.eps)
    y = centred / std.detach()
    if self.weight is not None:
        y = y * self.weight
    if self.bias is not None:
        y = y + self.bias
    return y


def _model_eager_function(module: nn.Module) -> Callable[..., Any]:
    """The eager attention of ``module``'s model family (``modeling_<model>.py``)."""
    eager = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    if eager is None:
        raise ConfigError(
            f"{type(module).__name__} has no eager_attention_forward in its modeling module; "
            f"{_UNSUPPORTED_HINT}."
        )
    return eager


@dataclass
class _Calls:
    """Attention calls seen while the conservative implementation is active."""

    count: int = 0
    mismatch: list[str] = field(default_factory=list)


_calls = _Calls()


def conservative_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention with the weights detached (AH-rule): ``out = stopgrad(A) V``.

    ``query``/``key``/``value``: (B, heads, T, d); returns the output (B, T, heads, d) and the
    weights A (B, heads, T, T), as transformers' attention functions do.
    """
    output, weights = _model_eager_function(module)(
        module, query, key, value, attention_mask, **kwargs
    )
    # Recompute A V with A constant; the model's own eager code decided masking and scaling.
    conservative = torch.matmul(weights.detach(), value).transpose(1, 2).contiguous()
    _calls.count += 1
    if conservative.shape != output.shape or not torch.allclose(
        conservative, output, rtol=1e-4, atol=1e-5
    ):
        _calls.mismatch.append(type(module).__name__)
        return output, weights
    return conservative, weights


def _register() -> None:
    from transformers.masking_utils import AttentionMaskInterface, eager_mask
    from transformers.modeling_utils import AttentionInterface

    AttentionInterface.register(CONSERVATIVE_ATTENTION, conservative_attention)
    # The same additive float mask as "eager" (a custom name without a mask gets none).
    AttentionMaskInterface.register(CONSERVATIVE_ATTENTION, eager_mask)


def _find_pretrained(model: nn.Module) -> Any:
    """The outermost transformers ``PreTrainedModel`` in ``model`` (itself or its encoder)."""
    from transformers import PreTrainedModel

    for module in model.modules():  # pre-order: the first match is the outermost
        if isinstance(module, PreTrainedModel):
            return module
    return None


def _pretrained_root(model: nn.Module) -> Any:
    root = _find_pretrained(model)
    if root is None:
        raise ConfigError(
            f"{type(model).__name__} contains no transformers model; {_UNSUPPORTED_HINT}."
        )
    return root


@contextmanager
def eager_attention(model: nn.Module, implementation: str = "eager") -> Iterator[Any]:
    """Run ``model`` with ``implementation`` attention (eager returns the weights); restored after.

    Yields the transformers model whose config was switched, or None (changing nothing) when
    ``model`` holds no transformers model.
    """
    root = _find_pretrained(model)
    if root is None:
        yield None
        return
    previous = root.config._attn_implementation
    if previous != implementation:
        root.set_attn_implementation(implementation)
    try:
        yield root
    finally:
        if root.config._attn_implementation != previous:
            root.set_attn_implementation(previous)


@contextmanager
def _patched_layer_norms(model: nn.Module) -> Iterator[int]:
    """Give every ``nn.LayerNorm`` the conservative forward; yields how many were patched."""
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    foreign = sorted(
        {
            type(m).__name__
            for m in model.modules()
            if not isinstance(m, nn.LayerNorm) and type(m).__name__.endswith(("Norm", "LayerNorm"))
        }
    )
    if foreign or not norms:
        found = ", ".join(foreign) or "no nn.LayerNorm"
        raise ConfigError(f"{type(model).__name__} has {found}; {_UNSUPPORTED_HINT}.")
    # An instance attribute shadows the class's forward; keep any that was already there.
    missing = object()
    saved = [m.__dict__.get("forward", missing) for m in norms]
    for m in norms:
        m.forward = MethodType(conservative_layer_norm, m)
    try:
        yield len(norms)
    finally:
        for m, old in zip(norms, saved, strict=True):
            if old is missing:
                del m.forward
            else:
                m.forward = old


@contextmanager
def conservative_backward(model: nn.Module) -> Iterator[_Calls]:
    """Within the block, ``model``'s backward treats attention weights and LayerNorm
    normalisers as constants; forward values are unchanged. Always restored on exit.

    Yields a call counter; :func:`check_conservative_calls` verifies after a forward pass that
    every layer went through the conservative attention. Not re-entrant.
    """
    _register()
    _calls.count = 0
    _calls.mismatch.clear()
    with ExitStack() as stack:
        root = _pretrained_root(model)
        stack.enter_context(eager_attention(model, CONSERVATIVE_ATTENTION))
        if root.config._attn_implementation != CONSERVATIVE_ATTENTION:
            raise ConfigError(
                f"{type(root).__name__} does not support switching its attention "
                f"implementation; {_UNSUPPORTED_HINT}."
            )
        stack.enter_context(_patched_layer_norms(model))
        yield _calls


def check_conservative_calls(model: nn.Module, calls: _Calls) -> None:
    """Raise unless the last forward pass ran every layer's attention conservatively."""
    root = _pretrained_root(model)
    expected = getattr(root.config, "num_hidden_layers", None)
    if calls.mismatch:
        raise ConfigError(
            f"{', '.join(sorted(set(calls.mismatch)))} does not compute plain softmax "
            f"attention (A V); {_UNSUPPORTED_HINT}."
        )
    if calls.count == 0 or (expected is not None and calls.count != expected):
        raise ConfigError(
            f"{type(root).__name__} ran {calls.count} attention layers through the attention "
            f"interface, expected {expected}; {_UNSUPPORTED_HINT}."
        )
