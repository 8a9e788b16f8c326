"""The Lightning Trainer of a run, and how Lightning's logging and a distributed run's processes
are kept quiet: one process reports, and only through the application's own logging."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

from ..config import TrainConfig


def hold_lightning_logging() -> None:
    """Lightning sets its loggers to INFO when imported and gives "lightning" a console handler of
    its own: hold them to the root logger's level (the application's choice for libraries), and
    when the root logger has a handler, let messages reach it only, so none prints twice."""
    root = logging.getLogger()
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(root.level)
    if root.handlers:
        logging.getLogger("lightning").handlers.clear()


def lightning_devices(devices: str | int) -> str | int:
    """``--devices`` as Lightning takes it: a count as an int, else the text (a list, auto)."""
    text = str(devices).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def build_trainer(cfg: TrainConfig, out: Path, quiet: bool):
    """The Lightning Trainer of a run: checkpoints (best and last), early stopping, the learning
    rate, a progress bar, CSV metrics; on the accelerator, devices, nodes and strategy of ``cfg``."""
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor, TQDMProgressBar
    from lightning.pytorch.loggers import CSVLogger

    from .callbacks import LogProgressBar, RunCheckpoint, RunEarlyStopping

    checkpoint_dir = out / "checkpoints"
    callbacks = [
        RunCheckpoint(dirpath=checkpoint_dir, filename="best", monitor=cfg.monitor, mode="max"),
        RunCheckpoint(
            dirpath=checkpoint_dir, filename="last", monitor=None, save_top_k=1, enable_version_counter=False
        ),
        RunEarlyStopping(monitor=cfg.monitor, mode="max", patience=cfg.patience),
        LearningRateMonitor(logging_interval="epoch"),
    ]
    if not quiet:  # tqdm, not rich: rich's refresh thread took ~20% of the training process's CPU here.
        live = sys.stderr.isatty()  # on a terminal, redrawn every 10 steps; in a log, lines per epoch
        callbacks.append(TQDMProgressBar(refresh_rate=10) if live else LogProgressBar())
    # the run folder already holds our config.json and split.csv, which CSVLogger would warn about
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
    # a resumed run's checkpoints are meant to be there (a new run refuses an existing --out)
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # batch augmentation lives in the LightningModule's hook on purpose (augment.py), not in the data module
    warnings.filterwarnings("ignore", message=r"You have overridden `on_after_batch_transfer`")
    # Lightning 2.6's own call into torch's pytree API, deprecated in the pinned torch: nothing a user can change
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    return L.Trainer(
        max_epochs=cfg.epochs,
        accelerator=cfg.accelerator,
        devices=lightning_devices(cfg.devices),
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        callbacks=callbacks,
        logger=CSVLogger(out, name="", version=""),
        deterministic=False,
        enable_model_summary=False,
        enable_progress_bar=not quiet,
    )


def average_weights(trainer, decay: float, start_step: int) -> None:
    """``--ema-decay``: an exponential moving average of the weights from ``start_step`` on, placed
    before the checkpoints, so that validation, the checkpoints (and so the export) see it."""
    from lightning.pytorch.callbacks import EMAWeightAveraging

    from .callbacks import RunCheckpoint

    first_checkpoint = next(i for i, c in enumerate(trainer.callbacks) if isinstance(c, RunCheckpoint))
    trainer.callbacks.insert(first_checkpoint, EMAWeightAveraging(decay=decay, update_starting_at_step=start_step))


def launched_rank() -> int:
    """This process's rank as a distributed launcher (torchrun, SLURM, Lightning's own) set it; 0 if none."""
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value):
            return int(value)
    return 0


def quiet_unless_rank_zero(rank: int) -> None:
    """Only the first process of a distributed run reports progress; the others report errors."""
    if rank:
        logging.getLogger("genderclass").setLevel(logging.ERROR)
