"""Resumed runs: a moved folder keeps its best checkpoint's score (else best.ckpt is overwritten), and
a new --patience applies."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
lightning = pytest.importorskip("lightning")

from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint  # noqa: E402

from genderclass.training.callbacks import RunCheckpoint, RunEarlyStopping  # noqa: E402


def _saved_state(old_dir: str) -> dict:
    saved = ModelCheckpoint(dirpath=old_dir, filename="best", monitor="val_auc", mode="max")
    saved.best_model_score = torch.tensor(0.82)
    saved.best_model_path = saved.kth_best_model_path = f"{old_dir}/best.ckpt"
    saved.best_k_models = {f"{old_dir}/best.ckpt": torch.tensor(0.82)}
    return saved.state_dict()


def test_a_moved_run_keeps_its_best_score_and_rebases_the_paths(tmp_path):
    old_dir, new_dir = str(tmp_path / "old" / "checkpoints"), str(tmp_path / "new" / "checkpoints")
    resumed = RunCheckpoint(dirpath=new_dir, filename="best", monitor="val_auc", mode="max")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "dirpath has changed" warning: nothing is dropped
        resumed.load_state_dict(_saved_state(old_dir))
    assert float(resumed.best_model_score) == pytest.approx(0.82)
    assert resumed.best_model_path == resumed.kth_best_model_path == f"{new_dir}/best.ckpt"
    assert list(resumed.best_k_models) == [f"{new_dir}/best.ckpt"]


def test_plain_model_checkpoint_forgets_the_score_of_a_moved_run(tmp_path):
    """What RunCheckpoint is for: Lightning's own callback drops the score when the folder moved."""
    old_dir, new_dir = str(tmp_path / "old"), str(tmp_path / "new")
    plain = ModelCheckpoint(dirpath=new_dir, filename="best", monitor="val_auc", mode="max")
    with pytest.warns(UserWarning, match="dirpath has changed"):
        plain.load_state_dict(_saved_state(old_dir))
    assert plain.best_model_score is None


def test_state_key_matches_model_checkpoint_so_older_checkpoints_resume():
    kwargs = {"dirpath": "x", "filename": "best", "monitor": "val_auc", "mode": "max"}
    assert RunCheckpoint(**kwargs).state_key == ModelCheckpoint(**kwargs).state_key


def test_resumed_early_stopping_takes_the_new_patience_and_keeps_the_count():
    saved = EarlyStopping(monitor="val_auc", mode="max", patience=3)
    saved.wait_count, saved.best_score = 2, torch.tensor(0.8)
    resumed = RunEarlyStopping(monitor="val_auc", mode="max", patience=20)
    resumed.load_state_dict(saved.state_dict())
    assert resumed.patience == 20 and resumed.wait_count == 2 and float(resumed.best_score) == pytest.approx(0.8)
    plain = EarlyStopping(monitor="val_auc", mode="max", patience=20)
    plain.load_state_dict(saved.state_dict())
    assert plain.patience == 3  # what RunEarlyStopping is for
    assert RunEarlyStopping(monitor="val_auc", mode="max").state_key == plain.state_key


class _TinyModule(lightning.LightningModule):
    """One weight; its validation metric is the epoch number, so each line's own value is checkable."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        loss = (self.weight - batch[0]).pow(2).mean()
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_epoch", float(self.current_epoch), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_in_a_log_training_writes_one_line_per_epoch_with_its_own_validation_metrics(capsys):
    """What the README promises for a log (stderr a file or a pipe): one plain line per epoch."""
    import contextlib
    import sys

    from lightning import Trainer
    from torch.utils.data import DataLoader, TensorDataset

    from genderclass.progress import LogLines
    from genderclass.training.callbacks import LogProgressBar

    data = DataLoader(TensorDataset(torch.ones(8, 1)), batch_size=2)
    trainer = Trainer(
        max_epochs=3,
        callbacks=[LogProgressBar(refresh_rate=10)],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        accelerator="cpu",
    )
    with contextlib.redirect_stdout(LogLines(sys.stderr)):  # as training/run.py runs the fit in a log
        trainer.fit(_TinyModule(), train_dataloaders=data, val_dataloaders=data)
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if "Epoch" in line or "Training" in line]
    assert len(lines) == 3, lines
    for epoch, line in enumerate(lines):
        assert line.startswith(f"Epoch {epoch}: 4/4") and f"val_epoch={epoch}.000" in line and "train_loss=" in line
