"""Auxiliary tasks (``train --aux-task``): targets, losses, and the module's training step."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from genderclass.config import TrainConfig  # noqa: E402
from genderclass.training.auxiliary import AGE_SCALE, AUXILIARY_TASKS  # noqa: E402
from genderclass.training.lightning_module import GenderModule  # noqa: E402


def test_targets_read_valid_values_and_mark_the_rest_missing():
    ages = AUXILIARY_TASKS["age"].targets(
        [{"age": "26"}, {"age": "0"}, {}, {"age": "unknown"}, {"age": "-3"}, {"race": "asian"}]
    )
    assert ages.dtype == np.float32
    assert ages[:2].tolist() == [26.0, 0.0]
    assert np.isnan(ages[2:]).all()
    assert np.isnan(AUXILIARY_TASKS["age"].targets([{"age": "inf"}, {"age": "nan"}])).all()
    fingers = AUXILIARY_TASKS["finger"].targets([{"finger": "thumb"}, {"finger": " Little"}, {"finger": "toe"}, {}])
    assert fingers[:2].tolist() == [0.0, 4.0] and np.isnan(fingers[2:]).all()


def test_losses_and_validation_numbers():
    task = AUXILIARY_TASKS["finger"]
    predicted = torch.tensor([[5.0, 0, 0, 0, 0], [0, 0, 0, 0, 5.0], [5.0, 0, 0, 0, 0]])
    target = torch.tensor([0.0, 4.0, 2.0])
    assert task.measure(predicted, target).item() == pytest.approx(2 / 3)
    expected = torch.nn.functional.cross_entropy(predicted, target.long())
    assert task.loss(predicted, target).item() == pytest.approx(expected.item())
    years = AUXILIARY_TASKS["age"].measure(
        torch.log1p(torch.tensor([[10.0], [40.0]])) / AGE_SCALE, torch.tensor([12.0, 40])
    )
    assert years.item() == pytest.approx(1.0, abs=1e-4)  # mean absolute error in years


def _module(aux_task: str, aux_weight: float = 0.5) -> GenderModule:
    cfg = TrainConfig(arch="small_resnet", width=0.25, aux_task=aux_task, aux_weight=aux_weight, label_smoothing=0.0)
    cfg.preprocess.input_size = 32
    return GenderModule(cfg.to_dict())


def test_age_loss_is_added_for_known_ages_only(monkeypatch):
    module = _module("age", aux_weight=0.5)
    monkeypatch.setattr(module, "log", lambda *args, **kwargs: None)  # no trainer here
    module.on_fit_start()  # registers the hook that keeps the classifier's input features
    module.eval()  # no dropout: the same batch gives the same features every time
    x, y = torch.rand(4, 3, 32, 32) * 255, torch.tensor([0.0, 1.0, 1.0, 0.0])
    ages = torch.tensor([30.0, 2.0, math.nan, 61.0])

    with torch.no_grad():
        loss = module.training_step((x, y, ages), 0)
        logits = module(x)
        predicted = module.aux_head(module._features).squeeze(1)
    gender = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    known = ~torch.isnan(ages)
    age_term = (predicted[known] - torch.log1p(ages[known]) / AGE_SCALE).abs().mean()
    assert loss.item() == pytest.approx((gender + 0.5 * age_term).item(), rel=1e-5)
    with torch.no_grad():
        unknown = module.training_step((x, y, torch.full((4,), math.nan)), 0)
    assert unknown.item() == pytest.approx(gender.item(), rel=1e-5)  # no age, no age loss

    # the age loss trains the shared features, not only its own head
    module.zero_grad()
    module.training_step((x, torch.zeros(4), ages), 0).backward()
    with_age = module._classifier().weight.grad.clone(), module.model.backbone[0].weight.grad.clone()
    assert module.aux_head.weight.grad.abs().sum() > 0
    module.zero_grad()
    module.training_step((x, torch.zeros(4), torch.full((4,), math.nan)), 0).backward()
    assert torch.allclose(module._classifier().weight.grad, with_age[0])  # the gender head is unaffected
    assert not torch.allclose(module.model.backbone[0].weight.grad, with_age[1])
    # a batch without ages keeps the head in the graph with a zero gradient (distributed training
    # fails on parameters that take no part in the loss)
    assert module.aux_head.weight.grad is not None and not module.aux_head.weight.grad.any()

    module.on_fit_end()  # the hook is gone: the module is a plain network again
    module._features = None
    module(x)
    assert module._features is None


def test_without_an_auxiliary_task_there_is_no_auxiliary_head():
    module = _module("")
    assert module.aux_head is None
    assert not any(k.startswith("aux_head.") for k in module.state_dict())
    assert _module("finger").aux_head.out_features == 5


def test_validation_logs_the_auxiliary_number_over_known_targets_only(monkeypatch):
    module = _module("finger")
    logged = []
    monkeypatch.setattr(module, "log", lambda name, value, **kwargs: logged.append((name, value, kwargs)))
    module.on_fit_start()
    module.eval()
    x, y = torch.rand(3, 3, 32, 32) * 255, torch.tensor([0.0, 1.0, 0.0])
    with torch.no_grad():
        module.validation_step((x, y, torch.full((3,), math.nan)), 0)
        assert [name for name, *_ in logged] == ["val_loss"]  # nothing known, nothing logged
        fingers = torch.tensor([0.0, math.nan, 4.0])
        module.validation_step((x, y, fingers), 0)
        expected = (module.aux_head(module._features).argmax(1)[[0, 2]] == torch.tensor([0, 4])).float().mean()
    name, value, kwargs = logged[-1]
    assert name == "val_finger_acc" and kwargs["batch_size"] == 2  # weighted by the known targets
    assert value.item() == pytest.approx(expected.item())
