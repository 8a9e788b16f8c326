"""Leak-free grouping and splitting: duplicates and subjects never straddle train/val/test."""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
import pytest

from genderclass.data.split import (
    SPLITS,
    group_ids,
    read_split_csv,
    relative_name,
    select_listed,
    select_split_file,
    split_groups,
    write_split_csv,
)


def _same_group(groups: np.ndarray, *indices: int) -> bool:
    return len({int(groups[i]) for i in indices}) == 1


def test_group_ids_merges_byte_identical_files():
    sha1 = ["a", "b", "a", "c", "b", "a"]
    groups = group_ids(sha1)
    assert groups.tolist() == [0, 1, 0, 3, 1, 0]  # id = smallest index in the group


def test_group_ids_ignores_missing_hashes():
    groups = group_ids(["", None, "", "x", None])
    assert len(set(groups.tolist())) == 5


def test_group_ids_merges_near_duplicate_phashes():
    base = 0b1011_0110_1100_0011_0101_1010_1111_0000_1010_0101_0011_1100_0110_1001_1110_0001
    phash = [
        base,
        base ^ 0b11,  # 2 bits away: near duplicate of 0
        base ^ (0b111 << 20),  # 3 bits away: distinct
        (base ^ 0b11) ^ (0b11 << 40),  # 2 bits from item 1 (4 from item 0): joins by transitivity
        ~base & (2**64 - 1),  # far away
    ]
    groups = group_ids([f"s{i}" for i in range(5)], phash)
    assert _same_group(groups, 0, 1, 3)
    assert not _same_group(groups, 0, 2)
    assert not _same_group(groups, 0, 4)
    assert groups.tolist() == [0, 0, 2, 0, 4]
    # max_distance is honoured
    assert group_ids([f"s{i}" for i in range(5)], phash, max_distance=3).tolist() == [0, 0, 0, 0, 4]
    assert group_ids([f"s{i}" for i in range(5)], phash, max_distance=0).tolist() == [0, 1, 2, 3, 4]


def test_group_ids_near_duplicates_across_chunks():
    rng = np.random.default_rng(3)
    n = 2600  # more than one 2048-row block of the distance computation
    phash = rng.integers(0, 2**63, n, dtype=np.uint64) * 2 + 1
    phash[2500] = phash[7] ^ np.uint64(1)  # a near duplicate far away from its twin
    groups = group_ids([f"s{i}" for i in range(n)], phash)
    assert groups[2500] == groups[7] == 7
    # random 64-bit hashes are essentially never within 2 bits of each other
    assert len(set(groups.tolist())) == n - 1


def test_group_ids_merges_subjects_and_links_them_through_duplicates():
    sha1 = ["h1", "h2", "h3", "h4", "h2", "h5"]
    subjects = ["A", "A", "B", "C", "D", None]
    groups = group_ids(sha1, subjects=subjects)
    assert _same_group(groups, 0, 1)  # same subject
    assert _same_group(groups, 1, 4)  # same bytes under another subject id: subjects A and D merge
    assert not _same_group(groups, 0, 2)
    assert not _same_group(groups, 2, 3)
    assert groups[5] == 5  # no subject, unique bytes


def _random_dataset(seed: int, n_groups: int = 600, conflict_rate: float = 0.03):
    """Groups of 1-6 items, ~30% female groups, a few groups with contradictory labels."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, n_groups)
    group_of = np.repeat(np.arange(n_groups), sizes)
    group_label = (rng.random(n_groups) < 0.3).astype(int)
    labels = group_label[group_of].copy()
    conflicting = set()
    for g in np.flatnonzero(sizes >= 2):
        if rng.random() < conflict_rate:
            members = np.flatnonzero(group_of == g)
            labels[members[-1]] = 1 - labels[members[-1]]
            conflicting.add(int(g))
    order = rng.permutation(len(labels))  # groups are not contiguous in real data
    return labels[order], group_of[order], conflicting


@pytest.mark.parametrize("seed", range(8))
def test_split_groups_properties(seed):
    labels, raw_groups, conflicting = _random_dataset(seed)
    # feed the split with the ids group_ids would produce (smallest member index)
    groups = group_ids([f"g{g}" for g in raw_groups])
    result = split_groups(labels, groups, val_fraction=0.1, test_fraction=0.15, seed=seed)
    assert len(result.split) == len(labels)
    assert set(result.split.tolist()) <= {*SPLITS, "dropped"}

    sides: dict[int, set[str]] = defaultdict(set)
    for g, s in zip(raw_groups.tolist(), result.split.tolist()):
        sides[g].add(s)
    assert all(len(s) == 1 for s in sides.values()), "a group sits on two sides of the split"

    dropped = {g for g, s in sides.items() if s == {"dropped"}}
    assert dropped == conflicting
    assert result.n_conflicting_groups == len(conflicting)
    assert result.n_dropped == int((result.split == "dropped").sum())
    assert sum(result.sizes().values()) == len(labels)

    # stratified: each label gets roughly the requested share in val and test
    for label in (0, 1):
        kept = (labels == label) & (result.split != "dropped")
        total = kept.sum()
        for name, target in (("test", 0.15), ("val", 0.1)):
            share = ((result.split == name) & kept).sum() / total
            assert share == pytest.approx(target, abs=0.03), (label, name, share)
        train_share = ((result.split == "train") & kept).sum() / total
        assert train_share == pytest.approx(0.75, abs=0.04)


def test_split_groups_deterministic_per_seed():
    labels, raw_groups, _ = _random_dataset(11)
    groups = group_ids([f"g{g}" for g in raw_groups])
    a = split_groups(labels, groups, seed=5).split
    b = split_groups(labels, groups, seed=5).split
    c = split_groups(labels, groups, seed=6).split
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


def test_split_groups_drops_conflicting_groups(caplog):
    labels = [0, 1, 0, 0, 1, 1]
    groups = np.array([0, 0, 2, 3, 4, 5])  # group 0 is "male" and "female" at once
    result = split_groups(labels, groups, seed=0)
    assert result.split[:2].tolist() == ["dropped", "dropped"]
    assert "dropped" not in result.split[2:].tolist()
    assert result.n_conflicting_groups == 1
    assert result.n_dropped == 2
    assert "dropped 1 group (2 images) whose duplicates carry conflicting labels" in caplog.text


def test_split_groups_whole_duplicate_group_moves_together():
    # one big group: it must land on exactly one side, whatever the fractions say
    labels = [0] * 10 + [1] * 10
    groups = np.array([0] * 10 + list(range(10, 20)))
    for seed in range(5):
        split = split_groups(labels, groups, seed=seed).split
        assert len(set(split[:10].tolist())) == 1


def test_split_csv_round_trip(tmp_path):
    labels = [0, 1, 0, 1]
    groups = np.array([0, 1, 0, 3])
    result = split_groups(labels, groups, seed=0)
    paths = ["a.jpg", "b.jpg", "dir/c.jpg", "d.jpg"]
    file = tmp_path / "run" / "split.csv"
    write_split_csv(file, paths, labels, result)
    lines = file.read_text().splitlines()
    assert lines[0] == "path,label,group,split"
    # each row: the file, its own label and group, and its split
    expected = [f"{p},{y},{g},{s}" for p, y, g, s in zip(paths, labels, groups.tolist(), result.split.tolist())]
    assert lines[1:] == expected
    assert read_split_csv(file) == dict(zip(paths, result.split.tolist()))


def test_declared_numpy_floor_supports_the_split():
    """``_union_near`` uses ``np.bitwise_count`` (NumPy >= 2.0): the declared dependency must allow
    only NumPy versions that have it, or installs with NumPy 1.26 break at the first split."""
    import inspect
    import re
    import tomllib
    from pathlib import Path

    import genderclass.data.split as split_module

    if "bitwise_count" not in inspect.getsource(split_module):
        pytest.skip("split no longer uses np.bitwise_count")
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not running from the source tree")
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    (spec,) = [d for d in dependencies if re.match(r"numpy\b", d)]
    floor = re.search(r">=\s*([0-9.]+)", spec)
    assert floor is not None, spec
    assert int(floor.group(1).split(".")[0]) >= 2, f"declared {spec!r} but np.bitwise_count needs numpy>=2.0"


def _subject_groups(n_subjects: int, prints: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sex = (rng.random(n_subjects) < 0.2).astype(int)  # about 4:1, like SOCOFing
    subjects = [str(s) for s in range(n_subjects) for _ in range(prints)]
    labels = np.repeat(sex, prints)
    return labels, group_ids([None] * len(subjects), subjects=subjects)


def test_cross_validation_folds_keep_the_test_split_and_cover_the_rest_once():
    labels, groups = _subject_groups(300, 10, seed=5)
    plain = split_groups(labels, groups, seed=4)
    folds = [split_groups(labels, groups, seed=4, folds=5, fold=k) for k in range(5)]
    val_counts = np.zeros(len(labels), dtype=int)
    for result in folds:
        assert np.array_equal(result.split == "test", plain.split == "test")
        assert set(result.split.tolist()) == {"train", "val", "test"}
        val_counts += result.split == "val"
        for g in np.unique(groups):  # a subject never straddles a fold's train and validation
            assert len(set(result.split[groups == g].tolist())) == 1
    # every non-test file is validation in exactly one fold
    assert np.array_equal(val_counts, (plain.split != "test").astype(int))
    # folds are stratified: each holds about a fifth of each class
    pool = plain.split != "test"
    for label in (0, 1):
        share = [((r.split == "val") & (labels == label)).sum() / (pool & (labels == label)).sum() for r in folds]
        assert max(share) - min(share) <= 10 / (pool & (labels == label)).sum() + 1e-9  # one subject apart


@pytest.mark.parametrize(("folds", "fold"), [(1, 0), (-2, 0), (5, 5), (5, -1), (0, 1)])
def test_cross_validation_settings_are_checked(folds: int, fold: int):
    labels, groups = _subject_groups(20, 2, seed=0)
    with pytest.raises(ValueError, match="fold"):
        split_groups(labels, groups, folds=folds, fold=fold)


def _samples(root, names):
    from genderclass.data.readers import Sample

    return [Sample(path=str(root / name), label=int(name.startswith("female"))) for name in names]


def test_listed_files_are_matched_by_their_path_in_the_data_folder(tmp_path):
    samples = _samples(tmp_path, ["male/img1.jpg", "female/img1.jpg", "female/img2.jpg"])
    chosen, unmatched = select_listed(samples, ["female/img1.jpg", "male/img9.jpg", ""], tmp_path)
    assert [s.path for s in chosen] == [str(tmp_path / "female/img1.jpg")] and unmatched == 1
    chosen, _ = select_listed(samples, ["img2.jpg"], tmp_path)  # a bare name that one file has
    assert [s.path for s in chosen] == [str(tmp_path / "female/img2.jpg")]


def test_a_name_that_several_files_share_is_refused_not_guessed(tmp_path):
    """Matching by name alone let a training file with a test file's name into the test set."""
    samples = _samples(tmp_path, ["male/img1.jpg", "female/img1.jpg"])
    with pytest.raises(ValueError, match="fits 2 files of the data"):
        select_listed(samples, ["img1.jpg"], tmp_path)
    # a path from another folder is matched by its trailing parts, never by its name alone
    chosen, unmatched = select_listed(samples, ["/elsewhere/female/img1.jpg", "other\\male\\img1.jpg"], tmp_path)
    assert sorted(s.path for s in chosen) == sorted(s.path for s in samples) and unmatched == 0
    subset = [samples[0]]  # e.g. a manifest listing only male/img1.jpg: female/img1.jpg is not it
    assert select_listed(subset, ["/elsewhere/female/img1.jpg"], tmp_path) == ([], 1)


def test_split_csv_paths_match_as_the_run_saw_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    samples = _samples(tmp_path / "faces", ["male/img1.jpg", "female/img1.jpg"])
    chosen, unmatched = select_listed(samples, ["faces/female/img1.jpg"], "faces")
    assert [s.path for s in chosen] == [str(tmp_path / "faces/female/img1.jpg")] and unmatched == 0
    csv_file = tmp_path / "faces" / "list.csv"
    csv_file.parent.mkdir()
    csv_file.write_text("path,label\n")
    assert relative_name(str(tmp_path / "faces/male/img1.jpg"), csv_file) == "male/img1.jpg"
    assert relative_name(str(tmp_path / "other.jpg"), csv_file) == str(tmp_path / "other.jpg")


def _listed(labels: np.ndarray, every: int = 9) -> np.ndarray:
    """Every ``every``-th item is a listed test file (``train --test-files``)."""
    return np.arange(len(labels)) % every == 0


def test_listed_test_files_and_their_groups_are_the_whole_test_split(caplog):
    labels, raw_groups, conflicting = _random_dataset(4)
    groups = group_ids([f"g{g}" for g in raw_groups])
    listed = _listed(labels)
    with caplog.at_level(logging.INFO):
        result = split_groups(labels, groups, val_fraction=0.1, test_fraction=0.5, seed=3, test_items=listed)
    keep = result.split != "dropped"
    in_test = np.isin(raw_groups, raw_groups[listed])  # the listed files and their duplicates
    assert np.array_equal(result.split == "test", in_test & keep)  # test_fraction is unused
    assert not np.isin(result.split[listed], ["train", "val"]).any()
    assert set(raw_groups[listed & ~keep].tolist()) <= conflicting  # only conflicting groups drop listed files
    extra = int((in_test & keep & ~listed).sum())
    assert extra > 0 and f"and {extra} more of their duplicate groups" in caplog.text
    for label in (0, 1):  # validation: still val_fraction of each label's images
        kept = (labels == label) & keep
        assert ((result.split == "val") & kept).sum() / kept.sum() == pytest.approx(0.1, abs=0.02)


def test_listed_validation_files_and_their_groups_are_the_whole_validation_split():
    labels, raw_groups, conflicting = _random_dataset(4)
    groups = group_ids([f"g{g}" for g in raw_groups])
    test, val = _listed(labels, every=9), _listed(labels, every=7)
    result = split_groups(labels, groups, val_fraction=0.3, seed=3, test_items=test, val_items=val)
    keep = result.split != "dropped"
    in_test = np.isin(raw_groups, raw_groups[test]) & keep
    in_val = np.isin(raw_groups, raw_groups[val]) & keep & ~in_test  # test wins a group with both
    assert np.array_equal(result.split == "test", in_test)
    assert np.array_equal(result.split == "val", in_val)  # val_fraction is unused
    assert (result.split == "train").sum() == (keep & ~in_test & ~in_val).sum() > 0


def test_listed_test_files_stay_the_test_split_of_every_fold():
    labels, groups = _subject_groups(200, 5, seed=2)
    listed = _listed(labels, every=23)
    plain = split_groups(labels, groups, seed=1, test_items=listed)
    val_counts = np.zeros(len(labels), dtype=int)
    for k in range(3):
        result = split_groups(labels, groups, seed=1, folds=3, fold=k, test_items=listed)
        assert np.array_equal(result.split == "test", plain.split == "test")
        val_counts += result.split == "val"
    assert np.array_equal(val_counts, (plain.split != "test").astype(int))
    assert np.array_equal(plain.split == "test", np.isin(groups, groups[listed]))  # whole subjects


def test_a_split_file_names_its_files_warns_of_missing_ones_and_refuses_none(tmp_path, caplog):
    samples = _samples(tmp_path, ["male/img1.jpg", "female/img2.jpg", "female/img3.jpg"])
    listed = tmp_path / "test_files.txt"
    listed.write_text("female/img2.jpg\nimg1.jpg\ngone/img7.jpg\nimg8.jpg\n")
    with caplog.at_level(logging.INFO):
        chosen = select_split_file(samples, listed, tmp_path)
    assert [s.path for s in chosen] == [samples[0].path, samples[1].path]
    assert f"2 files of the data listed in {listed}" in caplog.text
    assert f"2 files listed in {listed} are not in {tmp_path}" in caplog.text
    listed.write_text("gone/img7.jpg\n")
    with pytest.raises(ValueError, match="no file of .* is listed in"):
        select_split_file(samples, listed, tmp_path)


def test_the_config_names_which_files_are_test(tmp_path):
    from genderclass.config import TrainConfig
    from genderclass.data.prepare import listed_test_files

    samples = _samples(tmp_path, ["male/img1.jpg", "female/img2.jpg", "female/img3.jpg"])
    listed = tmp_path / "test_files.txt"
    listed.write_text("img3.jpg\n")
    paths = np.array([s.path for s in samples])
    cfg = TrainConfig(data=str(tmp_path), test_files=str(listed), val_fraction=0.5, test_fraction=0.5)
    assert listed_test_files(cfg, samples, paths).tolist() == [False, False, True]
    assert listed_test_files(TrainConfig(data=str(tmp_path)), samples, paths) is None
    with pytest.raises(ValueError, match="must leave images to train on"):  # test_fraction counts without a list
        TrainConfig(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match=r"a \.txt list"):
        TrainConfig(test_files="runs/face/split.csv")


def test_val_files_are_a_txt_list_and_not_with_folds():
    from genderclass.config import TrainConfig

    with pytest.raises(ValueError, match="val_files takes a .txt list"):
        TrainConfig(val_files="val.csv")
    with pytest.raises(ValueError, match="--val-files names one validation split"):
        TrainConfig(val_files="val.txt", folds=3)
    assert TrainConfig(val_files="val.txt").val_files == "val.txt"
