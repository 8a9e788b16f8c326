"""Networks read back from exported models (training/exported_weights.py), for --init-from NAME.onnx."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from genderclass.config import TrainConfig  # noqa: E402
from genderclass.training.ensemble import MeanLogit  # noqa: E402
from genderclass.training.export import export_onnx  # noqa: E402
from genderclass.training.exported_weights import exported_layers, load_exported, split_member  # noqa: E402
from genderclass.training.models import GenderNet  # noqa: E402

SIZE = 32


def _net(width: float = 0.25, seed: int = 0) -> GenderNet:
    torch.manual_seed(seed)
    net = GenderNet("small_resnet", 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), width=width)
    for module in net.modules():  # trained-looking batch norms: folding them must matter
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def _pixels(n: int, seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(0, 255, (n, 3, SIZE, SIZE)).astype(np.float32))


def _export(model: torch.nn.Module, path: Path) -> Path:
    cfg = TrainConfig.for_modality("face")
    cfg.preprocess.input_size = SIZE
    export_onnx(model, cfg, path)
    return path


def test_member_names_are_split_off_only_for_onnx_files():
    assert split_member("m/face.onnx#2") == ("m/face.onnx", 2)
    assert split_member("m/face.onnx") == ("m/face.onnx", None)
    assert split_member("runs/a#1/checkpoints/best.ckpt") == ("runs/a#1/checkpoints/best.ckpt", None)


def test_a_float_export_is_read_back_exactly_in_eval_mode_and_in_training_mode(tmp_path):
    original = _net()
    path = _export(original, tmp_path / "face.onnx")
    restored = GenderNet("small_resnet", 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), width=0.25)
    sample = _pixels(64)
    load_exported(restored, str(path), sample)
    x = _pixels(16, seed=2)
    with torch.no_grad():
        assert torch.allclose(restored.eval()(x), original(x), atol=1e-4)
        # the batch norms' statistics are the sample's: on it, batch statistics change nothing
        restored.train()
        for module in restored.modules():
            if isinstance(module, torch.nn.Dropout):
                module.eval()
        assert torch.allclose(restored(sample), original(sample), atol=1e-3)


def test_one_network_of_an_ensemble_is_named_by_its_index(tmp_path):
    members = [_net(seed=0), _net(seed=1)]
    path = _export(MeanLogit(members, [SIZE, SIZE]).eval(), tmp_path / "face.onnx")
    with pytest.raises(ValueError, match=r"ensemble of 2 networks; name one as .*face.onnx#K"):
        exported_layers(str(path))
    with pytest.raises(ValueError, match="no network 2"):
        exported_layers(f"{path}#2")
    x = _pixels(8, seed=3)
    for k, member in enumerate(members):
        restored = GenderNet("small_resnet", 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), width=0.25)
        load_exported(restored, f"{path}#{k}", _pixels(32))
        with torch.no_grad():
            assert torch.allclose(restored.eval()(x), member(x), atol=1e-4)


def test_an_int8_export_is_dequantized(tmp_path):
    from genderclass.training.quantize import quantize_int8

    original = _net()
    path = _export(original, tmp_path / "face.onnx")
    crops = _pixels(32).permute(0, 2, 3, 1).numpy().astype(np.uint8)
    quantize_int8(path, crops)
    restored = GenderNet("small_resnet", 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), width=0.25)
    load_exported(restored, str(path), _pixels(64))
    x = _pixels(64, seed=4)
    with torch.no_grad():
        got, expected = restored.eval()(x).numpy(), original(x).numpy()
    # 8-bit weights: close to the float network, not equal
    assert np.corrcoef(got, expected)[0, 1] > 0.99 and not np.allclose(got, expected, atol=1e-6)


def test_a_network_of_another_width_is_refused(tmp_path):
    path = _export(_net(width=0.25), tmp_path / "face.onnx")
    wider = GenderNet("small_resnet", 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), width=0.5)
    with pytest.raises(ValueError, match=r"does not fit this network: backbone\.0 holds"):
        load_exported(wider, str(path), _pixels(8))
