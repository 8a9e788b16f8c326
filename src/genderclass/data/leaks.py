"""Checks before training that a run's numbers can be trusted: each split can train and validate
a classifier, and no model the run starts from (``--init-from``) or learns from (``--teacher``)
trained on, or chose its epoch on, files this run holds out."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..config import LABELS, TrainConfig, teacher_checkpoints
from ..training.exported_weights import split_member
from ..training.teachers import is_exported_model, teacher_test_files
from .prepare import PreparedData
from .split import read_split_csv, select_listed

log = logging.getLogger(__name__)


def check_trainable(cfg: TrainConfig, data: PreparedData) -> None:
    """Refuse training data that cannot give a meaningful model, before anything is trained."""
    train, val = data.indices("train"), data.indices("val")
    for name, index in (("training", train), ("validation", val)):
        # with --folds, validation is one fold of the groups (subjects, duplicates) outside test
        fold = name == "validation" and cfg.folds
        if fold:
            dealt = np.union1d(train, val)
            counts = [len(np.unique(data.split.groups[dealt[data.cache.labels[dealt] == c]])) for c in (0, 1)]
            name = (
                f"validation split (fold {cfg.fold} of --folds {cfg.folds}; each label's groups are dealt into "
                f"the folds, here {counts[0]} {LABELS[0]} and {counts[1]} {LABELS[1]})"
            )
        else:
            name = f"{name} split"
        if not len(index):
            hint = " or raise --val-fraction" if name.startswith("validation") else ""
            raise ValueError(
                f"the {name} is empty (split sizes {data.split.sizes()}): "
                + ("lower --folds or add data" if fold else f"add data{hint}")
            )
        missing = [LABELS[c] for c in (0, 1) if not (data.cache.labels[index] == c).any()]
        if missing:
            in_all = ", ".join(f"{int((data.cache.labels == LABELS.index(m)).sum())} {m}" for m in missing)
            raise ValueError(
                f"the {name} has no {' or '.join(missing)} images ({len(index)} files; the data holds {in_all} "
                f"in all): a classifier needs both labels on each side; {'lower --folds or ' if fold else ''}add "
                "data of the missing label"
            )
    if len(train) < cfg.batch_size:
        raise ValueError(
            f"the training split has {len(train)} images, fewer than one batch (--batch-size {cfg.batch_size}): "
            "lower --batch-size or add data"
        )


def check_sources_held_out(cfg: TrainConfig, data: PreparedData) -> None:
    """Refuse a model to start from (``--init-from``) or learn from (``--teacher``) that trained on
    files this run holds out, or chose its epoch on this run's test files: this run's validation
    (out-of-fold) and test numbers would be inflated. Its run's ``split.csv`` tells; paths in it are
    read from the working directory, like the data path of every run."""
    # an exported ensemble's network (NAME.onnx#K) was exported with the ensemble's test files
    init_from = [split_member(cfg.init_from)[0]] if cfg.init_from else []
    sources = init_from + (teacher_checkpoints(cfg.teacher) if cfg.teacher else [])
    ours = dict(zip((str(Path(p).resolve()) for p in data.cache.paths.tolist()), data.split.split.tolist()))
    for checkpoint in sources:
        if is_exported_model(checkpoint):
            _check_exported_teacher_held_out(checkpoint, data)
            continue
        split_file = Path(checkpoint).resolve().parent.parent / "split.csv"
        if not split_file.exists():
            log.warning("cannot check what %s trained on (no split.csv in its run folder): make sure it never "
                        "saw this run's validation or test files", checkpoint)  # fmt: skip
            continue
        theirs = {str(Path(p).resolve()): s for p, s in read_split_csv(split_file).items()}
        leaked = sorted(
            p for p, s in ours.items() if (s in ("val", "test") and theirs.get(p) == "train")
            or (s == "test" and theirs.get(p) == "val")
        )  # fmt: skip
        if leaked:
            raise ValueError(
                f"{checkpoint} was trained or selected on {len(leaked)} files this run holds out for validation "
                f"or test (e.g. {leaked[0]}): its numbers would be inflated; train it on this run's split "
                "(same --split-seed, --folds and --fold)"
            )


def _exported_data_folder(model: str) -> Path | None:
    """The data folder an exported model trained on, as its metadata names it, when it is a folder
    found from here (a CSV manifest may list files anywhere: None)."""
    meta = Path(model).with_suffix(".json")
    try:
        data = json.loads(meta.read_text())["training"]["data"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    folder = Path(str(data))
    return folder.resolve() if folder.is_dir() else None


def _check_exported_teacher_held_out(model: str, data: PreparedData) -> None:
    """An exported teacher has no split.csv, but export lists its test files beside it: this run's
    test files must all be among them (matched by path), or the teacher may have trained on them. Its
    validation files were probably trained on by it (an ensemble of cross-validation runs uses all
    of its non-test files): said, since epoch choice and calibration then rest on files it knew."""
    listed = teacher_test_files(model)
    if listed is None:
        log.warning("cannot check what %s trained on (no test_files.txt beside it): make sure it never saw this "
                    "run's test files", model)  # fmt: skip
        return
    held_out = {p for p, s in zip(data.cache.paths.tolist(), data.split.split.tolist()) if s == "test"}
    folder = _exported_data_folder(model)
    if folder is not None:  # files of other sources (a mix): the model never trained on them
        outside = {p for p in held_out if not Path(p).resolve().is_relative_to(folder)}
        if outside:
            log.info("%d test files lie outside %s, which %s trained on", len(outside), folder, model)
        held_out -= outside
    test = [sample for sample in data.samples if sample.path in held_out]
    # matched as evaluate --split-file matches: relative paths, never a bare name that fits several files
    listed_test, _ = select_listed(test, listed, data.source)
    unseen = sorted(held_out - {sample.path for sample in listed_test})
    if unseen:
        raise ValueError(
            f"{model} may have trained on {len(unseen)} files this run holds out for test (e.g. {unseen[0]}, "
            f"not in its test_files.txt): use the split it was exported from (same --split-seed, --folds)"
        )
    log.warning(
        "%s lists this run's %d test files as its own test files; it probably trained on this run's validation "
        "files, so the chosen epoch and the calibration rest on files the teacher knew",
        model,
        len(test),
    )
