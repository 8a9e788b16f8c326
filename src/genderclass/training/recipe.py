"""Recipes: a bundled model's whole training, from data to the exported file, in one YAML file.

A recipe (``recipes/*.yaml``) names its stages and the export that joins them::

    runs: runs/face                  # where the stages' run folders go (``--out`` overrides it)
    train: {modality: face, data: ../shared/datasets/utkface, format: utkface, threads: 2}
    stages:
      face-a1: {seed: 0}
      face-a3: {init_from: face-a1, input_size: 112, epochs: 20}
      face-kd3: {init_from: face-a3, teacher: [face-a4, face-as4]}
    export: {runs: [face-kd3, face-as4], quantize: int8, no_flip_tta: true, out: src/genderclass/models}

Each stage is one ``genderclass train`` with the shared ``train`` flags and its own; a key is a
flag's name (``input_size`` is ``--input-size``, ``true`` a bare switch). ``init_from`` and
``teacher`` may name earlier stages (their best checkpoint) or files, ``teacher_views_from``
earlier stages (their run folders) or folders. ``genderclass train --recipe
FILE`` runs the stages in order and then the export: a stage whose model is exported already is
skipped, one that started is continued with ``--resume``, so an interrupted recipe is simply run
again. ``--dry-run`` prints the commands instead.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STAGE_REFERENCES = ("init_from", "teacher", "teacher_views_from")  # flags that may name earlier stages
RUN_FOLDER_REFERENCES = ("teacher_views_from", "calibrate_with")  # ... whose stages mean their run folder


@dataclass
class Recipe:
    """A parsed recipe: shared training flags, the stages in order, the export."""

    path: Path
    runs: Path
    train: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)

    def run_folder(self, stage: str) -> Path:
        return self.runs / stage


def load_recipe(path: str | Path, runs: str | Path | None = None) -> Recipe:
    """Read and check a recipe; ``runs`` overrides its ``runs`` folder."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read recipe {path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("stages"), dict) or not raw["stages"]:
        raise ValueError(f"recipe {path} needs a 'stages' mapping of stage name -> flags")
    unknown = sorted(set(raw) - {"runs", "train", "stages", "export", "description"})
    if unknown:
        raise ValueError(f"recipe {path}: unknown key(s) {', '.join(unknown)}")
    recipe = Recipe(
        path=path,
        runs=Path(runs or raw.get("runs") or f"runs/{path.stem}"),
        train=dict(raw.get("train") or {}),
        stages={name: dict(flags or {}) for name, flags in raw["stages"].items()},
        export=dict(raw.get("export") or {}),
    )
    _check_references(recipe)
    return recipe


def _check_references(recipe: Recipe) -> None:
    """Stages may only name stages before them; the export only stages of the recipe."""
    seen: set[str] = set()
    for name, flags in recipe.stages.items():
        for key in STAGE_REFERENCES:
            for value in _as_list(flags.get(key)):
                if value in recipe.stages and value not in seen:
                    raise ValueError(f"recipe {recipe.path}: stage {name!r} uses {value!r} before it is trained")
        seen.add(name)
    missing = [run for run in _as_list(recipe.export.get("runs")) if run not in recipe.stages]
    missing += [run for run in _as_list(recipe.export.get("calibrate_with")) if run not in recipe.stages]
    if missing:
        raise ValueError(f"recipe {recipe.path}: export names unknown stage(s) {', '.join(missing)}")


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def _flags(options: dict[str, Any]) -> list[str]:
    """``{input_size: 112, no_flip_tta: true}`` -> ``["--input-size", "112", "--no-flip-tta"]``."""
    args: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is False or value is None:
            continue
        else:
            args += [flag, ",".join(_as_list(value)) if isinstance(value, (list, tuple)) else str(value)]
    return args


def _resolve(recipe: Recipe, flags: dict[str, Any]) -> dict[str, Any]:
    """Stage names in ``init_from``/``teacher`` -> those stages' best checkpoints; in
    ``teacher_views_from`` -> their run folders."""
    resolved = dict(flags)
    for key in STAGE_REFERENCES:
        if key in resolved:
            resolved[key] = [_reference(recipe, key, v) for v in _as_list(resolved[key])]
    return resolved


def _reference(recipe: Recipe, key: str, value: str) -> str:
    if value not in recipe.stages:
        return value  # a file or folder, as given
    run = recipe.run_folder(value)
    return str(run if key in RUN_FOLDER_REFERENCES else run / "checkpoints" / "best.ckpt")


def stage_state(run: Path) -> str:
    """'done' (its model exported), 'started' (a run folder to --resume) or 'new'."""
    if any((run / "export").glob("*.onnx")):
        return "done"
    return "started" if (run / "config.json").is_file() else "new"


def stage_command(recipe: Recipe, stage: str) -> list[str]:
    """The ``genderclass train`` arguments of one stage in its current state."""
    run = recipe.run_folder(stage)
    if stage_state(run) == "started":
        threads = recipe.stages[stage].get("threads", recipe.train.get("threads"))
        return ["train", "--out", str(run), "--resume", *_flags({"threads": threads})]
    flags = {**recipe.train, **_resolve(recipe, recipe.stages[stage])}
    return ["train", "--out", str(run), *_flags(flags)]


def export_command(recipe: Recipe) -> list[str] | None:
    """The ``genderclass export`` arguments joining the stages named in ``export.runs`` (and
    calibrated with those in ``export.calibrate_with``: run folders)."""
    if not recipe.export:
        return None
    options = dict(recipe.export)
    runs = [str(recipe.run_folder(run)) for run in _as_list(options.pop("runs", None))]
    others = [_reference(recipe, "calibrate_with", run) for run in _as_list(options.pop("calibrate_with", None))]
    return ["export", *runs, *_flags(options), *(["--calibrate-with", *others] if others else [])]


def run_recipe(recipe: Recipe, dry_run: bool = False, verbosity: list[str] | None = None) -> int:
    """Train every stage not done yet, in order, then export. Each step is a ``genderclass``
    process, exactly the command printed; the first that fails stops the recipe (its exit status)."""
    steps = [(stage, stage_command(recipe, stage)) for stage in recipe.stages]
    export = export_command(recipe)
    if export:
        steps.append(("export", export))
    for name, args in steps:
        if name != "export" and stage_state(recipe.run_folder(name)) == "done":
            log.info("stage %s: exported already, skipped", name)
            continue
        shown = shlex.join(["genderclass", *args])
        if dry_run:
            print(shown)
            continue
        log.info("stage %s: %s", name, shown)
        status = subprocess.call([sys.executable, "-m", "genderclass", *(verbosity or []), *args])
        if status:
            log.error("stage %s failed (exit status %d): run the recipe again to continue from it", name, status)
            return status
    return 0
