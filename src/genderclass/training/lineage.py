"""Where a run came from, for the exported metadata and the model card: the stages it was
fine-tuned from (``--init-from``) and the teachers it learned from (``--teacher``), each with the
command that trained it."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..config import read_json, teacher_checkpoints
from .exported_weights import is_exported, split_member

log = logging.getLogger(__name__)

MAX_EARLIER_STAGES = 20  # guards against a checkpoint chain that loops


def training_folder(run_dir: Path, out: str) -> Path | None:
    """The folder a run was trained from: ``run_dir`` without the trailing parts of its ``--out``
    (relative ``--init-from`` paths were given relative to it); None if that cannot be told."""
    out_parts = Path(out).parts
    if not out_parts or Path(out).is_absolute() or ".." in out_parts:
        return None
    run_parts = run_dir.resolve().parts
    if len(run_parts) <= len(out_parts) or run_parts[-len(out_parts) :] != out_parts:
        return None
    return Path(*run_parts[: -len(out_parts)])


def earlier_stages(init_from: str, base: Path | None = None) -> list[dict]:
    """The stages a run was fine-tuned from (``--init-from``), oldest first.

    Each gives the checkpoint as recorded, the command that trained it (from its run folder's
    config.json, None when that folder is gone) and its epoch counter; the chain follows each
    checkpoint's own stored ``init_from``. Relative paths are looked up under ``base`` (the folder
    training ran in), then the current folder. A checkpoint that is gone or unreadable ends the
    chain with what is known."""
    stages: list[dict] = []
    seen: set[Path] = set()
    while init_from and len(stages) < MAX_EARLIER_STAGES:
        if is_exported(init_from):  # an exported model ends the chain: its metadata tells its training
            return [*exported_stages(init_from, base), *stages[::-1]]
        given = Path(init_from)
        candidates = [given] if given.is_absolute() or base is None else [base / given, given]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            stages.append({"checkpoint": init_from, "command": None, "epoch": None})
            break
        if path.resolve() in seen:
            break
        seen.add(path.resolve())
        run_config = path.parent.parent / "config.json"
        command = read_json(run_config).get("command") if run_config.is_file() else None
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # an old or damaged file must not stop the export
            log.warning("earlier stage %s could not be read (%s); its predecessors are not listed", init_from, exc)
            stages.append({"checkpoint": init_from, "command": command, "epoch": None})
            break
        stages.append({"checkpoint": init_from, "command": command, "epoch": checkpoint.get("epoch")})
        init_from = (checkpoint.get("hyper_parameters") or {}).get("config", {}).get("init_from") or ""
    else:
        if init_from:
            log.warning("stopped following --init-from after %d earlier stages", MAX_EARLIER_STAGES)
    return stages[::-1]


def exported_stages(init_from: str, base: Path | None = None) -> list[dict]:
    """An exported model's earlier stages (``NAME.onnx``, ``NAME.onnx#K``), from its metadata: the
    stages of the network used, then the model itself with its training command."""
    name, member = split_member(init_from)
    candidates = [Path(name)] if Path(name).is_absolute() or base is None else [base / name, Path(name)]
    meta_path = next((c.with_suffix(".json") for c in candidates if c.with_suffix(".json").is_file()), None)
    training = (read_json(meta_path).get("training") or {}) if meta_path else {}
    members = training.get("members") or []
    network = members[member] if member is not None and member < len(members) else training
    own = {"checkpoint": init_from, "command": network.get("command"), "epoch": None, "exported": True}
    return [*(network.get("earlier_stages") or []), own]


def portable_teacher(teacher: str, base: Path | None) -> str:
    """``--teacher`` as recorded for export: training stores absolute paths (so that ``--resume``
    works from anywhere); those inside the training folder ``base``, or else inside the current
    folder, become relative to it (POSIX separators). Paths outside both stay as they are."""
    roots = [r.resolve() for r in (base, Path.cwd()) if r is not None]
    paths = []
    for given in teacher_checkpoints(teacher):
        path = Path(given)
        root = next((r for r in roots if path.is_absolute() and path.is_relative_to(r)), None)
        paths.append(path.relative_to(root).as_posix() if root else given)
    return ",".join(paths)


def teacher_lineages(teacher: str, base: Path | None = None) -> list[list[dict]]:
    """For each ``--teacher`` checkpoint (comma-separated), the stages that trained it, oldest
    first and the teacher itself last (see :func:`earlier_stages`)."""
    return [
        exported_model_stage(path) if Path(path).suffix.lower() == ".onnx" else earlier_stages(path, base)
        for path in teacher_checkpoints(teacher)
    ]


def exported_model_stage(model: str) -> list[dict]:
    """An exported teacher's one stage: its file and the commands its metadata records (an
    ensemble lists each member's)."""
    metadata = Path(model).with_suffix(".json")
    training = read_json(metadata).get("training", {}) if metadata.is_file() else {}
    command = training.get("command") if isinstance(training, dict) else None
    return [{"checkpoint": model, "command": command, "epoch": None}]
