"""The "Training Data" section: dataset, splits, commands, hyper-parameters and ensemble members."""

from __future__ import annotations

from typing import Any

from .blocks import Block
from .format import NOT_MEASURED, code, count, esc, or_missing, public
from .metadata import dataset_ref


def fold_layout(cross_validation: dict) -> tuple[object, str]:
    """K (older metadata: one member per fold) and who scores each held-out image."""
    per_file = cross_validation.get("members_per_validation_file")
    folds = cross_validation.get("folds", cross_validation.get("members"))
    if isinstance(per_file, int) and per_file > 1:
        return folds, f"the mean logit of the {per_file} members that held it out"
    return folds, "the member that held it out"


_HYPERPARAMETERS = (
    "arch",
    "width",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_epochs",
    "label_smoothing",
    "dropout",
    "patience",
    "monitor",
    "balance",
    "balance_by",
    "balance_power",
    "outside_fill",
    "hair_erase",
    "yaw_warp",
    "aux_task",
    "aux_weight",
    "seed",
    "split_seed",
    "val_fraction",
    "folds",
    "test_fraction",
    "test_files",
    "val_files",
    "near_duplicate_distance",
    "limit",
)


def _stages_text(stages: Any) -> str | None:
    """Earlier ``--init-from`` stages, oldest first: each one's command and best epoch."""
    if not isinstance(stages, list) or not stages:
        return None
    described = []
    for stage in stages:
        stage = stage if isinstance(stage, dict) else {}
        command = public(stage["command"]) if stage.get("command") else None
        described.append(
            f"{code(command) if command else 'command not recorded'} (checkpoint {or_missing(public(stage.get('checkpoint') or ''), code)}, "
            f"epoch counter {count(stage.get('epoch'))})"
        )
    return "; then ".join(described)


def _teachers_text(teachers: Any) -> str:
    """The networks a run was distilled from, each with the stages that trained it ("" for none)."""
    if not isinstance(teachers, list) or not teachers:
        return ""
    described = [f"({i}) {_stages_text(t) or NOT_MEASURED}" for i, t in enumerate(teachers, 1)]
    return f"the mean logit of {len(described)} network{'s' if len(described) > 1 else ''}: " + "; ".join(described)


def _members_line(members: list[dict]) -> list[str]:
    """One line naming an ensemble's members (none for a single model)."""
    if not members:
        return []
    described = []
    for member in members:
        text = f"{or_missing(member.get('architecture'), code)} at {count(member.get('input_size'))} px"
        if member.get("resized_in_graph_from"):
            text += f" (resized in the graph from {count(member['resized_in_graph_from'])} px)"
        if member.get("folds"):
            text += f", validated on fold {count(member.get('fold'))} of {count(member['folds'])}"
        if member.get("best_epoch") is not None:
            text += f", best epoch counter {count(member['best_epoch'])}"
        if stages := _stages_text(member.get("earlier_stages")):
            text += f", fine-tuned from: {stages}"
        if teachers := _teachers_text(member.get("teachers")):
            text += f", taught by {teachers}"
        described.append(text)
    return ["**Ensemble members (mean logit):** " + "; ".join(described)]


def training_data(md: dict) -> list[Block]:
    """The "Training Data" section: one list of what the training run stored."""
    training = md.get("training") if isinstance(md.get("training"), dict) else {}
    sizes = training.get("split_sizes") if isinstance(training.get("split_sizes"), dict) else {}
    config = training.get("config") if isinstance(training.get("config"), dict) else {}
    members = [m for m in training.get("members") or [] if isinstance(m, dict)]
    stages = _stages_text(training.get("earlier_stages"))
    teachers = _teachers_text(training.get("teachers"))
    split_text = ", ".join(f"{esc(k)} {count(v)}" for k, v in sizes.items()) if sizes else NOT_MEASURED
    cross_validation = training.get("cross_validation")
    if isinstance(cross_validation, dict) and sizes:
        per_member = [n for n in cross_validation.get("validation_files_per_member") or [] if isinstance(n, int)]
        bounds = dict.fromkeys([min(per_member), max(per_member)]) if per_member else {}
        fold_sizes = "–".join(count(n) for n in bounds) or NOT_MEASURED
        split_text = (
            f"{count(fold_layout(cross_validation)[0])}-fold cross-validation over {count(sizes.get('val'))} "
            f"(each member validates on {fold_sizes} and trains on the rest), test {count(sizes.get('test'))}, "
            f"dropped {count(sizes.get('dropped'))}"
        )
    # listed only when they apply; with cross-validation the folds replace val_fraction, and a list of
    # test files test_fraction; group balancing's settings, and augmentations that are off, are not listed
    group = config.get("balance") == "group"
    applies = {
        "balance_by": group and config.get("balance_by"),
        "balance_power": group,
        "outside_fill": config.get("outside_fill"),
        "hair_erase": config.get("hair_erase"),
        "yaw_warp": config.get("yaw_warp"),
        "val_files": config.get("val_files"),
        "aux_task": config.get("aux_task"),
        "aux_weight": config.get("aux_task"),
        "folds": config.get("folds"),
        "val_fraction": not config.get("folds") and not config.get("val_files"),
        "test_fraction": not config.get("test_files"),
        "test_files": config.get("test_files"),
    }
    shown = [k for k in _HYPERPARAMETERS if k in config and applies.get(k, True)]
    hyper = ", ".join(code(f"{k}={public(config[k])}") for k in shown) or NOT_MEASURED
    return [
        (
            "ul",
            [
                f"**Dataset:** {dataset_ref(md)} (reader format {or_missing(training.get('format'), code)}, "
                f"location as given {or_missing(public(training['data']) if training.get('data') else None, code)})",
                f"**Data hash:** {or_missing(training.get('data_hash'), code)}",
                f"**Split sizes:** {split_text}",
                f"**Duplicate groups dropped for conflicting labels:** {count(training.get('n_conflicting_groups'))}",
                *(
                    [f"**Earlier stages (oldest first; each fine-tuned from the one before):** {stages}"]
                    if stages
                    else []
                ),
                f"**Training command{' (last stage)' if stages else ''}:** {or_missing(public(training['command']) if training.get('command') else None, code)}",
                *(
                    [f"**Distilled from** {teachers} (each trained by the commands listed, in order)"]
                    if teachers
                    else []
                ),
                f"**Hyper-parameters{' (of the member with the largest input)' if members else ''}:** {hyper}",
                *_members_line(members),
                *(
                    []
                    if members
                    else [f"**Best epoch (checkpoint's epoch counter):** {count(training.get('best_epoch'))}"]
                ),
                f"**Licence of the training data:** {or_missing(training.get('data_license'))}",
            ],
        )
    ]
