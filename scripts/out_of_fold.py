"""Re-derive a cross-validation ensemble's out-of-fold scores from the exported ONNX file alone.

The model card's validation numbers of an ensemble exported from cross-validation runs are
out-of-fold: each validation file is scored by the members that did not train on it. Their
checkpoints need not exist any more: this script reads every member's logit from the exported
graph, recomputes the folds from the training config stored in the metadata (the same
deterministic split), and prints per-print and per-subject ROC-AUC for the whole ensemble and for
each recipe in it (members whose training commands differ only in --out, --fold and --seed).
The first line checks the reconstruction against the metadata's own out-of-fold AUC.
A benchmark-style script: it prints numbers, it asserts nothing. Needs the ``train`` extra and the
model's dataset at the path in its metadata.

    python scripts/out_of_fold.py src/genderclass/models/fingerprint.onnx
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import onnx

from genderclass.config import TrainConfig
from genderclass.data.prepare import prepare_data
from genderclass.data.split import split_groups
from genderclass.evaluation.fusion import fuse_by_subject
from genderclass.evaluation.metrics import roc_auc
from genderclass.runtime import cpu_session

PER_RUN_FLAGS = re.compile(r"\s--(out|fold|seed|threads|workers|cache-dir)\s+\S+")


def member_logit_names(model: onnx.ModelProto) -> list[str]:
    """Each member's logit tensor, in member order: the inputs of the Concat that the ensemble's
    mean reduces (through QuantizeLinear/DequantizeLinear pairs in an INT8 graph)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    node = producer["logit"]
    while node.op_type != "Concat":
        if node.op_type not in ("ReduceMean", "QuantizeLinear", "DequantizeLinear"):
            raise ValueError(f"not a mean-logit ensemble: 'logit' comes from {node.op_type}")
        node = producer[node.input[0]]
    return list(node.input)


def member_logits(path: Path, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Files x members logits, read from the exported graph."""
    model = onnx.load(str(path))
    names = member_logit_names(model)
    model.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    with tempfile.TemporaryDirectory() as folder:
        staged = Path(folder) / "members.onnx"
        onnx.save(model, str(staged))
        session = cpu_session(staged, threads=2)
    chunks = []
    for start in range(0, len(images), batch_size):
        pixels = images[start : start + batch_size].transpose(0, 3, 1, 2).astype(np.float32)
        outputs = session.run(names, {"pixels": pixels})
        chunks.append(np.stack([np.asarray(o).reshape(-1) for o in outputs], axis=1))
    return np.concatenate(chunks)


def recipe(command: str) -> str:
    """A member's training command without what differs per run (and without a resume's note)."""
    return PER_RUN_FLAGS.sub("", " " + command.split(" ; resumed with:")[0]).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="an exported cross-validation ensemble (.onnx; its .json beside it)")
    args = parser.parse_args()
    meta = json.loads(args.model.with_suffix(".json").read_text())
    members = meta["training"].get("members") or []
    if not members or any("fold" not in m for m in members):
        raise SystemExit(f"{args.model}: not an ensemble of cross-validation members")
    cfg = TrainConfig.from_dict(meta["training"]["config"])
    data = prepare_data(cfg)  # read and grouped once; each fold below only re-assigns the groups
    if data.cache.data_hash() != meta["training"]["data_hash"]:
        raise SystemExit(f"the data at {cfg.data} is not what {args.model} was trained on (its hash differs)")
    fold = np.full(len(data.cache.labels), -1)
    for k in range(cfg.folds):
        split = split_groups(
            data.cache.labels, data.split.groups, cfg.val_fraction, cfg.test_fraction, cfg.resolved_split_seed,
            cfg.folds, k, data.listed_test,
        )  # fmt: skip
        fold[split.indices("val")] = k
    scored = np.flatnonzero(fold >= 0)
    logits = member_logits(args.model, data.cache.images[scored])
    labels, subjects, fold = data.cache.labels[scored], data.cache.subjects[scored], fold[scored]
    member_fold = np.array([m["fold"] for m in members])

    def out_of_fold(chosen: np.ndarray) -> tuple[float, float]:
        held_out = member_fold[chosen][None, :] == fold[:, None]
        mean = (logits[:, chosen] * held_out).sum(axis=1) / held_out.sum(axis=1)
        _, person_labels, person_logits = fuse_by_subject(subjects, labels, mean)
        return roc_auc(labels, mean), roc_auc(person_labels, person_logits)

    recorded = meta["metrics"]["validation"]["roc_auc"]
    everyone = np.arange(len(members))
    per_print, per_subject = out_of_fold(everyone)
    print(f"{len(scored)} out-of-fold files, {len(np.unique(subjects))} subjects, {len(members)} members")
    print(f"reconstructed per-print AUC {per_print:.4f} (metadata: {recorded:.4f}; members in the exported precision)")
    recipes = [recipe(m["command"]) for m in members]
    shared = set.intersection(*(set(r.split()) for r in recipes))
    print(f"{'members':>8} {'per print':>10} {'per subject':>12}  recipe (flags beyond those all share)")
    for name in dict.fromkeys(recipes):
        chosen = np.flatnonzero(np.array(recipes) == name)
        if set(member_fold[chosen]) != set(range(cfg.folds)):  # some files would have no score from it
            print(f"{len(chosen):>8} {'-':>10} {'-':>12}  {name} (not on every fold: no out-of-fold score)")
            continue
        a, b = out_of_fold(chosen)
        flags = " ".join(t for t in name.split() if t not in shared) or "(none)"
        print(f"{len(chosen):>8} {a:>10.4f} {b:>12.4f}  {flags}")
    print(f"{len(members):>8} {per_print:>10.4f} {per_subject:>12.4f}  the whole ensemble")


if __name__ == "__main__":
    main()
