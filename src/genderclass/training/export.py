"""``genderclass export``: best checkpoint -> ONNX + metadata JSON (preprocessing, labels,
threshold, temperature, min_confidence, training command, data hash, validation/test metrics).

Several runs trained on the same split export as one ensemble graph (mean of their logits)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import logging
import os
import platform
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from genderclass.evaluation.calibrated import calibrated_metrics
from genderclass.evaluation.fusion import (
    by_print_count,
    fuse_by_subject,
    fuse_subsets,
    largest_count,
    per_subject_metrics,
)
from genderclass.evaluation.groups import group_offsets, remove_offsets

from .. import __version__
from .. import calibration as cal
from ..config import LABELS, TrainConfig, read_json, write_json
from ..data.readers import FINGERS, finger_name
from ..evaluation import metrics as M
from .lineage import earlier_stages, portable_teacher, teacher_lineages, training_folder
from .quantize import METHOD as QUANTIZATION_METHOD
from .quantize import quantize_int8

if TYPE_CHECKING:
    from ..inference.classifier import GenderClassifier
    from .run import PreparedData

log = logging.getLogger(__name__)

CALIBRATION_CROPS = 512  # training crops that calibrate an INT8 model's activations

DATA_LICENSES = {
    "utkface": "UTKFace (Zhang, Song, Qi, CVPR 2017): non-commercial research purposes only.",
    "socofing": "SOCOFing (Shehu et al., 2018, arXiv:1807.10609): non-commercial research purposes only.",
}


class FlipAveraged(nn.Module):
    """Average the logits of the image and its mirror image (test-time augmentation in the graph)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.model(pixels) + self.model(torch.flip(pixels, dims=[3])))


def inference_model(
    run_dir: Path, checkpoint: str = "best.ckpt", flip_tta: bool | None = None
) -> tuple[nn.Module, TrainConfig]:
    """The run's network in eval mode; ``flip_tta`` (default: on for faces) wraps it in :class:`FlipAveraged`."""
    from .module import GenderModule

    module = GenderModule.load_from_checkpoint(run_dir / "checkpoints" / checkpoint, map_location="cpu")
    cfg = module.cfg
    model: nn.Module = module.model
    mirror = cfg.modality == "face" if flip_tta is None else flip_tta
    if mirror:
        model = FlipAveraged(model)
    return model.eval(), cfg


class MeanLogit(nn.Module):
    """An ensemble in one graph: each member sees the input resized to its own input size, and the
    members' logits are averaged."""

    def __init__(self, members: Sequence[nn.Module], sizes: Sequence[int]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.sizes = list(sizes)
        self.input_size = max(self.sizes)  # what the ensemble is given; smaller members get a resize

    def member_logits(self, index: int, pixels: torch.Tensor) -> torch.Tensor:
        """One member's logits for the ensemble's input."""
        size = self.sizes[index]
        if size != self.input_size:  # bilinear, no antialias: ONNX opset 17 has none
            pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False)
        return self.members[index](pixels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.member_logits(i, pixels) for i in range(len(self.members))]).mean(dim=0)


def _split_columns(run_dirs: Sequence[Path]) -> tuple[list[str], np.ndarray]:
    """The runs' file paths and each run's split name per file (runs x files), after checking
    that the runs share the data and the test files: an ensemble's test files must stay unseen by
    every member."""
    runs = []  # (data hash, paths, split names) per run
    for run_dir in run_dirs:
        with (run_dir / "split.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        data_hash = read_json(run_dir / "config.json")["data"]["data_hash"]
        runs.append((data_hash, [row["path"] for row in rows], np.array([row["split"] for row in rows])))
    first_hash, paths, first_split = runs[0]
    for run_dir, (data_hash, these, split) in zip(run_dirs, runs, strict=True):
        if data_hash != first_hash or these != paths or not np.array_equal(split == "test", first_split == "test"):
            raise ValueError(
                f"{run_dir} was split differently from {run_dirs[0]} (data, paths, seed or fractions differ); "
                "an ensemble needs one test split that none of its members saw"
            )
    return paths, np.stack([split for _, _, split in runs])


def validation_layout(run_dirs: Sequence[Path], paths: Sequence[str] | None = None) -> np.ndarray | None:
    """``None`` when the members share one validation split; for cross-validation runs (``--folds``)
    of one K and split seed, which members held out which file (members x files, bool), so that
    every validation file is scored by the members that never trained on it (out-of-fold). Several
    members may hold out one fold (other seeds or recipes on the same folds), as long as every fold
    is held out by equally many, so that every out-of-fold score averages the same number of
    networks. ``paths``: the files as prepared now, which must be those the runs were split on (in
    the same order)."""
    split_paths, columns = _split_columns(run_dirs)
    is_val = columns == "val"
    if (is_val == is_val[0]).all():
        return None
    trained = [TrainConfig.from_dict(read_json(run_dir / "config.json")["train"]) for run_dir in run_dirs]
    folds = {(t.folds, t.resolved_split_seed) for t in trained}
    if len(folds) != 1 or next(iter(folds))[0] < 2:
        raise ValueError(
            "the members' validation sets differ: export either runs of one split, or cross-validation runs "
            "of one --folds K and split seed"
        )
    fold_ids = np.array([t.fold for t in trained])
    for fold in np.unique(fold_ids):  # one fold's members: one validation set, shared with no other fold
        mine = is_val[fold_ids == fold]
        if (mine != mine[0]).any() or (is_val[fold_ids != fold] & mine[0]).any():
            raise ValueError("the members' validation folds overlap")  # hand-edited runs: folds of one split cannot
    per_fold = {int(fold): int((fold_ids == fold).sum()) for fold in np.unique(fold_ids)}
    if len(set(per_fold.values())) > 1:
        held = ", ".join(f"fold {fold} by {n}" for fold, n in per_fold.items())
        raise ValueError(f"every fold must be held out by equally many members, not {held}")
    if paths is not None and list(paths) != split_paths:
        raise ValueError("the data differs from the files the runs were split on: cannot score them out-of-fold")
    return is_val


def ensemble_model(run_dirs: Sequence[Path], flip_tta: bool | None = None) -> tuple[MeanLogit, TrainConfig]:
    """Several runs as one :class:`MeanLogit`; its config is the member with the largest input.

    Members must share the preprocessing (apart from input size), the data and the test files
    (:func:`_split_columns`), and either the validation files or disjoint cross-validation folds
    (:func:`validation_layout`), so that the ensemble is calibrated on files each score comes
    from a member that did not train on, and measured on test files that none of them saw.
    """
    loaded = [inference_model(run_dir, flip_tta=flip_tta) for run_dir in run_dirs]
    base = max((cfg for _, cfg in loaded), key=lambda cfg: cfg.preprocess.input_size)
    for run_dir, (_, cfg) in zip(run_dirs, loaded, strict=True):
        mismatched = cfg.preprocess.differences(base.preprocess)
        if mismatched:
            raise ValueError(f"{run_dir} uses other preprocessing than the ensemble: {', '.join(mismatched)}")
    validation_layout(run_dirs)
    ensemble = MeanLogit([model for model, _ in loaded], [cfg.preprocess.input_size for _, cfg in loaded])
    return ensemble.eval(), base


def out_of_fold(
    ensemble: MeanLogit, held_out: np.ndarray, images: np.ndarray, split: np.ndarray, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-validation members on their own validation folds (float, in torch): the out-of-fold
    logits (each file's mean over the members that held it out), in file order, and the ensemble's
    split with every such file as validation."""
    index = np.flatnonzero(held_out.any(axis=0))
    total = np.zeros(len(index), dtype=np.float64)
    with torch.no_grad():
        for m in range(len(ensemble.members)):
            mine = np.flatnonzero(held_out[m, index])
            for start in range(0, len(mine), batch_size):
                chunk = mine[start : start + batch_size]
                pixels = torch.from_numpy(images[index[chunk]]).permute(0, 3, 1, 2).float()
                total[chunk] += ensemble.member_logits(m, pixels).reshape(-1).numpy()
    logits = (total / held_out[:, index].sum(axis=0)).astype(np.float32)
    return logits, np.where(held_out.any(axis=0), "val", split)


def uses_flip_tta(model: nn.Module) -> bool:
    return any(isinstance(m, FlipAveraged) for m in model.modules())


def export_onnx(model: nn.Module, cfg: TrainConfig, path: Path) -> None:
    size, channels = cfg.preprocess.input_size, cfg.preprocess.channels
    dummy = torch.rand(1, channels, size, size) * 255
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["pixels"],
        output_names=["logit"],
        dynamic_axes={"pixels": {0: "batch"}, "logit": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def simulated_alterations(images: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Test prints damaged like SOCOFing's altered sets: obliteration patches, z-cut lines, both."""
    from .presets import random_cut_lines, random_erasing

    torch.manual_seed(seed)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    obliterated = random_erasing(x, p=1.0, area=(0.08, 0.2), value=255.0)
    cut = random_cut_lines(x, p=1.0, max_thickness=5.0)
    both = random_cut_lines(obliterated, p=1.0, max_thickness=5.0)
    to_nhwc = lambda t: t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # noqa: E731
    return {"obliteration": to_nhwc(obliterated), "zcut": to_nhwc(cut), "both": to_nhwc(both)}


def calibrate(val_labels: np.ndarray, val_logits: np.ndarray, modality: str) -> dict:
    """Temperature, decision threshold and abstention level, all chosen on validation."""
    temperature = M.fit_temperature(val_logits, val_labels)
    p_val = M.sigmoid(val_logits / temperature)
    threshold = M.choose_threshold(val_labels, p_val) if modality == "fingerprint" else 0.5
    min_confidence = M.choose_min_confidence(val_labels, p_val, threshold)
    return {"temperature": float(temperature), "threshold": float(threshold), "min_confidence": float(min_confidence)}


def fusion_temperature(subjects: np.ndarray, labels: np.ndarray, logits: np.ndarray) -> float:
    """Temperature for a person's mean logit, fitted on the validation subjects: averaging several
    prints removes noise, so the fused score needs its own scale to be calibrated."""
    _, fused_labels, fused_logits = fuse_by_subject(subjects.tolist(), labels, logits)
    return float(M.fit_temperature(fused_logits, fused_labels))


def fusion_temperatures(subjects: np.ndarray, labels: np.ndarray, logits: np.ndarray) -> list[float]:
    """Temperature for the mean logit of k prints, k = 1 .. :func:`fusion.largest_count` (entry k - 1),
    fitted on random k-print subsets of the validation subjects (:func:`fusion.fuse_subsets`). The
    fewer prints averaged, the less noise is removed: a whole hand needs less than one print, all ten
    the least. Entry 0 (one print) only documents that it agrees with the per-print temperature,
    which prediction uses for a single print."""
    out = []
    for k in range(1, largest_count(subjects.tolist()) + 1):
        fused_labels, fused_logits = fuse_subsets(subjects.tolist(), labels, logits, k)
        out.append(float(M.fit_temperature(fused_logits, fused_labels)))
    return out


def split_metrics(labels: np.ndarray, logits: np.ndarray, calibration: dict, attrs: list[dict] | None = None) -> dict:
    """Metrics of one split with calibrated probabilities; per-group metrics when attributes are known."""
    keys = sorted({k for a in attrs or [] for k in a if k != "alteration"})
    groups = {k: [a.get(k) for a in attrs] for k in keys} if attrs else None
    return calibrated_metrics(
        labels, logits, calibration["temperature"], calibration["threshold"], calibration["min_confidence"], groups
    )


def _member_info(run_dir: Path, model: nn.Module) -> dict:
    """What a run contributes to an export: its command (earlier stages, teachers), architecture,
    input size and best epoch."""
    saved = read_json(run_dir / "config.json")
    train = saved["train"]
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    base = training_folder(run_dir, train.get("out") or "")
    stages = earlier_stages(train.get("init_from") or "", base)
    teachers = teacher_lineages(portable_teacher(train.get("teacher") or "", base), base)
    return {
        "run": str(run_dir),
        "command": saved.get("command", ""),
        **({"earlier_stages": stages} if stages else {}),
        **({"teachers": teachers} if teachers else {}),
        "architecture": train["arch"],
        "input_size": train["preprocess"]["input_size"],
        "flip_tta": uses_flip_tta(model),
        "best_epoch": best.get("epoch"),
        **({"fold": train["fold"], "folds": train["folds"]} if train.get("folds") else {}),
    }


def _measure(
    shipped: GenderClassifier, data: PreparedData, val_logits: np.ndarray, test_logits: np.ndarray
) -> tuple[dict, dict]:
    """Calibration fitted on validation, and the metrics of every split, for the exported file."""
    cache, modality = data.cache, shipped.modality
    val, test = data.indices("val"), data.indices("test")
    calibration = calibrate(cache.labels[val], val_logits, modality)
    if modality == "fingerprint" and (cache.subjects[val] != "").all():
        calibration["fusion_temperature"] = fusion_temperature(cache.subjects[val], cache.labels[val], val_logits)
        calibration["fusion_temperatures"] = fusion_temperatures(cache.subjects[val], cache.labels[val], val_logits)
    metrics = {
        "validation": split_metrics(cache.labels[val], val_logits, calibration),
        "test": split_metrics(cache.labels[test], test_logits, calibration, [cache.attrs[i] for i in test]),
    }
    if modality == "fingerprint" and (known := _finger_known(data, val_logits, test_logits)):
        calibration["finger_known"], metrics["test_finger_known"] = known
    if modality == "fingerprint" and (cache.subjects[test] != "").all():
        test_subjects = cache.subjects[test].tolist()
        # as at prediction: each subject's temperature for its number of prints (see the classifier)
        table = calibration.get("fusion_temperatures", [])
        whole = calibration.get("fusion_temperature", calibration["temperature"])

        def temperature_of(n):
            return cal.temperature_by_count(n, table, whole, single=calibration["temperature"])

        metrics["test_per_subject"] = per_subject_metrics(
            test_subjects, cache.labels[test], test_logits, temperature_of, calibration
        )
        metrics["test_by_prints"] = by_print_count(
            test_subjects, cache.labels[test], test_logits, temperature_of, calibration["threshold"]
        )
    if modality == "fingerprint":
        for kind, altered in simulated_alterations(cache.images[test]).items():
            altered_logits = shipped.logits(altered, batch_size=256)
            metrics[f"test_altered_{kind}"] = split_metrics(cache.labels[test], altered_logits, calibration)
    return calibration, metrics


def _finger(attrs: dict) -> str | None:
    finger = finger_name(attrs.get("finger"))
    return finger if finger in FINGERS else None


def _finger_known(data: PreparedData, val_logits: np.ndarray, test_logits: np.ndarray) -> tuple[dict, dict] | None:
    """With the finger of every print known (SOCOFing names, a CSV column): each finger's offset
    and the calibration without the offsets (fitted on validation), and the test metrics with the
    offsets removed. None when a finger is unnamed or lacks either label on validation."""
    cache, val, test = data.cache, data.indices("val"), data.indices("test")
    val_fingers, test_fingers = ([_finger(cache.attrs[i]) for i in split] for split in (val, test))
    if not (all(val_fingers) and all(test_fingers)):
        return None
    fitted = group_offsets(cache.labels[val], val_logits, val_fingers)
    if not {*val_fingers, *test_fingers} <= set(fitted):
        return None
    offsets = {finger: fitted[finger] for finger in FINGERS if finger in fitted}  # thumb ... little
    corrected = remove_offsets(val_logits, val_fingers, offsets)
    calibration = {"offsets": offsets, **calibrate(cache.labels[val], corrected, "fingerprint")}
    if (cache.subjects[val] != "").all():  # a person's prints with their fingers named (fuse)
        calibration["fusion_temperatures"] = fusion_temperatures(cache.subjects[val], cache.labels[val], corrected)
    test_corrected = remove_offsets(test_logits, test_fingers, offsets)
    return calibration, split_metrics(cache.labels[test], test_corrected, calibration, [cache.attrs[i] for i in test])


def _cross_validation_info(held_out: np.ndarray, folds: int) -> dict:
    per_file = held_out.sum(axis=0)
    return {
        "folds": folds,
        "members": len(held_out),
        "validation_files_per_member": held_out.sum(axis=1).tolist(),
        "members_per_validation_file": int(per_file[per_file > 0][0]),
        "validation": "out-of-fold: each validation file is scored by the members (float32) that held it "
        "out (the mean of their logits); temperature, threshold, abstention level and fusion temperature are "
        "fitted on these scores",
    }


@contextlib.contextmanager
def _replaced_on_success(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces it only when the block succeeds: a failed
    export never leaves a new model beside an old model's metadata."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def export_run(
    run_dir: str | Path | Sequence[str | Path],
    data=None,
    out: str | Path | None = None,
    name: str | None = None,
    flip_tta: bool | None = None,
    quantize: str | None = None,
) -> Path:
    """Export a run's best checkpoint; returns the ONNX path (metadata JSON sits next to it).

    Every metric in the metadata is measured on the written file by the predict service itself,
    apart from the out-of-fold validation scores of cross-validation members (:func:`out_of_fold`).
    ``quantize="int8"`` stores an INT8 model (:mod:`.quantize`), calibrated on training crops.
    ``flip_tta`` (default: on for faces) averages each image with its mirror image inside the graph:
    twice the compute for a usually small gain. Several run folders export one ensemble
    (:func:`ensemble_model`), by default into the first's ``export`` folder.
    """
    from ..inference.classifier import GenderClassifier
    from .run import prepare_data

    run_dirs = [Path(run_dir)] if isinstance(run_dir, str | Path) else [Path(r) for r in run_dir]
    if not run_dirs:
        raise ValueError("no run folder to export")
    resolved = [r.resolve() for r in run_dirs]
    twice = sorted({str(r) for r in resolved if resolved.count(r) > 1})
    if twice:  # one network twice would double the cost for the same answers
        raise ValueError(f"a run given twice: {', '.join(twice)}")
    missing = [str(r) for r in run_dirs if not (r / "checkpoints" / "best.ckpt").is_file()]
    if missing:
        raise ValueError(f"not a trained run folder (no checkpoints/best.ckpt): {', '.join(missing)}")
    if quantize not in (None, "int8"):
        raise ValueError(f"unknown quantization {quantize!r}; supported: int8")
    if len(run_dirs) == 1:
        model, cfg = inference_model(run_dirs[0], flip_tta=flip_tta)
        members = [_member_info(run_dirs[0], model)]
    else:
        model, cfg = ensemble_model(run_dirs, flip_tta=flip_tta)
        members = [_member_info(r, m) for r, m in zip(run_dirs, model.members, strict=True)]
        for member in members:
            if member["input_size"] != cfg.preprocess.input_size:  # see MeanLogit
                member["resized_in_graph_from"] = cfg.preprocess.input_size
    # the member whose config the export uses (largest input); members share data and split (checked)
    base_dir = run_dirs[[m["input_size"] for m in members].index(cfg.preprocess.input_size)]
    saved = read_json(base_dir / "config.json")
    base_folder = training_folder(base_dir, saved["train"].get("out") or "")
    # an ensemble's stages and teachers are per member
    stages = members[0].get("earlier_stages") if len(members) == 1 else None
    teachers = members[0].get("teachers") if len(members) == 1 else None
    if data is None:
        data = prepare_data(cfg)
    out_dir = Path(out) if out else run_dirs[0] / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or cfg.modality
    onnx_path = out_dir / f"{name}.onnx"
    cache = data.cache
    held_out = validation_layout(run_dirs, cache.paths.tolist()) if len(run_dirs) > 1 else None
    if held_out is not None:  # cross-validation members: validation = every fold, scored out-of-fold
        out_of_fold_logits, split = out_of_fold(model, held_out, cache.images, data.split.split)
        data = dataclasses.replace(data, split=dataclasses.replace(data.split, split=split))
    val, test = data.indices("val"), data.indices("test")

    with _replaced_on_success(onnx_path) as partial:
        export_onnx(model, cfg, partial)
        quantization = None
        if quantize == "int8":
            train = data.indices("train")
            train = train if len(train) else val  # cross-validation over all folds: every file was trained on
            chosen = np.random.default_rng(cfg.seed).choice(train, min(CALIBRATION_CROPS, len(train)), replace=False)
            quantize_int8(partial, cache.images[np.sort(chosen)])
            quantization = {
                "type": quantize,
                "method": QUANTIZATION_METHOD,
                "calibration": f"{len(chosen)} training crops",
            }
        shipped = GenderClassifier(partial, {"modality": cfg.modality, "preprocess": cfg.preprocess.to_dict()})
        val_logits = shipped.logits(cache.images[val], batch_size=256) if held_out is None else out_of_fold_logits
        test_logits = shipped.logits(cache.images[test], batch_size=256)
        calibration, metrics = _measure(shipped, data, val_logits, test_logits)
        metadata = {
            "name": name,
            "modality": cfg.modality,
            "format_version": 1,
            "labels": list(LABELS),
            "positive_label": LABELS[1],
            "preprocess": cfg.preprocess.to_dict(),
            "input": {"name": "pixels", "layout": "NCHW", "dtype": "float32", "range": [0, 255]},
            "output": {"name": "logit", "meaning": "log-odds of 'female' before temperature scaling"},
            **calibration,
            "confidence_scale": cal.CONFIDENCE_SCALE,
            "architecture": " + ".join(m["architecture"] for m in members),
            "flip_tta": uses_flip_tta(model),
            "quantization": quantization,
            "training": {
                "command": " ; ".join(m["command"] for m in members),
                **({"earlier_stages": stages} if stages else {}),
                **({"teachers": teachers} if teachers else {}),
                "data": cfg.data,
                "format": cfg.format,
                "data_hash": saved["data"]["data_hash"],
                "split_sizes": data.split.sizes(),
                **({"cross_validation": _cross_validation_info(held_out, cfg.folds)} if held_out is not None else {}),
                "n_conflicting_groups": saved["data"]["n_conflicting_groups"],
                "best_epoch": members[0]["best_epoch"] if len(members) == 1 else None,
                "config": {**cfg.to_dict(), "teacher": portable_teacher(cfg.teacher, base_folder)},
                "data_license": DATA_LICENSES.get(cfg.format, "see the training data's own licence"),
                **({"members": members} if len(members) > 1 else {}),
            },
            "metrics": metrics,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "software": {"genderclass": __version__, "torch": torch.__version__, "python": platform.python_version()},
        }
        write_json(onnx_path.with_suffix(".json"), metadata)

    # Predictions of the exported file, beside it (git-ignored); test paths stay on this machine.
    np.savez(
        out_dir / f"{name}.test_predictions.npz",
        index=test,
        paths=cache.paths[test],
        labels=cache.labels[test],
        logits=test_logits,
        val_index=val,
        val_logits=val_logits,
    )
    # The test split's file names ship with the model, so anyone can re-measure it on held-out files.
    test_names = sorted(Path(p).name for p in cache.paths[test].tolist())
    (out_dir / f"{name}.test_files.txt").write_text("\n".join(test_names) + "\n")
    if len(run_dirs) == 1 and (run_dirs[0] / "metrics.csv").exists() and out_dir != run_dirs[0]:
        shutil.copy(run_dirs[0] / "metrics.csv", out_dir / f"{name}.metrics.csv")
    log.info(
        # validation only: the model is chosen on it, and a test number in the log would be read
        # before the choice (the test metrics are in the metadata, for after)
        "exported %s: validation accuracy %.4f, balanced %.4f",
        onnx_path,
        metrics["validation"]["accuracy"],
        metrics["validation"]["balanced_accuracy"],
    )
    return onnx_path
