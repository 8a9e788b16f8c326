"""Leak-free splits: duplicate groups and subjects never straddle train/val/test.

Groups are formed by union-find over three relations: the same subject id, byte-identical
content (sha1), and near-identical content (perceptual hash within a small Hamming distance).
Groups whose members carry different labels are dropped. Assignment is stratified by label and
deterministic for a given seed.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ..config import check_folds
from .readers import Sample

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _union_equal(uf: UnionFind, keys: Sequence[object | None]) -> None:
    first: dict[object, int] = {}
    for i, key in enumerate(keys):
        if key is None or key == "":
            continue
        if key in first:
            uf.union(first[key], i)
        else:
            first[key] = i


def _union_near(uf: UnionFind, phashes: np.ndarray, max_distance: int, chunk: int = 2048) -> None:
    """Union items whose 64-bit perceptual hashes differ in at most ``max_distance`` bits."""
    hashes = np.asarray(phashes, dtype=np.uint64)
    n = len(hashes)
    for start in range(0, n, chunk):
        block = hashes[start : start + chunk]
        distance = np.bitwise_count(block[:, None] ^ hashes[None, :])
        rows, cols = np.nonzero(distance <= max_distance)
        for r, c in zip(rows.tolist(), cols.tolist()):
            if start + r < c:
                uf.union(start + r, c)


def group_ids(
    sha1: Sequence[str | None],
    phash: Sequence[int] | np.ndarray | None = None,
    subjects: Sequence[str | None] | None = None,
    max_distance: int = 2,
) -> np.ndarray:
    """Return one integer group id per item (the smallest index in its group)."""
    n = len(sha1)
    uf = UnionFind(n)
    _union_equal(uf, sha1)
    if subjects is not None:
        _union_equal(uf, subjects)
    if phash is not None and n and max_distance >= 0:
        _union_near(uf, np.asarray(phash, dtype=np.uint64), max_distance)
    return np.array([uf.find(i) for i in range(n)], dtype=np.int64)


@dataclass
class SplitResult:
    split: np.ndarray  # per item: "train" | "val" | "test" | "dropped"
    groups: np.ndarray
    n_conflicting_groups: int
    n_dropped: int

    def indices(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.split == name)

    def sizes(self) -> dict[str, int]:
        return {name: int((self.split == name).sum()) for name in (*SPLITS, "dropped")}


def split_groups(
    labels: Sequence[int],
    groups: np.ndarray,
    val_fraction: float = 0.1,
    test_fraction: float = 0.15,
    seed: int = 0,
    folds: int = 0,
    fold: int = 0,
    test_items: np.ndarray | None = None,
    val_items: np.ndarray | None = None,
) -> SplitResult:
    """Assign whole groups to train/val/test, stratified by label; drop label-conflicting groups.

    With ``folds`` = K (>= 2), the test groups are exactly those of ``folds=0``; the other groups
    are dealt into K folds of near-equal size per label, fold ``fold`` is validation and the rest
    is training (``val_fraction`` is then unused). K runs with ``fold`` 0..K-1 see every non-test
    group once as validation: out-of-fold predictions (see ``export``) calibrate their ensemble.

    ``test_items`` (one bool per item, ``train --test-files``) names the test split instead of
    ``test_fraction``: every group holding one of them is test, whole; the other groups are split
    as before, validation still ``val_fraction`` of each label's images. ``val_items`` (``train
    --val-files``, not with folds) names the validation split the same way (test wins a group that
    holds both)."""
    check_folds(folds, fold)
    labels = np.asarray(labels)
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups.tolist()):
        members[g].append(i)
    split = np.full(len(labels), "train", dtype=object)
    by_label: dict[int, list[int]] = defaultdict(list)
    listed_total: dict[int, int] = defaultdict(int)  # per label: images in groups of listed test items
    conflicting = 0
    for g, idx in members.items():
        group_labels = set(labels[idx].tolist())
        if len(group_labels) > 1:
            split[idx] = "dropped"
            conflicting += 1
        elif test_items is not None and test_items[idx].any():
            split[idx] = "test"
            listed_total[group_labels.pop()] += len(idx)
        elif val_items is not None and val_items[idx].any():
            split[idx] = "val"
        else:
            by_label[group_labels.pop()].append(g)
    rng = np.random.default_rng(seed)
    for label in sorted(by_label):
        order = sorted(by_label[label])
        rng.shuffle(order)
        total = sum(len(members[g]) for g in order) + listed_total[label]
        targets = {
            "test": 0.0 if test_items is not None else test_fraction * total,
            "val": 0.0 if folds or val_items is not None else val_fraction * total,
        }
        filled = {"test": 0, "val": 0}
        fold_sizes = [0] * folds
        for g in order:
            name = next((s for s in ("test", "val") if filled[s] < targets[s]), "train")
            if name != "train":
                filled[name] += len(members[g])
            elif folds:  # the smallest fold so far takes the group
                chosen = fold_sizes.index(min(fold_sizes))
                fold_sizes[chosen] += len(members[g])
                name = "val" if chosen == fold else "train"
            split[members[g]] = name
    n_dropped = int((split == "dropped").sum())
    if conflicting:
        groups_word = "group" if conflicting == 1 else "groups"
        log.warning(
            "dropped %d %s (%d images) whose duplicates carry conflicting labels", conflicting, groups_word, n_dropped
        )
    if test_items is not None:
        _report_listed_test(split, test_items)
    return SplitResult(split=split.astype(str), groups=groups, n_conflicting_groups=conflicting, n_dropped=n_dropped)


def _report_listed_test(split: np.ndarray, test_items: np.ndarray) -> None:
    """How the listed test files came out: the duplicates that joined them, the ones dropped."""
    joined = int(((split == "test") & ~test_items).sum())
    dropped = int(((split == "dropped") & test_items).sum())
    log.info(
        "test split: the %d listed files and %d more of their duplicate groups (subjects, near-duplicates)",
        int(test_items.sum()) - dropped,
        joined,
    )
    if dropped:
        log.warning("%d listed test files are dropped with duplicates that carry another label", dropped)


def write_split_csv(path: str | Path, paths: Sequence[str], labels: Sequence[int], result: SplitResult) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as handle:  # any file name
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "group", "split"])
        for p, label, g, s in zip(paths, labels, result.groups.tolist(), result.split.tolist()):
            writer.writerow([p, int(label), g, s])


def read_split_csv(path: str | Path) -> dict[str, str]:
    """Map path -> split name."""
    with Path(path).open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
        return {row["path"]: row["split"] for row in csv.DictReader(handle)}


def data_folder(data: str | Path) -> Path:
    """The folder a dataset's relative names start from: the data folder, or a CSV manifest's folder."""
    data = Path(data)
    return data.parent if data.is_file() else data


def relative_name(path: str, data: str | Path) -> str:
    """``path`` relative to the data folder (POSIX separators), or as given if it lies elsewhere."""
    try:
        relative = Path(os.path.relpath(path, data_folder(data)))
    except ValueError:  # another drive
        return path
    return path if relative.parts[:1] == ("..",) else relative.as_posix()


def select_listed(samples: Sequence[Sample], entries: Iterable[str], data: str | Path) -> tuple[list[Sample], int]:
    """The samples an entry list names, in data order, and how many entries named none of them.

    An entry is a path relative to the data folder (what ``export`` writes), a path as a run saw
    it (``split.csv``: relative to the working directory then, or absolute), or a bare file name.
    A path that matches no file exactly matches the one file whose path relative to the data folder
    ends it or is ended by it (the same data reached from another folder); a bare name, the one
    file of that name. A name or path that fits several files is refused: guessing would let
    training files into a test set. A path never falls back to its name alone.
    """
    relative = {s.path: PurePosixPath(relative_name(s.path, data)).parts for s in samples}
    by_relative = {"/".join(relative[s.path]): s for s in samples}
    by_resolved = {str(Path(s.path).resolve()): s for s in samples}
    by_name: dict[str, list[Sample]] = {}
    for sample in samples:
        by_name.setdefault(Path(sample.path).name, []).append(sample)
    chosen: set[str] = set()
    unmatched = 0
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        if os.sep == "/":  # a list written on Windows
            entry = entry.replace("\\", "/")
        parts = PurePosixPath(entry).parts
        found = by_relative.get("/".join(parts)) or by_resolved.get(str(Path(entry).resolve()))
        if found is None:
            fits = by_name.get(parts[-1], []) if parts else []
            if len(parts) > 1:  # one path ends the other: the same file, the data reached from another folder
                fits = [s for s in fits if _ends_with(parts, relative[s.path]) or _ends_with(relative[s.path], parts)]
            if len(fits) > 1:
                examples = ", ".join(relative_name(s.path, data) for s in fits[:2])
                raise ValueError(
                    f"{entry!r} fits {len(fits)} files of the data ({examples}, ...): list paths relative "
                    "to the data folder, or evaluate from the folder the run was trained in"
                )
            found = fits[0] if fits else None
        if found is None:
            unmatched += 1
        else:
            chosen.add(found.path)
    return [s for s in samples if s.path in chosen], unmatched


def split_file_phrase(split_file: str | Path, split: str = "test") -> str:
    """How a ``--split-file`` names files, for messages: "listed in" (a .txt list) or "in the test split of"."""
    return "listed in" if str(split_file).endswith(".txt") else f"in the {split} split of"


def select_split_file(
    samples: Sequence[Sample], split_file: str | Path, data: str | Path, split: str = "test"
) -> list[Sample]:
    """The samples a split file names, in data order: a .txt list (one file a line; ``evaluate
    --split-file``, ``train --test-files``) or a run's ``split.csv`` (its rows of ``split``), matched
    by :func:`select_listed`. Says how many matched and warns of entries that name no file of the
    data; a file that names none of them is refused."""
    if str(split_file).endswith(".txt"):
        wanted = Path(split_file).read_text().splitlines()
    else:
        wanted = [p for p, s in read_split_csv(split_file).items() if s == split]
    chosen, unmatched = select_listed(samples, wanted, data)
    where = split_file_phrase(split_file, split)
    log.info("%d files of the data %s %s", len(chosen), where, split_file)
    if unmatched:
        log.warning("%d files %s %s are not in %s", unmatched, where, split_file, data)
    if not chosen:
        raise ValueError(f"no file of {data} is {where} {split_file}")
    return chosen


def _ends_with(parts: tuple[str, ...], tail: tuple[str, ...]) -> bool:
    return 0 < len(tail) <= len(parts) and parts[-len(tail) :] == tail
