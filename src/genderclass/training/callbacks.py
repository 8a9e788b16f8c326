"""Lightning callbacks of a training run: resumable ones (the run moved, or resumed with new flags), and
the progress bar for a log."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm, convert_inf


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that follows its run folder when the folder is moved or renamed.

    Lightning keeps the best score only if the checkpoint folder is the one saved in the checkpoint;
    otherwise a resumed run forgets it, and its first epoch, however poor, overwrites ``best.ckpt``.
    The saved paths are re-based onto the folder the run is in now.
    """

    @property
    def state_key(self) -> str:  # ModelCheckpoint's key, so checkpoints saved before this class resume alike
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_dir = state_dict.get("dirpath")
        if saved_dir and self.dirpath and saved_dir != self.dirpath:

            def moved(path: str) -> str:
                return os.path.join(self.dirpath, os.path.relpath(path, saved_dir)) if path else path

            state_dict = {
                **state_dict,
                "dirpath": self.dirpath,
                **{k: moved(state_dict[k]) for k in ("best_model_path", "kth_best_model_path", "last_model_path")
                   if isinstance(state_dict.get(k), str)},
                "best_k_models": {moved(p): v for p, v in state_dict.get("best_k_models", {}).items()},
            }  # fmt: skip
        super().load_state_dict(state_dict)


class RunEarlyStopping(EarlyStopping):
    """``EarlyStopping`` whose patience is the run's current setting.

    Lightning restores the patience saved in the checkpoint, so ``train --resume --patience N``
    was recorded in config.json but not applied; the count of epochs without improvement is kept.
    """

    @property
    def state_key(self) -> str:  # EarlyStopping's key, so checkpoints saved before this class resume alike
        return super().state_key.replace(type(self).__qualname__, EarlyStopping.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({**state_dict, "patience": self.patience})


class LogProgressBar(TQDMProgressBar):
    """The training progress for a log (stderr not a terminal): one plain line per epoch, written when
    the epoch ends (after its validation), with its steps, time and metrics. No tqdm bar is drawn: in a
    file each of its redraws (start, reset, every refresh, each new postfix) became a line of its own,
    several per epoch and some with the previous epoch's metrics."""

    def init_sanity_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_train_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_validation_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._epoch_started = time.monotonic()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.is_disabled:
            return
        elapsed = Tqdm.format_interval(time.monotonic() - getattr(self, "_epoch_started", time.monotonic()))
        total = convert_inf(self.total_train_batches)
        steps = f"{trainer.fit_loop.epoch_loop.batch_progress.current.completed}/{total if total is not None else '?'}"
        metrics = "".join(
            f", {name}={Tqdm.format_num(value)}" for name, value in self.get_metrics(trainer, pl_module).items()
        )
        sys.stderr.write(f"Epoch {trainer.current_epoch}: {steps} steps in {elapsed}{metrics}\n")
        sys.stderr.flush()
