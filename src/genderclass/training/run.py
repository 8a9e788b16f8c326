"""Training a run: data -> cache -> leak-free split -> Lightning fit, into the run folder. Export is
the next stage (:mod:`.pipeline` chains them for ``genderclass train``)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import IMBALANCE_HINT_RATIO, LABELS, TrainConfig, read_json, teacher_checkpoints, write_json
from ..data.leaks import check_sources_held_out, check_trainable
from ..data.prepare import PreparedData, prepare_data, prepare_saved_data
from ..data.split import write_split_csv
from ..modalities import modality_for
from ..progress import LogLines
from .checkpoints import initialise_from
from .history import restore_metrics, stash_metrics
from .teachers import (
    TEACHER_LOGITS,
    TEACHER_VIEWS,
    checkpoint_teachers,
    run_teacher_logits,
    run_teacher_views,
    save_teacher_logits,
    save_teacher_views,
)
from .trainer import average_weights, build_trainer, hold_lightning_logging, launched_rank, quiet_unless_rank_zero

if TYPE_CHECKING:
    from .datamodule import CacheDataModule
    from .lightning_module import GenderModule

log = logging.getLogger(__name__)


def _sample_weights(cfg: TrainConfig, data: PreparedData) -> np.ndarray | None:
    from .datamodule import balanced_weights

    train = data.indices("train")
    labels = data.cache.labels[train]
    if cfg.balance == "class":
        return balanced_weights(labels, power=cfg.balance_power)
    if cfg.balance == "group":
        groups = _balance_groups(cfg, data, train)
        log.info(
            "balanced sampling over %d class x group cells", len(np.unique(np.char.add(labels.astype(str), groups)))
        )
        return balanced_weights(labels, groups, power=cfg.balance_power)
    counts = np.bincount(labels.astype(int), minlength=2)
    if counts.min() * IMBALANCE_HINT_RATIO < counts.max():  # unweighted, the majority answer pays off
        log.warning(
            "the training images are %d %s and %d %s, unweighted: the model may learn to answer the larger "
            "class; --balance class samples both classes equally",
            counts[0],
            LABELS[0],
            counts[1],
            LABELS[1],
        )
    return None


def _balance_groups(cfg: TrainConfig, data: PreparedData, train: np.ndarray) -> np.ndarray:
    """Each training image's group for --balance group: its values of the --balance-by attributes
    (ages as bands; "" where the data does not name one), joined."""
    from ..evaluation.groups import normalise_group_values

    keys = [k.strip() for k in cfg.balance_by.split(",") if k.strip()] or [modality_for(cfg.modality).balance_group]
    columns = [normalise_group_values(k, [data.cache.attrs[i].get(k) for i in train], len(train)) for k in keys]
    return np.array(["|".join(value or "" for value in row) for row in zip(*columns, strict=True)])


def _auxiliary_targets(cfg: TrainConfig, data: PreparedData) -> tuple[TrainConfig, np.ndarray | None]:
    """The auxiliary task's targets for every cached image. A dataset that does not name the
    attribute (a folder of faces has no ages) trains without the auxiliary head, with a warning,
    and the run's saved config says so."""
    from .auxiliary import AUXILIARY_TASKS

    if not cfg.aux_task:
        return cfg, None
    targets = AUXILIARY_TASKS[cfg.aux_task].targets(data.cache.attrs)
    if np.isnan(targets[data.indices("train")]).all():
        log.warning("no training image has a valid %r attribute: training without --aux-task", cfg.aux_task)
        return dataclasses.replace(cfg, aux_task=""), None
    return cfg, targets


# Flags that may change when an interrupted run is resumed; anything else would change the data.
RESUMABLE_FIELDS = (
    "epochs",
    "patience",
    "threads",
    "workers",
    "cache_dir",
    "accelerator",
    "devices",
    "num_nodes",
    "strategy",
)


def _setting(cfg: TrainConfig, name: str) -> object:
    """A training setting by flag name; preprocessing flags (input size, margin) live in ``cfg.preprocess``."""
    return getattr(cfg, name) if hasattr(cfg, name) else getattr(cfg.preprocess, name)


def _write_run_files(
    out: Path, cfg: TrainConfig, data: PreparedData, command: str, requested_aux_task: str, world_size: int
) -> None:
    """The run folder's ``split.csv`` and ``config.json`` (the resolved config, the command, the data,
    the number of processes), each replaced whole: other processes of a resumed run read them."""
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f".split.csv.{os.getpid()}.partial"
    write_split_csv(partial, data.cache.paths.tolist(), data.cache.labels.tolist(), data.split)
    partial.replace(out / "split.csv")
    write_json(
        out / "config.json",
        {
            "command": command,
            "train": cfg.to_dict(),
            "data": {
                "n_images": len(data.cache),
                "n_unreadable": len(data.cache.skipped),
                "n_conflicting_groups": data.split.n_conflicting_groups,
                "split_sizes": data.split.sizes(),
                "data_hash": data.cache.data_hash(),
                "world_size": world_size,
                **({"aux_task_unavailable": requested_aux_task} if requested_aux_task != cfg.aux_task else {}),
            },
        },
    )


@dataclass(frozen=True)
class TrainedRun:
    """A trained run: its folder (checkpoints, config, split, metrics) and the data it trained on,
    read and checked once, for the export that follows."""

    folder: Path
    data: PreparedData


@dataclass(frozen=True)
class _Start:
    """What a run starts from: its config, the command recorded, and what a resumed run knew."""

    cfg: TrainConfig
    command: str
    unavailable_aux_task: str | None = None  # asked for, but the data cannot feed it (kept across resumes)
    trained_world_size: int | None = None  # processes the run trained on so far (resumed runs)


def _new_run(cfg: TrainConfig, out: Path, command: str) -> _Start:
    """A new run: refused into a folder that holds a trained run; teachers named by absolute path."""
    if any((out / "checkpoints" / name).exists() for name in ("best.ckpt", "last.ckpt")):
        # Lightning would save new checkpoints as best-v1.ckpt beside the old ones and export the old
        raise ValueError(f"{out} already holds a trained run: continue it with --resume, or train into a new --out")
    if cfg.teacher:  # absolute, so that resuming from another working directory finds them
        cfg = dataclasses.replace(
            cfg, teacher=",".join(str(Path(c).resolve()) for c in teacher_checkpoints(cfg.teacher))
        )
    return _Start(cfg, command)


def _resumed_run(out: Path, command: str, overrides: dict | None) -> _Start:
    """A resumed run: its saved config, with the changes in ``overrides`` that ``RESUMABLE_FIELDS`` allow."""
    config_file = out / "config.json"
    if not config_file.exists():  # nothing was saved yet (or this is not a run folder): nothing to resume
        raise ValueError(f"{out} holds no run to resume (no config.json): start it again without --resume")
    saved = read_json(config_file)
    cfg = TrainConfig.from_dict(saved["train"])
    # an auxiliary task the data could not feed was saved as off; asking for it again is no change
    unavailable = saved.get("data", {}).get("aux_task_unavailable")
    changed = {
        k: v
        for k, v in (overrides or {}).items()
        if v is not None and _setting(cfg, k) != v and not (k == "aux_task" and v == unavailable)
    }
    refused = sorted(k for k in changed if k not in RESUMABLE_FIELDS)
    if refused:
        raise ValueError(f"cannot change {', '.join(refused)} when resuming; start a new run instead")
    cfg = dataclasses.replace(cfg, **changed, out=str(out))  # a moved run records where it is now
    log.info("resuming run %s with its saved config%s", out, f" (changed: {changed})" if changed else "")
    return _Start(
        cfg,
        f"{saved.get('command', '')} ; resumed with: {command}",
        unavailable,
        int(saved.get("data", {}).get("world_size", 1)),
    )


def _checked_data(cfg: TrainConfig, out: Path, resume: bool) -> PreparedData:
    """The run's data, refused if it cannot train a meaningful model or a model the run starts or
    learns from saw its held-out files; a resumed run's data must still split as it did."""
    data = prepare_saved_data(cfg, out) if resume and (out / "split.csv").exists() else prepare_data(cfg)
    check_trainable(cfg, data)
    check_sources_held_out(cfg, data)
    return data


def _resume_checkpoint(out: Path, resume: bool, trained_world_size: int | None, world_size: int) -> str | None:
    """The checkpoint a resumed run continues from (its last epoch), if one was saved; refused, before
    any slow work, on another number of processes than it trained on."""
    last = out / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if resume and last.exists() else None
    if ckpt_path and trained_world_size not in (None, world_size):
        raise ValueError(
            f"{out} trained on {trained_world_size} process(es) (devices x nodes), this resume would use "
            f"{world_size}: its learning-rate schedule counts steps of {trained_world_size}; resume it "
            "with as many (--devices, --num-nodes)"
        )
    return ckpt_path


def _datamodule(
    cfg: TrainConfig, data: PreparedData, out: Path, aux_targets: np.ndarray | None
) -> tuple[CacheDataModule, np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
    """The data module of the training and validation splits, and the exported teachers' logits or
    views it carries (for the run folder)."""
    from .datamodule import CacheDataModule

    train_idx = data.indices("train")
    splits = {"train": train_idx, "val": data.indices("val")}
    weights = _sample_weights(cfg, data)
    outside = data.cache.outside() if cfg.outside_fill > 0 else None  # unpacked only when used
    teacher_views = run_teacher_views(cfg, data, out, train_idx)
    teacher_logits = None if teacher_views is not None else run_teacher_logits(cfg, data, out, train_idx)
    datamodule = CacheDataModule(
        cfg,
        data.cache.images,
        data.cache.labels,
        splits,
        weights,
        aux_targets,
        outside,
        teacher_logits=teacher_logits,
        teacher_views=teacher_views,
    )
    return datamodule, teacher_logits, teacher_views


def _module(
    cfg: TrainConfig, steps: int, out: Path, resume: bool, ckpt_path: str | None, data: PreparedData
) -> GenderModule:
    """The LightningModule, with the weights it starts from (``--init-from``, unless resumed from a
    saved epoch) and its checkpoint teachers: models that must fit it, refused before the run folder
    is written."""
    from .lightning_module import GenderModule

    module = GenderModule(cfg.to_dict(), pos_weight=1.0, steps_per_epoch=steps)
    if resume and ckpt_path is None:
        log.warning("%s has no saved epoch (stopped during the first): training starts from the beginning", out)
    if cfg.init_from and ckpt_path is None:  # a resumed run's weights come from its own checkpoint
        initialise_from(module, cfg, _init_sample(data))
    module.set_teachers(checkpoint_teachers(cfg))
    return module


INIT_SAMPLE = 512  # training images that set the batch norms of a network started from an export


def _init_sample(data: PreparedData):
    """Up to INIT_SAMPLE training images, spread over the split, as float NCHW (0-255)."""
    import torch

    train = data.indices("train")
    chosen = train[:: max(1, len(train) // INIT_SAMPLE)][:INIT_SAMPLE]
    return torch.from_numpy(data.cache.images[chosen]).permute(0, 3, 1, 2).float()


def _save_teacher_signals(
    out: Path, data: PreparedData, logits: np.ndarray | None, views: tuple[np.ndarray, np.ndarray] | None
) -> None:
    """The exported teachers' logits or views, kept in the run folder for --resume."""
    if logits is not None:
        save_teacher_logits(out / TEACHER_LOGITS, logits)
    if views is not None:
        save_teacher_views(out / TEACHER_VIEWS, data.cache.paths[data.indices("train")], views)


def _fit(trainer, module: GenderModule, datamodule: CacheDataModule, out: Path, ckpt_path: str | None) -> None:
    """Lightning's fit, its printing kept off stdout (results only); a resumed run keeps its metrics
    history. Ctrl-C ends it as KeyboardInterrupt, a diverging loss as TrainingDiverged."""
    from .lightning_module import TrainingDiverged

    last = out / "checkpoints" / "last.ckpt"
    keeps_history = bool(ckpt_path) and trainer.global_rank == 0
    if keeps_history:
        stash_metrics(out)  # Lightning's CSV logger starts metrics.csv afresh
    with contextlib.redirect_stdout(sys.stderr if sys.stderr.isatty() else LogLines(sys.stderr)):
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        except SystemExit as exc:  # Lightning ends an interrupted fit with sys.exit(1)
            if not trainer.interrupted:
                raise
            saved = " (the last finished epoch is saved: continue with --resume)" if last.exists() else ""
            log.error("training interrupted%s", saved)
            signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning left Ctrl-C ignored
            raise KeyboardInterrupt from exc
        except TrainingDiverged as exc:  # a run with checkpoints is refused as --out, and --lr cannot change on resume
            if last.exists():
                raise TrainingDiverged(f"{exc}, into a new --out") from None
            raise
        finally:
            if keeps_history:
                restore_metrics(out)


def train(
    cfg: TrainConfig, resume: bool = False, command: str = "", overrides: dict | None = None
) -> TrainedRun | None:
    """Train a model into the run folder ``cfg.out``; returns the trained run, or None in the
    processes of a distributed run other than the first (which alone writes the run's files).

    With ``resume``, the run's saved config is used; only ``RESUMABLE_FIELDS`` from ``overrides``
    may change it.
    """
    import lightning as L
    import torch

    hold_lightning_logging()
    quiet_unless_rank_zero(launched_rank())  # a process that a DDP launcher started for another device
    quiet = not log.isEnabledFor(logging.WARNING)  # genderclass -q: errors only, no progress bars
    out = Path(cfg.out)
    start = _resumed_run(out, command, overrides) if resume else _new_run(cfg, out, command)
    cfg = start.cfg
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    data = _checked_data(cfg, out, resume)
    requested_aux_task = start.unavailable_aux_task or cfg.aux_task
    cfg, aux_targets = _auxiliary_targets(cfg, data)
    sizes, dropped = data.split.sizes(), data.split.n_conflicting_groups
    log.info("split sizes %s (groups with conflicting labels dropped: %d)", sizes, dropped)

    trainer = build_trainer(cfg, out, quiet)
    quiet_unless_rank_zero(trainer.global_rank)  # one process per device: rank 0 alone reports, writes, exports
    if trainer.global_rank:  # each process its own augmentation (the weights start as rank 0's: DDP broadcasts them)
        L.seed_everything(cfg.seed + trainer.global_rank, workers=True, verbose=False)
    ckpt_path = _resume_checkpoint(out, resume, start.trained_world_size, trainer.world_size)
    # each process steps through its share of the training images
    steps = max(1, len(data.indices("train")) // (cfg.batch_size * trainer.world_size))
    trainer.log_every_n_steps = min(50, steps)  # nothing is logged per step; fewer steps than this made Lightning warn
    if cfg.ema_decay > 0:
        average_weights(trainer, cfg.ema_decay, start_step=steps)
    datamodule, teacher_logits, teacher_views = _datamodule(cfg, data, out, aux_targets)
    module = _module(cfg, steps, out, resume, ckpt_path, data)

    if trainer.global_rank == 0:
        _write_run_files(out, cfg, data, start.command, requested_aux_task, trainer.world_size)
        _save_teacher_signals(out, data, teacher_logits, teacher_views)
    log.debug("resolved training config: %s", cfg.to_dict())
    _fit(trainer, module, datamodule, out, ckpt_path)
    return TrainedRun(out, data) if trainer.global_rank == 0 else None
