"""Training checkpoints given by the user: what is refused as none (an exported model, a run
folder), and fine-tuning from one (``--init-from``)."""

from __future__ import annotations

import logging
import pickle
from typing import TYPE_CHECKING

from ..config import TrainConfig
from .exported_weights import exported_layers, is_exported, load_exported

if TYPE_CHECKING:
    import torch

    from .lightning_module import GenderModule

log = logging.getLogger(__name__)

NOT_A_CHECKPOINT = (pickle.UnpicklingError, EOFError, KeyError, RuntimeError, IsADirectoryError)


def not_a_checkpoint(path: str, exc: BaseException) -> ValueError:
    """The error for a file given as a training checkpoint that is none (an exported .onnx, a folder)."""
    return ValueError(
        f"{path} is not a training checkpoint ({type(exc).__name__}): give a run's checkpoints/best.ckpt "
        "(or last.ckpt), not its exported model or its folder"
    )


def _initialise_from_export(module: GenderModule, cfg: TrainConfig, sample: torch.Tensor | None) -> None:
    layers = exported_layers(cfg.init_from)  # a file that is no exported model is refused first
    if sample is None or not len(sample):
        raise ValueError(f"--init-from {cfg.init_from}: an exported model needs training images to start from")
    load_exported(module.model, cfg.init_from, sample, layers)
    if module.aux_head is not None:
        log.info("the auxiliary %s head starts fresh (an exported model keeps none)", cfg.aux_task)
    log.info(
        "initialised weights from the exported %s (batch norms set on %d training images)", cfg.init_from, len(sample)
    )


def _network_description(config: dict) -> str:
    """What a checkpoint's weights must match, from its saved training config: network and input."""
    pre = config.get("preprocess", {})
    return (
        f"{config.get('arch', '?')} of width {config.get('width', '?')} for {pre.get('modality', '?')}s "
        f"({pre.get('channels', '?')}-channel input)"
    )


def initialise_from(module: GenderModule, cfg: TrainConfig, sample: torch.Tensor | None = None) -> None:
    """Fine-tuning: the network's weights from ``cfg.init_from`` (they must fit exactly); the
    auxiliary head's too when the checkpoint trained the same auxiliary task, otherwise it starts fresh.
    An exported model (``NAME.onnx``, ``NAME.onnx#K``) needs ``sample``: float NCHW training images
    for its batch norms (:mod:`.exported_weights`)."""
    import torch

    if is_exported(cfg.init_from):
        _initialise_from_export(module, cfg, sample)
        return
    try:
        checkpoint = torch.load(cfg.init_from, map_location="cpu", weights_only=False)
        state = checkpoint["state_dict"]
    except (*NOT_A_CHECKPOINT, TypeError) as exc:  # TypeError: a file that unpickles to no dict
        raise not_a_checkpoint(cfg.init_from, exc) from exc
    network = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    try:
        module.model.load_state_dict(network)
    except RuntimeError as exc:
        saved = checkpoint.get("hyper_parameters", {}).get("config", {})
        theirs, ours = _network_description(saved), _network_description(cfg.to_dict())
        detail = f"it holds a {theirs}, this run trains a {ours}" if theirs != ours else str(exc).splitlines()[-1]
        raise ValueError(
            f"{cfg.init_from} does not fit this network: {detail.strip()}; start from a checkpoint of the same "
            "network (--arch, --width) and modality"
        ) from exc
    trained_task = checkpoint.get("hyper_parameters", {}).get("config", {}).get("aux_task", "")
    head = {k.removeprefix("aux_head."): v for k, v in state.items() if k.startswith("aux_head.")}
    if module.aux_head is not None and trained_task == cfg.aux_task and head:
        module.aux_head.load_state_dict(head)
    elif module.aux_head is not None:
        log.info(
            "the auxiliary %s head starts fresh (%s trained %s)", cfg.aux_task, cfg.init_from, trained_task or "none"
        )
    log.info("initialised weights from %s", cfg.init_from)
