"""Networks as exported: one run's network in eval mode (optionally averaged with its mirror
image), several runs as one mean-logit graph, and which member held out which file (cross-validation),
with the out-of-fold scores that follow from it."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..config import TrainConfig, read_json
from ..modalities import modality_for


class FlipAveraged(nn.Module):
    """Average the logits of the image and its mirror image (test-time augmentation in the graph)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.model(pixels) + self.model(torch.flip(pixels, dims=[3])))


def inference_model(
    run_dir: Path, checkpoint: str = "best.ckpt", flip_tta: bool | None = None
) -> tuple[nn.Module, TrainConfig]:
    """The run's network in eval mode and its config; ``flip_tta`` (default: on for faces) wraps it in
    :class:`FlipAveraged`. The config is the run's config.json, which a resume with new ``--epochs``,
    ``--patience`` or folder updates; the checkpoint keeps the settings it was first trained with."""
    from .lightning_module import GenderModule

    module = GenderModule.load_from_checkpoint(run_dir / "checkpoints" / checkpoint, map_location="cpu")
    config_file = run_dir / "config.json"
    cfg = TrainConfig.from_dict(read_json(config_file)["train"]) if config_file.exists() else module.cfg
    model: nn.Module = module.model
    mirror = modality_for(cfg.modality).flip_tta if flip_tta is None else flip_tta
    if mirror:
        model = FlipAveraged(model)
    return model.eval(), cfg


class MeanLogit(nn.Module):
    """An ensemble in one graph: each member sees the input resized to its own input size, and the
    members' logits are averaged."""

    def __init__(self, members: Sequence[nn.Module], sizes: Sequence[int]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.sizes = list(sizes)
        self.input_size = max(self.sizes)  # what the ensemble is given; smaller members get a resize

    def member_logits(self, index: int, pixels: torch.Tensor) -> torch.Tensor:
        """One member's logits for the ensemble's input."""
        size = self.sizes[index]
        if size != self.input_size:  # bilinear, no antialias: ONNX opset 17 has none
            pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False)
        return self.members[index](pixels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.member_logits(i, pixels) for i in range(len(self.members))]).mean(dim=0)


def _split_columns(run_dirs: Sequence[Path]) -> tuple[list[str], np.ndarray]:
    """The runs' file paths and each run's split name per file (runs x files), after checking
    that the runs share the data and the test files: an ensemble's test files must stay unseen by
    every member."""
    runs = []  # (data hash, paths, split names) per run
    for run_dir in run_dirs:
        with (run_dir / "split.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        data_hash = read_json(run_dir / "config.json")["data"]["data_hash"]
        runs.append((data_hash, [row["path"] for row in rows], np.array([row["split"] for row in rows])))
    first_hash, paths, first_split = runs[0]
    for run_dir, (data_hash, these, split) in zip(run_dirs, runs, strict=True):
        if data_hash != first_hash or these != paths or not np.array_equal(split == "test", first_split == "test"):
            raise ValueError(
                f"{run_dir} was split differently from {run_dirs[0]} (data, paths, seed or fractions differ); "
                "an ensemble needs one test split that none of its members saw"
            )
    return paths, np.stack([split for _, _, split in runs])


def validation_layout(run_dirs: Sequence[Path], paths: Sequence[str] | None = None) -> np.ndarray | None:
    """``None`` when the members share one validation split; for cross-validation runs (``--folds``)
    of one K and split seed, which members held out which file (members x files, bool), so that
    every validation file is scored by the members that never trained on it (out-of-fold). Several
    members may hold out one fold (other seeds or recipes on the same folds), as long as every fold
    is held out by equally many, so that every out-of-fold score averages the same number of
    networks. ``paths``: the files as prepared now, which must be those the runs were split on (in
    the same order)."""
    split_paths, columns = _split_columns(run_dirs)
    is_val = columns == "val"
    if (is_val == is_val[0]).all():
        return None
    trained = [TrainConfig.from_dict(read_json(run_dir / "config.json")["train"]) for run_dir in run_dirs]
    folds = {(t.folds, t.resolved_split_seed) for t in trained}
    if len(folds) != 1 or next(iter(folds))[0] < 2:
        raise ValueError(
            "the members' validation sets differ: export either runs of one split, or cross-validation runs "
            "of one --folds K and split seed"
        )
    fold_ids = np.array([t.fold for t in trained])
    for fold in np.unique(fold_ids):  # one fold's members: one validation set, shared with no other fold
        mine = is_val[fold_ids == fold]
        if (mine != mine[0]).any() or (is_val[fold_ids != fold] & mine[0]).any():
            raise ValueError("the members' validation folds overlap")  # hand-edited runs: folds of one split cannot
    per_fold = {int(fold): int((fold_ids == fold).sum()) for fold in np.unique(fold_ids)}
    if len(set(per_fold.values())) > 1:
        held = ", ".join(f"fold {fold} by {n}" for fold, n in per_fold.items())
        raise ValueError(f"every fold must be held out by equally many members, not {held}")
    if paths is not None and list(paths) != split_paths:
        raise ValueError("the data differs from the files the runs were split on: cannot score them out-of-fold")
    return is_val


def ensemble_model(run_dirs: Sequence[Path], flip_tta: bool | None = None) -> tuple[MeanLogit, TrainConfig]:
    """Several runs as one :class:`MeanLogit`; its config is the member with the largest input.

    Members must share the preprocessing (apart from input size), the data and the test files
    (:func:`_split_columns`), and either the validation files or disjoint cross-validation folds
    (:func:`validation_layout`), so that the ensemble is calibrated on files each score comes
    from a member that did not train on, and measured on test files that none of them saw.
    """
    loaded = [inference_model(run_dir, flip_tta=flip_tta) for run_dir in run_dirs]
    base = max((cfg for _, cfg in loaded), key=lambda cfg: cfg.preprocess.input_size)
    for run_dir, (_, cfg) in zip(run_dirs, loaded, strict=True):
        mismatched = cfg.preprocess.differences(base.preprocess)
        if mismatched:
            raise ValueError(f"{run_dir} uses other preprocessing than the ensemble: {', '.join(mismatched)}")
    validation_layout(run_dirs)
    ensemble = MeanLogit([model for model, _ in loaded], [cfg.preprocess.input_size for _, cfg in loaded])
    return ensemble.eval(), base


def out_of_fold(
    ensemble: MeanLogit, held_out: np.ndarray, images: np.ndarray, split: np.ndarray, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-validation members on their own validation folds (float, in torch): the out-of-fold
    logits (each file's mean over the members that held it out), in file order, and the ensemble's
    split with every such file as validation."""
    index = np.flatnonzero(held_out.any(axis=0))
    total = np.zeros(len(index), dtype=np.float64)
    with torch.no_grad():
        for m in range(len(ensemble.members)):
            mine = np.flatnonzero(held_out[m, index])
            for start in range(0, len(mine), batch_size):
                chunk = mine[start : start + batch_size]
                pixels = torch.from_numpy(images[index[chunk]]).permute(0, 3, 1, 2).float()
                total[chunk] += ensemble.member_logits(m, pixels).reshape(-1).numpy()
    logits = (total / held_out[:, index].sum(axis=0)).astype(np.float32)
    return logits, np.where(held_out.any(axis=0), "val", split)


def uses_flip_tta(model: nn.Module) -> bool:
    return any(isinstance(m, FlipAveraged) for m in model.modules())
