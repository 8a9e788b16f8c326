"""``genderclass train`` as stages: train a run (:func:`.run.train`), then export its best checkpoint
(:func:`.export.export_run`, which calibrates the exported file on validation and measures it on
test). Each stage runs on its own as well: ``genderclass export``, ``genderclass evaluate``."""

from __future__ import annotations

from pathlib import Path

from ..config import TrainConfig
from .export import export_run
from .run import train


def train_and_export(
    cfg: TrainConfig, resume: bool = False, command: str = "", overrides: dict | None = None
) -> Path | None:
    """Train (see :func:`.run.train` for ``resume``, ``command``, ``overrides``), then export on the
    data the run read; returns the exported ONNX path, or None in the processes of a distributed run
    other than the first (which alone exports)."""
    run = train(cfg, resume=resume, command=command, overrides=overrides)
    if run is None:
        return None
    return export_run(run.folder, data=run.data)
