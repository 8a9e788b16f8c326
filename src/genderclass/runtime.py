"""ONNX Runtime sessions, made one way for every network the package runs (classifiers, detector)."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def cpu_session(path: str | Path, threads: int) -> ort.InferenceSession:
    """A CPU session with ``threads`` intra-op threads and one inter-op thread, only errors
    logged, and ONNX Runtime's telemetry events off (nothing about the process leaves or is kept)."""
    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
