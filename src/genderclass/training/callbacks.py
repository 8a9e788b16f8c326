"""Lightning callbacks of a training run: resumable ones (the run moved, or resumed with new flags), and
the progress bar for a log."""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm


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
    """The training bar for a log (stderr not a terminal): only the epoch bar, written when an epoch
    ends (``refresh_rate`` = its steps), with the validation metrics; no sanity-check or validation
    bars, whose redraws and cursor moves would fill the log."""

    def init_sanity_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_validation_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)
