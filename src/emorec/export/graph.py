"""The ONNX graph: ``torch.onnx.export`` of the classifier, then ONNX Runtime's fusions."""

from __future__ import annotations

import contextlib
import inspect
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

DEFAULT_OPSET = 17
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """``(B, S)`` 0/1 padding mask → ``(B, 1, S, S)`` additive float mask.

    transformers 5 builds the padding mask with index arithmetic that ONNX Runtime's attention
    fusion does not recognise; this spelling (expand, ``1 - mask``, fill with the float
    minimum, as transformers 4 did) is a pattern the fusion matches, and models take a
    prepared 4D mask as it is.
    """
    batch, length = mask.shape
    expanded = mask[:, None, None, :].expand(batch, 1, length, length).to(torch.float32)
    inverted = 1.0 - expanded
    return inverted.masked_fill(inverted.to(torch.bool), torch.finfo(torch.float32).min)


class _LogitsGraph(torch.nn.Module):
    """Positional token inputs → logits: the function ``torch.onnx.export`` traces."""

    def __init__(
        self, model: torch.nn.Module, input_names: Sequence[str], additive_mask: bool
    ) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        self.additive_mask = additive_mask

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        kwargs = dict(zip(self.input_names, inputs, strict=True))
        if self.additive_mask:
            kwargs["attention_mask"] = _additive_mask(kwargs["attention_mask"])
        return self.model(**kwargs).logits


def _use_eager_attention(model: torch.nn.Module) -> None:
    """Switch transformers models to plain matmul-softmax attention, the form ORT fuses."""
    for module in model.modules():
        setter = getattr(module, "set_attn_implementation", None)
        if setter is not None:
            with contextlib.suppress(Exception):  # older transformers, or a fixed implementation
                setter("eager")
            return


def export_graph(model: torch.nn.Module, tokenizer: Any, path: Path, opset: int) -> list[str]:
    """Write ``model`` as ONNX with dynamic batch and sequence axes; returns the input names."""
    model = model.eval()
    _use_eager_attention(model)
    probe = tokenizer(
        ["a short text", "a somewhat longer text, so that the batch needs padding"],
        padding=True,
        return_tensors="pt",
    )
    input_names = [name for name in MODEL_INPUTS if name in probe]
    args = tuple(probe[name] for name in input_names)
    with torch.inference_mode():
        reference = model(**{name: probe[name] for name in input_names}).logits
        # Some models (DeBERTa) read a 4D mask differently: keep theirs when the outputs differ.
        try:
            additive = _LogitsGraph(model, input_names, additive_mask=True)(*args)
            use_additive = bool(torch.allclose(additive, reference, atol=1e-5))
        except (RuntimeError, ValueError, TypeError):
            use_additive = False
    # eval(): the exporter restores the wrapper's mode afterwards, recursively, into the model.
    graph = _LogitsGraph(model, input_names, additive_mask=use_additive).eval()
    dynamic_axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    dynamic_axes["logits"] = {0: "batch"}
    options: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        # The TorchScript exporter: quick, one self-contained file, and the graph ORT fuses.
        options["dynamo"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings about the exporter
        torch.onnx.export(
            graph,
            args,
            str(path),
            input_names=input_names,
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            **options,
        )
    return input_names


@contextlib.contextmanager
def quiet_logging(level: int) -> Iterator[None]:
    """Silence ORT's tooling, which logs every fusion step and advice through the root logger."""
    logging.disable(level)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def optimize_graph(source: Path, target: Path, model_config: Any) -> dict[str, int]:
    """ORT transformer fusions (attention, GELU, LayerNorm…); returns the fused operator counts.

    ``opt_level=0`` runs only the Python fusions: ONNX Runtime applies its own graph
    optimisations again when it loads the model.
    """
    from onnxruntime.transformers import optimizer

    num_heads = int(getattr(model_config, "num_attention_heads", 0) or 0)
    hidden_size = int(getattr(model_config, "hidden_size", 0) or 0)
    with quiet_logging(logging.INFO), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimized = optimizer.optimize_model(
            str(source),
            model_type="bert",  # ORT's encoder fusions: BERT, RoBERTa, DistilBERT, MiniLM…
            num_heads=num_heads,
            hidden_size=hidden_size,
            opt_level=0,
        )
        fused = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
        optimized.save_model_to_file(str(target))
    return fused
