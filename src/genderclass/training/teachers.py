"""Teachers for knowledge distillation (``--teacher``): training checkpoints of ours, loaded frozen
to teach on every augmented batch, or exported models of ours (``--teacher NAME.onnx``).

An exported ensemble has no training checkpoint, but its ONNX graph computes exactly the mean logit
that distillation needs. Running it on every augmented batch would cost more than the training
itself (an INT8 ensemble of 30 networks classifies about 20 prints/s on two cores), so its logits
are computed once, on each un-augmented training image preprocessed as the teacher's metadata
says, and every augmentation of that image learns from them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import PreprocessConfig, TrainConfig, teacher_checkpoints

if TYPE_CHECKING:
    import torch

    from ..data.prepare import PreparedData

log = logging.getLogger(__name__)


def is_exported_model(name: str) -> bool:
    return Path(name).suffix.lower() == ".onnx"


def load_exported_teacher(path: str | Path, student: PreprocessConfig, threads: int = 1):
    """An exported model opened by the predict service, refused if trained on other preprocessing
    than the student's (the input size apart)."""
    from ..inference.classifier import GenderClassifier

    teacher = GenderClassifier.load(path, threads=threads)
    mismatched = teacher.preprocess.differences(student)
    if mismatched:
        raise ValueError(f"teacher {path} was trained on other preprocessing: {', '.join(mismatched)}")
    return teacher


def teacher_test_files(path: str | Path) -> list[str] | None:
    """The files an exported teacher lists as its test split (``NAME.test_files.txt``: paths relative
    to its data folder), if it lists them."""
    listed = Path(path).with_name(f"{Path(path).stem}.test_files.txt")
    if not listed.is_file():
        return None
    return [line.strip() for line in listed.read_text().splitlines() if line.strip()]


def exported_teachers(teacher: str) -> list[str]:
    """The exported models among ``--teacher``'s names; checkpoints and exported models do not mix
    (the first teach on each augmented batch, the second from logits computed once)."""
    names = teacher_checkpoints(teacher) if teacher else []
    exported = [name for name in names if is_exported_model(name)]
    if exported and len(exported) != len(names):
        raise ValueError("--teacher takes training checkpoints or exported models (.onnx), not both")
    return exported


def load_teacher(checkpoint: str, student: PreprocessConfig | None = None) -> tuple[torch.nn.Module, int]:
    """A trained network of ours, frozen, and the input size it was trained at. With ``student``,
    the teacher must have been trained on the same preprocessing (only the input size may differ)."""
    from .checkpoints import NOT_A_CHECKPOINT, not_a_checkpoint
    from .lightning_module import GenderModule

    try:
        module = GenderModule.load_from_checkpoint(checkpoint, map_location="cpu")
    except NOT_A_CHECKPOINT as exc:
        raise not_a_checkpoint(checkpoint, exc) from exc
    pre = module.cfg.preprocess
    if student is not None:
        mismatched = pre.differences(student)
        if mismatched:
            raise ValueError(f"teacher {checkpoint} was trained on other preprocessing: {', '.join(mismatched)}")
    net = module.model.requires_grad_(False)
    return net.eval(), pre.input_size


def checkpoint_teachers(cfg: TrainConfig) -> list[tuple[torch.nn.Module, int]]:
    """The ``--teacher`` checkpoints, loaded by :func:`load_teacher` (refused if trained on other
    preprocessing than ``cfg``'s); none for exported teachers, which teach from logits computed
    before training (:func:`exported_teacher_logits`)."""
    if not cfg.teacher or exported_teachers(cfg.teacher):
        return []
    return [load_teacher(checkpoint, cfg.preprocess) for checkpoint in teacher_checkpoints(cfg.teacher)]


def _teacher_crops(samples: list, preprocess: PreprocessConfig, cache_dir: str, wanted: np.ndarray):
    """A teacher's cache of ``samples`` (built like the training one, with its own preprocessing) and
    the rows in it of the ``wanted`` paths, in their order."""
    from ..data.cache import build_cache

    cache = build_cache(samples, preprocess, cache_dir)
    where = {path: i for i, path in enumerate(cache.paths.tolist())}
    return cache, np.array([where[path] for path in wanted.tolist()])


def exported_teacher_logits(
    models: list[str],
    samples: list,
    paths: np.ndarray,
    index: np.ndarray,
    student: PreprocessConfig,
    cache_dir: str,
    threads: int = 1,
) -> np.ndarray:
    """The mean raw logit of the exported ``models`` on each un-augmented image of ``index`` (NaN
    elsewhere), each model seeing the images preprocessed as its metadata says (its own input size),
    from a cache built like the training one. ``paths``: the training cache's paths, in its order."""
    from ..progress import progress

    total = np.zeros(len(paths), dtype=np.float64)
    for model in models:
        teacher = load_exported_teacher(model, student, threads=threads)
        cache, rows = _teacher_crops(samples, teacher.preprocess, cache_dir, paths[index])
        bar = progress(total=len(rows), desc=f"teacher {teacher.path.name}")
        for start in range(0, len(rows), 640):  # chunks, for the progress bar
            chunk = rows[start : start + 640]
            total[index[start : start + 640]] += teacher.logits(list(cache.images[chunk]))
            bar.update(len(chunk))
        bar.close()
    logits = np.full(len(paths), np.nan, dtype=np.float32)
    logits[index] = total[index] / len(models)
    return logits


def exported_teacher_views(
    models: list[str],
    samples: list,
    paths: np.ndarray,
    index: np.ndarray,
    student: PreprocessConfig,
    augment,
    views: int,
    cache_dir: str,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """``views`` augmented views of each training image of ``index`` and the exported ``models``'
    mean raw logit on each: (uint8 [len(index), views, H, W, C] at the student's input size, float32
    [len(index), views]). The views are drawn once by ``augment`` (the training augmentation, on
    float NCHW batches) from the first model's crops, so that each teacher scores the view the
    student will see (a consistent teacher), resized to each model's and the student's input size."""
    import torch

    from ..progress import progress

    teachers = [load_exported_teacher(model, student, threads=threads) for model in models]
    cache, rows = _teacher_crops(samples, teachers[0].preprocess, cache_dir, paths[index])
    size = student.input_size
    out = np.empty((len(rows), views, size, size, student.channels), dtype=np.uint8)
    logits = np.zeros((len(rows), views), dtype=np.float32)
    bar = progress(total=len(rows) * views, desc="teacher views")
    for start in range(0, len(rows), 256):
        chunk = torch.from_numpy(cache.images[rows[start : start + 256]]).permute(0, 3, 1, 2).float()
        for k in range(views):
            with torch.no_grad():
                view = augment(chunk).clamp(0, 255)
            for teacher in teachers:
                logits[start : start + len(chunk), k] += teacher.logits(
                    _uint8_images(view, teacher.preprocess.input_size)
                )
            out[start : start + len(chunk), k] = _uint8_images(view, size)
            bar.update(len(chunk))
    bar.close()
    return out, logits / len(teachers)


TEACHER_LOGITS = "teacher_logits.npy"  # an exported teacher's logits, kept in the run folder for --resume


def run_teacher_logits(cfg: TrainConfig, data: PreparedData, out: Path, train: np.ndarray) -> np.ndarray | None:
    """Exported ``--teacher`` models' mean logit on each training image, computed once (or read back
    from the run folder when resuming); None without exported teachers."""
    models = exported_teachers(cfg.teacher)
    if not models:
        return None
    saved = out / TEACHER_LOGITS
    if saved.is_file():
        logits = np.load(saved)
        if len(logits) == len(data.cache) and np.isfinite(logits[train]).all():
            log.info("teacher logits read from %s", saved)
            return logits
    log.info("computing the logits of %s on the %d training images", ", ".join(models), len(train))
    return exported_teacher_logits(
        models, data.samples, data.cache.paths, train, cfg.preprocess, cfg.cache_dir, threads=max(1, cfg.threads)
    )


TEACHER_VIEWS = "teacher_views.npz"  # --teacher-views: the views and the teacher's logits, for --resume


def run_teacher_views(
    cfg: TrainConfig, data: PreparedData, out: Path, train: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """``--teacher-views``: augmented views of each training image and the exported teachers' mean
    logit on each, drawn once (or read back from the run folder when resuming); None when off."""
    if not cfg.teacher_views:
        return None
    saved = out / TEACHER_VIEWS
    if saved.is_file():
        with np.load(saved) as stored:
            if (
                np.array_equal(stored["paths"], data.cache.paths[train])
                and stored["logits"].shape[1] == cfg.teacher_views
            ):
                log.info("teacher views read from %s", saved)
                return stored["views"], stored["logits"]
    size, channels = cfg.preprocess.input_size, cfg.preprocess.channels
    views = np.empty((len(train), cfg.teacher_views, size, size, channels), dtype=np.uint8)
    logits = np.empty((len(train), cfg.teacher_views), dtype=np.float32)
    have = views_from_runs(cfg, data.cache.paths[train], views, logits)
    if have.all():
        return views, logits
    models = exported_teachers(cfg.teacher)
    log.info(
        "drawing %d views of %d of the %d training images for %s",
        cfg.teacher_views,
        int((~have).sum()),
        len(train),
        ", ".join(models),
    )
    from .augment import train_augment

    augment = train_augment(cfg.preprocess, geometry=cfg.augment)
    views[~have], logits[~have] = exported_teacher_views(
        models,
        data.samples,
        data.cache.paths,
        train[~have],
        cfg.preprocess,
        augment,
        cfg.teacher_views,
        cfg.cache_dir,
        threads=max(1, cfg.threads),
    )
    return views, logits


def views_from_runs(cfg: TrainConfig, paths: np.ndarray, views: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """``--teacher-views-from``: copy into ``views`` and ``logits`` the views that other runs drew of
    the same images (``paths``) with the same teacher files, count of views, preprocessing and
    augmentation (a run of another fold, say); the mask of the images filled."""
    have = np.zeros(len(paths), dtype=bool)
    position = {path: i for i, path in enumerate(paths)}
    for run in teacher_checkpoints(cfg.teacher_views_from):
        check_views_donor(cfg, Path(run))
        with np.load(Path(run) / TEACHER_VIEWS) as stored:
            pairs = [(position[p], j) for j, p in enumerate(stored["paths"]) if p in position]
            mine = np.array([i for i, _ in pairs if not have[i]], dtype=int)
            theirs = np.array([j for i, j in pairs if not have[i]], dtype=int)
            if len(mine):
                views[mine], logits[mine] = stored["views"][theirs], stored["logits"][theirs]
                have[mine] = True
        log.info("teacher views of %d training images taken from %s", len(mine), run)
    return have


def check_views_donor(cfg: TrainConfig, run: Path) -> None:
    """ValueError unless ``run`` drew its teacher views as ``cfg`` would: the same teacher files (by
    content), count of views, preprocessing and augmentation."""
    config = run / "config.json"
    if not (config.is_file() and (run / TEACHER_VIEWS).is_file()):
        raise ValueError(f"--teacher-views-from {run}: no {TEACHER_VIEWS} and config.json there")
    theirs = TrainConfig.from_dict(json.loads(config.read_text())["train"])
    differ = [
        name
        for name, same in (
            ("teacher", _digests(theirs.teacher) == _digests(cfg.teacher)),
            ("teacher_views", theirs.teacher_views == cfg.teacher_views),
            ("augment", theirs.augment == cfg.augment),
            ("preprocess", theirs.preprocess == cfg.preprocess),
        )
        if not same
    ]
    if differ:
        raise ValueError(f"--teacher-views-from {run}: its views differ from this run's in {', '.join(differ)}")


def _digests(teacher: str) -> list[str]:
    """The SHA-256 of each exported teacher file (a missing file: its name, which matches no digest)."""
    names = exported_teachers(teacher)
    return [hashlib.sha256(Path(n).read_bytes()).hexdigest() if Path(n).is_file() else n for n in names]


def save_teacher_views(path: Path, paths: np.ndarray, views: tuple[np.ndarray, np.ndarray]) -> None:
    """Kept for --resume; written once (views are drawn at random: a second draw is another run)."""
    if path.is_file():
        return
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.npz")
    np.savez(partial, paths=paths, views=views[0], logits=views[1])
    partial.replace(path)


def save_teacher_logits(path: Path, logits: np.ndarray) -> None:
    """Kept for --resume; replaced whole, and only when it changed (other processes may read it)."""
    if path.is_file() and np.array_equal(np.load(path), logits, equal_nan=True):
        return
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.npy")
    np.save(partial, logits)
    partial.replace(path)


def _uint8_images(batch, size: int) -> np.ndarray:
    """Float NCHW pixels (0-255) -> uint8 NHWC at ``size`` (bilinear, antialiased when shrinking)."""
    import torch

    if batch.shape[-1] != size:
        batch = torch.nn.functional.interpolate(batch, size=(size, size), mode="bilinear", antialias=True)
    return batch.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
