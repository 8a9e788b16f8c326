"""ONNX Runtime sessions, made one way for every network the package runs (classifiers, detector)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Literal

import onnxruntime as ort

Device = Literal["cpu", "cuda"]
DEVICES: tuple[str, ...] = ("cpu", "cuda")
CUDA_PROVIDER = "CUDAExecutionProvider"
GPU_RUNTIME_PACKAGE = "onnxruntime-gpu"


class DeviceUnavailableError(RuntimeError):
    """The device asked for is not usable with the installed ONNX Runtime (exit code 3 in the CLI)."""


def check_device(device: str) -> Device:
    """``device`` checked against this installation: ``cuda`` needs ONNX Runtime's CUDA execution
    provider, which only the ``onnxruntime-gpu`` package has (in place of ``onnxruntime``)."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cuda" and CUDA_PROVIDER not in ort.get_available_providers():
        raise DeviceUnavailableError(
            f"--device cuda needs ONNX Runtime's {CUDA_PROVIDER}, which this installation lacks (it has "
            f"{', '.join(ort.get_available_providers())}): pip uninstall -y onnxruntime && "
            f"pip install {GPU_RUNTIME_PACKAGE}=={ort.__version__} (with the CUDA and cuDNN libraries it "
            "names), or use --device cpu"
        )
    return device  # type: ignore[return-value]


def providers_for(device: Device) -> list[str]:
    """Execution providers for ``device``; with CUDA, the CPU runs what CUDA does not implement."""
    return [CUDA_PROVIDER, "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]


def inference_session(path: str | Path, threads: int, device: Device = "cpu") -> ort.InferenceSession:
    """A session on ``device`` (checked by :func:`check_device`) with ``threads`` intra-op CPU threads
    and one inter-op thread, only errors logged, and ONNX Runtime's telemetry events off (nothing
    about the process leaves or is kept)."""
    device = check_device(device)
    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if device == "cpu":
        return ort.InferenceSession(str(path), options, providers=providers_for(device))
    # ONNX Runtime falls back to the CPU when CUDA cannot start (no GPU visible, CUDA or cuDNN
    # missing) and prints why on stdout, which carries results here: said on stderr, and refused
    with contextlib.redirect_stdout(sys.stderr):
        session = ort.InferenceSession(str(path), options, providers=providers_for(device))
    if session.get_providers()[0] != CUDA_PROVIDER:
        raise DeviceUnavailableError(
            f"--device cuda: ONNX Runtime's {CUDA_PROVIDER} is installed but could not start (no GPU visible, or "
            "the CUDA and cuDNN libraries that onnxruntime-gpu needs are missing); use --device cpu"
        )
    session.disable_fallback()  # a failure while running is an error, never a silent CPU run
    return session


def cpu_session(path: str | Path, threads: int) -> ort.InferenceSession:
    """:func:`inference_session` on the CPU."""
    return inference_session(path, threads, "cpu")
