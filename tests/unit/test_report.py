import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import genderclass
from genderclass.evaluation import metrics as M
from genderclass.evaluation import plots as P
from genderclass.evaluation import report as R
from genderclass.evaluation.fusion import fuse_by_subject
from genderclass.evaluation.groups import group_metrics

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


def _training_csv(path: Path) -> Path:
    # Lightning CSVLogger style: train and val metrics on separate rows, empty cells elsewhere
    lines = ["epoch,step,train_loss_step,train_loss_epoch,val_loss,val_acc,val_bal_acc,lr-AdamW"]
    for epoch in range(3):
        lines.append(f"{epoch},{epoch * 10 + 5},{0.7 - 0.1 * epoch},,,,,")
        lines.append(f"{epoch},{epoch * 10 + 9},,{0.65 - 0.1 * epoch},,,,1e-3")
        lines.append(f"{epoch},{epoch * 10 + 9},,,{0.6 - 0.05 * epoch},{0.7 + 0.05 * epoch},{0.68 + 0.05 * epoch},")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def toy():
    rng = np.random.default_rng(7)
    n = 60
    labels = rng.integers(0, 2, n)
    logits = 3.0 * (labels * 2 - 1) * rng.random(n) + rng.normal(0, 1.5, n)
    p_uncal = M.sigmoid(logits)
    t = M.fit_temperature(logits, labels)
    p = M.apply_temperature(logits, t)
    race = [["white", "black", "asian", None][i % 4] for i in range(n)]
    ages = [str(a) for a in rng.integers(0, 80, n)]
    metrics = M.binary_metrics(labels, p)
    metrics["temperature"] = t
    metrics["coverage_curve"] = M.coverage_curve(labels, p)
    metrics["min_confidence"] = M.choose_min_confidence(labels, p)
    metrics["groups"] = group_metrics(labels, p, {"race": race, "age": ages})
    subjects = [f"s{i // 3}" for i in range(n)]
    s_labels = labels.copy()
    for i in range(n):
        s_labels[i] = labels[(i // 3) * 3]
    _, fy, fz = fuse_by_subject(subjects, s_labels, logits)
    metrics["per_subject"] = M.binary_metrics(fy, M.sigmoid(fz))
    return labels, p, p_uncal, metrics, {"age": ages, "race": race}


def test_write_report(tmp_path, toy):
    labels, p, p_uncal, metrics, group_of = toy
    csv_path = _training_csv(tmp_path / "metrics.csv")
    rng = np.random.default_rng(0)

    def thumb(i):
        shape = (32, 32, 1) if i % 2 else (32, 32, 3)
        return rng.integers(0, 256, shape, dtype=np.uint8)

    out = R.write_report(
        tmp_path / "report",
        metrics,
        labels,
        p,
        p_uncalibrated=p_uncal,
        thumbnails=thumb,
        training_metrics_csv=csv_path,
        title="toy <eval> & co",
        group_of=group_of,
        item_names=[f"img_{i}.jpg" for i in range(len(labels))],
    )
    assert out == tmp_path / "report" / "report.html"
    text = out.read_text(encoding="utf-8")
    for section in (
        "Summary",
        "Confusion matrix",
        "ROC curve",
        "Training curves",
        "Calibration",
        "Accuracy vs coverage",
        "Results by group",
        "race_x_gender",
        "Per-subject results",
        "Most confident errors",
        "Responsible use",
        "not for surveillance",
    ):
        assert section in text, section
    assert "<img" in text and "data:image/png;base64," in text
    assert "toy &lt;eval&gt; &amp; co" in text and "<eval>" not in text
    assert "http://" not in text and "https://" not in text and "<script" not in text
    pngs = sorted((tmp_path / "report" / "figures").glob("*.png"))
    names = {p.name for p in pngs}
    assert {"confusion_matrix.png", "roc.png", "reliability.png", "coverage.png", "training_curves.png"} <= names
    assert {"group_race.png", "group_age.png", "errors_all.png"} <= names
    assert any(n.startswith("errors_age_") for n in names)
    assert all(_is_png(p) for p in pngs)


def test_error_tables_name_the_predicted_label_at_the_threshold(tmp_path):
    """An error near a threshold other than 0.5 (female from 0.6: p 0.55 is called male) shows what
    the model said, not only p_female, which alone reads as a right answer."""
    labels = np.array([1, 0, 1, 0])
    p = np.array([0.55, 0.2, 0.9, 0.1])
    metrics = M.binary_metrics(labels, p, 0.6)
    metrics["threshold"] = 0.6
    text = R.write_report(tmp_path, metrics, labels, p, item_names=["a.png", "b.png", "c.png", "d.png"]).read_text()
    errors = text[text.index("Most confident errors") :]
    assert "p_female &ge; 0.600" in errors
    assert "<th>predicted</th>" in errors
    assert "<td>a.png</td><td>female</td><td>male</td>" in errors
    assert "b.png" not in errors and "c.png" not in errors


def test_group_names_are_plotted_as_text_not_mathtext(tmp_path):
    """A CSV manifest's group value or column name with dollar signs (e.g. "$\\frac$") aborted the report."""
    labels = np.array([0, 1, 0, 1])
    p = np.array([0.2, 0.7, 0.6, 0.4])
    metrics = M.binary_metrics(labels, p, 0.5)
    metrics["groups"] = group_metrics(labels, p, {"$\\frac$": ["$\\frac$", "$x^$", "$\\frac$", "a"]})
    text = R.write_report(tmp_path, metrics, labels, p).read_text()
    assert "<h3>$\\frac$</h3>" in text


def test_write_report_minimal(tmp_path):
    labels = [0, 1, 0, 1]
    p = [0.2, 0.7, 0.6, 0.4]
    out = R.write_report(tmp_path, {}, labels, p)
    text = out.read_text()
    assert "Summary" in text and "Most confident errors" in text
    assert "Training curves" not in text and "Results by group" not in text
    assert "0.500" in text  # accuracy computed from labels/p when metrics is empty


def test_individual_plots(tmp_path):
    labels = [0, 0, 1, 1, 1]
    p = [0.1, 0.6, 0.8, 0.3, 0.9]
    assert _is_png(P.plot_confusion_matrix([[1, 1], [1, 2]], tmp_path / "cm.png"))
    assert _is_png(P.plot_roc(labels, p, tmp_path / "roc.png"))
    assert _is_png(P.plot_roc([1, 1], [0.2, 0.4], tmp_path / "roc1.png"))  # one class: no crash
    assert _is_png(P.plot_reliability(labels, p, None, tmp_path / "rel.png"))
    assert _is_png(P.plot_coverage(M.coverage_curve(labels, p), tmp_path / "cov.png"))
    groups = group_metrics(labels, p, {"g": ["x", "x", "y", "y", None]})
    assert _is_png(P.plot_group_accuracy(groups["g"], tmp_path / "grp.png"))
    items = [(np.zeros((8, 8, 3), np.uint8), "a"), (np.full((8, 8, 1), 200, np.uint8), "b\nc"), (None, "missing")]
    assert _is_png(P.error_gallery(items, tmp_path / "gal.png"))
    assert _is_png(P.error_gallery([], tmp_path / "empty.png"))


def _curves(tmp_path: Path, text: str) -> tuple[Path, list[float], dict[str, list[float]]]:
    """A metrics.csv with ``text`` and what the training-curves reader makes of it."""
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(text)
    return csv_path, *P._read_metrics_csv(csv_path)


def test_training_curves_tolerant(tmp_path):
    csv_path, epochs, series = _curves(tmp_path, "epoch,step,train_loss\n0,1,0.9\n0,2,0.7\n1,3,0.5\n")
    assert epochs == [0.0, 1.0]
    assert series["train_loss"] == pytest.approx([0.8, 0.5])
    assert _is_png(P.plot_training_curves(csv_path, tmp_path / "tc.png"))
    empty = tmp_path / "empty.csv"
    empty.write_text("epoch,step\n")
    assert _is_png(P.plot_training_curves(empty, tmp_path / "tc2.png"))


def test_import_does_not_need_matplotlib():
    src = str(Path(genderclass.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = "import sys, genderclass.evaluation.report; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_report_names_the_files_left_out(tmp_path, toy):
    labels, p, _, metrics, _ = toy
    left_out = {**metrics, "unreadable": {"data/bad.jpg": "truncated"}, "no_face": [f"d/{i}.jpg" for i in range(7)]}
    text = R.write_report(tmp_path / "r", left_out, labels, p).read_text(encoding="utf-8")
    assert "Not scored, so in none of the numbers below: 1 unreadable (bad.jpg); 7 without a detected face" in text
    assert "0.jpg, 1.jpg, 2.jpg, 3.jpg, 4.jpg and 2 more" in text
    assert "Not scored" not in R.write_report(tmp_path / "plain", metrics, labels, p).read_text(encoding="utf-8")


def test_without_matplotlib_nothing_is_written(tmp_path, toy, monkeypatch):
    labels, p, _, metrics, _ = toy
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if it were not installed
    with pytest.raises(RuntimeError, match=r'pip install "genderclass\[report\]"'):
        R.write_report(tmp_path / "r", metrics, labels, p)
    assert not (tmp_path / "r").exists()


def test_training_curves_keep_the_learning_rate_logged_without_an_epoch(tmp_path):
    """LearningRateMonitor's rows carry a step but no epoch: they belong to the epoch that follows."""
    _, epochs, series = _curves(tmp_path, "epoch,lr-AdamW,step,val_loss\n,0.001,0,\n0,,9,0.7\n,0.0005,10,\n1,,19,0.6\n")
    assert epochs == [0.0, 1.0]
    assert series["lr-AdamW"] == pytest.approx([0.001, 0.0005])
    assert series["val_loss"] == pytest.approx([0.7, 0.6])
