"""Implementations of the CLI subcommands (thin layers over the library)."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import glob
import json
import logging
import sys
import time
from pathlib import Path

from ..config import TrainConfig
from ..data.readers import image_files
from ..inference.ray_engine import is_uri  # Ray itself is imported only by --engine ray
from ..modalities import modality_for, modality_of_format
from ..progress import progress
from .exit_codes import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE

log = logging.getLogger("genderclass")


# ------------------------------------------------------------------------------------------ train
PREPROCESS_FLAGS = ("input_size", "margin")


def given_train_flags(args: argparse.Namespace) -> dict[str, object]:
    """The training settings given on the command line (omitted flags are ``None`` and left out)."""
    names = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("modality", "preprocess")]
    return {name: getattr(args, name) for name in (*names, *PREPROCESS_FLAGS) if getattr(args, name, None) is not None}


def resolve_train_config(args: argparse.Namespace) -> TrainConfig:
    """The modality's defaults (``TrainConfig.for_modality``); every flag given overrides its field."""
    modality = args.modality or "face"
    given = given_train_flags(args)
    if "test_files" in given and "test_fraction" in given:
        raise ValueError("--test-fraction and --test-files do not combine: the list is the whole test split")
    cfg = TrainConfig.for_modality(modality, **{k: v for k, v in given.items() if k not in PREPROCESS_FLAGS})
    if not modality_for(modality).detects_faces and "margin" in given:  # stored in the metadata, never applied
        raise ValueError("--margin applies to face crops only (a print is never cropped)")
    cfg.preprocess = dataclasses.replace(cfg.preprocess, **{k: v for k, v in given.items() if k in PREPROCESS_FLAGS})
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from ..training.pipeline import train_and_export

    if args.recipe:
        return _train_recipe(args)
    if not args.out:
        raise ValueError("--out is required (the run folder), or give a --recipe")
    if args.dry_run:
        raise ValueError("--dry-run goes with --recipe")
    cfg = resolve_train_config(args)
    if not args.resume and not cfg.data:
        raise ValueError("--data is required (or --resume an existing run)")
    # A resumed run checks every flag given against its saved config (only some may change).
    given = {k: v for k, v in given_train_flags(args).items() if k != "out"}
    if args.modality:  # resuming a run of the other modality is refused, not ignored
        given["modality"] = args.modality
    onnx_path = train_and_export(cfg, resume=args.resume, command=args.command_line, overrides=given)
    if onnx_path is not None:  # the other processes of a distributed run print nothing
        print(json.dumps({"run": str(cfg.out), "model": str(onnx_path)}))
    return EXIT_OK


def _train_recipe(args: argparse.Namespace) -> int:
    """``train --recipe FILE``: every stage of the recipe, then its export (training/recipe.py)."""
    from ..training.recipe import load_recipe, run_recipe

    given = sorted(k for k in given_train_flags(args) if k != "out")
    given += [name for name in ("resume", "modality") if getattr(args, name)]
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise ValueError(f"{flags}: a recipe holds its own flags (edit the recipe); --recipe takes --out and --dry-run")
    verbosity = ["-q"] if args.quiet else ["-" + "v" * args.verbose] if args.verbose else []
    return run_recipe(load_recipe(args.recipe, runs=args.out), dry_run=args.dry_run, verbosity=verbosity)


def cmd_export(args: argparse.Namespace) -> int:
    from ..training.export import export_run

    path = export_run(
        args.run,
        out=args.out,
        name=args.name,
        flip_tta=args.flip_tta,
        quantize=args.quantize,
        calibrate_with=args.calibrate_with,
    )
    print(json.dumps({"model": str(path), "metadata": str(path.with_suffix(".json"))}))
    return EXIT_OK


# ------------------------------------------------------------------------------------------ predict
ANNOTATION_INDEX = "annotated.csv"


def _annotate(path: Path, result: dict, folder: Path, taken: set[str]) -> Path | None:
    """Write the annotated copy of one classified image; a failed write is logged, not fatal."""
    from ..inference.annotate import write_annotated

    try:
        return write_annotated(path, result, folder, taken)
    except OSError as exc:  # e.g. a file name too long for the file system once suffixed
        log.warning("could not write the annotated copy of %s: %s", path, exc)
        return None


def _write_annotation_index(folder: Path, written: list[tuple[Path, Path]]) -> bool:
    """``folder/annotated.csv``: which input each copy of this run shows (same-named inputs get
    numbered copies, so the names alone do not tell)."""
    try:
        with open(folder / ANNOTATION_INDEX, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
            index = csv.writer(f)
            index.writerow(["path", "annotated"])
            index.writerows((str(source), copy.name) for source, copy in written)
    except OSError as exc:
        log.warning("could not write %s: %s", folder / ANNOTATION_INDEX, exc)
        return False
    log.info("%d annotated copies in %s (index: %s)", len(written), folder, ANNOTATION_INDEX)
    return True


def expand_paths(patterns: list[str]) -> list[Path]:
    """Files as given, folders recursively (image extensions only), globs expanded; order kept."""
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():  # a folder without images stays, to be reported as an error line
            found.extend(image_files(path) or [path])
        elif path.exists():
            found.append(path)
        elif glob.has_magic(pattern) and (
            files := sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        ):
            found.extend(files)
        else:  # includes a glob that matches no file, or a missing file whose name has [ ] * ?
            found.append(path)  # reported as an error line, like any unreadable file
    return found


CSV_FIELDS = (
    "path",
    "face",
    "x1",
    "y1",
    "x2",
    "y2",
    "label",
    "p_female",
    "confidence",
    "error",
    "finger",
)  # finger: last, added later


def _write_csv_rows(writer: csv.DictWriter, result: dict) -> None:
    if not result["faces"]:
        writer.writerow({"path": result["path"], "error": result["error"] or ""})
    for index, face in enumerate(result["faces"]):
        x1, y1, x2, y2 = face["box"]
        writer.writerow(
            {"path": result["path"], "face": index, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": face["label"],
             "p_female": face["p_female"], "confidence": face["confidence"], "finger": face.get("finger", ""),
             "error": ""}
        )  # fmt: skip


def _fingers(paths: list[Path], finger: str | None) -> list[str | None]:
    """Each input's finger for ``predict --finger``: the one given, or with ``auto`` the finger a
    file name states SOCOFing-style (None for other names, classified as without --finger)."""
    if finger != "auto":
        return [finger] * len(paths)
    from ..modalities.fingerprint import finger_in_name

    fingers = [finger_in_name(path.name) for path in paths]
    log.info("--finger auto: the finger read from %d of %d file names", sum(map(bool, fingers)), len(paths))
    return fingers


def _warn_if_names_say_several_people(paths: list[Path]) -> None:
    """``--fuse`` averages every print as one person's: say so when SOCOFing-style names
    (``12__M_Left_index_finger.png``) show prints of more than one person."""
    from ..data.readers import parse_socofing_name

    subjects = sorted({s.subject for p in paths if (s := parse_socofing_name(p.name)) and s.subject}, key=_natural)
    if len(subjects) > 1:
        shown = ", ".join(subjects[:5]) + (", …" if len(subjects) > 5 else "")
        log.warning(
            "--fuse treats all prints as one person's, but their file names name %d people (%s): "
            "the fused line mixes them; give one person's prints per call",
            len(subjects),
            shown,
        )


def _natural(subject: str) -> tuple[int, str]:
    return (int(subject), subject) if subject.isdigit() else (1 << 62, subject)


class PredictionOutput:
    """Where ``predict`` results go: JSON lines or CSV rows on stdout, the failures counted, and the
    ``--summary`` estimates accumulated; the same for every engine."""

    def __init__(self, args: argparse.Namespace, threshold: float, unit: str) -> None:
        from ..inference.summary import LabelShares

        self.writer = csv.DictWriter(sys.stdout, fieldnames=CSV_FIELDS) if args.format == "csv" else None
        self.shares = LabelShares(threshold, unit) if args.summary else None
        self.failed = 0
        self.total = 0

    def start(self) -> None:
        if self.writer:
            self.writer.writeheader()

    def count(self, result: dict) -> None:
        """A result written elsewhere (``--out``): counted and summarised only."""
        self.total += 1
        self.failed += bool(result["error"])
        if self.shares:
            self.shares.add(result)

    def write(self, result: dict) -> None:
        if self.writer:
            _write_csv_rows(self.writer, result)
        else:
            sys.stdout.write(json.dumps(result) + "\n")
        self.count(result)

    def finish(self) -> None:
        if self.shares:
            sys.stdout.write(json.dumps({"summary": self.shares.summary()}) + "\n")
        sys.stdout.flush()


def _check_predict_args(args: argparse.Namespace, clf) -> None:
    """Refuse flag combinations before any work."""
    if args.fuse and not clf.modality_spec.fuses_per_person:
        raise ValueError("--fuse is for fingerprints (use --modality fingerprint)")
    for flag, given in (("--fuse", args.fuse), ("--summary", args.summary)):
        if given and args.format != "jsonl":
            raise ValueError(f"{flag} writes a JSON line after the results: use it with --format jsonl")
    if args.finger and not clf.modality_spec.fingers:
        raise ValueError("--finger is for fingerprints (use --modality fingerprint)")
    if args.finger and clf.finger_known is None:
        raise ValueError(f"--finger needs a fingerprint model with per-finger calibration; {clf.path} has none")
    if args.annotate and Path(args.annotate).exists() and not Path(args.annotate).is_dir():
        raise ValueError(f"--annotate needs a folder, but {args.annotate} is a file")
    if args.engine == "local":
        for flag, given in (("--address", args.address), ("--workers", args.workers), ("--out", args.out)):
            if given is not None:
                raise ValueError(f"{flag} is for --engine ray")
        return
    for flag, given in (("--fuse", args.fuse), ("--annotate", args.annotate)):
        if given:
            raise ValueError(f"{flag} runs on one machine: use it with --engine local")
    if args.out and args.format != "jsonl":
        raise ValueError("--out writes Parquet shards: leave out --format")


def cmd_predict(args: argparse.Namespace) -> int:
    from ..inference.classifier import GenderClassifier

    # joining a cluster, the workers use the device, not this machine (it may have no GPU)
    device = "cpu" if args.engine == "ray" and args.address else args.device
    clf = GenderClassifier.load(args.model, modality=args.modality, device=device)
    _check_predict_args(args, clf)
    output = PredictionOutput(args, clf.threshold, clf.modality_spec.unit)
    if args.engine == "ray":
        return _predict_on_ray(args, clf, output)
    return _predict_locally(args, clf, output)


def _input_paths(patterns: list[str], finger: str | None, clf) -> tuple[list[Path], list[str | None]]:
    """The local input files and each one's finger; an input of nothing but empty folders is refused."""
    paths = expand_paths(patterns)
    if all(path.is_dir() for path in paths):  # nothing but folders without images
        raise ValueError("no input files" + (f": no image in {', '.join(map(str, paths))}" if paths else ""))
    fingers = _fingers(paths, finger)
    clf.finger_offsets(fingers)  # a finger the model does not know: refused before any output
    return paths, fingers


def _predict_locally(args: argparse.Namespace, clf, output: PredictionOutput) -> int:
    from ..inference.classifier import distinct_files

    paths, fingers = _input_paths(args.paths, args.finger, clf)
    if args.fuse:
        _warn_if_names_say_several_people(paths)
    detect = False if args.no_detect else None
    output.start()
    annotate_dir = Path(args.annotate) if args.annotate else None
    annotated_names: set[str] = set()
    annotated: list[tuple[Path, Path]] = []
    failed_annotations = 0
    fusable: list[tuple[str, float, str | None]] = []  # --fuse: each classified print, its logit and finger
    progress_bar = progress(total=len(paths), desc="predict", disable=len(paths) <= 1)
    batch = max(1, args.batch_size)
    for start in range(0, len(paths), batch):
        chunk = paths[start : start + batch]
        started = time.perf_counter()
        results = clf.predict_batch_with_logits(
            [str(p) for p in chunk],
            detect=detect,
            min_confidence=args.min_confidence,
            batch_size=batch,
            fingers=fingers[start : start + batch],
        )
        log.debug("batch of %d: %.1f ms", len(chunk), (time.perf_counter() - started) * 1000)
        for path, finger, (result, logits) in zip(chunk, fingers[start : start + batch], results):
            output.write(result)
            if result["error"]:
                continue
            if args.fuse:
                fusable.append((str(path), float(logits[0]), finger))
            if annotate_dir:
                copy = _annotate(path, result, annotate_dir, annotated_names)
                if copy is None:
                    failed_annotations += 1
                else:
                    annotated.append((path, copy))
        sys.stdout.flush()
        progress_bar.update(len(chunk))
    progress_bar.close()
    index_failed = bool(annotated) and not _write_annotation_index(annotate_dir, annotated)
    if args.fuse:
        if fusable:
            sources, logits, fingers_used = zip(*(fusable[i] for i in distinct_files([p for p, _, _ in fusable])))
            fused = clf.fuse(logits, sources, args.min_confidence, fingers_used)
            sys.stdout.write(json.dumps(fused) + "\n")
        else:
            log.error("no print could be read and classified, so there is nothing to fuse")
    output.finish()
    failed = output.failed + failed_annotations
    if failed:
        log.warning("%d of %d inputs could not be read, classified or annotated", failed, len(paths))
    return EXIT_PARTIAL if failed or index_failed else EXIT_OK


def _predict_on_ray(args: argparse.Namespace, clf, output: PredictionOutput) -> int:
    """``--engine ray``: the same lines as the local engine, computed by an actor pool on a Ray
    cluster (a local one unless ``--address``); with ``--out``, Parquet shards instead of lines."""
    from ..inference import ray_engine

    uris = [pattern for pattern in args.paths if is_uri(pattern)]
    local = [pattern for pattern in args.paths if not is_uri(pattern)]
    paths = _input_paths(local, args.finger, clf)[0] if local else []
    if args.out:
        ray_engine.check_new_output(args.out)
    # writing Parquet happens inside Ray: its own progress bars show it (ours would only count the read-back)
    with ray_engine.ray_session(args.address, args.verbose, ray_progress=bool(args.out) and not args.quiet):
        import ray.data

        ray.data.DataContext.get_current().execution_options.preserve_order = args.ordered
        workers = args.workers or ray_engine.default_workers(args.device == "cuda")
        log.info("classifying on Ray with %d workers", workers)
        # the bundled model: each worker's own installation; a given model: at its absolute path
        model = str(Path(args.model).resolve()) if args.model and not is_uri(args.model) else args.model
        parts = [
            ray_engine.predict_dataset(
                part,
                model,
                clf.modality,
                device=args.device,
                workers=workers,
                batch_size=max(1, args.batch_size),
                detect=False if args.no_detect else None,
                min_confidence=args.min_confidence,
                finger=args.finger,
            )
            for part in ray_engine.input_datasets(paths, uris, blocks=4 * workers)
        ]
        results = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
        total = None if uris else len(paths)
        if args.out:
            results.write_parquet(args.out)
            log.info("results written to %s", args.out)
            results, record = ray.data.read_parquet(args.out).select_columns(["path", "faces", "error"]), output.count
        else:
            output.start()
            record = output.write
        single = total is not None and total <= 1
        progress_bar = progress(total=total, desc="predict", disable=single or bool(args.out))
        for table in results.iter_batches(batch_format="pyarrow", batch_size=None):
            for row in table.to_pylist():
                record(ray_engine.result_from_row(row))
            sys.stdout.flush()
            progress_bar.update(table.num_rows)
        progress_bar.close()
    if args.out:
        sys.stdout.write(json.dumps({"out": args.out, "files": output.total, "failed": output.failed}) + "\n")
    output.finish()
    if output.failed:
        log.warning("%d of %d inputs could not be read or classified", output.failed, output.total)
    return EXIT_PARTIAL if output.failed else EXIT_OK


# ------------------------------------------------------------------------------------------ evaluate
def _beyond_the_test_split(model: Path, samples: list, data: str) -> set[str] | None:
    """Evaluating all of a model's own training data measures memory, not accuracy. ``export``
    lists the test files beside the model (NAME.test_files.txt): when the data holds some of them
    and also other files, those others were probably trained or calibrated on; say so, and return
    the paths of the test files (None when there is nothing to say)."""
    from ..data.split import select_listed

    listed = model.with_name(f"{model.stem}.test_files.txt")
    if not listed.is_file():
        return None
    try:
        test, _ = select_listed(samples, listed.read_text().splitlines(), data)
    except ValueError:  # names the data holds twice: no telling which file the list means
        return None
    if not test or len(test) == len(samples):
        return None
    log.warning(
        "%d of the %d files are not in the model's test split (%s): it was probably trained or "
        "calibrated on them, so these numbers are optimistic; --split-file %s evaluates its %d test files only",
        len(samples) - len(test),
        len(samples),
        listed.name,
        listed,
        len(test),
    )
    return {sample.path for sample in test}


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from ..data.readers import read_dataset
    from ..data.split import select_split_file, split_file_phrase
    from ..evaluation.evaluate import evaluate_samples
    from ..inference.classifier import GenderClassifier

    of_format = modality_of_format(args.format)  # utkface: face, socofing: fingerprint; folder, csv: either
    implied = of_format.name if of_format else None
    clf = GenderClassifier.load(
        args.model, modality=args.modality or (None if args.model else implied), device=args.device
    )
    if implied and implied != clf.modality:
        raise ValueError(f"--format {args.format} holds {implied} images, but {clf.path} is a {clf.modality} model")
    samples = read_dataset(args.data, args.format).samples
    if args.split_file:  # a shipped .txt list of files (one split only), or a run's split.csv
        samples = select_split_file(samples, args.split_file, args.data, args.split)
    test_files = None if args.split_file else _beyond_the_test_split(clf.path, samples, args.data)
    limited = bool(args.limit and args.limit < len(samples))
    if limited:
        keep = np.sort(np.random.default_rng(args.seed).choice(len(samples), args.limit, replace=False))
        samples = [samples[i] for i in keep]
    # counted among the files scored (after --limit's draw)
    beyond_test = sum(sample.path not in test_files for sample in samples) if test_files is not None else 0
    crop_mode = "none" if args.no_detect else (args.crop or modality_for(clf.modality).default_crop_mode(args.format))
    # training curves: a run folder's metrics.csv, else the NAME.metrics.csv export writes beside NAME.onnx
    curves = [Path(args.model) / "metrics.csv"] if args.model else []
    curves.append(clf.path.with_name(f"{clf.path.stem}.metrics.csv"))
    training_csv = next((path for path in curves if path.is_file()), None)
    files = "all" if not args.split_file else f"{split_file_phrase(args.split_file, args.split)} {args.split_file}"
    if beyond_test:
        files += f" ({beyond_test} outside the model's test split: probably trained on)"
    if limited:
        files += f", {len(samples)} drawn at random (--limit, --seed {args.seed})"
    source = {"data": str(args.data), "format": args.format, "files": files}
    metrics = evaluate_samples(
        clf, samples, args.out, crop_mode=crop_mode, training_metrics_csv=training_csv, source=source
    )
    summary = {
        k: metrics.get(k) for k in ("n", "accuracy", "balanced_accuracy", "roc_auc", "ece", "n_unreadable", "n_no_face")
    }
    if "per_subject" in metrics:
        summary["per_subject_balanced_accuracy"] = metrics["per_subject"]["balanced_accuracy"]
    if "finger_known" in metrics:
        summary["finger_known_balanced_accuracy"] = metrics["finger_known"]["balanced_accuracy"]
    report = Path(args.out) / "report.html"
    summary["report"] = str(report) if report.is_file() else None
    print(json.dumps(summary))
    if metrics.get("n_unreadable"):  # reported and skipped; the metrics cover the rest
        n = metrics["n_unreadable"]
        log.warning(
            "%d %s could not be read; the metrics leave %s out", n, *(("file", "it") if n == 1 else ("files", "them"))
        )
        return EXIT_PARTIAL
    return EXIT_OK


# ------------------------------------------------------------------------------------------ bench, info
def cmd_bench(args: argparse.Namespace) -> int:
    from ..inference.bench import run_bench

    results = run_bench(
        args.model, args.modality, args.image, args.repeat, cold_start=not args.no_cold_start, device=args.device
    )
    print(json.dumps(results, indent=2))
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from ..inference.bundled import bundled_models
    from ..inference.classifier import GenderClassifier

    if args.model:
        models = {"custom": GenderClassifier.load(args.model, modality=args.modality)}
    else:
        wanted = [m for m in bundled_models() if args.modality in (None, m)]
        models = {m: GenderClassifier.load(modality=m) for m in wanted}
    if not models:
        log.error("no bundled %smodel in this installation", f"{args.modality} " if args.modality else "")
        return EXIT_USAGE
    if args.json:
        print(json.dumps({k: clf.stored_metadata for k, clf in models.items()}, indent=2))
        return EXIT_OK
    for key, clf in models.items():
        info = clf.info()
        print(f"[{key}] {info['path']}")
        if info.get("architecture_summary"):
            info.pop("architecture")  # "30 × small_resnet" says it; --json has every member
        groups = info.pop("test_groups", {})
        for field, value in info.items():
            if field != "path":
                print(f"  {field}: {_readable(value)}")
        for attribute, rows in groups.items():  # the modality's headline metric (prints: balanced)
            key = clf.modality_spec.headline_metric
            cells = ", ".join(f"{row['group']} {_readable(row[key])} (n={row['n']})" for row in rows)
            print(f"  test {key} by {attribute}: {cells}")
    return EXIT_OK


def _readable(value: object) -> str:
    """A metadata value for a person: 4 significant digits, lists of numbers likewise."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return str(value)
