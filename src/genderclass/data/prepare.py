"""The data a run trains on, read, cached and split exactly as its config says: for training,
and again for an export or a resume, which must find the data still split as when it was trained."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import TrainConfig, read_json
from .cache import DatasetCache, build_cache
from .readers import Sample, read_dataset
from .split import SplitResult, group_ids, read_split_csv, select_split_file, split_groups


@dataclass
class PreparedData:
    cache: DatasetCache
    split: SplitResult
    source: str = ""  # the data as the config names it
    samples: list = field(default_factory=list)  # the files read (after --limit), for other caches of them
    listed_test: np.ndarray | None = None  # per cached image: named by --test-files (None without it)

    def indices(self, name: str) -> np.ndarray:
        return self.split.indices(name)


def prepare_data(cfg: TrainConfig) -> PreparedData:
    """Read, cache and split the dataset exactly as the run's config says (deterministic)."""
    result = read_dataset(cfg.data, cfg.format)
    samples = result.samples
    if cfg.limit and cfg.limit < len(samples):
        keep = np.sort(np.random.default_rng(cfg.resolved_split_seed).choice(len(samples), cfg.limit, replace=False))
        samples = [samples[i] for i in keep]
    cache = build_cache(samples, cfg.preprocess, cfg.cache_dir)
    subjects = cache.subjects if (cache.subjects != "").any() else None
    groups = group_ids(cache.sha1, cache.phash, subjects, max_distance=cfg.near_duplicate_distance)
    listed = listed_test_files(cfg, samples, cache.paths)
    split = split_groups(
        cache.labels,
        groups,
        cfg.val_fraction,
        cfg.test_fraction,
        cfg.resolved_split_seed,
        cfg.folds,
        cfg.fold,
        listed,
        val_items=listed_files(cfg.val_files, cfg, samples, cache.paths),
    )
    return PreparedData(cache=cache, split=split, source=str(cfg.data), samples=samples, listed_test=listed)


def listed_test_files(cfg: TrainConfig, samples: list[Sample], paths: np.ndarray) -> np.ndarray | None:
    """Which of the cached images (``paths``) ``cfg.test_files`` lists (None without a list),
    matched as ``evaluate --split-file`` matches a .txt list."""
    return listed_files(cfg.test_files, cfg, samples, paths)


def listed_files(list_file: str, cfg: TrainConfig, samples: list[Sample], paths: np.ndarray) -> np.ndarray | None:
    """Which of the cached images (``paths``) the .txt list ``list_file`` names (None without one)."""
    if not list_file:
        return None
    listed = {sample.path for sample in select_split_file(samples, list_file, cfg.data)}
    return np.array([path in listed for path in paths.tolist()], dtype=bool)


def check_split_unchanged(run_dir: Path, data: PreparedData) -> None:
    """Refuse data that no longer splits as when the run was trained (files added, removed,
    relabelled, regrouped or changed): its test split would hold files the run trained on."""
    saved_split = read_split_csv(run_dir / "split.csv")
    now = dict(zip(data.cache.paths.tolist(), data.split.split.tolist(), strict=True))
    moved = sorted(p for p in saved_split.keys() | now.keys() if saved_split.get(p) != now.get(p))
    saved_hash = read_json(run_dir / "config.json")["data"]["data_hash"]
    if moved or saved_hash != data.cache.data_hash():
        if moved:
            first = moved[0]
            detail = f"; e.g. {first}: {saved_split.get(first, 'absent')} then, {now.get(first, 'absent')} now"
        else:
            detail = ", same files with other content"
        listed = " (or its --test-files list)" if data.listed_test is not None else ""
        raise ValueError(
            f"the data at {data.source}{listed} changed since {run_dir} was trained "
            f"({len(moved)} files split differently{detail}): "
            "its test files would no longer be unseen. Restore that data, or train a new run"
        )


def prepare_saved_data(cfg: TrainConfig, run_dir: Path) -> PreparedData:
    """:func:`prepare_data` for a trained run (export, resume): the data must be where the run names
    it and still split as the run's ``split.csv`` says (:func:`check_split_unchanged`)."""
    try:
        data = prepare_data(cfg)
    except FileNotFoundError as exc:
        if all(Path(name).is_absolute() for name in (cfg.data, cfg.test_files, cfg.val_files) if name):
            raise
        listed = " and its --test-files list" if cfg.test_files else ""
        raise FileNotFoundError(
            f"{exc} ({run_dir} names its data{listed} as given when it was trained, relative to the working "
            "directory then: run this from that folder)"
        ) from exc
    check_split_unchanged(run_dir, data)
    return data
