"""The Lightning module of a run: the network, its losses (label smoothing, distillation, an
auxiliary task), batch augmentation, validation metrics and the learning-rate schedule."""

from __future__ import annotations

import math

import lightning as L
import torch
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryRecall, BinarySpecificity

from ..config import TrainConfig
from .augment import train_augment
from .auxiliary import AUXILIARY_TASKS
from .models import GenderNet


def _resized(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)


class TrainingDiverged(ValueError):
    """The training loss is not finite (NaN or infinite): the weights are lost, training stops."""


class GenderModule(L.LightningModule):
    """Binary classifier with label smoothing, optional positive-class weight, AdamW + warmup/cosine."""

    def __init__(self, config: dict, pos_weight: float = 1.0, steps_per_epoch: int = 1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = TrainConfig.from_dict(config)
        pre = self.cfg.preprocess
        self.model = GenderNet(self.cfg.arch, pre.channels, pre.mean, pre.std, self.cfg.width, self.cfg.dropout)
        self.register_buffer("pos_weight", torch.tensor(float(pos_weight)))
        self.augment = train_augment(
            pre, self.cfg.outside_fill, self.cfg.augment, self.cfg.hair_erase, self.cfg.yaw_warp
        )
        self.val_metrics = torch.nn.ModuleDict(
            {"acc": BinaryAccuracy(), "auc": BinaryAUROC(), "recall_f": BinaryRecall(), "recall_m": BinarySpecificity()}
        )
        # given before training (set_teachers; export never needs them); kept in a list, not as a
        # submodule, so they are never trained, saved in checkpoints or exported
        self._teachers: list[tuple[GenderNet, int]] = []
        # multi-task: an auxiliary head on the features that feed the gender logit, i.e. the input
        # of its linear layer, after dropout (saved in checkpoints; never exported: export takes
        # ``self.model`` only)
        self.aux_task = AUXILIARY_TASKS[self.cfg.aux_task] if self.cfg.aux_task else None
        features = self._classifier().in_features
        self.aux_head = torch.nn.Linear(features, self.aux_task.outputs) if self.aux_task else None
        self._features: torch.Tensor | None = None
        self._feature_hook = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def set_teachers(self, teachers: list[tuple[torch.nn.Module, int]]) -> None:
        """The frozen ``--teacher`` networks that teach on every batch, each with its input size
        (:func:`.teachers.checkpoint_teachers`); exported teachers come with the batches instead."""
        self._teachers = list(teachers)

    def on_fit_start(self) -> None:
        self._teachers = [(net.to(self.device), size) for net, size in self._teachers]
        if self.aux_head is not None and self._feature_hook is None:  # removed again by on_fit_end
            self._feature_hook = self._classifier().register_forward_hook(self._keep_features)

    def on_fit_end(self) -> None:
        if self._feature_hook is not None:
            self._feature_hook.remove()
            self._feature_hook, self._features = None, None

    def _classifier(self) -> torch.nn.Linear:
        """The layer that makes the gender logit (the network's last linear layer)."""
        return [m for m in self.model.modules() if isinstance(m, torch.nn.Linear)][-1]

    def _keep_features(self, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        self._features = inputs[0]

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Batch-level augmentation (see augment.py), training only; views drawn before training
        (``--teacher-views``) are augmented already."""
        if self.trainer is not None and self.trainer.training and not self.cfg.teacher_views:
            x, *targets = batch
            with torch.no_grad():
                batch = (self.augment(x), *targets)
        return batch

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        eps = self.cfg.label_smoothing
        target = y * (1 - eps) + eps / 2
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight)

    def _distill_loss(self, logits: torch.Tensor, x: torch.Tensor, given: torch.Tensor | None = None) -> torch.Tensor:
        """Binary knowledge distillation (Hinton et al. 2015): cross-entropy between the softened
        teacher and student probabilities, scaled by T^2 to keep its gradient comparable. Several
        teachers teach by their mean logit, each seeing the batch at its own input size; exported
        teachers by their logits ``given`` with the batch (computed once on the un-augmented images)."""
        t = self.cfg.distill_temperature
        with torch.no_grad():
            if self._teachers or given is None:
                teacher_logits = torch.stack([teacher(_resized(x, size)) for teacher, size in self._teachers]).mean(0)
            else:
                teacher_logits = given
            target = torch.sigmoid(teacher_logits / t)
        return t * t * torch.nn.functional.binary_cross_entropy_with_logits(logits / t, target)

    def _aux_outputs(self, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The auxiliary head on the last batch's features, and its targets, known targets only."""
        known = ~torch.isnan(target)
        return self.aux_head(self._features[known]), target[known]

    def _aux_loss(self, target: torch.Tensor) -> torch.Tensor:
        """The auxiliary loss of the last batch; zero, with the head still in the graph (as
        distributed training requires of every parameter), when no target in it is known."""
        predicted, known = self._aux_outputs(target)
        if not len(known):
            return self.aux_head(self._features).sum() * 0.0
        return self.aux_task.loss(predicted, known)

    def _check_finite(self, values: torch.Tensor, stage: str, batch_idx: int) -> None:
        """Stop at the first NaN or infinite loss or output: every later step, checkpoint and the
        export would be NaN too."""
        if not torch.isfinite(values).all():
            raise TrainingDiverged(
                f"training diverged: the {stage} {'loss' if stage == 'training' else 'output'} became NaN or "
                f"infinite at epoch {self.current_epoch}, batch {batch_idx} (--lr {self.cfg.lr:g} is likely too "
                "high): train again with a lower --lr"
            )

    def training_step(self, batch, batch_idx):
        x, y, aux, *given = batch  # given: an exported teacher's logits (CachedImages), when there is one
        teacher_logits = given[0] if given else None
        logits = self(x)
        loss = self._loss(logits, y)
        if self.cfg.teacher:  # set before the fit (or given with the batch); never skipped silently
            w = self.cfg.distill_weight
            loss = (1 - w) * loss + w * self._distill_loss(logits, x, teacher_logits)
        if self.aux_head is not None:
            aux_loss = self._aux_loss(aux)
            self.log("train_gender_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
            self.log(f"train_{self.cfg.aux_task}_loss", aux_loss, on_step=False, on_epoch=True, sync_dist=True)
            loss = loss + self.cfg.aux_weight * aux_loss
        self._check_finite(loss, "training", batch_idx)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y, aux, *_ = batch
        logits = self(x)
        self._check_finite(logits, "validation", batch_idx)
        self.log("val_loss", self._loss(logits, y), on_epoch=True, prog_bar=True, sync_dist=True)
        if self.aux_head is not None and self._features is not None:
            predicted, target = self._aux_outputs(aux)
            if len(target):
                value = self.aux_task.measure(predicted, target)
                # not synced across processes: a process whose batches had no known target would not join
                self.log(f"val_{self.aux_task.metric}", value, on_epoch=True, batch_size=len(target))
        probs, target = torch.sigmoid(logits), y.int()
        for metric in self.val_metrics.values():
            metric.update(probs, target)

    def on_validation_epoch_end(self) -> None:
        values = {name: metric.compute() for name, metric in self.val_metrics.items()}
        # torchmetrics gathered every process's predictions already: the mean over processes is the value itself
        self.log("val_acc", values["acc"], prog_bar=True, sync_dist=True)
        self.log("val_auc", values["auc"], sync_dist=True)
        self.log("val_bal_acc", (values["recall_f"] + values["recall_m"]) / 2, prog_bar=True, sync_dist=True)
        for metric in self.val_metrics.values():
            metric.reset()

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, param in self.named_parameters():  # the network and, when on, the auxiliary head
            (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.cfg.lr,
        )
        total = max(1, self.cfg.epochs * self.hparams.steps_per_epoch)
        warmup = max(1, self.cfg.warmup_epochs * self.hparams.steps_per_epoch)

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
