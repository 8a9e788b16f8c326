"""``genderclass`` command line: small root commands over the library.

stdout carries results only; progress bars and logs go to stderr.
Exit codes (cli/exit_codes.py): 0 ok, 1 some inputs failed, 2 usage or input error, 3 missing optional
dependency, 130 interrupted, 141 stdout closed early.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import shlex
import sys
from types import ModuleType

from tqdm.contrib.logging import logging_redirect_tqdm

from .. import __version__
from ..config import AUGMENT_GEOMETRIES, DEFAULT_BATCH_SIZE, MAX_YAW_WARP, MODALITIES
from ..data.readers import FINGERS
from ..runtime import DeviceUnavailableError
from .exit_codes import EXIT_INTERRUPTED, EXIT_MISSING_DEPENDENCY, EXIT_PIPE_CLOSED, EXIT_USAGE
from .flags import add_device_flag, add_modality_flag

log = logging.getLogger("genderclass")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults, except where there is none or the help text already names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action)


FACE_ONLY_FLAGS = ("--margin", "--outside-fill", "--hair-erase", "--yaw-warp")  # fingerprints have no crop


def _number(low: float, high: float = math.inf, low_open: bool = False, high_open: bool = False):
    """An argparse type: a finite number in [low, high] (``*_open``: that end excluded)."""

    def number(value: str) -> float:  # argparse names a bad value by this function's name
        x = float(value)
        inside = (x > low if low_open else x >= low) and (x < high if high_open else x <= high)
        if not (math.isfinite(x) and inside):  # also refuses nan and inf
            left, right = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
            raise argparse.ArgumentTypeError(f"must be a number in {left}{low:g}, {high:g}{right}, got {value}")
        return x

    return number


_non_negative = _number(0.0)
_positive = _number(0.0, low_open=True)
_fraction = _number(0.0, 1.0, high_open=True)
probability = _number(0.0, 1.0)


def _count(minimum: int):
    def integer(value: str) -> int:  # argparse names a bad value by this function's name
        number = int(value)
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return number

    return integer


def _train_default(flag: str) -> object:
    """The config default behind a train flag (what an omitted flag means), per modality if they differ."""
    from ..config import TrainConfig

    name = flag.lstrip("-").replace("-", "_")
    values = {}
    for modality in ("face",) if flag in FACE_ONLY_FLAGS else MODALITIES:
        config = TrainConfig.for_modality(modality)
        for source in (config, config.preprocess):
            if hasattr(source, name):
                values[modality] = getattr(source, name)
                break
    if not values:
        return None
    shown = {modality: "none" if value == "" else value for modality, value in values.items()}
    if len(set(map(repr, shown.values()))) == 1:
        return shown["face"]
    return "; ".join(f"{modality}s: {value}" for modality, value in shown.items())


def _add(sub: argparse._SubParsersAction, name: str, help_text: str, examples: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name, help=help_text, description=f"{help_text}\n\nexamples:\n{examples}", formatter_class=HelpFormatter
    )
    _add_verbosity(parser, after_command=True)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, after_command: bool = False) -> None:
    """-v/-q, before the command or after it (there they override what came before)."""
    suffix = "_after" if after_command else ""
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v",
        "--verbose",
        dest="verbose" + suffix,
        action="count",
        default=None if after_command else 0,
        help="debug messages (-vv: also from the libraries used) (default: off)",
    )
    verbosity.add_argument(
        "-q",
        "--quiet",
        dest="quiet" + suffix,
        action="store_true",
        default=None if after_command else False,
        help="only errors; no progress bars",
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line, with -v/-q given after the command replacing those before it."""
    args = build_parser().parse_args(argv)
    after_verbose, after_quiet = getattr(args, "verbose_after", None), getattr(args, "quiet_after", None)
    if after_verbose is not None or after_quiet:
        args.verbose, args.quiet = after_verbose or 0, bool(after_quiet)
    return args


def build_parser() -> argparse.ArgumentParser:
    from ..cards.cli import register as register_card
    from ..web.cli import register as register_serve
    from . import commands as C

    parser = argparse.ArgumentParser(
        prog="genderclass",
        description="Gender classification (male/female as labelled in public datasets) from face photos or "
        "fingerprints. Not for surveillance or decisions about people.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"genderclass {__version__}")
    _add_verbosity(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _train_command(sub, C)
    _export_command(sub, C)
    _predict_command(sub, C)
    _evaluate_command(sub, C)
    _bench_command(sub, C)
    _info_command(sub, C)
    register_serve(sub, _add)  # defined beside the web app and the cards; registered as every command is
    register_card(sub, _add)
    return parser


# train flags that set a number or a name: (flag, type, help); each help ends with the flag's default
_TRAIN_SETTINGS = (
    ("--arch", str, "small_resnet | small_resnet_s1 (stride-1 stem, fine detail) | mobilenet_v3_small | resnet18"),
    ("--width", _positive, "width multiplier"),
    ("--epochs", _count(1), "maximum epochs"),
    ("--batch-size", _count(1), "batch size"),
    ("--lr", _positive, "peak learning rate (AdamW)"),
    ("--weight-decay", float, "AdamW weight decay"),
    ("--patience", _count(0), "early-stopping patience in epochs"),
    ("--seed", int, "seed for init and augmentation, and for the split unless --split-seed"),
    ("--split-seed", int, "seed for the split alone, -1 = --seed (vary --seed, keep the split)"),
    ("--val-fraction", _fraction, "share of groups for validation (unused with --folds)"),
    ("--test-fraction", _fraction, "share of groups for test (not with --test-files)"),
    (
        "--test-files",
        str,
        "a .txt list of the test split's files, one a line (paths relative to --data, or bare names if "
        "unique; e.g. an exported model's NAME.test_files.txt): they and their duplicate groups are the "
        "test split, the rest splits by --val-fraction or --folds; listed files missing from the data are "
        "counted in a warning",
    ),
    (
        "--val-files",
        str,
        "a .txt list of the validation split's files, as --test-files lists the test split (instead of "
        "--val-fraction; e.g. the files the model given to --init-from validated on)",
    ),
    ("--folds", int, "cross-validation: split the non-test groups into K folds (test unchanged); 0 = off"),
    ("--fold", int, "with --folds: the fold used for validation, 0..K-1"),
    ("--limit", _count(0), "use at most N images, 0 = all (smoke tests)"),
    ("--workers", _count(0), "data-loader worker processes, 0 = in the main process"),
    ("--threads", _count(0), "torch CPU threads, 0 = library default"),
    ("--cache-dir", str, "where preprocessed arrays are cached"),
    ("--accelerator", str, "Lightning accelerator: cpu, gpu, cuda, mps or auto"),
    ("--devices", str, "devices per node: a count, a list such as 0,1, -1 for all, or auto"),
    ("--num-nodes", _count(1), "machines (nodes) training together, each with --devices"),
    ("--strategy", str, "Lightning strategy, e.g. ddp (one process per device; --batch-size is per process)"),
    ("--input-size", _count(16), "network input size in pixels"),
    ("--margin", _number(0), "faces only: crop margin (fraction of the box)"),
    ("--label-smoothing", float, "label smoothing"),
    ("--dropout", float, "dropout before the classifier"),
    ("--ema-decay", float, "average the weights (EMA, e.g. 0.99); 0 = off"),
    ("--warmup-epochs", _count(0), "linear learning-rate warmup"),
    (
        "--init-from",
        str,
        "fine-tune: start from this checkpoint's weights, or from an exported model of ours (NAME.onnx; "
        "NAME.onnx#K for network K of an ensemble, e.g. the bundled face model), INT8 weights dequantized",
    ),
    (
        "--teacher",
        str,
        "distil from this checkpoint of ours, on the same batches; several, comma-separated, "
        "teach by their mean logit (an ensemble); or from exported models (NAME.onnx, e.g. a bundled "
        "ensemble), whose logits on the un-augmented training images are computed once",
    ),
    ("--distill-weight", float, "share of the teacher's soft targets in the loss"),
    ("--distill-temperature", float, "temperature that softens teacher and student logits"),
    (
        "--teacher-views",
        int,
        "with an exported --teacher: draw this many augmented views of each training image once, "
        "have the teacher score each, and train on them, so the soft target is the teacher's answer "
        "on the very view the student sees (0 = off: every augmentation learns from the un-augmented score)",
    ),
    (
        "--teacher-views-from",
        str,
        "with --teacher-views: runs (comma-separated) whose views of the same images, drawn with the "
        "same teacher, to reuse instead of drawing them again (the other folds of a cross-validation)",
    ),
    (
        "--outside-fill",
        probability,
        "faces from chips: share of training crops whose part beyond the chip's edge gets other "
        "content (another face, a flat colour, noise) instead of the repeated edge; 0 = off",
    ),
    (
        "--hair-erase",
        probability,
        "faces only: share of training crops whose hair is replaced (another face's, a flat colour or "
        "blurred noise): the band above the brows, and in half of them also the sides down to the ear "
        "lobes, like a scarf or cap; 0 = off",
    ),
    (
        "--yaw-warp",
        _number(0.0, MAX_YAW_WARP),
        "faces only: training crops turned about the vertical axis by up to this many degrees either "
        "way (perspective, toward a three-quarter view), e.g. 30; 0 = off",
    ),
)


def _train_command(sub: argparse._SubParsersAction, C: ModuleType) -> None:
    p = _add(
        sub,
        "train",
        "Train a model (needs the 'train' extra).",
        "  genderclass train --modality face --data ../shared/datasets/utkface --format utkface --out runs/face\n"
        "  genderclass train --modality fingerprint --data DATA/socofing --format socofing --out runs/fp\n"
        "  genderclass train --out runs/face --resume\n"
        "  genderclass train --recipe recipes/face.yaml\n"
        "      # every stage of the bundled face model, then its export; run again to continue\n"
        "  genderclass train --modality fingerprint --data DATA/socofing --folds 5 --fold 0 --out runs/fp-k0\n"
        "      # one of 5 cross-validation runs; export all 5 as one ensemble (see 'export --help')\n"
        "  genderclass train --data DATA/utkface --out runs/face --accelerator gpu --devices 4 --strategy ddp\n"
        "      # DDP on 4 GPUs; under torchrun or SLURM give the same flags (docs/scale.md)",
    )
    _train_data_flags(p)
    for flag, kind, help_text in _TRAIN_SETTINGS:
        p.add_argument(flag, type=kind, default=None, help=f"{help_text} (default: {_train_default(flag)})")
    _train_choice_flags(p)
    p.set_defaults(func=C.cmd_train)


def _train_data_flags(p: argparse.ArgumentParser) -> None:
    """What to train on and where the run goes: modality, data, format, run folder, resume."""
    add_modality_flag(p, "what the images show (default: face)")
    p.add_argument("--data", help="dataset folder or CSV manifest")
    p.add_argument(
        "--format",
        choices=("utkface", "socofing", "folder", "csv"),
        default=None,
        help="how labels are read (default: utkface; fingerprints: socofing)",
    )
    p.add_argument(
        "--out", help="run folder: config, split, checkpoints, metrics, export (with --recipe: where its runs go)"
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    p.add_argument(
        "--recipe",
        help="a recipe file (recipes/*.yaml): train its stages in order and export, skipping stages exported "
        "already and resuming a started one; its flags are in the file",
    )
    p.add_argument("--dry-run", action="store_true", help="with --recipe: print its commands, run nothing")


def _train_choice_flags(p: argparse.ArgumentParser) -> None:
    """Train flags with a fixed set of values (balancing, auxiliary task, augmentation, monitor)."""
    p.add_argument(
        "--balance",
        choices=("none", "class", "group"),
        default=None,
        help="balanced sampling: by class, or by class x group (faces: race; prints: finger) "
        f"(default: {_train_default('--balance')})",
    )
    p.add_argument(
        "--balance-by",
        default=None,
        metavar="ATTRS",
        help="with --balance group: the attributes of the groups, comma-separated, e.g. age,race (ages count "
        "in bands; default: the modality's group)",
    )
    p.add_argument(
        "--balance-power",
        type=float,
        default=None,
        help="with --balance: each image weighs count(its cell) ** -P; 1 balances every cell, 0.5 raises rare "
        f"cells part of the way (default: {_train_default('--balance-power')})",
    )
    p.add_argument(
        "--aux-task",
        type=lambda value: "" if value == "none" else value,
        choices=("", "age", "finger"),
        metavar="{none,age,finger}",
        default=None,
        help="multi-task: a second head learns this attribute from the same features, training only; "
        "ages come from UTKFace names or an 'age' CSV column, fingers from SOCOFing names or a 'finger' "
        f"column; data without it trains without the head (default: {_train_default('--aux-task')})",
    )
    p.add_argument(
        "--aux-weight",
        type=_non_negative,
        default=None,
        help=f"weight of the --aux-task loss next to the gender loss (default: {_train_default('--aux-weight')})",
    )
    p.add_argument(
        "--augment",
        choices=AUGMENT_GEOMETRIES,
        default=None,
        help="fingerprints: training geometry; 'affine' rotates, zooms and shifts by fractions of a pixel "
        "(with light blur and noise), 'exact' only mirrors and shifts by whole pixels, so the ridges are "
        f"never resampled (default: {_train_default('--augment')})",
    )
    p.add_argument(
        "--monitor",
        choices=("val_bal_acc", "val_auc"),
        default=None,
        help=f"validation metric for the best checkpoint and early stopping (default: {_train_default('--monitor')})",
    )


def _export_command(sub: argparse._SubParsersAction, C: ModuleType) -> None:
    p = _add(
        sub,
        "export",
        "Export a run's best checkpoint to ONNX + metadata JSON.",
        "  genderclass export runs/face\n  genderclass export runs/face --out dist/ --name face\n"
        "  genderclass export runs/face-resnet --no-flip-tta\n"
        "  genderclass export runs/face-a runs/face-b --name face   # one ensemble graph (mean logit)\n"
        "  genderclass export runs/fp-k0 runs/fp-k1 runs/fp-k2   # 'train --folds 3' runs: calibrated out-of-fold\n"
        "  genderclass export runs/face --quantize int8\n"
        "  genderclass export runs/fp-k0 --calibrate-with runs/fp-k1 runs/fp-k2   # one network, calibrated out-of-fold",
    )
    p.add_argument(
        "run",
        nargs="+",
        help="run folder written by 'train'; several runs on the same split, or cross-validation runs of distinct "
        "folds, export one ensemble (mean logit)",
    )
    p.add_argument(
        "--calibrate-with",
        nargs="+",
        default=[],
        metavar="RUN",
        help="cross-validation runs of the other folds, not exported: fit the calibration (temperature, "
        "threshold, fusion) on every fold's out-of-fold scores instead of the exported run's one fold",
    )
    p.add_argument("--out", help="output folder (default RUN/export)")
    p.add_argument("--name", help="file stem (default: the modality)")
    p.add_argument(
        "--flip-tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each image with its mirror image inside the ONNX graph (default: on for faces, off for prints)",
    )
    p.add_argument(
        "--quantize",
        choices=("int8",),
        help="store an INT8 model (ONNX Runtime static quantization, calibrated on training crops): "
        "about 2.7x faster on CPUs with VNNI (AVX-512), about 1.5x on AVX2-only ones; the metadata's metrics are "
        "measured on the quantized file",
    )
    p.set_defaults(func=C.cmd_export)


def _predict_command(sub: argparse._SubParsersAction, C: ModuleType) -> None:
    p = _add(
        sub,
        "predict",
        "Classify images; one JSON line (or CSV rows) per input file on stdout.",
        "  genderclass predict photo.jpg\n"
        "  genderclass predict photos/ 'more/*.png' --annotate out/ --format csv\n"
        "  genderclass predict --modality fingerprint --fuse prints/12__M_Left_*\n"
        "  genderclass predict --modality fingerprint --finger thumb scan.png\n"
        "  genderclass predict --modality fingerprint --finger auto socofing/Real/\n"
        "  genderclass predict photos/ --summary   # and the share of each label, estimated\n"
        "  genderclass predict --engine ray --workers 8 s3://bucket/photos/ --out results/",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, folders (recursive) or glob patterns")
    add_modality_flag(p, "which bundled model (default: face); with --model, the model's own modality, checked")
    p.add_argument("--model", help="model .onnx/.json or run folder (default: bundled)")
    p.add_argument("--no-detect", action="store_true", help="each whole image is one pre-cropped face")
    p.add_argument(
        "--min-confidence",
        type=probability,
        default=None,
        help="0-1: below this confidence, label 'uncertain'; 0 disables (default: the model's)",
    )
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output: JSON lines or CSV rows")
    p.add_argument(
        "--annotate",
        metavar="DIR",
        help="write copies with boxes, labels and probabilities drawn, and DIR/annotated.csv (input -> copy)",
    )
    p.add_argument("--batch-size", type=_count(1), default=DEFAULT_BATCH_SIZE, help="crops per network call")
    add_device_flag(p)
    p.add_argument(
        "--summary",
        action="store_true",
        help="after the lines, one JSON line estimating the share of each label over the classified faces "
        "(prints): the mean of the calibrated p_female with a bootstrap 95%% interval, beside the count of "
        "argmax labels and of abstentions. Counting labels is biased whenever accuracy differs by class; "
        "the calibrated mean is not, as long as the model is calibrated on data like yours (its temperature "
        "was fitted on its own validation data: on other kinds of photos the estimate shifts too)",
    )
    _ray_flags(p)
    p.add_argument(
        "--fuse", action="store_true", help="fingerprints: all inputs are one person; print a fused line last"
    )
    p.add_argument(
        "--finger",
        type=str.lower,
        choices=(*FINGERS, "auto"),
        help="fingerprints: which finger the prints are (any hand), so that its offset is removed and the "
        "per-finger calibration used; 'auto' reads it from SOCOFing-style names (others stay as without)",
    )
    p.set_defaults(func=C.cmd_predict)


def _ray_flags(p: argparse.ArgumentParser) -> None:
    """``predict --engine ray`` and its options (docs/scale.md)."""
    ray = p.add_argument_group("distributed prediction (needs the 'ray' extra)")
    ray.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: an actor pool on a Ray cluster, each actor loading the model once "
        "(same lines; PATH may also be a URI Ray can read, e.g. s3://bucket/photos/)",
    )
    ray.add_argument(
        "--address", help="join the Ray cluster at this address (e.g. ray://head:10001 or auto); default: start a "
        "local one and shut it down after"
    )  # fmt: skip
    ray.add_argument(
        "--workers", type=_count(1), help="actors (default: the cluster's CPUs but one; its GPUs with --device cuda)"
    )
    ray.add_argument(
        "--ordered", action="store_true", help="print in input order, as --engine local (default: as batches finish)"
    )
    ray.add_argument(
        "--out", metavar="DIR", help="write Parquet shards (path, faces, error) to DIR (a new folder or a URI) "
        "instead of lines; stdout gets one line with the counts"
    )  # fmt: skip


def _evaluate_command(sub: argparse._SubParsersAction, C: ModuleType) -> None:
    p = _add(
        sub,
        "evaluate",
        "Evaluate a model on labelled data: metrics.json + report.html.",
        "  genderclass evaluate --data ../shared/datasets/utkface --format utkface \\\n"
        "      --split-file src/genderclass/models/face.test_files.txt --out eval/\n"
        "  genderclass evaluate --model runs/face --data my.csv --format csv --no-detect --out eval/",
    )
    p.add_argument("--model", help="model .onnx/.json or run folder (default: bundled for --modality)")
    add_modality_flag(p, "which bundled model (default: from --format)")
    p.add_argument("--data", required=True, help="labelled dataset folder or CSV manifest")
    p.add_argument(
        "--format", choices=("utkface", "socofing", "folder", "csv"), required=True, help="how labels are read"
    )
    p.add_argument("--no-detect", action="store_true", help="whole images are the crops (same as --crop none)")
    p.add_argument(
        "--crop",
        choices=("detect", "chip", "none"),
        help="faces: detect them in each image, crop each image as a training chip is cropped (padded, then "
        "detected), or none (whole images); default: chip for --format utkface, detect otherwise",
    )
    p.add_argument(
        "--split-file",
        help="a run's split.csv (evaluate the files of --split) or a .txt list of files (paths relative to --data, or bare names if unique)",
    )
    p.add_argument(
        "--split",
        default="test",
        choices=("train", "val", "test"),
        help="which split of a --split-file split.csv to evaluate (default: test; a .txt list is one split)",
    )
    p.add_argument("--limit", type=_count(0), default=0, help="evaluate a random subset of N files; 0 = all")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit subset")
    p.add_argument("--out", required=True, help="folder for metrics.json and report.html")
    add_device_flag(p)
    p.set_defaults(func=C.cmd_evaluate)


def _bench_command(sub: argparse._SubParsersAction, C: ModuleType) -> None:
    p = _add(
        sub,
        "bench",
        "Measure speed (medians): per-face latency, batched throughput, end to end, cold start.",
        "  genderclass bench\n  genderclass bench --image photo.jpg --repeat 200",
    )
    p.add_argument("--model", help="model (default: bundled face model)")
    add_modality_flag(p, "which bundled model (default: face); with --model, checked")
    p.add_argument("--image", help="a 640x480-ish photo with one face for the end-to-end number")
    p.add_argument("--repeat", type=_count(1), default=100, help="timed calls per measurement (medians reported)")
    p.add_argument("--no-cold-start", action="store_true", help="skip the cold-start subprocess timing")
    add_device_flag(p)
    p.set_defaults(func=C.cmd_bench)


def _info_command(sub: argparse._SubParsersAction, C: ModuleType) -> None:
    p = _add(
        sub,
        "info",
        "Show the bundled models and their metadata.",
        "  genderclass info\n  genderclass info --modality fingerprint\n  genderclass info --json",
    )
    p.add_argument("--json", action="store_true", help="full metadata as JSON")
    p.add_argument("--model", help="a model to describe instead of the bundled ones")
    add_modality_flag(p, "only this bundled model")
    p.set_defaults(func=C.cmd_info)


def setup_logging(verbose: int, quiet: bool) -> None:
    """Default: genderclass's own progress messages (INFO) and every library's warnings; ``-v``:
    genderclass's debug messages too; ``-vv``: every library's as well; ``-q``: errors only."""
    if quiet:
        own, libraries = logging.ERROR, logging.ERROR
    else:
        own = logging.DEBUG if verbose else logging.INFO
        libraries = logging.DEBUG if verbose >= 2 else logging.WARNING
    logging.basicConfig(level=libraries, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("genderclass").setLevel(own)
    if quiet:  # no library warnings (they go to the logging system, below ERROR) and no progress bars
        logging.captureWarnings(True)
        from tqdm import tqdm

        plain_init = tqdm.__init__
        if getattr(plain_init, "silenced", False):  # already (main called again in one process)
            return

        def silent_init(self: tqdm, *args: object, **kwargs: object) -> None:  # wins over a caller's disable=
            kwargs["disable"] = True
            plain_init(self, *args, **kwargs)

        silent_init.silenced = True
        tqdm.__init__ = silent_init


EXTRAS = {
    "matplotlib": "report",
    "ray": "ray",
    **dict.fromkeys(("torch", "torchvision", "lightning", "torchmetrics", "onnx", "imagehash"), "train"),
}


def install_hint(module: str | None) -> str:
    """What to install for a missing module: the optional extra that brings it, else a repair."""
    extra = EXTRAS.get((module or "").split(".")[0])
    if extra:
        return f"this command needs an optional extra: pip install 'genderclass[{extra}]'"
    return "the installation is incomplete: pip install --force-reinstall genderclass"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 are printed as their bytes
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape" if stream is sys.stdout else "backslashreplace")
    args.command_line = "genderclass " + shlex.join(argv)
    try:
        # on a terminal, a log line never lands on a live progress bar's line (in a log file the
        # bars are plain lines already, and redrawing them after each message would only add noise)
        with logging_redirect_tqdm() if sys.stderr.isatty() else contextlib.nullcontext():
            return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:
        log.error("%s — %s", exc, install_hint(exc.name))
        return EXIT_MISSING_DEPENDENCY
    except DeviceUnavailableError as exc:  # e.g. --device cuda without onnxruntime-gpu
        log.error("%s", exc)
        return EXIT_MISSING_DEPENDENCY
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of stdout went away (e.g. '| head -1'): stop quietly
        with contextlib.suppress(OSError, ValueError):  # stdout may be no real file (captured, in-process)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_PIPE_CLOSED
    except (NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError) as exc:
        log.error("%s", exc)  # a path that is a file where a folder is needed, or the reverse; no permission
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
