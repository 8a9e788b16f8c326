"""Fine-tuning from an exported model (``--init-from NAME.onnx``; ``NAME.onnx#K`` for network K of
an ensemble such as the bundled face model), when its training checkpoints are not at hand.

The export folds each batch norm into the convolution before it, and ``--quantize int8`` stores
the weights as 8-bit integers with a scale; both are undone as far as they can be: the weights
are dequantized, each convolution takes the folded weight, and its batch norm is set so that it
adds the folded bias and is otherwise the identity in evaluation mode, with running statistics
measured on a sample of the training images, so that in training mode (batch statistics) it
also starts close to the identity. The network then computes what the exported file computes,
up to the INT8 rounding of activations, which the float network no longer does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

MEMBER_MARK = "#"  # NAME.onnx#K: network K of an exported ensemble
# torch.onnx names each node by its module path, a Sequential's children as "parent.K":
# /members.2/backbone/backbone.3/body/body.0/Conv is member 2's backbone.3.body.0
_NODE = re.compile(r"^/(?:members\.(?P<member>\d+)/)?(?P<path>.+)/(?:Conv|Gemm)$")


def split_member(init_from: str) -> tuple[str, int | None]:
    """``"face.onnx#2"`` -> ``("face.onnx", 2)``; a name without a member -> ``(name, None)``."""
    path, mark, member = init_from.rpartition(MEMBER_MARK)
    if mark and path.lower().endswith(".onnx") and member.isdigit():
        return path, int(member)
    return init_from, None


def is_exported(init_from: str) -> bool:
    """Whether ``--init-from`` names an exported model (``.onnx``, maybe with ``#K``)."""
    return split_member(init_from)[0].lower().endswith(".onnx")


def exported_layers(init_from: str) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Float weight and bias of each convolution and linear layer of one network of an exported
    model, keyed by its module name in the network (``backbone.3.body.0``); ValueError for a file
    that is no exported model of ours, or an ensemble without ``#K`` (or a K it lacks)."""
    import onnx
    from onnx import numpy_helper

    path, member = split_member(init_from)
    if not Path(path).is_file():
        raise ValueError(f"--init-from {init_from}: no such file")
    try:
        graph = onnx.load(path).graph
    except Exception as exc:  # protobuf's DecodeError and friends: the file is no ONNX model
        raise ValueError(f"--init-from {path} is not an exported model ({type(exc).__name__})") from exc
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    layers: dict[int | None, dict[str, tuple[np.ndarray, np.ndarray | None]]] = {}
    for node in graph.node:
        match = _NODE.match(node.name)
        if node.op_type not in ("Conv", "Gemm") or match is None:
            continue
        weight = _value(node.input[1], values, producer)
        if node.op_type == "Gemm" and not _attribute(node, "transB", 0):
            weight = weight.T  # a Linear is exported as x @ W.T (transB = 1)
        bias = _value(node.input[2], values, producer) if len(node.input) > 2 and node.input[2] else None
        index = None if match["member"] is None else int(match["member"])
        # a network called twice (flip averaging) repeats its layers as backbone.0_1: the first is kept
        layers.setdefault(index, {}).setdefault(_module_name(match["path"]), (weight, bias))
    return _member(layers, member, init_from)


def _module_name(path: str) -> str:
    """``backbone/backbone.3/body/body.0`` -> ``backbone.3.body.0`` (from the network's backbone on,
    whatever wraps it)."""
    parts = [re.sub(r"_\d+$", "", part) for part in path.split("/")]
    parts = parts[parts.index("backbone") :] if "backbone" in parts else parts
    names: list[str] = []
    for previous, part in zip([""] + parts, parts, strict=False):
        names.append(part.removeprefix(previous + ".") if previous and part.startswith(previous + ".") else part)
    return ".".join(names)


def _member(layers: dict, member: int | None, init_from: str) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    networks = sorted(k for k in layers if k is not None)
    if not layers:
        raise ValueError(f"--init-from {init_from}: no convolution of ours in it (not a genderclass export?)")
    if member is None and networks:
        raise ValueError(
            f"--init-from {init_from}: an ensemble of {len(networks)} networks; name one as "
            f"{init_from}{MEMBER_MARK}K, K in 0..{len(networks) - 1}"
        )
    if member not in layers:
        raise ValueError(f"--init-from {init_from}: no network {member} (it holds 0..{len(networks) - 1})")
    return layers[member]


def _attribute(node, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def _value(name: str, values: dict[str, np.ndarray], producer: dict) -> np.ndarray:
    """An initializer, or one dequantized (DequantizeLinear of initializers, per tensor or per axis)."""
    if name in values:
        return values[name].astype(np.float32)
    node = producer.get(name)
    if node is not None and node.op_type == "Identity":  # a weight shared by two layers
        return _value(node.input[0], values, producer)
    if node is None or node.op_type != "DequantizeLinear":
        raise ValueError(f"weight {name} is computed by {node.op_type if node else 'nothing'}, not stored")
    quantized = values[node.input[0]].astype(np.float32)
    scale = values[node.input[1]].astype(np.float32)
    zero = values[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else np.zeros(1)
    if scale.ndim == 1 and scale.size > 1:  # per channel along the node's axis
        shape = [1] * quantized.ndim
        shape[_attribute(node, "axis", 1)] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (quantized - zero) * scale


def load_exported(net: nn.Module, init_from: str, sample: torch.Tensor, layers: dict | None = None) -> None:
    """Set ``net`` (a :class:`~genderclass.training.models.GenderNet`) to the network ``init_from``
    exported (its :func:`exported_layers`, read here unless given), its batch norms set from
    ``sample`` (float NCHW training images, 0-255); ValueError when the layers or their shapes do
    not match."""
    import torch

    layers = layers if layers is not None else exported_layers(init_from)
    pairs = _layer_pairs(net)
    names = {name for name, _, _ in pairs}
    if names != set(layers):
        differ = sorted(names.symmetric_difference(layers))[:4]
        raise ValueError(f"--init-from {init_from} does not fit this network (layers differ: {', '.join(differ)})")
    with torch.no_grad():
        for name, layer, norm in pairs:
            weight, bias = (None if a is None else torch.from_numpy(a) for a in layers[name])
            if weight.shape != layer.weight.shape:
                raise ValueError(
                    f"--init-from {init_from} does not fit this network: {name} holds {tuple(weight.shape)}, "
                    f"this network {tuple(layer.weight.shape)} (--arch, --width, --modality)"
                )
            layer.weight.copy_(weight)
            _set_bias(layer, norm, torch.zeros(weight.shape[0]) if bias is None else bias)
    _measure_norms(net, [(layer, norm) for _, layer, norm in pairs if norm is not None], sample)


def _layer_pairs(net: nn.Module) -> list[tuple[str, nn.Module, nn.Module | None]]:
    """(module name, convolution or linear layer, the batch norm that follows it or None), in the
    network's order."""
    from torch import nn

    pairs: list[tuple[str, nn.Module, nn.Module | None]] = []
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            pairs.append((name, module, None))
        elif isinstance(module, nn.BatchNorm2d) and pairs and pairs[-1][2] is None:
            pairs[-1] = (*pairs[-1][:2], module)
    return pairs


def _set_bias(layer: nn.Module, norm: nn.Module | None, bias: torch.Tensor) -> None:
    """The folded bias goes to the batch norm after the layer (set to the identity for now), or to
    the layer's own bias."""
    if norm is None:
        if layer.bias is None:
            raise ValueError("a layer without batch norm or bias cannot take the exported bias")
        layer.bias.copy_(bias)
        return
    norm.running_mean.zero_()
    norm.running_var.fill_(1.0)
    norm.weight.fill_((1.0 + norm.eps) ** 0.5)
    norm.bias.copy_(bias)


def _measure_norms(net: nn.Module, pairs: list[tuple[nn.Module, nn.Module]], sample: torch.Tensor) -> None:
    """Each batch norm's running statistics from the layer outputs on ``sample``, with its scale and
    shift changed to match, so that in evaluation mode it computes exactly what it did (the
    identity plus the folded bias), and in training mode about the same."""
    import torch

    outputs: dict[int, list[torch.Tensor]] = {id(layer): [] for layer, _ in pairs}
    hooks = [layer.register_forward_hook(lambda m, _, out: outputs[id(m)].append(out.detach())) for layer, _ in pairs]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(sample), 64):
                net(sample[start : start + 64])
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)
    with torch.no_grad():
        for layer, norm in pairs:
            out = torch.cat(outputs[id(layer)]).transpose(0, 1).flatten(1)
            mean, var = out.mean(dim=1), out.var(dim=1, unbiased=False)
            norm.running_mean.copy_(mean)
            norm.running_var.copy_(var)
            norm.weight.copy_((var + norm.eps).sqrt())
            norm.bias.add_(mean)
