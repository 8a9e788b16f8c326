"""How much of a fingerprint model's logit depends on which finger it sees.

For an exported fingerprint run (``RUN/export/fingerprint.test_predictions.npz``, written by
``genderclass export``), prints per finger type (thumb ... little, both hands pooled): the offset of
its mean validation logit from the mean of all validation prints, and its test ROC-AUC. Then the
test AUC of all prints pooled, as exported and with each print's validation offset removed (what
knowing the finger would give). A benchmark-style script: it prints numbers, it asserts nothing.
Needs the ``train`` extra and the run's dataset (it re-reads the cached split).

    python scripts/finger_offsets.py runs/fp-f2 runs/fp-v4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from genderclass.config import TrainConfig
from genderclass.data.prepare import prepare_data
from genderclass.evaluation.metrics import roc_auc
from genderclass.training.auxiliary import FINGERS


def finger_report(run: Path) -> None:
    cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text())["train"])
    data = prepare_data(cfg)
    saved = np.load(run / "export" / f"{cfg.modality}.test_predictions.npz")
    labels, attrs = data.cache.labels, data.cache.attrs

    def fingers(index: np.ndarray) -> np.ndarray:
        return np.array([attrs[i].get("finger", "") for i in index])

    val_fingers, test_fingers = fingers(saved["val_index"]), fingers(saved["index"])
    val_logits, test_logits, test_labels = saved["val_logits"], saved["logits"], labels[saved["index"]]
    offsets = {f: float(val_logits[val_fingers == f].mean() - val_logits.mean()) for f in FINGERS}
    print(f"{run}:")
    for finger in FINGERS:
        mine = test_fingers == finger
        print(
            f"  {finger:<7} offset {offsets[finger]:+.2f}   test AUC {roc_auc(test_labels[mine], test_logits[mine]):.3f}"
        )
    corrected = test_logits - np.array([offsets[f] for f in test_fingers])
    print(
        f"  all prints: test AUC {roc_auc(test_labels, test_logits):.3f}; finger known: {roc_auc(test_labels, corrected):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="fingerprint run folders with an export")
    for run in parser.parse_args().runs:
        finger_report(run)


if __name__ == "__main__":
    main()
