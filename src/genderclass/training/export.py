"""``genderclass export``: best checkpoint -> ONNX + metadata JSON (preprocessing, labels,
threshold, temperature, min_confidence, training command, data hash, validation/test metrics).

Several runs trained on the same split export as one ensemble graph (mean of their logits)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import platform
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from .. import calibration as cal
from ..config import LABELS, TrainConfig, read_json, write_json
from ..data.prepare import PreparedData, prepare_saved_data
from ..data.split import relative_name
from .calibrate import measure
from .ensemble import ensemble_model, inference_model, out_of_fold, uses_flip_tta, validation_layout
from .history import copy_metrics
from .lineage import earlier_stages, portable_teacher, teacher_lineages, training_folder
from .quantize import METHOD as QUANTIZATION_METHOD
from .quantize import quantize_int8

log = logging.getLogger(__name__)

CALIBRATION_CROPS = 512  # training crops that calibrate an INT8 model's activations

DATA_LICENSES = {
    "utkface": "UTKFace (Zhang, Song, Qi, CVPR 2017): non-commercial research purposes only.",
    "socofing": "SOCOFing (Shehu et al., 2018, arXiv:1807.10609): non-commercial research purposes only.",
}


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


def _out_of_fold_scores(
    model: nn.Module | None, folds: list[Path], data: PreparedData, flip_tta: bool | None
) -> tuple[np.ndarray | None, np.ndarray | None, PreparedData]:
    """Cross-validation runs (``folds``: the exported ones, then any ``--calibrate-with``): which
    held out which file, each validation file's out-of-fold logit, and the data with every fold as
    validation; (None, None, data) for runs of one split. ``model``: the exported network when it
    is all the folds, else None (the folds' networks are loaded to score them)."""
    held_out = validation_layout(folds, data.cache.paths.tolist()) if len(folds) > 1 else None
    if held_out is None:
        if model is None:
            raise ValueError(
                "--calibrate-with takes cross-validation runs (--folds) of the other folds of the same split"
            )
        return None, None, data
    scorer = model if model is not None else _exported_model(folds, flip_tta)[0]
    logits, split = out_of_fold(scorer, held_out, data.cache.images, data.split.split)
    return held_out, logits, dataclasses.replace(data, split=dataclasses.replace(data.split, split=split))


def _calibration_runs_info(held_out: np.ndarray, folds: int, others: list[Path]) -> dict:
    """``export --calibrate-with``: what the calibration was fitted on."""
    return {
        **_cross_validation_info(held_out, folds),
        "calibration_runs": [read_json(run / "config.json").get("command", "") for run in others],
        "validation": "out-of-fold: the exported network's own validation fold and, on each other fold, the "
        "run of the same recipe that held it out (float32); temperature, threshold, abstention level and "
        "fusion temperatures are fitted on these scores",
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


def _run_folders(run_dir: str | Path | Sequence[str | Path], quantize: str | None) -> list[Path]:
    """The trained run folders to export, refused (before anything is written) when none is given,
    one is given twice or holds no best checkpoint, or the quantization is unknown."""
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
    return run_dirs


def _exported_model(run_dirs: list[Path], flip_tta: bool | None) -> tuple[nn.Module, TrainConfig, list[dict]]:
    """The network to export (one run's, or the ensemble of several), its config and each run's
    :func:`_member_info`."""
    if len(run_dirs) == 1:
        model, cfg = inference_model(run_dirs[0], flip_tta=flip_tta)
        return model, cfg, [_member_info(run_dirs[0], model)]
    model, cfg = ensemble_model(run_dirs, flip_tta=flip_tta)
    members = [_member_info(r, m) for r, m in zip(run_dirs, model.members, strict=True)]
    for member in members:
        if member["input_size"] != cfg.preprocess.input_size:  # see MeanLogit
            member["resized_in_graph_from"] = cfg.preprocess.input_size
    return model, cfg, members


def _quantized(path: Path, cfg: TrainConfig, data: PreparedData) -> dict:
    """``--quantize int8``: the ONNX file at ``path`` quantized in place, calibrated on training crops
    (never test); what the metadata records of it."""
    train = data.indices("train")
    # cross-validation over all folds: no file is outside every fold, and each non-test file
    # was trained on by the members of the other folds
    source = "training crops" if len(train) else "non-test crops (each trained on by some members)"
    train = train if len(train) else data.indices("val")
    chosen = np.random.default_rng(cfg.seed).choice(train, min(CALIBRATION_CROPS, len(train)), replace=False)
    quantize_int8(path, data.cache.images[np.sort(chosen)])
    return {"type": "int8", "method": QUANTIZATION_METHOD, "calibration": f"{len(chosen)} {source}"}


def _training_info(
    cfg: TrainConfig, members: list[dict], run_dir: Path, saved: dict, data: PreparedData, held_out: np.ndarray | None
) -> dict:
    """The metadata's ``training`` section: how the model was trained, on what data and split.
    ``run_dir``: the member whose config the export uses; ``saved``: its ``config.json``."""
    base_folder = training_folder(run_dir, saved["train"].get("out") or "")
    # an ensemble's stages and teachers are per member
    stages = members[0].get("earlier_stages") if len(members) == 1 else None
    teachers = members[0].get("teachers") if len(members) == 1 else None
    return {
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
    }


def _metadata(
    name: str,
    cfg: TrainConfig,
    model: nn.Module,
    members: list[dict],
    quantization: dict | None,
    training: dict,
    calibration: dict,
    metrics: dict,
) -> dict:
    """The metadata JSON written beside the ONNX file."""
    return {
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
        "training": training,
        "metrics": metrics,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "software": {"genderclass": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }


def _write_test_files(out_dir: Path, name: str, cfg: TrainConfig, data: PreparedData, logits: tuple) -> None:
    """Beside the model: the exported file's predictions (git-ignored; test paths stay on this
    machine), and the test split's files relative to the data folder, which ship with the model so
    anyone can re-measure it. ``logits``: on validation and on test."""
    cache, val, test = data.cache, data.indices("val"), data.indices("test")
    val_logits, test_logits = logits
    np.savez(
        out_dir / f"{name}.test_predictions.npz",
        index=test,
        paths=cache.paths[test],
        labels=cache.labels[test],
        logits=test_logits,
        val_index=val,
        val_logits=val_logits,
    )
    test_names = sorted(relative_name(p, cfg.data) for p in cache.paths[test].tolist())
    (out_dir / f"{name}.test_files.txt").write_text("\n".join(test_names) + "\n")


def export_run(
    run_dir: str | Path | Sequence[str | Path],
    data: PreparedData | None = None,
    out: str | Path | None = None,
    name: str | None = None,
    flip_tta: bool | None = None,
    quantize: str | None = None,
    calibrate_with: Sequence[str | Path] = (),
) -> Path:
    """Export a run's best checkpoint; returns the ONNX path (metadata JSON sits next to it).

    Every metric in the metadata is measured on the written file by the predict service itself,
    apart from the out-of-fold validation scores of cross-validation members (:func:`.ensemble.out_of_fold`).
    ``quantize="int8"`` stores an INT8 model (:mod:`.quantize`), calibrated on training crops (never test).
    ``flip_tta`` (default: on for faces) averages each image with its mirror image inside the graph:
    twice the compute for a usually small gain. Several run folders export one ensemble
    (:func:`.ensemble.ensemble_model`), by default into the first's ``export`` folder. ``data``: the
    runs' data as training read it (:class:`.run.TrainedRun`); read again, and checked, when not given.
    ``calibrate_with``: cross-validation runs of the other folds (the same recipe), not exported: the
    calibration is fitted on every fold's out-of-fold scores, the exported runs' on theirs.
    """
    from ..inference.classifier import GenderClassifier

    run_dirs = _run_folders(run_dir, quantize)
    model, cfg, members = _exported_model(run_dirs, flip_tta)
    # the member whose config the export uses (largest input); members share data and split (checked)
    base_dir = run_dirs[[m["input_size"] for m in members].index(cfg.preprocess.input_size)]
    saved = read_json(base_dir / "config.json")
    if data is None:  # read again: it must still split as when the run was trained
        data = prepare_saved_data(cfg, base_dir)
    out_dir = Path(out) if out else run_dirs[0] / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or cfg.modality
    onnx_path = out_dir / f"{name}.onnx"
    images = data.cache.images
    folds = _run_folders([*run_dirs, *map(Path, calibrate_with)], quantize)
    held_out, out_of_fold_logits, data = _out_of_fold_scores(
        model if not calibrate_with else None, folds, data, flip_tta
    )

    with _replaced_on_success(onnx_path) as partial:
        export_onnx(model, cfg, partial)
        quantization = _quantized(partial, cfg, data) if quantize == "int8" else None
        shipped = GenderClassifier(partial, {"modality": cfg.modality, "preprocess": cfg.preprocess.to_dict()})
        val_logits = (
            shipped.logits(images[data.indices("val")], batch_size=256) if held_out is None else out_of_fold_logits
        )
        test_logits = shipped.logits(images[data.indices("test")], batch_size=256)
        calibration, metrics = measure(shipped, data, val_logits, test_logits)
        training = _training_info(cfg, members, base_dir, saved, data, held_out)
        if calibrate_with:
            training["cross_validation"] = _calibration_runs_info(held_out, cfg.folds, folds[len(run_dirs) :])
        metadata = _metadata(name, cfg, model, members, quantization, training, calibration, metrics)
        write_json(onnx_path.with_suffix(".json"), metadata)

    _write_test_files(out_dir, name, cfg, data, (val_logits, test_logits))
    if len(run_dirs) == 1 and out_dir != run_dirs[0]:
        copy_metrics(run_dirs[0], out_dir / f"{name}.metrics.csv")
    log.info(
        # validation only: the model is chosen on it, and a test number in the log would be read
        # before the choice (the test metrics are in the metadata, for after)
        "exported %s: validation accuracy %.4f, balanced %.4f",
        onnx_path,
        metrics["validation"]["accuracy"],
        metrics["validation"]["balanced_accuracy"],
    )
    return onnx_path
