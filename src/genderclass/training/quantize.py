"""INT8 post-training quantization of an exported ONNX model (ONNX Runtime, static, QDQ format).

Activations are calibrated on training crops (never validation or test), weights are quantized per
channel with a reduced 7-bit range, which avoids the saturation of ONNX Runtime's u8s8 kernels on
x86 CPUs without VNNI (results elsewhere can still differ by rounding).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..preprocess import to_batch

METHOD = "int8 static, QDQ, per-channel weights (reduced range), activations calibrated with min-max"


class _Crops:
    """ONNX Runtime calibration reader over uint8 NHWC crops."""

    def __init__(self, crops: np.ndarray, batch_size: int) -> None:
        self._batches = iter([crops[i : i + batch_size] for i in range(0, len(crops), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"pixels": to_batch(list(batch))}


def quantize_int8(onnx_path: Path, calibration_crops: np.ndarray, batch_size: int = 32) -> None:
    """Replace the float model at ``onnx_path`` by its INT8 version, calibrated on the given crops."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration_crops) == 0:
        raise ValueError("quantization needs calibration crops")

    class Reader(_Crops, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(onnx_path), str(prepared))
        quantize_static(
            str(prepared),
            str(onnx_path),
            Reader(calibration_crops, batch_size),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
