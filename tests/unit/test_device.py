"""``--device cpu|cuda``: ONNX Runtime's CUDA execution provider where installed, a clear error where not."""

from __future__ import annotations

import contextlib
import io

import onnxruntime as ort
import pytest

from genderclass import runtime
from genderclass.cli.main import main
from genderclass.inference.classifier import GenderClassifier
from genderclass.runtime import DeviceUnavailableError, check_device, inference_session


@pytest.fixture
def no_cuda(monkeypatch):
    """This installation as one with the plain onnxruntime package (whatever the machine has)."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])


def test_cpu_is_always_available():
    assert check_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be one of cpu, cuda"):
        check_device("tpu")


def test_cuda_without_the_gpu_runtime_names_the_package(no_cuda):
    with pytest.raises(DeviceUnavailableError, match="pip install onnxruntime-gpu==") as caught:
        check_device("cuda")
    assert "CPUExecutionProvider" in str(caught.value)  # what this installation has


def test_the_classifier_refuses_cuda_without_the_gpu_runtime(no_cuda, tiny_face_model):
    with pytest.raises(DeviceUnavailableError, match="onnxruntime-gpu"):
        GenderClassifier.load(tiny_face_model, device="cuda")
    clf = GenderClassifier.load(tiny_face_model, device="cpu")
    assert clf.device == "cpu" and clf.session.get_providers() == ["CPUExecutionProvider"]


def test_cuda_asks_onnx_runtime_for_the_cuda_provider_first(monkeypatch, tiny_face_model):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    asked = []

    class Session:
        def __init__(self, path, options, providers):
            asked.append(providers)
            self.providers = providers

        def get_providers(self):
            return self.providers

        def disable_fallback(self):
            asked.append("no fallback")

    monkeypatch.setattr(runtime.ort, "InferenceSession", Session)
    inference_session(tiny_face_model, threads=1, device="cuda")
    inference_session(tiny_face_model, threads=1, device="cpu")
    assert asked == [["CUDAExecutionProvider", "CPUExecutionProvider"], "no fallback", ["CPUExecutionProvider"]]


def test_cuda_that_cannot_start_is_refused_not_run_on_the_cpu(monkeypatch, tiny_face_model, capsys):
    # onnxruntime-gpu installed, but no GPU visible: ONNX Runtime falls back to the CPU and prints why
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])

    class Session:
        def __init__(self, path, options, providers):
            print("EP Error: CUDA failure 100: no CUDA-capable device is detected. Falling back to CPU.")

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(runtime.ort, "InferenceSession", Session)
    with pytest.raises(DeviceUnavailableError, match="could not start"):
        inference_session(tiny_face_model, threads=1, device="cuda")
    out, err = capsys.readouterr()
    assert out == "" and "Falling back" in err  # stdout carries results only


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "x.png"],
        ["evaluate", "--data", "d", "--format", "folder", "--out", "o"],
        ["bench", "--no-cold-start"],
        ["serve", "--port", "8765"],
    ],
)
def test_commands_exit_3_naming_the_package(no_cuda, argv, tiny_face_model, caplog):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main([*argv, "--device", "cuda", *(["--model", str(tiny_face_model)] if argv[0] != "serve" else [])])
    assert code == 3
    assert "onnxruntime-gpu" in caplog.text


def test_web_settings_carry_the_device():
    from genderclass.web.settings import WebSettings

    settings = WebSettings(device="cuda")
    assert WebSettings.from_env(settings.to_env()).device == "cuda"
    with pytest.raises(ValueError, match="device"):
        WebSettings(device="gpu")
