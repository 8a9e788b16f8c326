"""INT8 post-training quantization of an exported ONNX model (ONNX Runtime, static, QDQ format).

Activations are calibrated on training crops (never test; validation files only for a cross-validation
ensemble of every fold, where each was trained on by the other folds' members), weights are quantized per
channel with a reduced 7-bit range, which avoids the saturation of ONNX Runtime's u8s8 kernels on
x86 CPUs without VNNI (results elsewhere can still differ by rounding).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from ..preprocess import to_batch

METHOD = "int8 static, QDQ, per-channel weights (reduced range), activations calibrated with min-max"


class CropReader(CalibrationDataReader):
    """Calibration batches of uint8 NHWC crops, as the network's float NCHW input."""

    def __init__(self, crops: np.ndarray, batch_size: int) -> None:
        self._batches = iter(range(0, len(crops), batch_size))
        self._crops, self._batch_size = crops, batch_size

    def get_next(self) -> dict[str, np.ndarray] | None:
        start = next(self._batches, None)
        return None if start is None else {"pixels": to_batch(list(self._crops[start : start + self._batch_size]))}


def quantize_int8(onnx_path: Path, calibration_crops: np.ndarray, batch_size: int = 32) -> None:
    """Replace the float model at ``onnx_path`` by its INT8 version, calibrated on the given crops."""
    if len(calibration_crops) == 0:
        raise ValueError("quantization needs calibration crops")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(onnx_path), str(prepared))
        quantize_static(
            str(prepared),
            str(onnx_path),
            CropReader(calibration_crops, batch_size),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
