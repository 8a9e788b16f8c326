"""One place for defaults. Every CLI flag overrides a field here; runs save the resolved values.

The preprocessing config is stored inside each exported model's metadata, so training and
inference always resolve the same crop, size, channels and normalisation.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from .modalities import NAMES, REGISTRY, modality_for

Modality = Literal["face", "fingerprint"]
MODALITIES: tuple[str, ...] = NAMES
LABELS: tuple[str, str] = ("male", "female")  # index 1 = positive class ("female")
# Fingerprint training geometry (TrainConfig.augment): resampling "affine" or whole-pixel "exact".
AUGMENT_GEOMETRIES: tuple[str, ...] = ("affine", "exact")
MAX_YAW_WARP = 60.0  # degrees; with FaceAugment's zoom and shift the turned plane folds over from about 64
UNCERTAIN = "uncertain"


@dataclass
class PreprocessConfig:
    """How an image becomes a network input. Stored in every model's metadata."""

    modality: str = "face"
    input_size: int = 96
    channels: int = 3  # 3 = RGB, 1 = gray
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    detect: bool = True  # faces: run the detector; fingerprints: never
    margin: float = 0.05  # faces: extra context around the detector box, fraction of box size
    align: bool = True  # faces: rotate so the eyes are level (needs landmarks)
    chip_pad: float = 0.25  # training on pre-cropped chips: pad by this fraction before detecting

    @classmethod
    def for_modality(cls, modality: str, **overrides: Any) -> PreprocessConfig:
        """The settings of one modality (``modalities``); ``overrides`` win."""
        spec = modality_for(modality)
        return dataclasses.replace(cls(modality=spec.name, **spec.preprocess_defaults), **overrides)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    def differences(self, other: PreprocessConfig, ignore: tuple[str, ...] = ("input_size",)) -> list[str]:
        """Names of the settings that differ from ``other`` (apart from ``ignore``), sorted."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k in mine if k not in ignore and mine[k] != theirs[k])


def teacher_checkpoints(teacher: str) -> list[str]:
    """The checkpoints named by ``--teacher`` (comma-separated; several teach by their mean logit)."""
    return [name.strip() for name in teacher.split(",") if name.strip()]


def check_folds(folds: int, fold: int) -> None:
    """Cross-validation settings: ``folds`` 0 (off) or K >= 2, and ``fold`` one of 0..K-1."""
    if folds == 1 or folds < 0:
        raise ValueError(f"folds must be 0 (off) or at least 2, got {folds}")
    if fold and not folds:
        raise ValueError(f"fold {fold} needs folds (cross-validation is off with folds = 0)")
    if not 0 <= fold < max(folds, 1):
        raise ValueError(f"fold must be in 0..{max(folds - 1, 0)} (with folds = {folds}), got {fold}")


@dataclass
class TrainConfig:
    """Training hyper-parameters; CLI flags override these, the run saves the result.

    ``for_modality`` gives each modality's defaults, the bundled model's recipe (for faces: its
    first stage). The field defaults here are what older saved configs lacked: they must keep
    meaning "off" (no auxiliary task, no folds)."""

    modality: str = "face"
    data: str = ""
    format: str = "utkface"
    out: str = "runs/face"
    arch: str = "small_resnet"
    width: float = 0.75
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 2
    label_smoothing: float = 0.05
    dropout: float = 0.2
    # Validate, checkpoint and export an exponential moving average of the weights (0 = off);
    # the average spans about 1 / (1 - decay) steps.
    ema_decay: float = 0.0
    patience: int = 8
    # What picks the best checkpoint and stops early. "val_auc" ignores the 0.5 threshold, which
    # export replaces anyway for fingerprints (chosen on validation for balanced accuracy).
    monitor: Literal["val_bal_acc", "val_auc"] = "val_bal_acc"
    seed: int = 0
    # Seed of the train/validation/test split (and of the --limit subset); -1 = the same as ``seed``.
    # Set it to keep one split while ``seed`` varies init and augmentation (ensemble members).
    split_seed: int = -1
    val_fraction: float = 0.1
    test_fraction: float = 0.15
    # A .txt list of the test split's files (paths relative to the data folder, or bare names if
    # unique; an exported model's NAME.test_files.txt), instead of test_fraction; their duplicate
    # groups join them. "" = a test_fraction share drawn at random.
    test_files: str = ""
    # The same for the validation split, instead of val_fraction (not with folds): e.g. the files a
    # model fine-tuned here (--init-from) validated on, so that epoch choice and calibration rest on
    # files it never trained on. "" = a val_fraction share drawn at random.
    val_files: str = ""
    # Cross-validation: with folds = K >= 2 the non-test groups form K folds and fold ``fold`` is
    # validation (val_fraction unused; the test split is unchanged). 0 = one validation split.
    folds: int = 0
    fold: int = 0
    balance: Literal["none", "class", "group"] = "none"
    # With balance="group": the attributes whose cells (x class) are balanced, comma-separated
    # ("age" counts in age bands; "" = the modality's group: race for faces, finger for prints),
    # and how far: each image weighs count(cell) ** -balance_power (1 = every cell equally,
    # 0.5 = rare cells up, not all the way).
    balance_by: str = ""
    balance_power: float = 1.0
    # Perceptual-hash Hamming distance that counts as a near-duplicate (-1 = exact bytes only).
    # Fingerprints all look alike to a perceptual hash: only identical hashes are merged there.
    near_duplicate_distance: int = 2
    limit: int = 0  # use at most this many samples (0 = all); for smoke tests
    init_from: str = ""  # start from this checkpoint's weights (fine-tuning), not from scratch
    # Knowledge distillation from one of our own checkpoints (e.g. a larger, slower network):
    # the loss mixes the labels with the teacher's softened probability on the same augmented batch
    # (exported models, NAME.onnx: on the un-augmented image, computed once before training).
    teacher: str = ""
    distill_weight: float = 0.5  # share of the teacher term in the loss
    distill_temperature: float = 2.0
    # With exported teachers: draw this many augmented views of each training image before training,
    # have the teacher score each, and train on those views (a random one per image per epoch), so
    # that the soft target is the teacher's answer on the very view the student sees. 0 = off.
    teacher_views: int = 0
    # Runs (comma-separated) whose teacher views of the same images this run reuses instead of
    # drawing them again: the other folds of a cross-validation share most of their training images.
    teacher_views_from: str = ""
    # Multi-task training (training/auxiliary.py): a second head on the same features predicts
    # "age" (UTKFace names, a CSV column) or "finger" (SOCOFing names, a CSV column); its loss,
    # times ``aux_weight``, joins the gender loss. Never exported. "" = off.
    aux_task: Literal["", "age", "finger"] = ""
    aux_weight: float = 0.5
    # Faces from pre-cropped chips: the crop reaches beyond the chip's edge, where it repeats the
    # edge's pixels; in a photo the same place shows real hair, ears or background. In this share of
    # the training crops that part is replaced by other content (another face's pixels, a flat
    # colour, noise), so the network does not learn to rely on what lies there. 0 = off.
    outside_fill: float = 0.0
    # Faces: in this share of the training crops the hair is replaced (training/augment.py erase_hair):
    # the band above the brows (placed from the aligned crop's geometry, faces/crop.py hair_region)
    # and sometimes the sides down to the ear lobes, by another face's band, a flat colour or blurred
    # noise, so that the network learns the face rather than the hair. 0 = off.
    hair_erase: float = 0.0
    # Faces: each training crop turned about its vertical axis by up to this many degrees either way
    # (training/augment.py turn_about_vertical_axis: a plane's perspective), so that three-quarter
    # views are not new to the network. 0 = off; at most MAX_YAW_WARP.
    yaw_warp: float = 0.0
    # Training geometry for prints. "affine": rotation, zoom and sub-pixel shifts, plus light blur
    # and noise; on SOCOFing crops it keeps on average about half the power at the ridge frequency
    # (0.25-0.35 cycles/px, 2.9-4 px periods at 96 px), which unaugmented validation and test prints keep. "exact": mirror and
    # whole-pixel shifts only, no blur or noise, so the ridges reach the network as they are.
    augment: Literal["affine", "exact"] = "affine"  # AUGMENT_GEOMETRIES
    workers: int = 0
    threads: int = 0  # torch threads (0 = library default)
    cache_dir: str = ".cache/genderclass"
    # Where Lightning trains, passed to its Trainer as given: several devices (or nodes) train with
    # DDP, one process per device, each drawing batch_size images per step (docs/scale.md)
    accelerator: str = "auto"  # cpu, gpu, cuda, mps, auto
    devices: str = "auto"  # a count ("2"), a list ("0,1"), -1 for all, or auto
    num_nodes: int = 1
    strategy: str = "auto"  # e.g. ddp, ddp_spawn, fsdp
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)

    def __post_init__(self) -> None:
        check_folds(self.folds, self.fold)
        for name in ("test_files", "val_files"):
            if getattr(self, name) and not getattr(self, name).endswith(".txt"):
                raise ValueError(f"{name} takes a .txt list of files, one a line; got {getattr(self, name)!r}")
        if self.val_files and self.folds:
            raise ValueError("--val-files names one validation split; --folds deals folds")
        if self.val_fraction >= 1 or (not self.test_files and self.val_fraction + self.test_fraction >= 1):
            raise ValueError(
                f"val_fraction + test_fraction must leave images to train on, got {self.val_fraction} + "
                f"{self.test_fraction}"
            )
        spec = REGISTRY.get(self.modality)  # None for an unknown name (refused where the modality is used)
        if self.outside_fill and not (spec and spec.crops_beyond_edge):
            raise ValueError("outside_fill applies to face crops only (a print is never cropped beyond its edge)")
        if not 0 <= self.hair_erase <= 1:
            raise ValueError(f"hair_erase is a probability (0-1), got {self.hair_erase}")
        if self.hair_erase and not (spec and spec.detects_faces and self.preprocess.detect):
            raise ValueError("hair_erase applies to detected face crops only (a print has no brows to place it by)")
        if not 0 <= self.yaw_warp <= MAX_YAW_WARP:
            raise ValueError(f"yaw_warp is a turn in degrees (0-{MAX_YAW_WARP:g}), got {self.yaw_warp}")
        if self.yaw_warp and not (spec and spec.detects_faces):
            raise ValueError("yaw_warp applies to faces only (a print is pressed flat; it does not turn)")
        if self.augment not in AUGMENT_GEOMETRIES:
            raise ValueError(f"unknown augment {self.augment!r}; expected one of {', '.join(AUGMENT_GEOMETRIES)}")
        if self.augment not in (spec.augment_geometries if spec else AUGMENT_GEOMETRIES[:1]):
            raise ValueError(f"augment={self.augment!r} applies to fingerprints only; faces train with 'affine'")
        self._check_teacher_views()
        if self.balance_by and self.balance != "group":
            raise ValueError("--balance-by names the groups of --balance group")
        if not 0 < self.balance_power <= 1:
            raise ValueError(f"balance_power must be in (0, 1], got {self.balance_power}")

    def _check_teacher_views(self) -> None:
        if self.teacher_views < 0:
            raise ValueError(f"teacher_views must be 0 (off) or a count of views, got {self.teacher_views}")
        names = teacher_checkpoints(self.teacher)
        exported = names and all(name.lower().endswith(".onnx") for name in names)
        if self.teacher_views and not exported:
            raise ValueError("--teacher-views needs --teacher exported models (.onnx); checkpoints teach every batch")
        if self.teacher_views_from and not self.teacher_views:
            raise ValueError("--teacher-views-from needs --teacher-views")
        if self.teacher_views and self.outside_fill:
            raise ValueError(
                "--teacher-views and --outside-fill do not combine: the views are drawn without chip edges"
            )
        if self.teacher_views and self.hair_erase:
            raise ValueError("--teacher-views and --hair-erase do not combine: the views are drawn with the hair")
        if self.teacher_views and self.yaw_warp:
            raise ValueError("--teacher-views and --yaw-warp do not combine: the views are drawn without the turn")

    @classmethod
    def for_modality(cls, modality: str, **overrides: Any) -> TrainConfig:
        """The defaults of one modality (its bundled model's recipe); ``overrides`` win."""
        spec = modality_for(modality)
        base = cls(modality=spec.name, format=spec.reader_format, **spec.train_defaults)
        base.preprocess = PreprocessConfig.for_modality(modality)
        return dataclasses.replace(base, **overrides)

    @property
    def resolved_split_seed(self) -> int:
        return self.seed if self.split_seed < 0 else self.split_seed

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["preprocess"] = self.preprocess.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and k != "preprocess"}
        return cls(preprocess=PreprocessConfig.from_dict(data.get("preprocess", {})), **values)


# Serving / prediction defaults
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 32_000  # OpenCV's warps take at most 32,767 px a side
# Each scan of a progressive JPEG is a pass over the whole image: 1,000 empty scans of 40 MP (216 kB)
# took 51 s to decode. Ordinary progressive JPEGs have about 10 scans.
MAX_JPEG_SCANS = 100
DEFAULT_BATCH_SIZE = 64  # crops per network call at prediction (CLI, Python API, evaluate)
IMBALANCE_HINT_RATIO = 2  # train: a larger class over this many times the smaller, unweighted, gets a hint
MAX_GROUP_VALUES = 50  # evaluate: an attribute with more distinct values (an id, a date) is not a grouping
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")

# Face detection
DETECT_MAX_SIDE = 320  # photos are downscaled to this long side before detection
DETECT_MIN_SCORE = 0.6

# Evaluation
AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 2, "0-2"),
    (3, 9, "3-9"),
    (10, 19, "10-19"),
    (20, 29, "20-29"),
    (30, 39, "30-39"),
    (40, 59, "40-59"),
    (60, 200, "60+"),
)
ECE_BINS = 15


def counted_architectures(architecture: str, name: Callable[[str], str]) -> str:
    """An ensemble's " + "-joined member architectures (as exported) with repeats counted, in
    order of first appearance, each name written by ``name``: ``"a + a + b"`` -> ``"2 × a + b"``."""
    counts: dict[str, int] = {}
    for member in architecture.split(" + "):
        counts[member] = counts.get(member, 0) + 1
    return " + ".join(name(arch) if n == 1 else f"{n} × {name(arch)}" for arch, n in counts.items())


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` whole or not at all: a run killed while rewriting its config.json stays resumable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    partial.replace(path)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
