"""The Lightning data module of a run: cached crops of each split, with what each training image
carries beside its label (an auxiliary target, a teacher's logit or views, the mask beyond a
chip's edge), and the sampler that balances them."""

from __future__ import annotations

import logging
import math

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from ..config import TrainConfig
from .augment import to_float

log = logging.getLogger(__name__)


class CachedImages(Dataset):
    """Cached uint8 HxWxC crops -> (transformed float tensor, label, auxiliary target or NaN, an
    exported teacher's logit on the un-augmented crop or NaN).

    With ``views`` (N x K x HxWxC: augmented views drawn before training, ``--teacher-views``) and
    ``teacher`` (N x K: the teacher's logit on each), an item is one of its views, drawn at random,
    with that view's logit: already augmented, it is not augmented again (``GenderModule``).

    With ``outside`` (HxW bool: crop pixels beyond the image's edge), the tensor carries it as one
    more channel (255 = beyond), for the training augmentation to read and remove (augment.py)."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        transform,
        aux: np.ndarray | None = None,
        outside: np.ndarray | None = None,
        teacher: np.ndarray | None = None,
        views: np.ndarray | None = None,
    ) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        self.views = None if views is None else torch.from_numpy(np.ascontiguousarray(views)).permute(0, 1, 4, 2, 3)
        self.outside = (
            None if outside is None else torch.from_numpy(np.multiply(outside, 255, dtype=np.uint8)).unsqueeze(1)
        )
        self.labels = torch.from_numpy(labels.astype(np.float32))
        self.aux = torch.full_like(self.labels, math.nan) if aux is None else torch.from_numpy(aux.astype(np.float32))
        nan = torch.full_like(self.labels, math.nan)  # no teacher logit
        self.teacher = nan if teacher is None else torch.from_numpy(teacher.astype(np.float32))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.views is not None:
            k = int(torch.randint(self.views.shape[1], ()))
            return self.transform(self.views[index, k]), self.labels[index], self.aux[index], self.teacher[index, k]
        image = self.images[index]
        if self.outside is not None:
            image = torch.cat([image, self.outside[index]])
        return self.transform(image), self.labels[index], self.aux[index], self.teacher[index]


def balanced_weights(labels: np.ndarray, groups: np.ndarray | None = None, power: float = 1.0) -> np.ndarray:
    """Per-sample weights ``count(cell) ** -power``: with power 1, each class (or each class x group
    cell) has equal total weight; below 1, rare cells gain part of the way."""
    keys = (
        labels.astype(str) if groups is None else np.char.add(labels.astype(str), np.char.add("|", groups.astype(str)))
    )
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return counts[inverse].astype(np.float64) ** -power


class CacheDataModule(L.LightningDataModule):
    def __init__(
        self,
        cfg: TrainConfig,
        images: np.ndarray,
        labels: np.ndarray,
        splits: dict[str, np.ndarray],
        sample_weights: np.ndarray | None = None,
        aux_targets: np.ndarray | None = None,
        outside: np.ndarray | None = None,
        teacher_logits: np.ndarray | None = None,
        teacher_views: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.outside_fill > 0 and outside is None:
            log.warning("--outside-fill needs face crops cached with their chip edges: training without it")

        def subset(name: str) -> CachedImages:
            index = splits[name]
            aux = None if aux_targets is None else aux_targets[index]
            beyond = outside[index] if name == "train" and cfg.outside_fill > 0 and outside is not None else None
            teacher = teacher_logits[index] if name == "train" and teacher_logits is not None else None
            views = None
            if name == "train" and teacher_views is not None:  # one row per training image already
                views, teacher = teacher_views
            return CachedImages(images[index], labels[index], to_float(), aux, beyond, teacher, views)

        self.train_set, self.val_set = subset("train"), subset("val")
        self.sample_weights = sample_weights

    def train_dataloader(self) -> DataLoader:
        sampler = None
        if self.sample_weights is not None:
            generator = torch.Generator().manual_seed(self.cfg.seed)
            sampler = WeightedRandomSampler(
                self.sample_weights, len(self.sample_weights), replacement=True, generator=generator
            )
        return DataLoader(
            self.train_set,
            batch_size=self.cfg.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            drop_last=True,
            num_workers=self.cfg.workers,
            persistent_workers=self.cfg.workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256, num_workers=0)
