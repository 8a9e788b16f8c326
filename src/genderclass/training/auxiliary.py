"""Auxiliary tasks for multi-task training (``train --aux-task``).

A second head on the features that feed the gender logit predicts an attribute the dataset
already names: the age (UTKFace names, a CSV column) or the finger (SOCOFing names, a CSV
column). It only shapes the shared features during training; export takes the gender network
alone, so prediction never needs the attribute.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..data.readers import FINGERS

AGE_SCALE = math.log1p(100.0)  # the age head predicts log1p(years) / AGE_SCALE, about 0..1
MAX_SCALED_AGE = 1.5  # about 1,000 years: an untrained head's output is clamped before exp()


@dataclass(frozen=True)
class AuxiliaryTask(ABC):
    """What the auxiliary head predicts, its loss, and the validation number it logs."""

    attribute: str
    outputs: int
    metric: str  # logged on validation as ``val_<metric>``

    @abstractmethod
    def target(self, value: str) -> float:
        """The head's target for one attribute value; NaN when unknown."""

    @abstractmethod
    def loss(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss over a batch of known targets."""

    @abstractmethod
    def measure(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The validation number over a batch of known targets."""

    def targets(self, attrs: Sequence[dict[str, str]]) -> np.ndarray:
        """Targets of every sample as float32; NaN where the attribute is missing or invalid."""
        return np.array([self.target(a.get(self.attribute, "")) for a in attrs], dtype=np.float32)


class AgeRegression(AuxiliaryTask):
    """Age in years, L1 on a log scale (a year matters more for a child than for an adult)."""

    def target(self, value: str) -> float:
        try:
            years = float(value)
        except ValueError:
            return math.nan
        return years if math.isfinite(years) and years >= 0 else math.nan

    def loss(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (predicted.squeeze(1) - torch.log1p(target) / AGE_SCALE).abs().mean()

    def measure(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean absolute error in years."""
        return (torch.expm1(predicted.squeeze(1).clamp(max=MAX_SCALED_AGE) * AGE_SCALE) - target).abs().mean()


class FingerClassification(AuxiliaryTask):
    """Which finger (thumb ... little, either hand), cross-entropy."""

    def target(self, value: str) -> float:
        value = value.strip().lower()
        return float(FINGERS.index(value)) if value in FINGERS else math.nan

    def loss(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(predicted, target.long())

    def measure(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Accuracy."""
        return (predicted.argmax(1) == target.long()).float().mean()


AUXILIARY_TASKS: dict[str, AuxiliaryTask] = {
    "age": AgeRegression(attribute="age", outputs=1, metric="age_mae"),
    "finger": FingerClassification(attribute="finger", outputs=len(FINGERS), metric="finger_acc"),
}
