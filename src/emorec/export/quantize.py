"""Dynamic int8 quantization that is exact on every x86 CPU, the classification head in fp32."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from emorec.errors import (
    EmorecError,
)
from emorec.export.graph import quiet_logging

HEAD_OP_TYPES = ("MatMul", "Gemm")
QUANTIZED_OP_TYPES = ("MatMulInteger", "DynamicQuantizeMatMul", "QGemm", "DynamicQuantizeLinear")


def head_nodes(graph: Any, op_types: Sequence[str] = HEAD_OP_TYPES) -> list[str]:
    """Names of the ``op_types`` nodes between the encoder's last LayerNorm and the logits.

    That is the classification head (BERT's pooler + classifier, emorec's pre-classifier +
    classifier): a few thousand weights whose int8 rounding moves every logit directly, for
    a negligible share of the compute, so it stays in fp32.
    """
    producers = {out: node for node in graph.node for out in node.output}
    stop = {"LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization"}
    found: list[str] = []
    frontier = [output.name for output in graph.output]
    seen: set[str] = set()
    while frontier:
        node = producers.get(frontier.pop())
        if node is None or node.name in seen or node.op_type in stop:
            continue
        seen.add(node.name)
        if node.op_type in op_types:
            found.append(node.name)
        frontier.extend(node.input)
    return sorted(found)


def quantize_graph(
    source: Path, target: Path, weight_type: Literal["int8", "uint8"] = "int8"
) -> dict[str, Any]:
    """Dynamic int8 quantization of the weights, per output channel; returns its settings.

    Weights use 7 bits (``reduce_range``). On x86 CPUs without VNNI (AVX2, AVX-512 before
    Cascade Lake) ONNX Runtime multiplies uint8 activations by int8 weights with
    ``vpmaddubsw``, which adds each pair of products into a saturating int16: with full-range
    weights, 2 × 255 × 127 overflows it and the logits are wrong on those machines only, while
    a VNNI CPU (where the model is usually exported) computes them exactly. With |w| ≤ 64 a
    pair stays below 2¹⁵ on every CPU, so the file gives the same answers wherever it runs.
    The classification head (:func:`head_nodes`) stays in fp32.

    ``weight_type="uint8"`` keeps 8-bit weights instead, as unsigned: ONNX Runtime multiplies
    uint8 × uint8 without the saturating instruction (a little slower on VNNI CPUs).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.onnx_model import ONNXModel

    # The quantizer turns Gemm into MatMul + Add under new names before it reads the exclusion
    # list; doing it first lets the list name the nodes that will actually be quantized.
    model = onnx.load(str(source))
    ONNXModel(model).replace_gemm_with_matmul()
    excluded = head_nodes(model.graph)
    if not excluded:
        raise EmorecError(
            "int8 export found no classification head to keep in fp32: no MatMul/Gemm between "
            "the encoder's last LayerNorm and the logits in the exported graph. Export fp32 "
            "only (`emorec export MODEL_DIR --format onnx`)."
        )
    reduce_range = weight_type == "int8"
    settings = {
        "method": "dynamic",
        "weight_type": weight_type,
        "per_channel": True,
        "reduce_range": reduce_range,
        "fp32_nodes": excluded,
    }
    plain = target.with_name(f"{target.stem}.matmul.onnx")
    onnx.save(model, str(plain))
    try:
        with quiet_logging(logging.WARNING):
            quantize_dynamic(
                str(plain),
                str(target),
                per_channel=True,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8 if weight_type == "int8" else QuantType.QUInt8,
                nodes_to_exclude=excluded,
                # ORT's fused ops (Attention, SkipLayerNorm) have no ONNX shape inference.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    finally:
        plain.unlink(missing_ok=True)
    quantized_head = head_nodes(onnx.load(str(target)).graph, QUANTIZED_OP_TYPES)
    if quantized_head:
        raise EmorecError(
            "ONNX Runtime's quantizer did not keep the classification head in fp32 "
            f"(quantized: {quantized_head}); this onnxruntime version is not supported for int8 "
            "export: install the version in requirements/lock.txt."
        )
    return settings


def cpu_int8_instructions() -> str:
    """The int8 dot-product instructions of this CPU, as ONNX Runtime will use them.

    Recorded with every int8 export: accuracy figures measured on a VNNI CPU do not carry over
    to one without it unless the weights are saturation-safe (see :func:`quantize_graph`).
    """
    try:
        flags = next(
            line.split(":", 1)[1].split()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith(("flags", "Features"))
        )
    except (OSError, StopIteration):
        return "unknown"
    for flag, name in (
        ("amx_int8", "amx"),
        ("avx512_vnni", "avx512-vnni"),
        ("avx_vnni", "avx-vnni"),
        ("avx2", "avx2"),
        ("asimddp", "arm-dotprod"),
    ):
        if flag in flags:
            return name
    return "other"
